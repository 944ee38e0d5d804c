//! The API's vocabulary for peers and their changes: what `/v1/peers`, `/v1/events`, the
//! hooks and the CLI read. The server encodes these types and the CLI decodes the same ones, so
//! the two cannot drift.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use crate::engine::{EventCounts, EventKind, shown};
use crate::wire::beacon::format_instance;
use crate::{Event, Peer, Tags};

/// One live peer, as `GET /v1/peers` and `peerd peers --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub hostname: String,
    /// IP address its beacons come from (see [`shown`]); when they come over several paths, the
    /// one they came by first and still come by.
    pub address: String,
    /// Every address its beacons reached this agent from within its ttl, the one in `address`
    /// first (an IPv6 address beside an IPv4 one, a second link). Empty from an agent older
    /// than the list.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Instance id as 16 hex digits (a string: JSON numbers lose precision past 2^53).
    pub instance: String,
    /// Sequence number of its latest beacon.
    pub sequence: u64,
    /// RFC 3339, UTC: when this instance was first heard.
    pub first_seen: String,
    /// RFC 3339, UTC: when its latest beacon was heard.
    pub last_seen: String,
    pub last_seen_ms_ago: u64,
    /// Until it is dropped, unless another beacon arrives first.
    pub expires_in_ms: u64,
    /// Since `first_seen`: how long this agent has listed this instance (`KNOWN FOR` in
    /// `peerd peers`), not how long the peer has been up, which no beacon says. The name is
    /// older than that understanding, and kept for the clients that read it.
    pub up_for_ms: u64,
    /// How long it stays listed after each beacon (its own ttl, as its beacons say).
    #[serde(default)]
    pub ttl_ms: u64,
    /// Its beacons are signed with a key this agent holds.
    #[serde(default)]
    pub authenticated: bool,
    /// The tags its latest beacon carried (`--tag KEY=VALUE` on that node).
    #[serde(default)]
    pub tags: Tags,
    /// Another live instance announcing the same hostname, while there is one.
    #[serde(default)]
    pub conflict: Option<ConflictInfo>,
    /// How its beacons reached this agent: `group`, `unicast` or `both`. Empty from an agent
    /// older than unicast targets.
    #[serde(default)]
    pub heard_via: String,
}

/// The other instance of a hostname that two live instances announce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictInfo {
    pub address: String,
    pub instance: String,
    pub last_seen_ms_ago: u64,
}

impl PeerInfo {
    /// Describes `peer` as of `now`, the instant at which the wall clock read `wall_now`.
    pub fn new(peer: &Peer, now: Instant, wall_now: SystemTime) -> Self {
        let ago = |at: Instant| now.saturating_duration_since(at);
        let first_seen = wall(peer.first_seen, now, wall_now);
        // A joined peer was first and last seen at once: formatting a time is most of what
        // describing an event costs, so the same instant is formatted once.
        let last_seen = if peer.last_seen == peer.first_seen {
            first_seen.clone()
        } else {
            wall(peer.last_seen, now, wall_now)
        };
        let addresses: Vec<String> = peer.addresses.iter().copied().map(shown).collect();
        PeerInfo {
            hostname: peer.hostname.clone(),
            address: shown(peer.address),
            addresses,
            instance: format_instance(peer.instance),
            sequence: peer.sequence,
            first_seen,
            last_seen,
            last_seen_ms_ago: millis(ago(peer.last_seen)),
            expires_in_ms: millis(peer.expires_at.saturating_duration_since(now)),
            up_for_ms: millis(ago(peer.first_seen)),
            ttl_ms: millis(peer.ttl),
            authenticated: peer.authenticated,
            heard_via: peer.heard_via.as_str().to_owned(),
            tags: peer.tags.clone(),
            conflict: peer.conflict.as_ref().map(|rival| ConflictInfo {
                address: shown(rival.address),
                instance: format_instance(rival.instance),
                last_seen_ms_ago: millis(ago(rival.last_seen)),
            }),
        }
    }
}

/// The wall-clock time of `at`, RFC 3339 in UTC, given that the wall clock read `wall_now` at
/// `now`.
fn wall(at: Instant, now: Instant, wall_now: SystemTime) -> String {
    humantime::format_rfc3339_millis(wall_at(at, now, wall_now)).to_string()
}

/// What the wall clock read at `at`, given that it read `wall_now` at `now`.
fn wall_at(at: Instant, now: Instant, wall_now: SystemTime) -> SystemTime {
    wall_now
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(wall_now)
}

/// One change in membership: the one JSON shape of the event stream and `peerd watch --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerChange {
    /// Counts up from 1 each time the agent starts.
    pub id: u64,
    pub event: EventKind,
    /// RFC 3339, UTC.
    pub time: String,
    /// The peer after the change; for `left`, `expired` and `evicted`, as it was last listed.
    pub peer: PeerInfo,
    /// `moved`: the address its beacons came from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_address: Option<String>,
    /// `restarted`: the instance it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_instance: Option<String>,
    /// `updated`, and `restarted` when the new instance announces other tags: its tags before
    /// (`peer.tags` has the new ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_tags: Option<Tags>,
}

impl PeerChange {
    /// Describes `event` as it stood when it happened, whenever it is described (a hook
    /// that runs late, a client that resumes): `now` and `wall_now` only place its instant
    /// on the wall clock.
    pub fn new(event: &Event, now: Instant, wall_now: SystemTime) -> Self {
        let (at, wall_at) = (event.at, wall_at(event.at, now, wall_now));
        let peer = PeerInfo::new(&event.peer, at, wall_at);
        // A beacon's event happens when the peer was last seen: that time is formatted already.
        let time = if event.peer.last_seen == at {
            peer.last_seen.clone()
        } else {
            humantime::format_rfc3339_millis(wall_at).to_string()
        };
        PeerChange {
            id: event.id,
            event: event.kind,
            time,
            peer,
            old_address: event.old_address.map(shown),
            old_instance: event.old_instance.map(format_instance),
            old_tags: event.old_tags.clone(),
        }
    }
}

