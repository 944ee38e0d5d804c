//! What the agent's own code spends on one datagram, without the socket: `Receiver::handle_datagram`
//! (decode, signature and timestamp check, registry) for a renewal and a join, unsigned and
//! signed, in a registry of 1,000 peers. `bin/bench-ingest` measures the whole receive path
//! against the socket; this isolates the part that is ours, free of the kernel's noise.

mod support;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use peerd::config::{Config, MAX_PEERS};
use peerd::engine::funnel::Funnel;
use peerd::node::{Heard, Receiver};
use peerd::registry::PeerEvent;
use peerd::wire::auth::Keyring;
use peerd::wire::beacon::Beacon;
use support::FROM;

const PEERS: usize = 1_000;
const SECRET: &[u8] = b"a shared secret of 32 bytes, ok!";

fn node(signed: bool, now: Instant) -> Receiver {
    let mut config = Config::new("bench", Ipv4Addr::LOCALHOST);
    config.max_peers = MAX_PEERS.max(PEERS * 1000);
    if signed {
        config.keys = Keyring::new(&[SECRET]);
    }
    Receiver::new(&config, 1, now)
}

/// Peer `i`'s beacon with sequence `sequence`, as its agent sends it (ttl field; signed: the
/// timestamp and the authentication field too).
fn datagram(i: usize, sequence: u64, keys: Option<&Keyring>, wall: SystemTime) -> Vec<u8> {
    let beacon = Beacon {
        instance: 1000 + u64::try_from(i).expect("fits"),
        sequence,
        hostname: format!("node-{i:06}"),
        ttl: Some(Duration::from_secs(35)),
        timestamp: keys.map(|_| peerd::node::admission::unix_millis(wall)),
        ..Beacon::default()
    };
    let mut bytes = beacon.encode();
    if let Some(keys) = keys {
        keys.sign(&mut bytes);
    }
    bytes
}

fn handle(c: &mut Criterion) {
    let mut group = c.benchmark_group("handle_datagram");
    let wall = SystemTime::now();
    let keyring = Keyring::new(&[SECRET]);
    for (name, signed) in [("unsigned", false), ("signed", true)] {
        let keys = signed.then_some(&keyring);
        // Renewal: each peer's next beacon, round-robin, in a node that lists all 1,000.
        let rounds = 64;
        let renewals: Vec<Vec<u8>> = (1..=rounds)
            .flat_map(|sequence| (0..PEERS).map(move |i| (i, sequence)))
            .map(|(i, sequence)| datagram(i, sequence, keys, wall))
            .collect();
        let t0 = Instant::now();
        let mut node = node(signed, t0);
        for i in 0..PEERS {
            node.handle_datagram(&datagram(i, 0, keys, wall), FROM, t0, wall);
        }
        let mut next = 0;
        group.bench_function(BenchmarkId::new("renewal", name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    if next == renewals.len() {
                        // Sequences only grow: start again in a fresh node (not timed).
                        node = self::node(signed, t0);
                        for i in 0..PEERS {
                            node.handle_datagram(&datagram(i, 0, keys, wall), FROM, t0, wall);
                        }
                        next = 0;
                    }
                    black_box(node.handle_datagram(&renewals[next], FROM, t0, wall));
                    next += 1;
                }
                start.elapsed()
            });
        });
        // Join: a hostname not listed, in a node that fills up to 1,000 and starts again.
        let joins: Vec<Vec<u8>> = (0..PEERS).map(|i| datagram(i, 0, keys, wall)).collect();
        group.bench_function(BenchmarkId::new("join", name), |b| {
            b.iter_custom(|iters| {
                support::in_fills(iters, PEERS, |n| {
                    let mut node = self::node(signed, t0);
                    let start = Instant::now();
                    for joining in &joins[..n] {
                        black_box(node.handle_datagram(joining, FROM, t0, wall));
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// What the agent adds to a datagram that changes the registry: numbering, describing,
/// counting, keeping and broadcasting its event (`Funnel::publish`), here a join, with nobody
/// subscribed and the log budget spent, as in a burst.
fn publish(c: &mut Criterion) {
    let wall = SystemTime::now();
    let t0 = Instant::now();
    let mut node = node(false, t0);
    let joined: Vec<PeerEvent> = (0..PEERS)
        .filter_map(
            |i| match node.handle_datagram(&datagram(i, 0, None, wall), FROM, t0, wall) {
                Heard::Changed(event) => Some(*event),
                Heard::Replaced(_) => None,
                Heard::Renewed | Heard::Own | Heard::Refused => None,
            },
        )
        .collect();
    assert_eq!(joined.len(), PEERS);
    let mut funnel = Funnel::default();
    for event in joined
        .iter()
        .take(peerd::engine::funnel::LOG_BURST as usize)
    {
        funnel.publish(event, t0);
    }
    let mut next = 0;
    c.bench_function("publish/joined", |b| {
        b.iter(|| {
            funnel.publish(&joined[next], t0);
            next = (next + 1) % PEERS;
        });
    });
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = handle, publish
}
criterion_main!(benches);
