//! The multi-host scenarios on network namespaces joined by veth pairs and a bridge (root
//! only): the same scenarios as the Docker tests, for machines without Docker.

use std::time::Duration;

use crate::support::cluster::{self, Cluster};
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};

crate::scenario_tests!(Lan::bridged(4, Timings::FAST));
crate::partition_test!(Lan::bridged(4, Timings::FAST));

/// Discovery in one round trip at the default timings, on twenty hosts. Started together, they
/// all know each other within the discovery bound of the newest start (0.21 to 0.22 s on an idle
/// machine), at the cost of at most two early answers per node per second. A newcomer into the
/// running LAN lists every other within 0.15 s and is listed by all within 0.1 s, for one early
/// answer from each; its goodbye reaches all within 0.05 s.
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
    let early_answers = |lan: &Lan| -> Vec<u64> {
        let nodes = lan.nodes();
        nodes
            .iter()
            .map(|node| lan.status(node).expect("answers").early_answers)
            .collect()
    };
    let crowd_cost = early_answers(&lan);
    // Two a second at most, over every second since the first node started: a node that
    // learns of a late member from its answer answers in turn, a second after its first.
    let seconds = cluster::elapsed(oldest_start, std::time::SystemTime::now()).as_secs() + 1;
    eprintln!(
        "20 hosts started together over {:?}: all knew each other {took:?} after the newest \
         started; early answers per node {crowd_cost:?}",
        cluster::elapsed(oldest_start, newest_start)
    );
    assert!(took <= timings.discovery_bound(), "took {took:?}");
    assert!(
        crowd_cost.iter().all(|&n| n <= 2 * seconds),
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
    let join_cost: Vec<u64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    eprintln!(
        "newcomer into 20 hosts: lists all after {lists_all:?}, listed by all after \
         {listed_by_all:?}; early answers per node {join_cost:?}"
    );
    assert!(lists_all <= Duration::from_millis(150), "{lists_all:?}");
    assert!(
        listed_by_all <= Duration::from_millis(100),
        "{listed_by_all:?}"
    );
    assert!(join_cost.iter().all(|&n| n <= 1), "{join_cost:?}");

    let goodbye = cluster::graceful_stop(&mut lan, "newcomer");
    assert!(
        goodbye <= Duration::from_millis(50),
        "goodbye took {goodbye:?}"
    );
}
