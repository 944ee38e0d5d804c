//! The multi-host scenarios, written once against a `Cluster` of real hosts: network
//! namespaces joined by a bridge (`lan`) or containers on a Docker network (`docker`).

use std::time::{Duration, Instant, SystemTime};

use peerd::api::PeerInfo;

use super::{others, sorted_hostnames, wait_for};

/// Timings for scenarios 1-5: short enough that a ttl passes in a second.
pub const INTERVAL: Duration = Duration::from_millis(300);
pub const TTL: Duration = Duration::from_secs(1);
/// The longest gap between two beacons: the interval plus 10 % jitter.
pub const LONGEST_GAP: Duration = Duration::from_millis(330);

/// Hosts on one link, each running one agent, that a test can stop, kill, cut off and restart.
pub trait Cluster: Sync {
    /// Every node's name (its hostname).
    fn nodes(&self) -> Vec<String>;
    /// What `peerd peers --json` prints on `node`, or `None` if its agent does not answer.
    fn peers(&self, node: &str) -> Option<Vec<PeerInfo>>;
    /// SIGTERM, as `docker stop` sends; returns whether the agent exited with status 0.
    fn stop(&mut self, node: &str) -> bool;
    /// SIGKILL: no goodbye.
    fn kill(&mut self, node: &str);
    /// Cuts `node` off the link, leaving its agent running.
    fn partition(&mut self, node: &str);
    /// Undoes [`partition`](Self::partition).
    fn heal(&mut self, node: &str);
    /// Stops the agent gracefully and starts a new one with the same hostname.
    fn restart(&mut self, node: &str);
    /// The agent's log so far (every instance of it).
    fn log(&self, node: &str) -> String;
}

/// Sorted hostnames of `node`'s live peers; empty while it does not answer.
fn peer_names(cluster: &impl Cluster, node: &str) -> Vec<String> {
    sorted_hostnames(cluster.peers(node))
}

/// Asks every observer at once: a `docker exec` takes tens of milliseconds, in turn they add up.
fn ask_all<T: Send>(observers: &[String], ask: impl Fn(&str) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = observers.iter().map(|o| scope.spawn(|| ask(o))).collect();
        asks.into_iter()
            .map(|h| h.join().expect("ask thread"))
            .collect()
    })
}

/// Waits until each of `nodes` lists exactly the others; returns when that was first seen.
pub fn wait_all_see_each_other(
    cluster: &impl Cluster,
    nodes: &[String],
    within: Duration,
) -> Option<Instant> {
    wait_for(within, || {
        let views = ask_all(nodes, |n| peer_names(cluster, n));
        nodes
            .iter()
            .zip(views)
            .all(|(node, seen)| seen == others(nodes, node))
            .then(Instant::now)
    })
}

/// Scenario 1: nodes started together all list each other within 2 s of the last start
/// (call it right after the cluster has started).
pub fn discovery(cluster: &impl Cluster) {
    let started_at = Instant::now();
    let nodes = cluster.nodes();
    let seen = wait_all_see_each_other(cluster, &nodes, Duration::from_secs(2));
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "{} nodes did not all list each other within 2 s",
            nodes.len()
        )
    });
    eprintln!(
        "discovery: {} nodes saw each other {:?} after the last start",
        nodes.len(),
        seen - started_at
    );
}

/// Scenario 2: a stopped node's goodbye reaches every other node within 1 s; it exits 0.
pub fn graceful_stop(cluster: &mut impl Cluster, leaving: &str) {
    let nodes = cluster.nodes();
    assert!(wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5)).is_some());
    let observers = others(&nodes, leaving);
    let stopped_at = Instant::now();
    let exited_cleanly = cluster.stop(leaving);
    let dropped = wait_for(Duration::from_secs(3), || {
        let views = ask_all(&observers, |o| peer_names(cluster, o));
        views
            .iter()
            .all(|v| !v.iter().any(|n| n == leaving))
            .then(Instant::now)
    });
    let took = dropped.unwrap_or_else(|| panic!("{leaving} still listed 3 s after it was stopped"))
        - stopped_at;
    eprintln!("graceful stop: every other node dropped {leaving} within {took:?}");
    assert!(took <= Duration::from_secs(1), "goodbye took {took:?}");
    assert!(exited_cleanly, "{leaving} did not exit 0 on SIGTERM");
    for observer in &observers {
        assert!(
            cluster
                .log(observer)
                .contains(&format!("peer left hostname={leaving} "))
        );
    }
}

