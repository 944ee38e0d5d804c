//! The library on its own: `Discovery` instances in this test process, each on the loopback of
//! a namespace the test creates (the test's thread enters it, so every socket the instances
//! open is in there). What a program embedding peerd sees: who joins, leaves and expires, how
//! fast, and what a subscriber that never reads gets.

use std::future::Future;
use std::net::UdpSocket;
use std::time::Duration;

use peerd::wire::beacon::Beacon;
use peerd::{Change, Changes, Discovery, EventKind};
use tokio::time::{Instant, timeout};

use crate::support::netns::Netns;

/// What the issue promises for two instances on one host: seen, and seen leaving, this fast.
const WITHIN: Duration = Duration::from_millis(50);
/// How long a test waits for something it does not time: the harness's bound, not peerd's.
const PATIENCE: Duration = Duration::from_secs(5);

/// Runs `test` on a thread of its own that has entered `ns`'s network namespace, on a
/// current-thread runtime: the instances it starts open their sockets in there.
fn in_namespace<F: Future<Output = ()>>(ns: &Netns, test: impl FnOnce() -> F + Send + 'static) {
    let path = format!("/var/run/netns/{}", ns.name);
    let name = std::thread::current().name().map(str::to_owned);
    let thread = std::thread::Builder::new().name(name.unwrap_or_default());
    let joined = thread
        .spawn(move || {
            let file = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("enter the namespace");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(test());
        })
        .expect("spawn the test's thread")
        .join();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
}

/// An instance on the namespace's loopback, at timings fast enough for a test.
async fn start(hostname: &str, interval: Duration, ttl: Duration) -> Discovery {
    Discovery::builder()
        .hostname(hostname)
        .interface("127.0.0.1")
        .interval(interval)
        .ttl(ttl)
        .start()
        .await
        .expect("the instance starts")
}

/// The next event of `kind` about `hostname`, skipping the rest; `None` if none within `wait`.
async fn next_event(
    changes: &mut Changes,
    kind: EventKind,
    hostname: &str,
    wait: Duration,
) -> Option<peerd::Event> {
    let found = async {
        while let Some(change) = changes.next().await {
            if let Change::Event(event) = change
                && event.kind == kind
                && event.peer.hostname == hostname
            {
                return Some((*event).clone());
            }
        }
        None
    };
    timeout(wait, found).await.ok().flatten()
}

#[test]
fn two_instances_in_one_process_see_each_other_join_and_leave_within_50ms() {
    let Some(ns) = Netns::create("lib-two") else {
        return;
    };
    in_namespace(&ns, || async {
        let (interval, ttl) = (Duration::from_secs(15), Duration::from_secs(35));
        let a = start("a", interval, ttl).await;
        let mut a_changes = a.subscribe();
        let b = start("b", interval, ttl).await;
        let both_started = Instant::now();
        let mut b_changes = b.subscribe();

        // By the instances' own clocks: when each took the other in.
        let b_at_a = next_event(&mut a_changes, EventKind::Joined, "b", PATIENCE).await;
        let a_at_b = next_event(&mut b_changes, EventKind::Joined, "a", PATIENCE).await;
        let b_at_a = b_at_a.expect("a lists b").at;
        let a_at_b = a_at_b.expect("b lists a").at;
        for (who, at) in [("a lists b", b_at_a), ("b lists a", a_at_b)] {
            let after = at.saturating_duration_since(both_started.into_std());
            eprintln!("{who} {after:?} after both started");
            assert!(after <= WITHIN, "{who} {after:?} after both started");
        }
        let listed: Vec<String> = a
            .peers()
            .await
            .expect("a answers")
            .into_iter()
            .map(|p| p.hostname)
            .collect();
        assert_eq!(
            listed,
            ["b"],
            "each instance has its own registry, without itself"
        );
        assert_eq!(b.status().await.expect("b answers").node.peers, 1);

        let stopped = Instant::now();
        b.shutdown().await;
        let left = next_event(&mut a_changes, EventKind::Left, "b", PATIENCE).await;
        let left = left.expect("a sees b leave").at;
        let after = left.saturating_duration_since(stopped.into_std());
        eprintln!("b's leave seen {after:?} after its shutdown");
        assert!(
            after <= WITHIN,
            "b's leave seen {after:?} after its shutdown"
        );
        assert_eq!(b.peers().await, Err(peerd::Error::Stopped));
        a.shutdown().await;
    });
}

#[test]
fn a_dropped_handle_stops_without_a_goodbye_and_expires_after_its_ttl() {
    let Some(ns) = Netns::create("lib-drop") else {
        return;
    };
    in_namespace(&ns, || async {
        // The shortest timings the settings allow: the expiry is waited for in real time.
        let (interval, ttl) = (Duration::from_millis(100), Duration::from_millis(300));
        let a = start("a", interval, ttl).await;
        let mut changes = a.subscribe();
        let b = start("b", interval, ttl).await;
        next_event(&mut changes, EventKind::Joined, "b", PATIENCE)
            .await
            .expect("a lists b");
        // Heard again, so its last beacon is recent when it is dropped.
        let renewed = Instant::now() + 2 * interval;
        while Instant::now() < renewed {
            tokio::time::sleep(interval).await;
        }
        let dropped = Instant::now();
        drop(b);
        let mut gone = None;
        let deadline = dropped + PATIENCE;
        while let Ok(Some(change)) = timeout(deadline - Instant::now(), changes.next()).await {
            if let Change::Event(event) = change
                && event.peer.hostname == "b"
            {
                gone = Some(event);
                break;
            }
        }
        let gone = gone.expect("a hears of b again");
        assert_eq!(gone.kind, EventKind::Expired, "no goodbye: {gone:?}");
        let after = gone.at.saturating_duration_since(dropped.into_std());
        eprintln!("b expired {after:?} after its handle was dropped");
        // Its last beacon went out at most an interval (and its jitter) before the drop.
        assert!(
            after >= ttl - interval * 11 / 10,
            "expired {after:?} after the drop"
        );
        assert!(
            after <= ttl + Duration::from_millis(100),
            "expired {after:?} after the drop"
        );
        a.shutdown().await;
    });
}

