//! A listed hostname announced by another instance: a restart, a conflict between two live
//! instances, or a replayed beacon of one that is gone. Part of the registry's state machine,
//! kept apart because it is the one subtle case.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::registry::{Peer, PeerEvent, Refusals, new_peer};
use crate::wire::beacon::Beacon;

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

/// A beacon for listed `peer`'s hostname from another instance: its rival's, or a new one's.
pub(crate) fn other_instance(
    peer: &mut Peer,
    beacon: &Beacon,
    from: SocketAddr,
    now: Instant,
    ttl: Duration,
    refusals: &mut Refusals,
) -> Option<PeerEvent> {
    let deadline = now + ttl;
    match &mut peer.rival {
        Some(rival) if rival.instance == beacon.instance => {
            // Reordered or replayed: a replaced instance never comes back this way.
            if beacon.sequence <= rival.sequence {
                refusals.replay += 1;
                return None;
            }
            if beacon.goodbye {
                peer.rival = None;
                return None;
            }
            rival.sequence = beacon.sequence;
            rival.address = from;
            rival.last_seen = now;
            rival.deadline = deadline;
            // The hostname is alive as long as either instance is.
            peer.deadline = peer.deadline.max(deadline);
            if peer.last_seen + peer.ttl <= now {
                // The listed instance went silent a ttl ago: the rival is the one left.
                let old_instance = peer.instance;
                let old = std::mem::replace(peer, new_peer(beacon, from, now, ttl));
                return Some(PeerEvent::Restarted {
                    peer: peer.clone(),
                    old_instance,
                    old_tags: (old.tags != peer.tags).then_some(old.tags),
                });
            }
            if rival.confirmed {
                return None;
            }
            rival.confirmed = true;
            Some(PeerEvent::Conflict { peer: peer.clone() })
        }
        _ if beacon.goodbye => None,
        _ => {
            // A new instance: a restart, unless the instance it replaces is heard again.
            let replaced = Rival {
                instance: peer.instance,
                address: peer.address,
                sequence: peer.sequence,
                last_seen: peer.last_seen,
                // Its own, not the entry's: a rival's beacons may have renewed that.
                deadline: peer.last_seen + peer.ttl,
                confirmed: false,
            };
            let old_instance = peer.instance;
            let old = std::mem::replace(
                peer,
                Peer {
                    rival: Some(replaced),
                    ..new_peer(beacon, from, now, ttl)
                },
            );
            Some(PeerEvent::Restarted {
                peer: peer.clone(),
                old_instance,
                old_tags: (old.tags != peer.tags).then_some(old.tags),
            })
        }
    }
}
