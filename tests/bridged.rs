//! The multi-host scenarios on network namespaces joined by veth pairs and a bridge (root
//! only): the same scenarios as the Docker tests, for machines without Docker.

use std::time::Duration;

use crate::support::cluster::{self, Cluster};
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};

crate::scenario_tests!(Lan::bridged(4, Timings::FAST));
crate::partition_test!(Lan::bridged(4, Timings::FAST));

/// Discovery in one round trip at the default timings, on twenty hosts. Started together, they
/// all know each other within the discovery bound of the newest start (21 ms measured on an idle
/// machine, 0.21 to 0.22 s when crowds were answered on the group), each newcomer answered by
/// unicast once by each peer, and at most two early beacons to the group per node per second. A
/// newcomer into the running LAN lists every other within 0.15 s and is listed by all within
/// 0.1 s, for one unicast answer from each and no beacon to the group; its goodbye reaches all
/// within 0.05 s.
#[test]
fn twenty_hosts_discover_each_other_in_one_round_trip() {
    let timings = Timings::DEFAULT;
    let Some(mut lan) = Lan::bridged_together(20, timings) else {
        return;
    };
    let nodes = lan.nodes();
    let starts: Vec<_> = nodes
        .iter()
        .map(|node| cluster::logged(&lan, node, "agent started"))
        .collect();
    let (oldest_start, newest_start) = (
        *starts.iter().min().expect("twenty nodes"),
        *starts.iter().max().expect("twenty nodes"),
    );
    let views =
        cluster::wait_whole(&lan, POLL_SLACK).expect("the twenty never all knew each other");
    let complete = views.iter().flatten().map(cluster::first_seen).max();
    let complete = complete.expect("peers");
    let took = cluster::elapsed(newest_start, complete);
    // Group beacons and unicast answers brought forward, per node.
    let early_answers = |lan: &Lan| -> Vec<(u64, u64)> {
        let nodes = lan.nodes();
        nodes
            .iter()
            .map(|node| {
                let status = lan.status(node).expect("answers");
                (status.early_answers, status.unicast.answers)
            })
            .collect()
    };
    let crowd_cost = early_answers(&lan);
    // Two a second at most, over every second since the first node started: a node that
    // learns of a late member from its answer answers in turn, a second after its first.
    let seconds = cluster::elapsed(oldest_start, std::time::SystemTime::now()).as_secs() + 1;
    eprintln!(
        "20 hosts started together over {:?}: all knew each other {took:?} after the newest \
         started; (group, unicast) early answers per node {crowd_cost:?}",
        cluster::elapsed(oldest_start, newest_start)
    );
    assert!(took <= timings.discovery_bound(), "took {took:?}");
    assert!(
        crowd_cost
            .iter()
            .all(|&(group, unicast)| group <= 2 * seconds && unicast <= 19),
        "{crowd_cost:?} in {seconds} s"
    );

    // Pacing, not readiness: a node that answered the crowd twice may answer a late member a
    // second after the first; two quiet seconds later no answer is pending or paced, as in a
    // LAN that has been running for a while.
    std::thread::sleep(Duration::from_secs(2));
    let before = early_answers(&lan);
    lan.add("newcomer", &[])
        .expect("a namespace for the newcomer");
    let views = cluster::wait_whole(&lan, POLL_SLACK).expect("the newcomer never joined all");
    let started = cluster::logged(&lan, "newcomer", "agent started");
    let (mine, theirs): (Vec<_>, Vec<_>) = lan
        .nodes()
        .into_iter()
        .zip(&views)
        .partition(|(node, _)| node == "newcomer");
    let lists_all = mine[0]
        .1
        .iter()
        .map(cluster::first_seen)
        .max()
        .expect("peers");
    let listed_by_all = theirs
        .iter()
        .filter_map(|(_, view)| view.iter().find(|p| p.hostname == "newcomer"))
        .map(cluster::first_seen)
        .max()
        .expect("listed");
    let (lists_all, listed_by_all) = (
        cluster::elapsed(started, lists_all),
        cluster::elapsed(started, listed_by_all),
    );
    let after = early_answers(&lan);
    let join_cost: Vec<(u64, u64)> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b.0, a.1 - b.1))
        .collect();
    eprintln!(
        "newcomer into 20 hosts: lists all after {lists_all:?}, listed by all after \
         {listed_by_all:?}; (group, unicast) early answers per node {join_cost:?}"
    );
    assert!(lists_all <= Duration::from_millis(150), "{lists_all:?}");
    assert!(
        listed_by_all <= Duration::from_millis(100),
        "{listed_by_all:?}"
    );
    // The newcomer answers nobody (everyone's answer is an answer); each other node answers it
    // once, by unicast, and sends nothing early to the group.
    assert!(
        join_cost
            .iter()
            .all(|&(group, unicast)| group == 0 && unicast <= 1),
        "{join_cost:?}"
    );

    let goodbye = cluster::graceful_stop(&mut lan, "newcomer");
    assert!(
        goodbye <= Duration::from_millis(50),
        "goodbye took {goodbye:?}"
    );
}

/// A rolling restart at the default timings, one node a second as Kubernetes does it: each
/// restarted node lists every other, and every other lists its new instance, within 0.1 s of
/// its start. The answers go by unicast, so nothing waits for the pacing of early beacons to
/// the group, which a node that answered the previous restart a second ago would hit.
#[test]
fn a_rolling_restart_sees_every_peer_within_a_tenth_of_a_second() {
    let timings = Timings::DEFAULT;
    let Some(mut lan) = Lan::bridged_together(10, timings) else {
        return;
    };
    cluster::wait_whole(&lan, POLL_SLACK).expect("the ten never all knew each other");
    // Pacing, not readiness: a rolling restart restarts a cluster that has run for a while.
    // Within a second of ten nodes starting together, one more is part of their crowd and is
    // answered on the group, paced (`CROWD_NEWCOMERS` in node/announcer.rs).
    std::thread::sleep(peerd::config::EARLY_ANSWER_WINDOW + Duration::from_millis(100));
    let bound = Duration::from_millis(100);
    for i in 1..=5 {
        let node = format!("node{i}");
        let round = std::time::Instant::now();
        lan.restart(&node);
        let started = cluster::logged_last(&lan, &node, "agent started");
        let views = cluster::wait_whole(&lan, POLL_SLACK).expect("whole again");
        let nodes = lan.nodes();
        let mut lists_all = Duration::ZERO;
        let mut listed_by_all = Duration::ZERO;
        for (observer, view) in nodes.iter().zip(&views) {
            if *observer == node {
                let latest = view.iter().map(cluster::first_seen).max().expect("peers");
                lists_all = cluster::elapsed(started, latest);
            } else {
                let seen = view.iter().find(|p| p.hostname == node).expect("listed");
                listed_by_all =
                    listed_by_all.max(cluster::elapsed(started, cluster::first_seen(seen)));
            }
        }
        eprintln!(
            "{node} restarted: lists all after {lists_all:?}, listed by all after {listed_by_all:?}"
        );
        assert!(lists_all <= bound, "{node} listed all after {lists_all:?}");
        assert!(
            listed_by_all <= bound,
            "{node} listed by all after {listed_by_all:?}"
        );
        // Pacing, not readiness: the next node restarts a second after this one did.
        std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
    }
}
