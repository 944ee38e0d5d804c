//! The multi-host scenarios, written once against a `Cluster` of real agents: on the loopback
//! of one namespace, on namespaces joined by a bridge (`lan`), or in containers on a Docker
//! network (`docker`). How fast the agents reacted is judged by their own clocks (log
//! timestamps, `first_seen`), so a slow poll on a busy machine cannot fail a test.

use std::time::{Duration, Instant, SystemTime};

use peerd::api::{AgentStatus, PeerInfo, millis};

use super::timings::{POLL_SLACK, SCHEDULING_SLACK, Timings};
use super::wait_for;

/// Nodes on one link, each running one agent, that a test can stop, kill, cut off and restart.
/// Every implementation starts its nodes one after another, each once the one before answers.
pub trait Cluster: Sync {
    /// The timings every agent was started with.
    fn timings(&self) -> Timings;
    /// Every node's name (its hostname).
    fn nodes(&self) -> Vec<String>;
    /// The address `node`'s beacons come from, as its peers list it.
    fn address(&self, node: &str) -> String;
    /// What `peerd peers --json` prints on `node`, or `None` if its agent does not answer.
    fn peers(&self, node: &str) -> Option<Vec<PeerInfo>>;
    /// What `peerd health --json` prints on `node`, or `None` if its agent does not answer.
    fn status(&self, node: &str) -> Option<AgentStatus>;
    /// SIGTERM, as `docker stop` sends; returns whether the agent exited with status 0.
    fn stop(&mut self, node: &str) -> bool;
    /// SIGKILL: no goodbye. Returns once the agent is gone.
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

/// The hostnames in a peer listing, sorted.
fn hostnames(peers: &[PeerInfo]) -> Vec<String> {
    let mut names: Vec<String> = peers.iter().map(|p| p.hostname.clone()).collect();
    names.sort();
    names
}

/// The names in `all` other than `me`, sorted: what `me` lists once discovery is complete.
fn others(all: &[String], me: &str) -> Vec<String> {
    let mut others: Vec<String> = all.iter().filter(|n| *n != me).cloned().collect();
    others.sort();
    others
}

/// When the agent logged the first line containing `needle`, from the timestamp that opens each
/// of its log lines (RFC 3339, UTC). The agents' own clocks judge how fast they reacted, free of
/// the time it takes a test to poll them.
fn logged_at(log: &str, needle: &str) -> Option<SystemTime> {
    let line = log.lines().find(|line| line.contains(needle))?;
    let stamp = line.split_whitespace().next()?;
    Some(
        humantime::parse_rfc3339_weak(stamp)
            .unwrap_or_else(|err| panic!("log line without a timestamp ({err}): {line}")),
    )
}

/// When `node`'s agent logged the last line containing `needle`, by its own clock: after a
/// restart, the new process's.
pub fn logged_last(cluster: &impl Cluster, node: &str, needle: &str) -> SystemTime {
    let log = cluster.log(node);
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{node} never logged {needle:?}"));
    logged_at(line, needle).expect("the line holds the needle")
}

/// How long after `earlier` the instant `later` came; zero if it came first (two processes'
/// log lines about one datagram can be a few microseconds out of order).
pub fn elapsed(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

/// Asks every node at once: a `docker exec` takes tens of milliseconds, in turn they add up.
fn ask_all<T: Send>(nodes: &[String], ask: impl Fn(&str) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let asks: Vec<_> = nodes.iter().map(|n| scope.spawn(|| ask(n))).collect();
        asks.into_iter()
            .map(|h| h.join().expect("ask thread"))
            .collect()
    })
}

/// The hostnames `node` lists now (none if it does not answer).
pub fn listed(cluster: &impl Cluster, node: &str) -> std::collections::BTreeSet<String> {
    peer_names(cluster, node).into_iter().collect()
}

fn peer_names(cluster: &impl Cluster, node: &str) -> Vec<String> {
    hostnames(&cluster.peers(node).unwrap_or_default())
}

