//! The registry's vocabulary: a listed peer, its rival instance, what is remembered of a gone
//! one, the events the registry emits and the reasons it refuses a beacon. Plain data.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::REPLAY_WINDOW;
use crate::wire::beacon::Beacon;
use crate::wire::tags::Tags;

/// One live peer as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub hostname: String,
    /// Where it is reached, and what events report: where its beacons come from, or, when they
    /// reach this node over several paths, the one they came by first and still come by.
    pub address: SocketAddr,
    /// The other addresses the same beacons reached this node from (its IPv6 address beside
    /// its IPv4 one, a second link), most recently heard first, at most
    /// [`MAX_OTHER_ADDRESSES`](super::addresses::MAX_OTHER_ADDRESSES); each heard within a ttl
    /// as of the latest beacon or copy taken in ([`addresses`](Self::addresses) also leaves out
    /// those past it at a later `now`). Empty, so without an allocation, for a peer heard from
    /// one address: the common case pays nothing for it.
    pub other_addresses: Vec<OtherAddress>,
    /// The instance id of the process now announcing this hostname.
    pub instance: u64,
    /// Sequence number of the latest beacon accepted from that instance.
    pub sequence: u64,
    /// When this instance was first heard (reset by a restart).
    pub first_seen: Instant,
    /// When its latest beacon was heard.
    pub last_seen: Instant,
    /// `last_seen + ttl`: listed while `now < deadline`. The wheel only indexes it.
    pub deadline: Instant,
    /// How long it stays listed after a beacon: what its beacons ask for, within the bounds,
    /// or the registry's own ttl.
    pub ttl: Duration,
    /// Its beacons are signed and verified: from now on only signed beacons change it.
    pub authenticated: bool,
    /// The timestamp of the first signed beacon accepted from this instance: a beacon of
    /// another instance sent before it is a replay, not a restart.
    pub first_timestamp: Option<u64>,
    /// The timestamp of its latest signed beacon.
    pub last_timestamp: Option<u64>,
    /// The tags its latest beacon carried.
    pub tags: Tags,
    /// Heard again after its first beacon (or its hostname was, before a restart): only a peer
    /// heard once may make room for a newcomer while the most peers are listed.
    pub established: bool,
    /// Another instance announcing the same hostname: the one this instance replaced (until it
    /// proves alive, a restart), or a live rival (a conflict).
    pub rival: Option<Rival>,
    /// How this instance's beacons reached this node so far.
    pub paths: Paths,
}

/// Another address a peer's beacons reached this node from, and when they last did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherAddress {
    pub address: SocketAddr,
    pub last_heard: Instant,
}

/// How one datagram reached this node: to the multicast group, or to this node's own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Group,
    Unicast,
}

/// How a peer's beacons reached this node: by the group, by unicast, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paths {
    pub group: bool,
    pub unicast: bool,
}

impl Paths {
    /// One path.
    pub fn of(via: Via) -> Paths {
        Paths::default().with(via)
    }

    /// These paths and `via`.
    pub fn with(self, via: Via) -> Paths {
        match via {
            Via::Group => Paths {
                group: true,
                ..self
            },
            Via::Unicast => Paths {
                unicast: true,
                ..self
            },
        }
    }
}

impl Peer {
    /// A peer first heard at `now` from `from`, listed for `ttl` after each beacon.
    pub fn new(beacon: &Beacon, from: SocketAddr, now: Instant, ttl: Duration) -> Peer {
        Peer {
            hostname: beacon.hostname.clone(),
            address: from,
            other_addresses: Vec::new(),
            instance: beacon.instance,
            sequence: beacon.sequence,
            first_seen: now,
            last_seen: now,
            deadline: now + ttl,
            ttl,
            authenticated: beacon.auth.is_some(),
            first_timestamp: beacon.timestamp,
            last_timestamp: beacon.timestamp,
            tags: beacon.tags.clone(),
            established: false,
            rival: None,
            paths: Paths::default(),
        }
    }

    /// Every address its beacons reached this node from within its ttl as of `now`: `address`
    /// first, then the others, the most recently heard first.
    pub fn addresses(&self, now: Instant) -> impl Iterator<Item = SocketAddr> + '_ {
        let others = self.other_addresses.iter();
        let live = others.filter(move |other| other.last_heard + self.ttl > now);
        std::iter::once(self.address).chain(live.map(|other| other.address))
    }

    /// The rival, while both instances are alive and announcing this hostname at `now`.
    pub fn conflict(&self, now: Instant) -> Option<&Rival> {
        self.rival
            .as_ref()
            .filter(|rival| rival.confirmed && rival.deadline > now)
    }
}