/// Waits for every `(observer, gone)` pair to stop listing `gone`, checking that none does so
/// before the deadline the observer reported when `cut_at` had just passed, and all within
/// the ttl plus 1 s of `cut_at`.
fn expect_expiries(cluster: &impl Cluster, pairs: &[(String, String)], cut_at: Instant) {
    let observers: Vec<String> = pairs.iter().map(|(o, _)| o.clone()).collect();
    // Nothing can renew a deadline after the cut, so the one reported now is final.
    let asked_at = Instant::now();
    let views = ask_all(&observers, |o| cluster.peers(o).unwrap_or_default());
    let deadlines: Vec<Instant> = pairs
        .iter()
        .zip(views)
        .map(|((observer, gone), view)| {
            let entry = view.iter().find(|p| &p.hostname == gone);
            let entry = entry
                .unwrap_or_else(|| panic!("{observer} dropped {gone} at once, before its ttl"));
            asked_at + Duration::from_millis(entry.expires_in_ms)
        })
        .collect();
    let all_dropped = wait_for(TTL + Duration::from_secs(2), || {
        let views = ask_all(&observers, |o| peer_names(cluster, o));
        let seen_at = Instant::now();
        let mut all = true;
        for (((observer, gone), view), not_before) in pairs.iter().zip(&views).zip(&deadlines) {
            let listed = view.contains(gone);
            assert!(
                listed || seen_at >= *not_before,
                "{observer} dropped {gone} before its deadline"
            );
            all &= !listed;
        }
        all.then_some(seen_at)
    });
    let all_dropped =
        all_dropped.unwrap_or_else(|| panic!("not all expired within the ttl + 2 s: {pairs:?}"));
    let took = all_dropped - cut_at;
    eprintln!(
        "expiry: all {} expected expiries seen {took:?} after the cut (ttl {TTL:?})",
        pairs.len()
    );
    assert!(took <= TTL + Duration::from_secs(1), "expiry took {took:?}");
}

/// Scenario 3: a SIGKILLed node is dropped by every other after its ttl, within the ttl + 1 s.
pub fn hard_kill(cluster: &mut impl Cluster, victim: &str) {
    let nodes = cluster.nodes();
    assert!(wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5)).is_some());
    cluster.kill(victim);
    let killed_at = Instant::now();
    let pairs: Vec<(String, String)> = others(&nodes, victim)
        .into_iter()
        .map(|o| (o, victim.to_owned()))
        .collect();
    expect_expiries(cluster, &pairs, killed_at);
    for (observer, _) in &pairs {
        assert!(
            cluster
                .log(observer)
                .contains(&format!("peer expired hostname={victim} "))
        );
    }
}

/// Scenario 4: both sides of a partition expire each other after the ttl, and see each other
/// again within one (jittered) interval of the heal.
pub fn partition_and_heal(cluster: &mut impl Cluster, cut: &str) {
    let nodes = cluster.nodes();
    assert!(wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5)).is_some());
    cluster.partition(cut);
    let cut_at = Instant::now();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for other in others(&nodes, cut) {
        pairs.push((other.clone(), cut.to_owned()));
        pairs.push((cut.to_owned(), other));
    }
    expect_expiries(cluster, &pairs, cut_at);

    cluster.heal(cut);
    // Taken once the heal is complete: reconnecting a container takes Docker a while, and the
    // interval is counted from when the link is back.
    let healed_wall = SystemTime::now();
    let back = wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5));
    assert!(
        back.is_some(),
        "nodes did not see each other again after the heal"
    );
    // Judged by when each observer says it heard the returning peer, not by when the poll
    // noticed: polling containers is slower than one interval.
    let views = ask_all(&nodes, |o| cluster.peers(o).unwrap_or_default());
    for (observer, view) in nodes.iter().zip(views) {
        for peer in view.iter().filter(|p| observer == cut || p.hostname == cut) {
            let first_seen =
                humantime::parse_rfc3339(&peer.first_seen).expect("first_seen is RFC 3339");
            let after = first_seen.duration_since(healed_wall).unwrap_or_default();
            assert!(
                after <= LONGEST_GAP + Duration::from_millis(100),
                "{observer} saw {} again {after:?} after the heal",
                peer.hostname
            );
        }
    }
    eprintln!("partition: healed side seen again within one interval");
}

