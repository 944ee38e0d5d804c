//! What the receiver answers between datagrams: the API's queries for the peers, the figures
//! of the status, and subscriptions to the event stream that fit the snapshot exactly.

use std::time::Instant;

use super::ReceiverTask;
use crate::api::query::{Figures, Query, Start, Subscription};
use crate::api::{PeerInfo, Snapshot};
use crate::clock::{now, wall_now};
use crate::net::keeper::{Sending, SocketStats};

impl ReceiverTask {
    /// Answers one query of the API, the deadlines swept first.
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
    fn peers(&self, now: Instant) -> Vec<PeerInfo> {
        let wall_now = wall_now();
        let mut peers: Vec<PeerInfo> = self
            .core
            .peers()
            .map(|peer| PeerInfo::new(&peer, now, wall_now))
            .collect();
        peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        peers
    }

    fn figures(&self, now: Instant) -> Figures {
        let open = self.socket.as_ref();
        Figures {
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
            hooks: self.hooks.snapshot(),
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
    fn subscribe(&self, after: Option<(u64, u64)>, now: Instant) -> Subscription {
        let instance = self.core.instance();
        let missed = after
            .filter(|(of, _)| *of == instance)
            .and_then(|(_, id)| self.funnel.since(id));
        let start = match missed {
            Some(missed) => Start::Missed(missed),
            None => Start::Snapshot(Snapshot {
                id: self.funnel.last_id(),
                time: humantime::format_rfc3339_millis(wall_now()).to_string(),
                peers: self.peers(now),
            }),
        };
        Subscription {
            instance,
            start,
            events: self.funnel.subscribe(),
        }
    }
}