/// Waits up to `within` until every node lists exactly the others; returns every node's
/// listing at that moment, in the order of [`Cluster::nodes`].
pub fn wait_whole(cluster: &impl Cluster, within: Duration) -> Option<Vec<Vec<PeerInfo>>> {
    let nodes = cluster.nodes();
    wait_for(within, || {
        let views = ask_all(&nodes, |n| cluster.peers(n).unwrap_or_default());
        let whole = nodes
            .iter()
            .zip(&views)
            .all(|(node, view)| hostnames(view) == others(&nodes, node));
        whole.then_some(views)
    })
}

/// Prints a measured figure, prefixed with the test that measured it (libtest names each
/// test's thread after it): the same scenario runs on several kinds of cluster.
fn report(figure: String) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("{test}: {figure}");
}

pub fn first_seen(peer: &PeerInfo) -> SystemTime {
    humantime::parse_rfc3339(&peer.first_seen).expect("first_seen is RFC 3339")
}

/// When `node`'s agent logged the first line containing `needle`, by its own clock.
pub fn logged(cluster: &impl Cluster, node: &str, needle: &str) -> SystemTime {
    logged_at(&cluster.log(node), needle)
        .unwrap_or_else(|| panic!("{node} never logged {needle:?}"))
}

/// Scenario 1, on a cluster just started: every node lists every other, with its address, and
/// reports the timings it was given; and every node knew every other within the discovery
/// bound of the newest start, however long the interval.
pub fn discovery(cluster: &impl Cluster) {
    let timings = cluster.timings();
    let nodes = cluster.nodes();
    let views = wait_whole(cluster, timings.discovery_bound() + POLL_SLACK)
        .unwrap_or_else(|| panic!("{} nodes did not all list each other", nodes.len()));
    for (observer, view) in nodes.iter().zip(&views) {
        for peer in view {
            let about = format!("{observer}'s listing of {}", peer.hostname);
            assert_eq!(peer.address, cluster.address(&peer.hostname), "{about}");
            assert_eq!(
                peer.instance.len(),
                16,
                "{about}: instance is 16 hex digits"
            );
            assert!(peer.expires_in_ms <= millis(timings.ttl), "{about}");
        }
        let status = cluster.status(observer).expect("the agent answers");
        assert_eq!(status.hostname, *observer);
        assert_eq!(status.peers, nodes.len() - 1);
        assert_eq!(
            (status.interval_ms, status.ttl_ms),
            (millis(timings.interval), millis(timings.ttl)),
            "{observer} runs at other timings than it was started with"
        );
        assert!(
            status.own_beacons_received > 0,
            "{observer} hears the group"
        );
    }
    let newest_start = nodes
        .iter()
        .map(|node| logged(cluster, node, "agent started"))
        .max()
        .expect("at least one node");
    let complete = views
        .iter()
        .flatten()
        .map(first_seen)
        .max()
        .expect("at least two nodes");
    let took = elapsed(newest_start, complete);
    let bound = timings.discovery_bound();
    report(format!(
        "discovery: {} nodes at {timings}: all knew each other {took:?} after the newest started (bound {bound:?})",
        nodes.len()
    ));
    assert!(took <= bound, "discovery took {took:?}, over {bound:?}");
}

/// Scenario 2: a node stopped with SIGTERM exits 0, and its goodbye reaches every other node at
/// once (within the scheduling slack, by the agents' log timestamps). Returns the slowest.
pub fn graceful_stop(cluster: &mut impl Cluster, leaving: &str) -> Duration {
    let nodes = cluster.nodes();
    assert!(wait_whole(cluster, POLL_SLACK).is_some(), "never whole");
    let observers = others(&nodes, leaving);
    assert!(cluster.stop(leaving), "{leaving} did not exit 0 on SIGTERM");
    let cluster = &*cluster;
    let gone = wait_for(POLL_SLACK, || {
        let views = ask_all(&observers, |o| peer_names(cluster, o));
        views
            .iter()
            .all(|v| !v.iter().any(|n| n == leaving))
            .then_some(())
    });
    assert!(gone.is_some(), "{leaving} still listed after it stopped");
    let goodbye = logged(cluster, leaving, "goodbye sent");
    let slowest = observers
        .iter()
        .map(|o| {
            elapsed(
                goodbye,
                logged(cluster, o, &format!("peer left hostname={leaving} ")),
            )
        })
        .max()
        .expect("observers");
    report(format!(
        "graceful stop: the goodbye reached every node within {slowest:?} (bound {SCHEDULING_SLACK:?})"
    ));
    assert!(slowest <= SCHEDULING_SLACK, "the goodbye took {slowest:?}");
    slowest
}

