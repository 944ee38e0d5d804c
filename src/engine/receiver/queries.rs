//! What the receiver answers between datagrams: the handles' queries for the peers, the
//! status, and subscriptions to the events that fit the snapshot exactly.

use std::time::Instant;

use super::ReceiverTask;
use crate::clock::now;
use crate::engine::query::{Query, Start, Subscription};
use crate::engine::{Peer, Snapshot, Status};
use crate::net::keeper::{Sending, SocketStats};

impl ReceiverTask {
    /// Answers one query, the deadlines swept first.
    pub(super) fn answer(&mut self, query: Query) {
        let now = now();
        self.sweep(now);
        // A reply channel closed by a client that hung up is no concern of ours.
        match query {
            Query::Peers(reply) => {
                let _ = reply.send(self.peers(now));
            }
            Query::Status(reply) => {
                let _ = reply.send(self.figures(now));
            }
            Query::Subscribe { after, reply } => {
                let _ = reply.send(self.subscribe(after, now));
            }
        }
    }

    /// The live peers as of `now`, sorted by hostname.
    fn peers(&self, now: Instant) -> Vec<Peer> {
        let mut peers: Vec<Peer> = self.core.peers().map(|peer| Peer::new(&peer, now)).collect();
        peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        peers
    }

    fn figures(&self, now: Instant) -> Status {
        let open = self.socket.as_ref();
        Status {
            at: now,
            uptime: now.saturating_duration_since(self.started),
            node: self.core.stats(now),
            socket: SocketStats {
                receive_queue_drops: open.and_then(|open| {
                    let reported = open.drops.iter().flatten();
                    open.drops
                        .iter()
                        .any(Option::is_some)
                        .then(|| reported.sum())
                }),
                receive_buffer_bytes: open.and_then(|open| open.receive_buffer),
                reopens: self.keeper.reopens(),
            },
            sending: self.sending(now),
            events: self.funnel.counts(),
            targets: self.core.targets().list(),
            names: self.core.targets().names().to_vec(),
            interfaces: self.interfaces.clone(),
            unicast_port: open
                .and_then(|open| open.sockets.unicast4.local_addr().ok())
                .map(|address| address.port()),
        }
    }

    /// Whether the beacons go out, as the keeper says; but an agent off the group with no
    /// target yet has nobody to send to, which is no failure: in Swarm a task is in DNS only
    /// once it is healthy, so calling it unhealthy then would keep every task out for good.
    fn sending(&self, now: Instant) -> Sending {
        let mut sending = self.keeper.sending(now);
        if !self.config.multicast && self.core.targets().is_empty() {
            sending.not_sending = None;
        }
        sending
    }

    /// Answered between two events, so the start and the receiver fit together exactly: no
    /// event is both in the start and received, and none falls between them.
    fn subscribe(&self, after: Option<u64>, now: Instant) -> Subscription {
        let start = match after.and_then(|id| self.funnel.since(id)) {
            Some(missed) => Start::Missed(missed),
            None => Start::Snapshot(Snapshot {
                id: self.funnel.last_id(),
                at: now,
                peers: self.peers(now),
            }),
        };
        Subscription {
            start,
            events: self.funnel.subscribe(),
        }
    }
}
