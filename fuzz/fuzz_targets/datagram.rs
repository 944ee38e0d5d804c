//! A sequence of datagrams, with clock steps between them, into one `Node`: the decoder, the
//! registry, the wheel and the announce schedule together, checked after every step.
//!
//! The input is a run of records, each:
//!
//! | bytes | meaning |
//! |---|---|
//! | 1 | clock step: 0..=127 is that many ms; 128..=255 is (b - 127) x 250 ms, up to 32 s |
//! | 1 | sender: the low 4 bits pick one of 16 addresses; bit 7 is reserved ([`SEAL`]) |
//! | 2 | datagram length, big-endian, cut to what is left of the input |
//! | n | the datagram |
//!
//! Fine steps race renewals against deadlines; coarse ones reach expiry (ttl 35 s) and the
//! registry's forgetting of a departed peer in a few records.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use peerd::api::{EventCounts, HookCounts, PeerInfo};
use peerd::beacon::Beacon;
use peerd::config::Config;
use peerd::node::Node;
use peerd::registry::PeerEvent;

/// The node's own instance id, fixed so that seeds (and the fuzzer) can replay its own beacons.
const OWN_INSTANCE: u64 = 0x5e1f_5e1f_5e1f_5e1f;
/// Sender bit kept for authenticated beacons: once beacons carry a tag made with a shared
/// secret, the harness will seal the datagrams that set it with [`config`]'s secret, so the
/// fuzzer reaches the registry past the check while unsealed ones exercise the rejection path.
/// Until then it is ignored, and inputs that set it mean what they will mean then.
const SEAL: u8 = 0b1000_0000;
const SENDERS: u8 = 0b0000_1111;

/// The node under test: the defaults, as `peerd agent` would run them. Add the secret here.
fn config() -> Config {
    Config::new("self", Ipv4Addr::LOCALHOST)
}

/// What the datagram becomes on the wire: as it is, until there is a secret to seal it with.
fn wire(datagram: &[u8], _seal: bool) -> &[u8] {
    datagram
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
            from: SocketAddr::from(([10, 0, 0, host], 49001)),
            seal: sender & SEAL != 0,
            datagram,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let ttl_ms = u64::try_from(config.ttl.as_millis()).expect("the default ttl fits");
    let mut now = Instant::now();
    let mut node = Node::new(config, OWN_INSTANCE, 7, now);
    let mut next_sequence = 0;
    poll(&mut node, now, &mut next_sequence);
    for record in records(data) {
        now += record.step;
        let datagram = wire(record.datagram, record.seal);
        if let Some(event) = node.handle_datagram(datagram, record.from, now) {
            check_event(&node, &event, datagram, record.from, now);
        }
        for expired in node.handle_timeout(now) {
            let PeerEvent::Expired { peer } = &expired else {
                panic!("a sweep only expires: {expired:?}");
            };
            assert!(peer.deadline <= now, "expired before its deadline");
            assert!(!is_listed(&node, &peer.hostname, now), "expired yet listed");
        }
        check_listing(&node, now, ttl_ms);
        poll(&mut node, now, &mut next_sequence);
        assert!(
            node.next_wakeup() > now,
            "after a sweep and a poll nothing is due: the agent would spin"
        );
    }
});

/// Sends what is due, as the agent does; checks it is this node's next beacon.
fn poll(node: &mut Node, now: Instant, next_sequence: &mut u64) {
    let Some(bytes) = node.poll_beacon(now) else {
        return;
    };
    let beacon = Beacon::decode(&bytes).expect("the node sends valid beacons");
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
    node.beacon_sent();
}

/// An event comes only from a valid beacon of another instance, and the listing shows it.
fn check_event(node: &Node, event: &PeerEvent, datagram: &[u8], from: SocketAddr, now: Instant) {
    let beacon = Beacon::decode(datagram).expect("an event comes from a valid beacon");
    assert_ne!(
        beacon.instance, OWN_INSTANCE,
        "our own beacons change nothing"
    );
    let peer = event.peer();
    assert_eq!(peer.hostname, beacon.hostname);
    let listed = is_listed(node, &peer.hostname, now);
    match event {
        PeerEvent::Left { .. } => assert!(!listed, "left yet listed"),
        PeerEvent::Expired { .. } => panic!("a datagram never expires anyone: {event:?}"),
        PeerEvent::Joined { .. } | PeerEvent::Updated { .. } | PeerEvent::Restarted { .. } => {
            assert!(listed, "{event:?} but not listed");
            assert_eq!((peer.instance, peer.address), (beacon.instance, from));
            assert_eq!(peer.deadline, now + node.config().ttl);
        }
        PeerEvent::Conflict { .. } => assert!(listed, "conflict over a peer not listed"),
    }
}

/// After a sweep: every listed hostname was heard within a ttl (from the listed instance, or
/// from a rival in conflict with it: either keeps the hostname alive), once, and the count
/// agrees.
fn check_listing(node: &Node, now: Instant, ttl_ms: u64) {
    let peers = listing(node, now);
    for peer in &peers {
        let heard = |ago: u64| ago < ttl_ms;
        assert!(
            heard(peer.last_seen_ms_ago)
                || peer
                    .conflict
                    .as_ref()
                    .is_some_and(|c| heard(c.last_seen_ms_ago)),
            "{} listed {} ms after its last beacon",
            peer.hostname,
            peer.last_seen_ms_ago
        );
    }
    assert!(
        peers.windows(2).all(|w| w[0].hostname < w[1].hostname),
        "each hostname listed once, sorted"
    );
    let status = node.status(now, EventCounts::default(), HookCounts::default());
    assert_eq!(
        status.peers,
        peers.len(),
        "the count is the listing's length"
    );
}

fn listing(node: &Node, now: Instant) -> Vec<PeerInfo> {
    node.peers(
        now,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    )
}

fn is_listed(node: &Node, hostname: &str, now: Instant) -> bool {
    listing(node, now).iter().any(|p| p.hostname == hostname)
}