/// Waits for every `(observer, gone)` pair to stop listing `gone`: none before the deadline
/// the observer reported once the cut was complete, and all within the expiry bound of `cut`.
fn expect_expiries(cluster: &impl Cluster, pairs: &[(String, String)], cut: SystemTime) {
    let timings = cluster.timings();
    let observers: Vec<String> = pairs.iter().map(|(o, _)| o.clone()).collect();
    // Nothing can renew a deadline after the cut, so the one reported now is final; reading
    // the clock before asking only makes `not_before` earlier than the truth, never later.
    let asked = SystemTime::now();
    let views = ask_all(&observers, |o| cluster.peers(o).unwrap_or_default());
    let all_dropped = wait_for(timings.expiry_bound() + POLL_SLACK, || {
        let views = ask_all(&observers, |o| peer_names(cluster, o));
        let mut listed = pairs
            .iter()
            .zip(views)
            .map(|((_, gone), v)| v.contains(gone));
        (!listed.any(|l| l)).then_some(())
    });
    assert!(all_dropped.is_some(), "not all expired: {pairs:?}");
    let mut slowest = Duration::ZERO;
    for ((observer, gone), view) in pairs.iter().zip(views) {
        let entry = view.iter().find(|p| &p.hostname == gone);
        let entry =
            entry.unwrap_or_else(|| panic!("{observer} dropped {gone} at once, before its ttl"));
        let not_before = asked + Duration::from_millis(entry.expires_in_ms);
        let expired = logged(cluster, observer, &format!("peer expired hostname={gone} "));
        assert!(
            expired >= not_before,
            "{observer} expired {gone} {:?} before the deadline it reported",
            elapsed(expired, not_before)
        );
        slowest = slowest.max(elapsed(cut, expired));
    }
    let bound = timings.expiry_bound();
    report(format!(
        "expiry at {timings}: all {} expected expiries within {slowest:?} of the cut (bound {bound:?})",
        pairs.len()
    ));
    assert!(
        slowest <= bound,
        "an expiry came {slowest:?} after the cut, over {bound:?}"
    );
}

/// Scenario 3: a SIGKILLed node is dropped by every other after its ttl, never before the
/// deadline they reported, and within the expiry bound.
pub fn hard_kill(cluster: &mut impl Cluster, victim: &str) {
    let nodes = cluster.nodes();
    assert!(wait_whole(cluster, POLL_SLACK).is_some(), "never whole");
    cluster.kill(victim);
    // After the kill returned: no beacon can follow.
    let killed = SystemTime::now();
    let pairs: Vec<(String, String)> = others(&nodes, victim)
        .into_iter()
        .map(|o| (o, victim.to_owned()))
        .collect();
    expect_expiries(cluster, &pairs, killed);
}

/// Scenario 4: both sides of a partition expire each other after the ttl, and hear each other
/// again within the reunion bound of the heal (by when each says it heard the other).
pub fn partition_and_heal(cluster: &mut impl Cluster, cut: &str) {
    let timings = cluster.timings();
    let nodes = cluster.nodes();
    assert!(wait_whole(cluster, POLL_SLACK).is_some(), "never whole");
    cluster.partition(cut);
    let cut_at = SystemTime::now();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for other in others(&nodes, cut) {
        pairs.push((other.clone(), cut.to_owned()));
        pairs.push((cut.to_owned(), other));
    }
    expect_expiries(cluster, &pairs, cut_at);

    cluster.heal(cut);
    // Once the heal is complete: reconnecting a container takes Docker a while.
    let healed = SystemTime::now();
    let views = wait_whole(cluster, timings.reunion_bound() + POLL_SLACK)
        .expect("the nodes did not see each other again after the heal");
    let slowest = nodes
        .iter()
        .zip(&views)
        .flat_map(|(observer, view)| {
            view.iter()
                .filter(move |p| observer == cut || p.hostname == cut)
        })
        .map(|peer| elapsed(healed, first_seen(peer)))
        .max()
        .expect("pairs across the cut");
    let bound = timings.reunion_bound();
    report(format!(
        "partition at {timings}: both sides heard each other {slowest:?} after the heal (bound {bound:?})"
    ));
    assert!(slowest <= bound, "reunion took {slowest:?}, over {bound:?}");
}

