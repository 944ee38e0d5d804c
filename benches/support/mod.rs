//! What the benchmarks share: criterion's settings for a 2-core machine, the peers they make
//! up, and timing inserts in fills of a bounded size. Each bench uses part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::Criterion;
use peerd::wire::beacon::Beacon;

/// The instance id of the registry's own agent: never a peer's.
pub const OWN: u64 = 0xAAAA;
/// Where every made-up beacon comes from.
pub const FROM: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 24901);

/// Two cores and a few minutes: fewer, shorter samples than criterion's defaults.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Peer `i`'s first beacon: hostname `node-i`, an instance of its own (as with real processes,
/// and never ours), unsigned, no ttl field.
pub fn beacon(i: usize) -> Beacon {
    Beacon {
        instance: OWN + 1 + u64::try_from(i).expect("fits"),
        sequence: 0,
        hostname: format!("node-{i}"),
        ..Beacon::default()
    }
}

/// Runs `iters` timed steps as fills of at most `size` each, so every step lands in a structure
/// of 0..size entries. `fill(n)` starts from an empty structure and returns the time of its `n`
/// steps alone.
pub fn in_fills(iters: u64, size: usize, mut fill: impl FnMut(usize) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = usize::try_from(left).map_or(size, |left| left.min(size));
        total += fill(n);
        left -= u64::try_from(n).expect("fits");
    }
    total
}
