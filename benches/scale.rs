//! The registry at 1k, 100k and 1M peers: a renewal, a join, a sweep with the same number of
//! entries due, and the heap each peer costs. BENCHMARKS.md has the figures and how to read
//! them; `benches/registry.rs` compares the timer wheel with tokio-util's `DelayQueue`.
//!
//! The heap is counted by a global allocator that wraps the system one and keeps the bytes
//! requested and not yet freed; malloc's own bookkeeping (8 to 16 bytes per allocation) is not
//! in it. The figures print before criterion's, one line per case.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use peerd::config::{BEACON_INTERVAL, PEER_TTL};
use peerd::registry::Registry;
use peerd::wire::beacon::{AuthTag, Beacon};
use support::{FROM, OWN};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// Entries due in each measured sweep, the same at every size.
const DUE: usize = 100;

struct Counting;

static HEAP: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator; the counter only adds and
// subtracts the sizes the caller states.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(new_size, Ordering::Relaxed);
        HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The kinds of peer whose cost is measured.
#[derive(Clone, Copy)]
enum Kind {
    /// `node-123456`: a short hostname, unsigned, no tags, the common case.
    Short,
    /// The same, signed: its beacons carry a timestamp and an authentication tag.
    Signed,
    /// A 40-byte hostname, longer than the 23 bytes a record holds inline.
    Long,
}

fn beacon(i: usize, kind: Kind) -> Beacon {
    let mut beacon = support::beacon(i);
    match kind {
        Kind::Short => {}
        Kind::Signed => {
            beacon.timestamp = Some(1_800_000_000_000);
            beacon.auth = Some(AuthTag {
                key_id: 1,
                tag: [0; peerd::wire::beacon::TAG_LEN],
            });
        }
        Kind::Long => beacon.hostname = format!("rack-17-chassis-3-blade-{i:07}.lab.example"),
    }
    beacon
}

/// A registry of `peers`, each heard once in the first interval (in order of `i`), then
/// renewed and swept for two more intervals: the steady state, where every peer holds one
/// wheel entry that has been rescheduled at least once.
fn steady(beacons: &mut [Beacon], t0: Instant) -> Registry {
    let mut registry = Registry::new(PEER_TTL, t0);
    let spread = u32::try_from(beacons.len()).expect("fits");
    for round in 0..3 {
        for (beacon, i) in beacons.iter_mut().zip(0..) {
            let now = t0 + BEACON_INTERVAL * round + BEACON_INTERVAL * i / spread;
            if i % 1000 == 0 {
                assert!(registry.expire(now).is_empty(), "nobody expires");
            }
            beacon.sequence += 1;
            registry.observe(beacon, FROM, now).expect("a renewal");
        }
    }
    assert_eq!(registry.len(), beacons.len());
    registry
}

/// Heap bytes per peer, printed, for each size and kind: all the registry holds, and what it
/// holds beyond an empty registry (whose wheel is a fixed 96 KiB).
fn bytes_per_peer() {
    let t0 = Instant::now();
    let before = HEAP.load(Ordering::Relaxed);
    let empty = Registry::new(PEER_TTL, t0);
    let fixed = HEAP.load(Ordering::Relaxed) - before;
    drop(empty);
    println!("heap: an empty registry holds {fixed} bytes");
    for (name, kind) in [
        ("short", Kind::Short),
        ("signed", Kind::Signed),
        ("long", Kind::Long),
    ] {
        for peers in SIZES {
            let mut beacons: Vec<Beacon> = (0..peers).map(|i| beacon(i, kind)).collect();
            let before = HEAP.load(Ordering::Relaxed);
            let registry = steady(&mut beacons, t0);
            let held = HEAP.load(Ordering::Relaxed) - before;
            println!(
                "heap: {name} hostnames, {peers} peers: {} bytes per peer ({} beyond an empty registry)",
                held / peers,
                (held - fixed) / peers
            );
            drop(registry);
        }
    }
}

/// One renewal (a newer beacon of a listed peer, same instance and address): in the order the
/// peers joined, as beacons arriving in a steady rhythm come, and in a shuffled order, so no
/// prefetcher can guess the next record. Either way the beacons themselves are laid out in the
/// order they are renewed: an agent decodes each into a buffer that is already in its cache,
/// so only the registry's own memory should miss.
fn renew(c: &mut Criterion) {
    bytes_per_peer();
    let mut group = c.benchmark_group("renew");
    for peers in SIZES {
        let t0 = Instant::now();
        let mut joined: Vec<Beacon> = (0..peers).map(|i| beacon(i, Kind::Short)).collect();
        let mut registry = steady(&mut joined, t0);
        // Beyond the three intervals `steady` used, and only ever later.
        let mut now = t0 + BEACON_INTERVAL * 3;
        for (order, shuffled) in [("in_order", false), ("shuffled", true)] {
            let mut sequence: Vec<usize> = (0..peers).collect();
            if shuffled {
                fastrand::Rng::with_seed(15).shuffle(&mut sequence);
            }
            let mut beacons: Vec<Beacon> = sequence.iter().map(|&i| joined[i].clone()).collect();
            let mut next = 0;
            group.bench_function(BenchmarkId::new(order, peers), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let beacon = &mut beacons[next];
                        // Newer than the last one accepted, else it is dropped as a duplicate.
                        beacon.sequence += 1;
                        let _ = black_box(registry.observe(beacon, FROM, now));
                        next += 1;
                        if next == peers {
                            // A new round of beacons, one interval after the last; renewals
                            // alone never sweep, so nothing expires however long this runs.
                            next = 0;
                            now += BEACON_INTERVAL;
                        }
                    }
                    start.elapsed()
                });
            });
            assert_eq!(registry.len(), peers, "renewals neither add nor drop peers");
            // The next order starts from where this one left the sequence numbers and the
            // clock.
            now += BEACON_INTERVAL;
            for beacon in beacons {
                let i = usize::try_from(beacon.instance - OWN - 1).expect("fits");
                joined[i].sequence = beacon.sequence;
            }
        }
    }
    group.finish();
}

