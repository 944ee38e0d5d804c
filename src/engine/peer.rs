//! A live peer as the library hands it out: a plain copy of what the registry knows, taken at
//! one moment, with the registry's bookkeeping (rival sequence numbers, replay timestamps) left
//! out. How the HTTP API and the log show an address lives here too, beside the peer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::registry;
use crate::wire::tags::Tags;

/// One live peer: a node whose beacons this instance heard within their ttl.
///
/// A copy, taken when it was handed out: it does not change as more beacons arrive. The
/// instants are on tokio's clock (the one [`tokio::time::Instant::now`] reads).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Peer {
    /// The hostname it announces: the registry's key, one entry per hostname.
    pub hostname: String,
    /// Where its beacons come from (the source address and port). When they reach this node
    /// over several paths (IPv4 and IPv6, two links), the one they came by first and still
    /// come by. An IPv6 link-local address carries its interface as the scope id.
    pub address: SocketAddr,
    /// Every address its beacons came from within its ttl, `address` first.
    pub addresses: Vec<SocketAddr>,
    /// The id of the process announcing the hostname, new at each start of that process.
    pub instance: u64,
    /// The sequence number of its latest beacon.
    pub sequence: u64,
    /// The `key=value` tags its latest beacon carried, sorted by key.
    pub tags: Tags,
    /// When this instance was first heard.
    pub first_seen: Instant,
    /// When its latest beacon was heard.
    pub last_seen: Instant,
    /// When it is dropped unless another beacon comes first. For a peer that left, expired or
    /// was evicted, when that happened.
    pub expires_at: Instant,
    /// How long it stays listed after each beacon: what its beacons ask for.
    pub ttl: Duration,
    /// Its beacons are signed with a key this instance holds ([`Builder::secret`]).
    ///
    /// [`Builder::secret`]: crate::Builder::secret
    pub authenticated: bool,
    /// How its beacons reach this node.
    pub heard_via: HeardVia,
    /// Another live instance announcing the same hostname, while there is one.
    pub conflict: Option<Conflict>,
}

/// How a peer's beacons reach this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeardVia {
    /// On the multicast group only.
    Group,
    /// Sent to this node by unicast only ([`Builder::peer`](crate::Builder::peer)).
    Unicast,
    /// Both ways.
    Both,
}

impl HeardVia {
    /// `group`, `unicast` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeardVia::Group => "group",
            HeardVia::Unicast => "unicast",
            HeardVia::Both => "both",
        }
    }
}

/// Another live instance announcing a peer's hostname: two processes claim one name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conflict {
    /// Where the other instance's beacons come from.
    pub address: SocketAddr,
    /// The other instance's id.
    pub instance: u64,
    /// When the other instance was last heard.
    pub last_seen: Instant,
}

impl Peer {
    /// `peer` as the registry holds it at `now`.
    pub(crate) fn new(peer: &registry::Peer, now: Instant) -> Peer {
        let addresses: Vec<SocketAddr> = peer.addresses(now).collect();
        Peer {
            hostname: peer.hostname.clone(),
            address: peer.address,
            addresses,
            instance: peer.instance,
            sequence: peer.sequence,
            tags: peer.tags.clone(),
            first_seen: peer.first_seen,
            last_seen: peer.last_seen,
            expires_at: peer.deadline,
            ttl: peer.ttl,
            authenticated: peer.authenticated,
            heard_via: match (peer.paths.group, peer.paths.unicast) {
                (true, true) => HeardVia::Both,
                (false, true) => HeardVia::Unicast,
                _ => HeardVia::Group,
            },
            conflict: peer.conflict(now).map(|rival| Conflict {
                address: rival.address,
                instance: rival.instance,
                last_seen: rival.last_seen,
            }),
        }
    }
}

/// An address as the API and the log show it: the IP without the port, and for an IPv6 address
/// with a scope (link-local) the interface after a `%`, as `ping` takes it: `fe80::1%eth0`, or
/// the interface's index when this host has no interface by it (`fe80::1%7`).
pub fn shown(address: SocketAddr) -> String {
    match address {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            let index = v6.scope_id();
            // An empty name is none too: nix 0.31 takes the NULL that libc returns for an
            // unknown index for success (its sentinel for pointers is -1), with nothing written.
            let name = nix::net::if_::if_indextoname(index)
                .ok()
                .and_then(|name| name.into_string().ok())
                .filter(|name| !name.is_empty());
            match name {
                Some(name) => format!("{}%{name}", v6.ip()),
                None => format!("{}%{index}", v6.ip()),
            }
        }
        other => other.ip().to_string(),
    }
}