/// Scenario 5: a restarted node is reported by the others as restarted (new instance id),
/// never as a new join.
pub fn restart<C: Cluster>(cluster: &mut C, node: &str) {
    let nodes = cluster.nodes();
    assert!(wait_whole(cluster, POLL_SLACK).is_some(), "never whole");
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
    let renewed = wait_for(POLL_SLACK, || {
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

/// Scenario 6: for `duration` the cluster stays whole at every check, every ten seconds, and no
/// agent ever logs an expiry. Checks first that every agent runs at the cluster's timings.
pub fn soak(cluster: &impl Cluster, duration: Duration) {
    let timings = cluster.timings();
    let nodes = cluster.nodes();
    for node in &nodes {
        let status = cluster.status(node).expect("the agent answers");
        assert_eq!(
            (status.interval_ms, status.ttl_ms),
            (millis(timings.interval), millis(timings.ttl)),
            "{node} runs at other timings than the soak asked for"
        );
    }
    assert!(
        wait_whole(cluster, timings.discovery_bound() + POLL_SLACK).is_some(),
        "never whole"
    );
    let started = Instant::now();
    let mut checks = 0;
    while started.elapsed() < duration {
        // Pacing, not waiting for readiness: the soak samples the cluster every 10 s.
        std::thread::sleep(Duration::from_secs(10));
        // A few seconds' grace: a `docker exec` can fail on a loaded machine while the agent is
        // fine. The strict criterion is the logs' zero expiries, checked at the end.
        let whole = wait_whole(cluster, POLL_SLACK);
        assert!(whole.is_some(), "not whole after {:?}", started.elapsed());
        checks += 1;
    }
    let expiries: usize = nodes
        .iter()
        .map(|node| cluster.log(node).matches("peer expired").count())
        .sum();
    report(format!(
        "soak: {} nodes at {timings}, whole at all {checks} checks over {:?}, {expiries} expiries",
        nodes.len(),
        started.elapsed()
    ));
    assert_eq!(expiries, 0, "spurious expiries");
}

/// Defines scenarios 1, 2, 3 and 5 for one kind of cluster. `$start` is an expression giving
/// `Option<impl Cluster>` of four nodes, `None` when this machine cannot build one (the
/// harness has then recorded the skip). Each test builds its own cluster, so they run in
/// parallel.
#[macro_export]
macro_rules! scenario_tests {
    ($start:expr) => {
        #[test]
        fn nodes_started_in_turn_all_list_each_other_at_once() {
            let Some(cluster) = $start else { return };
            $crate::support::cluster::discovery(&cluster);
        }

        #[test]
        fn graceful_stop_reaches_every_node_at_once() {
            let Some(mut cluster) = $start else { return };
            $crate::support::cluster::graceful_stop(&mut cluster, "node2");
        }

        #[test]
        fn killed_node_expires_after_its_ttl_not_before() {
            let Some(mut cluster) = $start else { return };
            $crate::support::cluster::hard_kill(&mut cluster, "node3");
        }

        #[test]
        fn restarted_node_is_reported_as_a_restart() {
            let Some(mut cluster) = $start else { return };
            $crate::support::cluster::restart(&mut cluster, "node4");
        }
    };
}

/// Defines scenario 4 for a kind of cluster whose nodes can be cut off one by one.
#[macro_export]
macro_rules! partition_test {
    ($start:expr) => {
        #[test]
        fn partition_expires_both_sides_and_heal_reunites_them() {
            let Some(mut cluster) = $start else { return };
            $crate::support::cluster::partition_and_heal(&mut cluster, "node1");
        }
    };
}
