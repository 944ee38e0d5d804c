//! What happened to a peer, as every consumer of the funnel reads it: the library's
//! subscribers, the HTTP API's event stream, the hooks and the log.

use std::net::SocketAddr;
use std::time::Instant;

use super::peer::Peer;
use crate::registry::PeerEvent;
use crate::wire::tags::Tags;

/// One change in membership, numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Counts up from 1 in each [`Discovery`](crate::Discovery): no two events of one
    /// instance share an id, and none is skipped.
    pub id: u64,
    /// What happened.
    pub kind: EventKind,
    /// When it happened, on tokio's clock.
    pub at: Instant,
    /// The peer after the change; for `Left`, `Expired` and `Evicted`, as it was last listed.
    pub peer: Peer,
    /// `Moved`: the address its beacons came from before.
    pub old_address: Option<SocketAddr>,
    /// `Restarted`: the instance it replaced.
    pub old_instance: Option<u64>,
    /// `Updated`, and `Restarted` when the new instance announces other tags: its tags before
    /// (`peer.tags` has the new ones).
    pub old_tags: Option<Tags>,
}

/// What happened to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum EventKind {
    /// A hostname not listed was heard: new, or back after it expired.
    Joined,
    /// A listed peer's beacons come from another address.
    Moved,
    /// A hostname is announced by a new process (a new instance id).
    Restarted,
    /// A peer said goodbye: it shut down.
    Left,
    /// A peer went silent for a whole ttl.
    Expired,
    /// A peer heard only once was dropped to make room for a newcomer while the most peers
    /// were listed ([`Builder::max_peers`](crate::Builder::max_peers)).
    Evicted,
    /// Two live instances announce the peer's hostname (see [`Peer::conflict`]).
    Conflict,
    /// A listed peer's tags changed (see [`Event::old_tags`]).
    Updated,
}

impl EventKind {
    /// The kind's name, as the HTTP API and `peerd watch` give it: `joined`, `moved`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Joined => "joined",
            EventKind::Moved => "moved",
            EventKind::Restarted => "restarted",
            EventKind::Left => "left",
            EventKind::Expired => "expired",
            EventKind::Evicted => "evicted",
            EventKind::Conflict => "conflict",
            EventKind::Updated => "updated",
        }
    }

    /// Whether the peer is listed after an event of this kind: all but `Left`, `Expired` and
    /// `Evicted`. A list kept in sync inserts (or replaces) the peer when true, removes it when
    /// false.
    pub fn lists_the_peer(self) -> bool {
        !matches!(
            self,
            EventKind::Left | EventKind::Expired | EventKind::Evicted
        )
    }
}

/// Peer events since the instance started, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // each field counts the kind of its name
pub struct EventCounts {
    pub joined: u64,
    pub moved: u64,
    pub restarted: u64,
    pub left: u64,
    pub expired: u64,
    #[cfg_attr(feature = "serde", serde(default))]
    pub evicted: u64,
    pub conflict: u64,
    #[cfg_attr(feature = "serde", serde(default))]
    pub updated: u64,
}

impl EventCounts {
    /// Each count with the name of its kind.
    pub fn by_kind(&self) -> [(&'static str, u64); 8] {
        [
            (EventKind::Joined.as_str(), self.joined),
            (EventKind::Moved.as_str(), self.moved),
            (EventKind::Restarted.as_str(), self.restarted),
            (EventKind::Left.as_str(), self.left),
            (EventKind::Expired.as_str(), self.expired),
            (EventKind::Evicted.as_str(), self.evicted),
            (EventKind::Conflict.as_str(), self.conflict),
            (EventKind::Updated.as_str(), self.updated),
        ]
    }

    pub(crate) fn count(&mut self, kind: EventKind) {
        let counter = match kind {
            EventKind::Joined => &mut self.joined,
            EventKind::Moved => &mut self.moved,
            EventKind::Restarted => &mut self.restarted,
            EventKind::Left => &mut self.left,
            EventKind::Expired => &mut self.expired,
            EventKind::Evicted => &mut self.evicted,
            EventKind::Conflict => &mut self.conflict,
            EventKind::Updated => &mut self.updated,
        };
        *counter += 1;
    }
}

impl Event {
    /// The registry's `event`, numbered `id`, as of `now`.
    pub(crate) fn new(id: u64, event: &PeerEvent, now: Instant) -> Event {
        let old_tags = match event {
            PeerEvent::Updated { old_tags, .. } => Some(old_tags.clone()),
            PeerEvent::Restarted { old_tags, .. } => old_tags.clone(),
            _ => None,
        };
        let (kind, old_address, old_instance) = match event {
            PeerEvent::Joined { .. } => (EventKind::Joined, None, None),
            PeerEvent::Updated { .. } => (EventKind::Updated, None, None),
            PeerEvent::Moved { old_address, .. } => (EventKind::Moved, Some(*old_address), None),
            PeerEvent::Restarted { old_instance, .. } => {
                (EventKind::Restarted, None, Some(*old_instance))
            }
            PeerEvent::Left { .. } => (EventKind::Left, None, None),
            PeerEvent::Expired { .. } => (EventKind::Expired, None, None),
            PeerEvent::Evicted { .. } => (EventKind::Evicted, None, None),
            PeerEvent::Conflict { .. } => (EventKind::Conflict, None, None),
        };
        let mut peer = Peer::new(event.peer(), now);
        if !kind.lists_the_peer() {
            // Gone: it no longer expires.
            peer.expires_at = now;
        }
        Event {
            id,
            kind,
            at: now,
            peer,
            old_address,
            old_instance,
            old_tags,
        }
    }
}
