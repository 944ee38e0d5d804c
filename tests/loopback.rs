//! Agents on the loopback of one private namespace (root only): the scenarios that need no
//! separate links, discovery with an interval longer than the test, and garbage on the group.

use crate::support::cluster::{self, Cluster};
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

crate::scenario_tests!(Lan::loopback(4, Timings::FAST));

#[test]
fn a_newcomer_is_answered_at_once_not_an_interval_later() {
    // The interval is longer than the test: only the early answers to each join can explain
    // discovery within the spacing, which scenario 1 asserts.
    let Some(lan) = Lan::loopback(3, Timings::SLOW) else {
        return;
    };
    cluster::discovery(&lan);
}

#[test]
fn garbage_on_the_group_changes_nothing() {
    let Some(lan) = Lan::loopback(3, Timings::FAST) else {
        return;
    };
    assert!(
        cluster::wait_whole(&lan, POLL_SLACK).is_some(),
        "never whole"
    );
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
    lan.send_to_group(&garbage);

    for node in lan.nodes() {
        let counted = wait_for(POLL_SLACK, || {
            lan.status(&node)
                .filter(|s| s.datagrams_ignored >= garbage.len() as u64)
        });
        assert!(
            counted.is_some(),
            "{node} did not count every garbage datagram"
        );
    }
    let views = cluster::wait_whole(&lan, POLL_SLACK).expect("garbage changed a peer list");
    assert!(views.iter().flatten().all(|p| p.hostname != "ghost"));
}

#[test]
fn beyond_max_peers_hostnames_heard_once_make_room_for_each_other_at_a_bounded_rate() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    lan.add("node1", &["--max-peers", "100"])
        .expect("namespace");
    lan.add("node2", &[]).expect("namespace");
    lan.announce_made_up_peers(1000);
    // Made-up peers beacon once: past the free places, each joins in the place of the latest
    // made-up one, up to a second's budget of evictions (as many as places); the rest are
    // refused.
    let status = wait_for(POLL_SLACK, || {
        lan.status("node1")
            .filter(|s| s.events.joined + s.refused.capacity >= 1001)
    });
    let status = status.expect("node1 took in every beacon");
    let evicted = status.events.evicted;
    // A second's budget at once, and what it refilled while the burst went on.
    assert!((100..150).contains(&evicted), "{evicted} evictions");
    assert_eq!(
        status.events.joined,
        100 + evicted,
        "the places, then one per eviction"
    );
    assert_eq!(status.events.joined + status.refused.capacity, 1001);
    assert_eq!(status.max_peers, 100);
    let listed = lan.peers("node1").expect("node1 answers");
    assert!(listed.len() <= 100);
    assert!(
        listed.iter().any(|p| p.hostname == "node2"),
        "the real peer, heard before the burst, kept its place"
    );
    assert_eq!(
        status.receive_queue_drops,
        Some(0),
        "a burst of 1,000 fits the buffer"
    );
    assert!(status.receive_buffer_bytes >= Some(2 * 1024 * 1024));
    // node2, at the default limit, takes all of them: the burst cost it no datagram either.
    let node2 = wait_for(POLL_SLACK, || {
        lan.status("node2").filter(|s| s.events.joined >= 1001)
    });
    assert_eq!(node2.expect("node2 lists all").receive_queue_drops, Some(0));
    // The summary closes the second that began with the burst.
    let summarised = wait_for(POLL_SLACK, || {
        let log = lan.log("node2");
        log.contains("more peers joined in the last second")
            .then_some(log)
    });
    let log = summarised.expect("node2 summarised the burst");
    let joined = log.matches("peer joined").count();
    assert!(joined < 60, "{joined} join lines for 1,001 joins");
}
