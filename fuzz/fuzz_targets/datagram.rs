//! A sequence of datagrams, with clock steps between them, into one node (its `Receiver` and
//! its `Announcer`, cued as the agent cues it): the decoder, the registry, the wheel and the
//! announce schedule together, checked after every step.
//!
//! The input is a run of records, each:
//!
//! | bytes | meaning |
//! |---|---|
//! | 1 | clock step: 0..=127 is that many ms; 128..=255 is (b - 127) x 250 ms, up to 32 s |
//! | 1 | sender: the low 4 bits pick one of 16 addresses; bit 7 ([`SEAL`]) signs the datagram |
//! | 2 | datagram length, big-endian, cut to what is left of the input |
//! | n | the datagram |
//!
//! Fine steps race renewals against deadlines; coarse ones reach expiry (ttl 35 s) and the
//! registry's forgetting of a departed peer in a few records. The node holds a secret and
//! accepts unsigned beacons too (a migration), so signed and unsigned beacons, forged tags,
//! replays and stale timestamps all meet in one registry.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use peerd::config::{Config, MAX_TIMING, MIN_TIMING, UNSIGNED_TTL_FACTOR};
use peerd::node::admission::unix_millis;
use peerd::node::{Announcer, Destination, Heard, Receiver};
use peerd::registry::{Peer, PeerEvent};
use peerd::wire::auth::Keyring;
use peerd::wire::beacon::Beacon;

/// The node's own instance id, fixed so that seeds (and the fuzzer) can replay its own beacons.
const OWN_INSTANCE: u64 = 0x5e1f_5e1f_5e1f_5e1f;
/// Sender bit: sign the datagram with [`config`]'s secret, so the fuzzer reaches the registry
/// with signed beacons while unsealed ones (and forged tags) exercise the refusals.
const SEAL: u8 = 0b1000_0000;
const SENDERS: u8 = 0b0000_1111;
const SECRET: &[u8] = b"the fuzzer's shared secret, 32 b";

/// The node under test: the defaults, with a secret, migrating (it takes unsigned beacons too).
fn config() -> Config {
    Config {
        keys: Keyring::new(&[SECRET]),
        accept_unauthenticated: true,
        ..Config::new("self", Ipv4Addr::LOCALHOST)
    }
}

/// The wall clock at the start of every run; it moves with the fuzzed clock steps.
fn wall_start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// What the datagram becomes on the wire. A sealed one that decodes is signed with the secret:
/// stamped now unless it carries a timestamp of its own (so the fuzzer can replay and age
/// beacons), its own tag, if any, dropped first.
fn wire(datagram: &[u8], seal: bool, wall: SystemTime) -> Vec<u8> {
    let Some(beacon) = seal.then(|| Beacon::decode(datagram).ok()).flatten() else {
        return datagram.to_vec();
    };
    let mut bytes = Beacon {
        timestamp: beacon.timestamp.or(Some(unix_millis(wall))),
        auth: None,
        ..beacon
    }
    .encode();
    Keyring::new(&[SECRET]).sign(&mut bytes);
    bytes
}

struct Record<'a> {
    step: Duration,
    from: SocketAddr,
    seal: bool,
    datagram: &'a [u8],
}

/// Splits the input into records; a trailing partial header is dropped.
fn records(mut data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let [step, sender, len_hi, len_lo, rest @ ..] = data else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo])).min(rest.len());
        let (datagram, rest) = rest.split_at(len);
        data = rest;
        let step = match *step {
            fine @ 0..=127 => Duration::from_millis(u64::from(fine)),
            coarse => Duration::from_millis(250 * u64::from(coarse - 127)),
        };
        let host = 1 + (sender & SENDERS);
        Some(Record {
            step,
            from: SocketAddr::from(([10, 0, 0, host], 24901)),
            seal: sender & SEAL != 0,
            datagram,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let config = config();
    let mut receiver = Receiver::new(&config, OWN_INSTANCE, now);
    let mut announcer = Announcer::new(&config, OWN_INSTANCE, 7, now);
    let mut next_sequence = 0;
    poll(&mut announcer, &mut receiver, now, wall_start(), &mut next_sequence);
    for record in records(data) {
        now += record.step;
        let wall = wall_start() + (now - start);
        let datagram = wire(record.datagram, record.seal, wall);
        match receiver.handle_datagram(&datagram, record.from, now, wall) {
            Heard::Changed(event) => {
                check_event(&receiver, &event, &datagram, record.from, now);
                if event.is_newcomer() {
                    announcer.newcomer(now);
                }
            }
            Heard::Replaced(events) => {
                let [evicted, joined] = *events;
                let PeerEvent::Evicted { peer } = &evicted else {
                    panic!("room is made by an eviction: {evicted:?}");
                };
                assert!(!peer.established, "only a peer heard once makes room");
                assert!(!is_listed(&receiver, &peer.hostname), "evicted yet listed");
                check_event(&receiver, &joined, &datagram, record.from, now);
                announcer.newcomer(now);
            }
            Heard::Own => {
                let beacon = Beacon::decode(&datagram).expect("our own beacons are valid");
                assert_eq!(beacon.instance, OWN_INSTANCE);
            }
            Heard::Renewed | Heard::Refused => {}
        }
        for expired in receiver.handle_timeout(now) {
            let PeerEvent::Expired { peer } = &expired else {
                panic!("a sweep only expires: {expired:?}");
            };
            assert!(peer.deadline <= now, "expired before its deadline");
            assert!(!is_listed(&receiver, &peer.hostname), "expired yet listed");
        }
        check_listing(&receiver, now);
        poll(&mut announcer, &mut receiver, now, wall, &mut next_sequence);
        assert!(
            announcer.next_wakeup() > now && receiver.next_wakeup().is_none_or(|at| at > now),
            "after a sweep and a poll nothing is due: the agent would spin"
        );
    }
});

