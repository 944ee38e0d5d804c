//! Multi-host scenarios on real containers of the peerd image, on an internal Docker network
//! the test creates. Skipped, loudly, where no Docker engine answers or no image was built.

mod support;

use std::time::Instant;

use support::cluster;
use support::docker::DockerLan;

const NODES: usize = 4;

#[test]
fn containers_started_together_list_each_other_within_2s() {
    let Some(lan) = DockerLan::start(NODES) else {
        return;
    };
    cluster::discovery(&lan, Instant::now());
}

#[test]
fn docker_stop_reaches_every_node_within_1s() {
    let Some(mut lan) = DockerLan::start(NODES) else {
        return;
    };
    cluster::graceful_stop(&mut lan, "node2");
}

#[test]
fn killed_container_expires_after_its_ttl_not_before() {
    let Some(mut lan) = DockerLan::start(NODES) else {
        return;
    };
    cluster::hard_kill(&mut lan, "node3");
}

#[test]
fn disconnected_container_expires_both_ways_and_reconnect_reunites() {
    let Some(mut lan) = DockerLan::start(NODES) else {
        return;
    };
    cluster::partition_and_heal(&mut lan, "node1");
}

#[test]
fn restarted_container_is_reported_as_a_restart() {
    let Some(mut lan) = DockerLan::start(NODES) else {
        return;
    };
    cluster::restart(&mut lan, "node4");
}
