//! The timer wheel against tokio-util's `DelayQueue` at 100,000 entries: inserts, what a
//! renewal would cost a `DelayQueue` design, a wheel step with nothing due, and a pass over
//! every peer (a sweep without an index). Times are per insert, renewal, step or pass;
//! BENCHMARKS.md has the figures and how to read them. `benches/scale.rs` measures the
//! registry itself at 1k, 100k and 1M peers.

mod support;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use peerd::config::{BEACON_INTERVAL, PEER_TTL};
use peerd::registry::Registry;
use peerd::registry::wheel::{TICK, TimerWheel};
use support::{FROM, beacon, in_fills};
use tokio_util::time::DelayQueue;

/// Registry size the figures are quoted at.
const PEERS: usize = 100_000;
/// Peers due in the pass over the registry, as a sweep of that many would find.
const DUE: usize = 1_000;
/// Deadlines as a registry sees them: `heard + ttl`, the peers heard over one beacon interval,
/// so spread over [ttl - interval, ttl) from now. `shuffled` inserts them in random order
/// (a seeded one, so runs compare); otherwise in order, as beacons arriving in real time do.
fn offsets(shuffled: bool) -> Vec<Duration> {
    let first = PEER_TTL - BEACON_INTERVAL;
    let peers = u32::try_from(PEERS).expect("fits");
    let mut offsets: Vec<Duration> = (0..peers)
        .map(|i| first + BEACON_INTERVAL * i / peers)
        .collect();
    if shuffled {
        fastrand::Rng::with_seed(49001).shuffle(&mut offsets);
    }
    offsets
}

fn time_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime with only the timer builds")
}

/// Filling a wheel or `DelayQueue` with 100k deadlines; the time is per insert. `fresh`: a new
/// structure per fill, so its growth is paid; `reused`: one emptied between fills, which keeps
/// its capacity, as the registry's long-lived wheel does.
fn insert(c: &mut Criterion) {
    // DelayQueue arms a tokio `Sleep`, which needs a runtime with a timer in context. It is
    // never driven: nothing is polled, so no deadline fires while we measure.
    let runtime = time_runtime();
    let _context = runtime.enter();
    let mut group = c.benchmark_group("insert_100k");
    for (order, shuffled) in [("in_order", false), ("shuffled", true)] {
        let offsets = offsets(shuffled);
        group.bench_function(BenchmarkId::new("wheel", format!("fresh_{order}")), |b| {
            b.iter_custom(|iters| {
                in_fills(iters, PEERS, |n| {
                    let t0 = Instant::now();
                    let mut wheel = TimerWheel::new(t0);
                    let elapsed = fill_wheel(&mut wheel, t0, &offsets[..n]);
                    // Dropped after the clock stopped.
                    black_box(wheel);
                    elapsed
                })
            });
        });
        let mut now = Instant::now();
        let mut wheel = TimerWheel::new(now);
        let mut drained = Vec::new();
        group.bench_function(BenchmarkId::new("wheel", format!("reused_{order}")), |b| {
            b.iter_custom(|iters| {
                in_fills(iters, PEERS, |n| {
                    // Past every deadline of the last fill, all under one ttl ahead.
                    now += PEER_TTL + TICK;
                    wheel.advance(now, &mut drained);
                    drained.clear();
                    fill_wheel(&mut wheel, now, &offsets[..n])
                })
            });
        });
        group.bench_function(
            BenchmarkId::new("delay_queue", format!("fresh_{order}")),
            |b| {
                b.iter_custom(|iters| {
                    in_fills(iters, PEERS, |n| {
                        let mut queue = DelayQueue::new();
                        let elapsed = fill_queue(&mut queue, &offsets[..n]);
                        black_box(queue);
                        elapsed
                    })
                });
            },
        );
        let mut queue = DelayQueue::new();
        group.bench_function(
            BenchmarkId::new("delay_queue", format!("reused_{order}")),
            |b| {
                b.iter_custom(|iters| {
                    in_fills(iters, PEERS, |n| {
                        queue.clear();
                        fill_queue(&mut queue, &offsets[..n])
                    })
                });
            },
        );
    }
    group.finish();
}

/// Inserts one entry per offset from `now` and returns the time the inserts alone took.
fn fill_wheel(wheel: &mut TimerWheel<usize>, now: Instant, offsets: &[Duration]) -> Duration {
    let deadlines: Vec<Instant> = offsets.iter().map(|o| now + *o).collect();
    let start = Instant::now();
    for (i, at) in deadlines.iter().enumerate() {
        wheel.insert(*at, i);
    }
    start.elapsed()
}

/// Inserts one entry per offset from now and returns the time the inserts alone took.
fn fill_queue(queue: &mut DelayQueue<usize>, offsets: &[Duration]) -> Duration {
    let now = tokio::time::Instant::now();
    let deadlines: Vec<tokio::time::Instant> = offsets.iter().map(|o| now + *o).collect();
    let start = Instant::now();
    for (i, at) in deadlines.iter().enumerate() {
        queue.insert_at(i, *at);
    }
    start.elapsed()
}