/// Every live peer at one moment: what the event stream sends first (`snapshot`), and again to
/// a subscriber that fell too far behind (`resync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The id of the latest event it includes; the stream goes on after it.
    pub id: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub peers: Vec<PeerInfo>,
}

impl Snapshot {
    /// Describes `snapshot` as it stood when it was taken (`now` and `wall_now` place that
    /// instant on the wall clock).
    pub fn new(snapshot: &crate::Snapshot, now: Instant, wall_now: SystemTime) -> Self {
        let (at, wall_at) = (snapshot.at, wall_at(snapshot.at, now, wall_now));
        Snapshot {
            id: snapshot.id,
            time: humantime::format_rfc3339_millis(wall_at).to_string(),
            peers: snapshot
                .peers
                .iter()
                .map(|peer| PeerInfo::new(peer, at, wall_at))
                .collect(),
        }
    }
}

/// What the `--on-event` programs did since the agent started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookCounts {
    /// Programs started (one per program per event).
    pub runs: u64,
    /// Runs that could not start or exited non-zero.
    pub failures: u64,
    /// Runs killed at the timeout.
    pub timeouts: u64,
    /// Events that never reached the hooks: they fell too far behind.
    pub dropped: u64,
}

/// What the hooks have done since the agent started; read by `/v1/status`.
#[derive(Debug, Default)]
pub struct HookCounters {
    pub runs: AtomicU64,
    pub failures: AtomicU64,
    pub timeouts: AtomicU64,
    pub dropped: AtomicU64,
}

impl HookCounters {
    pub fn snapshot(&self) -> HookCounts {
        HookCounts {
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Milliseconds, as every duration in the API's JSON is given; saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

    use super::*;
    use crate::registry::{self, OtherAddress};
    use crate::wire::beacon::Beacon;

    fn v6(ip: &str, scope_id: u32) -> SocketAddr {
        let ip: Ipv6Addr = ip.parse().expect("an IPv6 address");
        SocketAddr::V6(SocketAddrV6::new(ip, 24901, 0, scope_id))
    }

    #[test]
    fn an_address_is_shown_without_its_port_and_with_its_scope() {
        assert_eq!(shown(SocketAddr::from(([10, 0, 0, 2], 24901))), "10.0.0.2");
        assert_eq!(shown(v6("2001:db8::1", 0)), "2001:db8::1");
        // `lo` is index 1 in every network namespace.
        assert_eq!(shown(v6("fe80::1", 1)), "fe80::1%lo");
        // No interface by that index: the number, as the kernel knows the scope.
        assert_eq!(shown(v6("fe80::1", 999_999)), "fe80::1%999999");
    }

    #[test]
    fn a_peer_lists_its_addresses_heard_within_its_ttl_the_one_in_address_first() {
        let t0 = Instant::now();
        let beacon = Beacon {
            hostname: "node2".into(),
            ..Beacon::default()
        };
        let ttl = Duration::from_secs(35);
        let mut peer =
            registry::Peer::new(&beacon, SocketAddr::from(([10, 0, 0, 2], 24901)), t0, ttl);
        let plain = PeerInfo::new(&Peer::new(&peer, t0), t0, SystemTime::now());
        assert_eq!(
            (plain.address.as_str(), &plain.addresses[..]),
            ("10.0.0.2", &["10.0.0.2".to_owned()][..])
        );
        peer.other_addresses = vec![
            OtherAddress {
                address: v6("fe80::2", 1),
                last_heard: t0 + Duration::from_secs(20),
            },
            OtherAddress {
                address: v6("fd00::2", 0),
                last_heard: t0,
            },
        ];
        let now = t0 + ttl; // the second one's ttl has run out
        let info = PeerInfo::new(&Peer::new(&peer, now), now, SystemTime::now());
        assert_eq!(info.address, "10.0.0.2");
        assert_eq!(info.addresses, ["10.0.0.2", "fe80::2%lo"]);
        let json = serde_json::to_value(&info).expect("encodes");
        assert_eq!(json["addresses"][1], "fe80::2%lo");
        // From an agent older than the list: none.
        let mut older = json;
        older
            .as_object_mut()
            .expect("an object")
            .remove("addresses");
        let decoded: PeerInfo = serde_json::from_value(older).expect("decodes");
        assert!(decoded.addresses.is_empty());
    }

    #[test]
    fn an_event_is_described_as_it_stood_however_late_it_is_read() {
        let t0 = Instant::now();
        let beacon = Beacon {
            hostname: "node2".into(),
            ..Beacon::default()
        };
        let ttl = Duration::from_secs(35);
        let peer = registry::Peer::new(&beacon, SocketAddr::from(([10, 0, 0, 2], 24901)), t0, ttl);
        let event = Event::new(7, &registry::PeerEvent::Joined { peer }, t0);
        let wall_then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let now = t0 + Duration::from_secs(30);
        let late = PeerChange::new(&event, now, wall_then + Duration::from_secs(30));
        assert_eq!(late, PeerChange::new(&event, t0, wall_then), "the same JSON, read late");
        assert_eq!((late.peer.expires_in_ms, late.peer.last_seen_ms_ago), (35_000, 0));
        assert_eq!(late.time, "2027-01-15T08:00:00.000Z");
    }
}
