//! A listed hostname announced by another instance: a restart, a conflict between two live
//! instances, or a replayed beacon of one that is gone. Part of the registry's state machine,
//! kept apart because it is the one subtle case.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::peer::{Peer, PeerEvent, Refusal, Rival};
use crate::wire::beacon::Beacon;

/// A beacon for listed `peer`'s hostname from another instance: its rival's, or a new one's.
pub(crate) fn other_instance(
    peer: &mut Peer,
    beacon: &Beacon,
    from: SocketAddr,
    now: Instant,
    ttl: Duration,
) -> Result<Option<PeerEvent>, Refusal> {
    let deadline = now + ttl;
    match &mut peer.rival {
        Some(rival) if rival.instance == beacon.instance => {
            // Reordered or replayed: a replaced instance never comes back this way.
            if beacon.sequence <= rival.sequence {
                return Err(Refusal::Replay);
            }
            if beacon.goodbye {
                peer.rival = None;
                return Ok(None);
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
                // The hostname keeps its standing: the rival was heard twice to get here.
                let old = std::mem::replace(
                    peer,
                    Peer {
                        established: true,
                        ..Peer::new(beacon, from, now, ttl)
                    },
                );
                return Ok(Some(PeerEvent::Restarted {
                    peer: peer.clone(),
                    old_instance,
                    old_tags: (old.tags != peer.tags).then_some(old.tags),
                }));
            }
            if rival.confirmed {
                return Ok(None);
            }
            rival.confirmed = true;
            Ok(Some(PeerEvent::Conflict { peer: peer.clone() }))
        }
        _ if beacon.goodbye => Ok(None),
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
                    // A restart keeps the hostname's standing: it is the same slot.
                    established: peer.established,
                    ..Peer::new(beacon, from, now, ttl)
                },
            );
            Ok(Some(PeerEvent::Restarted {
                peer: peer.clone(),
                old_instance,
                old_tags: (old.tags != peer.tags).then_some(old.tags),
            }))
        }
    }
}