/// Sends what is due, as the agent does; checks it is this node's next beacon.
fn poll(
    announcer: &mut Announcer,
    receiver: &mut Receiver,
    now: Instant,
    wall: SystemTime,
    next_sequence: &mut u64,
) {
    let Some(outgoing) = announcer.poll(now, wall) else {
        return;
    };
    let beacon = Beacon::decode(&outgoing.bytes).expect("the node sends valid beacons");
    assert!(
        beacon.auth.is_some() && beacon.migrating,
        "signed, migrating"
    );
    assert_eq!(
        (beacon.instance, beacon.hostname.as_str()),
        (OWN_INSTANCE, "self")
    );
    assert!(!beacon.goodbye);
    assert_eq!(
        beacon.sequence, *next_sequence,
        "one sequence number per beacon"
    );
    *next_sequence += 1;
    receiver.announced(outgoing.early, true, outgoing.to != Destination::Group);
}

/// An event comes only from a valid beacon of another instance, and the listing shows it.
fn check_event(
    receiver: &Receiver,
    event: &PeerEvent,
    datagram: &[u8],
    from: SocketAddr,
    now: Instant,
) {
    let beacon = Beacon::decode(datagram).expect("an event comes from a valid beacon");
    assert_ne!(
        beacon.instance, OWN_INSTANCE,
        "our own beacons change nothing"
    );
    let peer = event.peer();
    assert_eq!(peer.hostname, beacon.hostname);
    let listed = is_listed(receiver, &peer.hostname);
    match event {
        PeerEvent::Left { .. } => assert!(!listed, "left yet listed"),
        PeerEvent::Expired { .. } | PeerEvent::Evicted { .. } => {
            panic!("a datagram never expires or evicts anyone by itself: {event:?}")
        }
        PeerEvent::Joined { .. }
        | PeerEvent::Moved { .. }
        | PeerEvent::Updated { .. }
        | PeerEvent::Restarted { .. } => {
            assert!(listed, "{event:?} but not listed");
            assert_eq!((peer.instance, peer.address), (beacon.instance, from));
            assert_eq!(peer.tags, beacon.tags, "the tags of the beacon that changed it");
            let asked = beacon
                .ttl
                .map_or(config().ttl, |ttl| ttl.clamp(MIN_TIMING, MAX_TIMING));
            // An unsigned beacon asks for at most four of the receiver's ttls.
            let ttl = match beacon.auth {
                Some(_) => asked,
                None => asked.min(config().ttl * UNSIGNED_TTL_FACTOR),
            };
            assert_eq!(peer.deadline, now + ttl);
        }
        PeerEvent::Conflict { .. } => assert!(listed, "conflict over a peer not listed"),
    }
}

/// After a sweep: every listed hostname was heard within its ttl (from the listed instance, or
/// from a rival in conflict with it: either keeps the hostname alive), once, and the count
/// agrees.
fn check_listing(receiver: &Receiver, now: Instant) {
    let mut peers: Vec<Peer> = receiver.peers().collect();
    for peer in &peers {
        assert!(
            now < peer.last_seen + peer.ttl
                || peer
                    .conflict(now)
                    .is_some_and(|rival| now < rival.last_seen + MAX_TIMING),
            "{} listed {:?} after its last beacon",
            peer.hostname,
            now - peer.last_seen
        );
    }
    peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    assert!(
        peers.windows(2).all(|w| w[0].hostname < w[1].hostname),
        "each hostname listed once"
    );
    assert_eq!(
        receiver.stats(now).peers,
        peers.len(),
        "the count is the listing's length"
    );
}

fn is_listed(receiver: &Receiver, hostname: &str) -> bool {
    receiver.peers().any(|p| p.hostname == hostname)
}