/// Scenario 5: a restarted node is reported by the others as restarted (new instance id),
/// never as a new join.
pub fn restart<C: Cluster>(cluster: &mut C, node: &str) {
    let nodes = cluster.nodes();
    assert!(wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5)).is_some());
    let observers = others(&nodes, node);
    let instance_of = |cluster: &C, observer: &str| {
        let peers = cluster.peers(observer).unwrap_or_default();
        peers
            .into_iter()
            .find(|p| p.hostname == node)
            .map(|p| p.instance)
    };
    let before = instance_of(cluster, &observers[0]).expect("listed before the restart");
    cluster.restart(node);
    let cluster = &*cluster;
    let renewed = wait_for(Duration::from_secs(5), || {
        let instances = ask_all(&observers, |o| instance_of(cluster, o));
        instances
            .iter()
            .all(|i| i.as_ref().is_some_and(|i| *i != before))
            .then_some(())
    });
    assert!(
        renewed.is_some(),
        "the others do not list {node} with a new instance"
    );
    for observer in &observers {
        let log = cluster.log(observer);
        assert!(
            log.contains(&format!("peer restarted hostname={node} ")),
            "{observer} logged no restart"
        );
        let joins = log
            .matches(&format!("peer joined hostname={node} "))
            .count();
        assert_eq!(
            joins, 1,
            "{observer} reported the restart of {node} as a join"
        );
    }
}

/// Scenario 6: with the default timings the cluster stays whole for `duration`: every check
/// finds every node listing all the others, and no agent ever logs an expiry.
pub fn soak(cluster: &impl Cluster, duration: Duration) {
    let nodes = cluster.nodes();
    assert!(wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5)).is_some());
    let started = Instant::now();
    let mut checks = 0;
    while started.elapsed() < duration {
        // Pacing, not waiting for readiness: the soak samples the cluster every 10 s.
        std::thread::sleep(Duration::from_secs(10));
        // A few seconds' grace: under load a `docker exec` can fail while the agent is fine.
        // The strict criterion is the logs' zero expiries, checked at the end.
        let whole = wait_all_see_each_other(cluster, &nodes, Duration::from_secs(5));
        assert!(
            whole.is_some(),
            "the cluster was not whole after {:?}",
            started.elapsed()
        );
        checks += 1;
    }
    for node in &nodes {
        let expiries = cluster.log(node).matches("peer expired").count();
        assert_eq!(expiries, 0, "{node} logged spurious expiries");
    }
    eprintln!(
        "soak: {} nodes whole for {:?} ({checks} checks), zero expiries",
        nodes.len(),
        started.elapsed()
    );
}

/// Defines the tests of scenarios 1 to 5 for one kind of LAN. `$start` is an expression giving
/// `Option<impl Cluster>` of four nodes, `None` when this machine cannot build one (the
/// harness has already said why). Each test builds its own LAN, so they run in parallel.
#[macro_export]
macro_rules! scenario_tests {
    ($start:expr) => {
        #[test]
        fn started_together_all_list_each_other_within_2s() {
            let Some(lan) = $start else { return };
            $crate::support::cluster::discovery(&lan);
        }

        #[test]
        fn graceful_stop_reaches_every_node_within_1s() {
            let Some(mut lan) = $start else { return };
            $crate::support::cluster::graceful_stop(&mut lan, "node2");
        }

        #[test]
        fn killed_node_expires_after_its_ttl_not_before() {
            let Some(mut lan) = $start else { return };
            $crate::support::cluster::hard_kill(&mut lan, "node3");
        }

        #[test]
        fn partition_expires_both_sides_and_heal_reunites_them() {
            let Some(mut lan) = $start else { return };
            $crate::support::cluster::partition_and_heal(&mut lan, "node1");
        }

        #[test]
        fn restarted_node_is_reported_as_a_restart() {
            let Some(mut lan) = $start else { return };
            $crate::support::cluster::restart(&mut lan, "node4");
        }
    };
}
