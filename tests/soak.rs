//! Scenario 6, opt-in (`PEERD_SOAK=1`): four nodes with the default 15 s / 35 s timings run
//! ten minutes with zero spurious expiries, on Docker and on bridged namespaces.

mod support;

use std::time::Duration;

use peerd::config::{BEACON_INTERVAL, PEER_TTL};
use support::cluster::{self, Cluster};
use support::docker::DockerLan;
use support::lan::Lan;

const NODES: usize = 4;

fn soak_duration() -> Option<Duration> {
    if std::env::var_os("PEERD_SOAK").is_none_or(|v| v != "1") {
        eprintln!("soak skipped: it takes 10 minutes; set PEERD_SOAK=1 to run it");
        return None;
    }
    let minutes = std::env::var("PEERD_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    Some(Duration::from_secs(60 * minutes))
}

/// Runs the soak on a LAN that `start` builds from (nodes, interval, ttl), if the soak is asked
/// for and this machine can build one.
fn soak_on<C: Cluster>(start: fn(usize, Duration, Duration) -> Option<C>) {
    let Some(duration) = soak_duration() else {
        return;
    };
    let Some(lan) = start(NODES, BEACON_INTERVAL, PEER_TTL) else {
        return;
    };
    cluster::soak(&lan, duration);
}

#[test]
fn docker_cluster_has_no_spurious_expiries() {
    soak_on(DockerLan::start_timed);
}

#[test]
fn namespace_cluster_has_no_spurious_expiries() {
    soak_on(Lan::start_timed);
}
