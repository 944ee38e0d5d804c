//! Two live agents announcing one hostname, on loopback agents: the others report a conflict
//! once, mark the peer in `peerd peers`, and clear it when one of the two stops.

use peerd::api::PeerInfo;

use crate::support::cluster::Cluster;
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

fn twin(lan: &Lan) -> Option<PeerInfo> {
    lan.peers("node1")?
        .into_iter()
        .find(|p| p.hostname == "twin")
}

#[test]
fn two_live_instances_of_one_hostname_are_a_reported_conflict() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    lan.add("twin-a", &["--name", "twin"]).expect("namespace");
    lan.add("twin-b", &["--name", "twin"]).expect("namespace");
    let conflict = wait_for(POLL_SLACK, || twin(&lan)?.conflict);
    let conflict = conflict.expect("node1 never reported the conflict");
    let listed = twin(&lan).expect("twin listed");
    assert_ne!(
        conflict.instance, listed.instance,
        "the other instance is named"
    );

    let table = lan
        .agent("node1")
        .client("peers", &[])
        .output()
        .expect("run peerd peers");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("CONFLICT") && table.contains("also announced from 127.0.0.1"),
        "{table}"
    );
    let log = lan.log("node1");
    assert_eq!(log.matches("hostname conflict").count(), 1, "warned once");

    // One of the two leaves: the conflict clears, the hostname stays listed.
    assert!(lan.stop("twin-a"));
    let cleared = wait_for(POLL_SLACK, || twin(&lan).filter(|p| p.conflict.is_none()));
    assert!(cleared.is_some(), "the conflict did not clear");
    assert_eq!(lan.status("node1").expect("answers").events.conflict, 1);
}