/// What one read of memory costs on this machine when nothing can predict it: a chain of
/// dependent reads, each to a random cache line of a buffer as large as the registry's records
/// at that size (96 bytes a peer). A renewal in a shuffled order pays a few of these; this
/// tells how many.
fn random_read(c: &mut Criterion) {
    const LINE: usize = 64 / std::mem::size_of::<u32>();
    let mut group = c.benchmark_group("random_read");
    for peers in SIZES {
        let lines = peers * 96 / 64;
        // Sattolo's shuffle: one cycle through every line, so the chain never short-cuts.
        let mut order: Vec<usize> = (0..lines).collect();
        let mut rng = fastrand::Rng::with_seed(49);
        for i in (1..lines).rev() {
            order.swap(i, rng.usize(..i));
        }
        let mut memory = vec![0u32; lines * LINE];
        for (i, &line) in order.iter().enumerate() {
            let next = order[(i + 1) % lines];
            memory[line * LINE] = u32::try_from(next).expect("fits");
        }
        let mut at = 0usize;
        group.bench_function(BenchmarkId::from_parameter(peers), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    at = memory[at * LINE] as usize;
                }
                black_box(at);
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// One join (a hostname not listed), while filling an empty registry to the size: growth of
/// the index, the slab and the wheel included, as a simultaneous start of every node pays it.
fn join(c: &mut Criterion) {
    let mut group = c.benchmark_group("join");
    for peers in SIZES {
        let beacons: Vec<Beacon> = (0..peers).map(|i| beacon(i, Kind::Short)).collect();
        let spread = u32::try_from(peers).expect("fits");
        group.bench_function(BenchmarkId::from_parameter(peers), |b| {
            b.iter_custom(|iters| {
                support::in_fills(iters, peers, |n| {
                    let t0 = Instant::now();
                    let mut registry = Registry::new(PEER_TTL, t0);
                    let start = Instant::now();
                    for (beacon, i) in beacons[..n].iter().zip(0..) {
                        let _ = black_box(registry.observe(
                            beacon,
                            FROM,
                            t0 + BEACON_INTERVAL * i / spread,
                        ));
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// A registry in a steady state where each sweep finds exactly [`DUE`] entries due: peers in
/// groups of [`DUE`], one group due per step. After its sweep a group beacons again (not
/// timed), so its records are cold by the time it next comes due, as in a large registry.
struct Ring {
    registry: Registry,
    beacons: Vec<Beacon>,
    /// Whether the due entries are stale (the peer renewed since) rather than expiring.
    renewed: bool,
    groups: usize,
    step: Duration,
    /// When the next sweep runs.
    now: Instant,
    /// The group due at `now`.
    group: usize,
}

impl Ring {
    /// `renewed`: every group beacons half a ttl before each of its sweeps, so the sweep finds
    /// its wheel entries stale and reschedules them: the deferred cost of renewals that touch
    /// no timer. Otherwise every group is silent for a whole ttl and expires, then comes back.
    fn new(peers: usize, renewed: bool) -> Self {
        let groups = peers / DUE;
        // A renewed group comes due every half ttl (its deadline was set half a ttl before),
        // an expiring one once per ttl.
        let period = if renewed { PEER_TTL / 2 } else { PEER_TTL };
        let step = period / u32::try_from(groups).expect("fits");
        let t0 = Instant::now();
        let mut ring = Ring {
            registry: Registry::new(PEER_TTL, t0),
            beacons: (0..peers).map(|i| beacon(i, Kind::Short)).collect(),
            renewed,
            groups,
            step,
            now: t0 + PEER_TTL,
            group: 0,
        };
        for group in 0..groups {
            let heard = t0 + step * u32::try_from(group).expect("fits");
            ring.hear(group, heard);
            if renewed {
                ring.hear(group, heard + PEER_TTL / 2);
            }
        }
        assert_eq!(ring.registry.len(), peers);
        ring
    }

    fn hear(&mut self, group: usize, now: Instant) {
        for beacon in &mut self.beacons[group * DUE..(group + 1) * DUE] {
            beacon.sequence += 1;
            self.registry.observe(beacon, FROM, now).expect("a renewal");
        }
    }

    /// Sweeps the next group and returns the time `expire` took.
    fn sweep(&mut self) -> Duration {
        let start = Instant::now();
        let events = self.registry.expire(self.now);
        let elapsed = start.elapsed();
        assert_eq!(events.len(), if self.renewed { 0 } else { DUE });
        drop(events);
        self.hear(self.group, self.now);
        self.now += self.step;
        self.group = (self.group + 1) % self.groups;
        elapsed
    }
}

/// `Registry::expire` with [`DUE`] entries due at each size: the cost should follow the
/// entries due, not the peers registered. The time is per sweep.
fn sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("sweep_100_due");
    group.throughput(Throughput::Elements(u64::try_from(DUE).expect("fits")));
    for peers in SIZES {
        for (name, renewed) in [("expired", false), ("renewed", true)] {
            let mut ring = Ring::new(peers, renewed);
            group.bench_function(BenchmarkId::new(name, peers), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| ring.sweep()).sum());
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = renew, random_read, join, sweep
}
criterion_main!(benches);