#[test]
fn a_subscriber_that_never_reads_stays_bounded_then_gets_lagged_and_a_snapshot_without_a_gap() {
    let Some(ns) = Netns::create("lib-lag") else {
        return;
    };
    in_namespace(&ns, || async {
        let a = start("a", Duration::from_secs(15), Duration::from_secs(35)).await;
        let mut reader = a.subscribe();
        let sender = UdpSocket::bind("127.0.0.1:0").expect("a socket to send from");
        // 10,000 events a round: 5,000 made-up nodes that each announce themselves and say
        // goodbye. A reader keeps pace, so the socket's queue never overflows: every datagram
        // is an event.
        let mut round = async |instance: u64| {
            for n in 0..5_000 {
                for goodbye in [false, true] {
                    let beacon = Beacon {
                        instance: instance + n,
                        sequence: u64::from(goodbye),
                        goodbye,
                        hostname: format!("made-up-{n}"),
                        ..Beacon::default()
                    };
                    sender
                        .send_to(&beacon.encode(), "239.255.49.1:24901")
                        .expect("send");
                    loop {
                        match timeout(PATIENCE, reader.next()).await.expect("an event") {
                            Some(Change::Event(_)) => break,
                            Some(Change::Snapshot(_)) => continue,
                            other => panic!("the reader that keeps up got {other:?}"),
                        }
                    }
                }
            }
        };
        // The first round fills what the instance keeps anyway: the event history, the
        // registry's memory of the nodes that left.
        round(1 << 32).await;
        let sleeper_subscribed = crate::support::alloc::held_by_this_thread();
        let mut sleeper = a.subscribe();
        // The same nodes again, as new instances: `restarted` and `left`.
        round(2 << 32).await;
        let held = crate::support::alloc::held_by_this_thread() - sleeper_subscribed;
        // A queue of 10,000 events would hold megabytes: an event is some 400 bytes.
        assert!(
            held < 512 * 1024,
            "the sleeping subscriber cost {held} bytes"
        );
        eprintln!("10,000 events with a subscriber asleep: {held} bytes more held");

        // Its first read: the snapshot it subscribed to (no peers then)...
        let first = match sleeper.next().await {
            Some(Change::Snapshot(snapshot)) => snapshot,
            other => panic!("expected the first snapshot, got {other:?}"),
        };
        assert!(first.peers.is_empty());
        assert_eq!(first.id, 10_000);
        // ...then that it fell behind by every event since, and a fresh snapshot of them.
        match sleeper.next().await {
            Some(Change::Lagged { missed }) => assert_eq!(missed, 10_000),
            other => panic!("expected Lagged, got {other:?}"),
        }
        let snapshot = match sleeper.next().await {
            Some(Change::Snapshot(snapshot)) => snapshot,
            other => panic!("expected a fresh snapshot, got {other:?}"),
        };
        assert!(snapshot.peers.is_empty(), "every made-up node said goodbye");
        assert_eq!(
            snapshot.id, 20_000,
            "the snapshot includes every event so far"
        );
        // No gap: the next change is the one after the snapshot.
        let newcomer = Beacon {
            instance: 7,
            hostname: "newcomer".into(),
            ..Beacon::default()
        };
        sender
            .send_to(&newcomer.encode(), "239.255.49.1:24901")
            .expect("send");
        match timeout(PATIENCE, sleeper.next())
            .await
            .expect("the next event")
        {
            Some(Change::Event(event)) => {
                assert_eq!((event.id, event.kind), (snapshot.id + 1, EventKind::Joined));
            }
            other => panic!("expected the join, got {other:?}"),
        }
        a.shutdown().await;
    });
}

/// `examples/<name>`, built beside this test binary by `cargo test`.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/integration-<hash> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `bin/test` builds the examples (`cargo build --examples`)",
        path.display()
    );
    path
}

#[test]
fn the_upstreams_example_keeps_its_file_in_step_with_the_backends() {
    let Some(ns) = Netns::create("lib-upstreams") else {
        return;
    };
    let file = std::env::temp_dir().join(format!("{}.conf", crate::support::unique("upstreams")));
    let mut proxy = ns
        .command(example("upstreams").to_str().expect("a UTF-8 path"))
        .args([file.to_str().expect("a UTF-8 path"), "127.0.0.1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("run the upstreams example");
    let lines = crate::support::Lines::new(proxy.stdout.take().expect("piped"));
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    let mut backend = crate::support::agent::Agent::launch(
        &ns,
        "backend-1",
        &crate::support::api_addr(1),
        Some("127.0.0.1"),
        crate::support::timings::Timings::FAST,
        &["--tag", "role=backend", "--tag", "port=8080"],
    );
    backend.wait_ready();
    let listed = crate::support::wait_for(PATIENCE, || {
        read().contains("server 127.0.0.1:8080;").then_some(())
    });
    let printed = lines.next(Duration::ZERO);
    assert!(
        listed.is_some(),
        "the backend is written: {:?}, {printed:?}",
        read()
    );
    assert!(backend.stop(), "the backend stops");
    let dropped = crate::support::wait_for(PATIENCE, || {
        (read() == "upstream backends {\n}\n").then_some(())
    });
    assert!(
        dropped.is_some(),
        "the backend is gone from the file: {:?}",
        read()
    );
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = std::fs::remove_file(&file);
}
