//! Scenario 6: four nodes at the default 15 s / 35 s timings run ten minutes
//! (`PEERD_SOAK_MINUTES` to change) with zero spurious expiries, on Docker and on bridged
//! namespaces. Ignored unless asked for: `bin/test soak -- --ignored --nocapture`.

use std::time::Duration;

use crate::support::cluster::{self, Cluster};
use crate::support::docker::DockerLan;
use crate::support::lan::Lan;
use crate::support::timings::Timings;

const NODES: usize = 4;

fn soak_duration() -> Duration {
    let minutes = std::env::var("PEERD_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(60 * minutes)
}

fn soak_on<C: Cluster>(start: fn(usize, Timings) -> Option<C>) {
    if let Some(lan) = start(NODES, Timings::DEFAULT) {
        cluster::soak(&lan, soak_duration());
    }
}

#[test]
#[ignore = "takes 10 minutes; run with `bin/test soak -- --ignored --nocapture`"]
fn docker_cluster_has_no_spurious_expiries() {
    soak_on(DockerLan::start);
}

#[test]
#[ignore = "takes 10 minutes; run with `bin/test soak -- --ignored --nocapture`"]
fn namespace_cluster_has_no_spurious_expiries() {
    soak_on(Lan::bridged);
}