/// What a renewal costs a design built on `DelayQueue`: a lookup by hostname, then `reset_at`.
fn renew(c: &mut Criterion) {
    let runtime = time_runtime();
    let _context = runtime.enter();
    let mut group = c.benchmark_group("renew");
    let offsets = offsets(false);

    // DelayQueue's renewal: move the key to its new deadline. Alternately one interval later
    // and back, so the queue keeps its shape however long criterion runs. Keys in insertion
    // order walk its slab in order; shuffled, they do not, as when jitter has reordered the
    // peers' beacons since they joined.
    let t0 = tokio::time::Instant::now();
    let mut queue = DelayQueue::new();
    let earlier: Vec<tokio::time::Instant> = offsets.iter().map(|o| t0 + *o).collect();
    let later: Vec<tokio::time::Instant> = earlier.iter().map(|at| *at + BEACON_INTERVAL).collect();
    let keys: Vec<_> = earlier
        .iter()
        .enumerate()
        .map(|(i, at)| queue.insert_at(i, *at))
        .collect();
    for (order, shuffled) in [("in_order", false), ("shuffled", true)] {
        let mut peers: Vec<usize> = (0..PEERS).collect();
        if shuffled {
            fastrand::Rng::with_seed(15).shuffle(&mut peers);
        }
        let mut next = 0;
        let mut forward = true;
        let id = BenchmarkId::new("delay_queue_reset_at", format!("{PEERS}_{order}"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let peer = peers[next];
                    let at = if forward { later[peer] } else { earlier[peer] };
                    queue.reset_at(&keys[peer], at);
                    next += 1;
                    if next == PEERS {
                        next = 0;
                        forward = !forward;
                    }
                }
                start.elapsed()
            });
        });
        // Back where it started, for the next order.
        if !forward {
            for peer in 0..PEERS {
                queue.reset_at(&keys[peer], earlier[peer]);
            }
        }
    }

    // The lookup alone, which a DelayQueue-based registry would pay before its `reset_at` too.
    let mut map: HashMap<String, u64> = (0..PEERS).map(|i| (format!("node-{i}"), 0)).collect();
    let names: Vec<String> = (0..PEERS).map(|i| format!("node-{i}")).collect();
    let mut next = 0;
    group.bench_function(BenchmarkId::new("hashmap_get_mut", PEERS), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                if let Some(value) = map.get_mut(names[next].as_str()) {
                    *value += 1;
                }
                next = (next + 1) % PEERS;
            }
            start.elapsed()
        });
    });
    group.finish();
}

/// What a sweep without an index would pay: one pass over every peer for its deadline. The
/// time is per pass over the whole registry.
fn scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("scan_all_peers");
    for peers in [10_000, PEERS] {
        let t0 = Instant::now();
        let mut registry = Registry::new(PEER_TTL, t0);
        let spread = u32::try_from(peers).expect("fits");
        for (i, heard) in (0..peers).zip(0..) {
            registry
                .observe(&beacon(i), FROM, t0 + BEACON_INTERVAL * heard / spread)
                .expect("a join");
        }
        // About 1,000 due, as in the sweeps; the pass looks at every peer either way.
        let now = t0 + PEER_TTL + BEACON_INTERVAL * u32::try_from(DUE).expect("fits") / spread;
        group.bench_function(BenchmarkId::from_parameter(peers), |b| {
            b.iter(|| registry.peers().filter(|p| p.deadline <= now).count());
        });
    }
    group.finish();
}

/// `TimerWheel::advance` by one tick with 100k entries and nothing due: what a sweep costs
/// when it has nothing to do, whatever the wheel holds.
fn advance(c: &mut Criterion) {
    // Entries between 36 s and 40 s ahead, within the wheel's 40.96 s lap; the clock walks
    // 35 s of ticks before a new wheel is built (not timed).
    let lead = Duration::from_secs(36);
    let span = Duration::from_secs(4);
    let walk = u64::try_from(PEER_TTL.as_nanos() / TICK.as_nanos()).expect("fits");
    let build = || {
        let t0 = Instant::now();
        let peers = u32::try_from(PEERS).expect("fits");
        let mut wheel = TimerWheel::new(t0);
        for i in 0..peers {
            wheel.insert(t0 + lead + span * i / peers, i);
        }
        (wheel, t0, 0)
    };
    let (mut wheel, mut now, mut walked) = build();
    let mut due = Vec::new();
    c.bench_function("advance_nothing_due_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if walked == walk {
                    (wheel, now, walked) = build();
                }
                let n = left.min(walk - walked);
                let start = Instant::now();
                for _ in 0..n {
                    now += TICK;
                    wheel.advance(now, &mut due);
                }
                total += start.elapsed();
                assert!(due.is_empty());
                walked += n;
                left -= n;
            }
            total
        });
    });
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = insert, renew, scan, advance
}
criterion_main!(benches);
