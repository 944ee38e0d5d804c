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
