//! Multi-host scenarios on network namespaces joined by veth pairs and a bridge (root only):
//! the same scenarios as the Docker tests, for machines without Docker.

mod support;

use std::time::Instant;

use support::cluster::{self, Cluster};
use support::lan::Lan;

const HOSTS: usize = 4;

#[test]
fn nodes_started_together_list_each_other_within_2s() {
    let started = Instant::now();
    let Some(lan) = Lan::start(HOSTS) else { return };
    cluster::discovery(&lan, started.max(Instant::now()));
}

#[test]
fn graceful_stop_reaches_every_node_within_1s() {
    let Some(mut lan) = Lan::start(HOSTS) else {
        return;
    };
    cluster::graceful_stop(&mut lan, "node2");
}

#[test]
fn killed_node_expires_after_its_ttl_not_before() {
    let Some(mut lan) = Lan::start(HOSTS) else {
        return;
    };
    cluster::hard_kill(&mut lan, "node3");
}

#[test]
fn partition_expires_both_sides_and_heal_reunites_them() {
    let Some(mut lan) = Lan::start(HOSTS) else {
        return;
    };
    cluster::partition_and_heal(&mut lan, "node1");
    assert_eq!(lan.nodes().len(), HOSTS);
}

#[test]
fn restarted_node_is_reported_as_a_restart() {
    let Some(mut lan) = Lan::start(HOSTS) else {
        return;
    };
    cluster::restart(&mut lan, "node4");
}
