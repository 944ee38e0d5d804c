//! Three real agents on loopback inside a private network namespace, with real multicast:
//! discovery, expiry after SIGKILL, goodbye on SIGTERM, and garbage on the group.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use support::{Agent, INTERVAL, Netns, TTL, wait_all_see_each_other, wait_for};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 49, 1);

fn three_agents(netns: &Netns) -> Vec<Agent> {
    let agents: Vec<Agent> = ["alpha", "bravo", "charlie"]
        .iter()
        .zip(49101..)
        .map(|(name, port)| Agent::start(netns, name, port))
        .collect();
    assert!(
        wait_all_see_each_other(&agents, Duration::from_secs(5)),
        "agents did not all list each other"
    );
    agents
}

#[test]
fn every_agent_lists_the_others_and_never_itself() {
    let Some(netns) = Netns::create("discover") else {
        return;
    };
    let agents = three_agents(&netns);
    let peers = agents[0].peers().expect("alpha answers");
    let bravo = peers
        .iter()
        .find(|p| p.hostname == "bravo")
        .expect("alpha lists bravo");
    assert_eq!(bravo.address, "127.0.0.1");
    assert_eq!(bravo.instance.len(), 16, "instance is 16 hex digits");
    assert!(
        bravo.first_seen.ends_with('Z') && bravo.last_seen.ends_with('Z'),
        "RFC 3339 UTC"
    );
    assert!(bravo.expires_in_ms <= TTL.as_millis() as u64);
    let status = agents[0].status().expect("alpha reports its status");
    assert_eq!((status.hostname.as_str(), status.peers), ("alpha", 2));
    assert!(
        status.own_beacons_received > 0,
        "the socket hears the group"
    );
}

#[test]
fn killed_agent_is_dropped_after_its_ttl_and_not_before() {
    let Some(netns) = Netns::create("kill") else {
        return;
    };
    let mut agents = three_agents(&netns);
    let mut victim = agents.pop().expect("three agents");
    victim.signal("KILL");
    victim
        .wait_exit(Duration::from_secs(2))
        .expect("SIGKILL ends the agent");
    let killed_at = Instant::now();

    // Each observer's deadline for the victim, read right after the kill: no beacon can have
    // renewed it since.
    let deadlines: Vec<Instant> = agents
        .iter()
        .map(|observer| {
            let asked_at = Instant::now();
            let peers = observer.peers().expect("observer answers");
            let Some(victim_entry) = peers.iter().find(|p| p.hostname == victim.name) else {
                panic!(
                    "{} dropped {} right after the kill, before its ttl",
                    observer.name, victim.name
                );
            };
            asked_at + Duration::from_millis(victim_entry.expires_in_ms)
        })
        .collect();

    for (observer, not_before) in agents.iter().zip(deadlines) {
        let dropped = wait_for(TTL + Duration::from_secs(1), || {
            let listed = observer.peer_names().contains(&victim.name);
            let seen_at = Instant::now();
            assert!(
                listed || seen_at >= not_before,
                "{} dropped {} {:?} before its deadline",
                observer.name,
                victim.name,
                not_before - seen_at
            );
            (!listed).then_some(seen_at)
        });
        let dropped = dropped.unwrap_or_else(|| {
            panic!(
                "{} still lists {} a second past its ttl",
                observer.name, victim.name
            )
        });
        assert!(dropped - killed_at <= TTL + Duration::from_secs(1));
    }
}

#[test]
fn stopped_agent_says_goodbye_and_is_dropped_at_once() {
    let Some(netns) = Netns::create("goodbye") else {
        return;
    };
    let mut agents = three_agents(&netns);
    let mut leaving = agents.remove(1);
    let stopped_at = Instant::now();
    leaving.signal("TERM");
    let dropped = wait_for(Duration::from_secs(2), || {
        agents
            .iter()
            .all(|a| !a.peer_names().contains(&leaving.name))
            .then(Instant::now)
    })
    .expect("the others drop a stopped agent");
    let took = dropped - stopped_at;
    assert!(
        took < Duration::from_millis(200) && took < INTERVAL,
        "goodbye took {took:?}"
    );
    let status = leaving
        .wait_exit(Duration::from_secs(1))
        .expect("exits within a second of SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(leaving.log_text().contains("goodbye sent"));
}

#[test]
fn garbage_on_the_group_changes_nothing() {
    let Some(netns) = Netns::create("garbage") else {
        return;
    };
    let agents = three_agents(&netns);
    let valid_header = |version: u8| {
        let mut b = b"PEER".to_vec();
        b.push(version);
        b.push(0);
        b.extend_from_slice(&[7; 16]);
        b
    };
    let mut wrong_version = valid_header(9);
    wrong_version.extend_from_slice(b"\x05ghost");
    let mut bad_name = valid_header(1);
    bad_name.extend_from_slice(b"\x05gh_st");
    let mut truncated = valid_header(1);
    truncated.extend_from_slice(b"\xc8gho");
    let mut bad_extension = valid_header(1);
    bad_extension.extend_from_slice(b"\x05ghost\x01\xff\xff");
    let oversized = vec![b'A'; 600];
    let garbage: [&[u8]; 7] = [
        b"hello",
        b"PEER",
        &wrong_version,
        &bad_name,
        &truncated,
        &bad_extension,
        &oversized,
    ];
    netns.send_udp(GROUP, 49001, &garbage);

    for agent in &agents {
        let counted = wait_for(Duration::from_secs(2), || {
            agent
                .status()
                .filter(|s| s.datagrams_ignored >= garbage.len() as u64)
        });
        assert!(
            counted.is_some(),
            "{} did not count every garbage datagram",
            agent.name
        );
    }
    assert!(
        wait_all_see_each_other(&agents, Duration::from_secs(1)),
        "garbage changed a peer list"
    );
    for agent in &agents {
        assert!(!agent.peer_names().contains(&"ghost".to_owned()));
    }
}

#[test]
fn a_newcomer_sees_existing_agents_at_once_not_an_interval_later() {
    let Some(netns) = Netns::create("newcomer") else {
        return;
    };
    // An interval far longer than the test: only the early answer to a join can explain a
    // newcomer listing the others in time.
    let (interval, ttl) = (Duration::from_secs(60), Duration::from_secs(150));
    let first = Agent::start_timed(&netns, "first", 49201, interval, ttl);
    assert!(
        wait_for(Duration::from_secs(5), || first.status()).is_some(),
        "first agent answers"
    );
    let started = Instant::now();
    let newcomer = Agent::start_timed(&netns, "newcomer", 49202, interval, ttl);
    let agents = [first, newcomer];
    assert!(
        wait_all_see_each_other(&agents, Duration::from_secs(2)),
        "discovery waited for the interval"
    );
    eprintln!(
        "newcomer discovery with a 60 s interval took {:?}",
        started.elapsed()
    );
}