/// Another instance announcing a listed peer's hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rival {
    pub instance: u64,
    pub address: SocketAddr,
    /// Its latest sequence number: an older beacon of it (reordered, replayed) changes nothing.
    pub sequence: u64,
    pub last_seen: Instant,
    /// Its `last_seen + ttl`.
    pub deadline: Instant,
    /// It was heard again after it was replaced: two live instances, not a restart.
    pub confirmed: bool,
}

/// What changed in the registry. Each input emits at most the events listed for it; each
/// carries the peer as it stands after the change (for `Left` and `Expired`, as last listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A hostname not listed was heard: new, or back after it expired (a healed partition).
    Joined { peer: Peer },
    /// A listed peer's beacons now come from another address.
    Moved { peer: Peer, old_address: SocketAddr },
    /// A listed peer's beacons now carry other tags (if its address changed in the same
    /// beacon, the peer shows the new one).
    Updated { peer: Peer, old_tags: Tags },
    /// A hostname is announced by a new process (new instance id): either while still listed,
    /// or within one ttl after its goodbye or expiry.
    Restarted {
        peer: Peer,
        old_instance: u64,
        /// The tags the old instance announced, when the new one announces others.
        old_tags: Option<Tags>,
    },
    /// A listed peer said goodbye; it is dropped at once.
    Left { peer: Peer },
    /// A listed peer went silent for a whole ttl.
    Expired { peer: Peer },
    /// A peer heard only once was dropped to make room for a newcomer while the most peers
    /// were listed: a flood of made-up hostnames cannot keep real ones out.
    Evicted { peer: Peer },
    /// Two live instances announce the same hostname: the one replaced by a new instance was
    /// heard again. Once per conflict; it clears when one of them goes silent for a ttl.
    Conflict { peer: Peer },
}

impl PeerEvent {
    /// A join or a restart: a node that has not heard from us yet, and should at once.
    pub fn is_newcomer(&self) -> bool {
        matches!(self, PeerEvent::Joined { .. } | PeerEvent::Restarted { .. })
    }

    /// The peer the event is about.
    pub fn peer(&self) -> &Peer {
        match self {
            PeerEvent::Joined { peer }
            | PeerEvent::Moved { peer, .. }
            | PeerEvent::Updated { peer, .. }
            | PeerEvent::Restarted { peer, .. }
            | PeerEvent::Left { peer }
            | PeerEvent::Expired { peer }
            | PeerEvent::Evicted { peer }
            | PeerEvent::Conflict { peer } => peer,
        }
    }
}

/// What is remembered of a hostname that is gone: for one ttl, so that its return with a new
/// instance reads as a restart rather than a leave and an unrelated join, and for a signed peer
/// at least the replay window, so that a replayed beacon cannot bring it back.
#[derive(Debug)]
pub(crate) struct Gone {
    pub instance: u64,
    /// Latest sequence heard from that instance (its goodbye's, if it said one).
    pub sequence: u64,
    /// Its beacons were signed: unsigned ones cannot bring the hostname back.
    pub authenticated: bool,
    /// The latest signed timestamp heard for this hostname: nothing sent before it is news.
    pub timestamp: Option<u64>,
    /// The tags it announced last: a restart that announces others says what they were.
    pub tags: Tags,
    /// A new instance heard before this is a restart; after it, a join.
    pub restart_until: Instant,
    pub forget_at: Instant,
}

impl Gone {
    /// What is remembered of `peer`, gone at `now` (expired, or see [`Gone::after_goodbye`]);
    /// `ttl` is the registry's own.
    pub fn of(peer: &Peer, now: Instant, ttl: Duration) -> Gone {
        // A signed peer at least for the replay window: its captured beacons are too old to be
        // accepted after that anyway.
        let memory = if peer.authenticated {
            ttl.max(REPLAY_WINDOW)
        } else {
            ttl
        };
        Gone {
            instance: peer.instance,
            sequence: peer.sequence,
            authenticated: peer.authenticated,
            timestamp: peer.last_timestamp,
            tags: peer.tags.clone(),
            restart_until: now + ttl,
            forget_at: now + memory,
        }
    }

    /// What is remembered of `peer` after its `goodbye`, heard at `now`: nothing sent before
    /// the goodbye is news.
    pub fn after_goodbye(peer: &Peer, goodbye: &Beacon, now: Instant, ttl: Duration) -> Gone {
        Gone {
            sequence: goodbye.sequence,
            timestamp: goodbye.timestamp.or(peer.last_timestamp),
            ..Gone::of(peer, now, ttl)
        }
    }
}

/// Why the registry refused a beacon. A refused beacon changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Older than what was already heard: a reordered or a replayed beacon.
    Replay,
    /// The beacon last heard, once more: it came both to the group and by unicast. Counted
    /// apart, as nothing was wrong with it.
    Duplicate,
    /// From a hostname not listed while [`Registry::limit_peers`](super::Registry::limit_peers)
    /// are.
    Capacity,
    /// Unsigned, about a hostname whose beacons are signed.
    Unsigned,
}
