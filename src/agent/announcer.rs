//! The announcer task: drives the node's [`Announcer`] over the socket the receiver keeps open.
//! It owns the schedule alone: first beacon, jittered interval, early answers to the newcomers
//! the receiver cues, and the goodbye on cancellation.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::link::{Announced, AnnouncerSide, Cue, Outcome};
use super::notify::{self, Notifier};
use crate::clock::{now, wall_now};
use crate::config::Config;
use crate::net::socket;
use crate::node::Announcer;

pub(super) struct AnnouncerTask {
    core: Announcer,
    config: Arc<Config>,
    link: AnnouncerSide,
    notifier: Option<Arc<Notifier>>,
    /// Whether the last beacon went out: only the first of a run of failures is a warning.
    sending: bool,
}

impl AnnouncerTask {
    pub(super) fn new(
        core: Announcer,
        config: Arc<Config>,
        link: AnnouncerSide,
        notifier: Option<Arc<Notifier>>,
    ) -> AnnouncerTask {
        AnnouncerTask {
            core,
            config,
            link,
            notifier,
            sending: true,
        }
    }

    /// Announces until `shutdown` is cancelled, then says `STOPPING=1` and goodbye. The first
    /// beacon waits for the socket: nothing is announced before it can go out.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            opened = self.link.sockets.wait_for(Option::is_some) => {
                if opened.is_err() {
                    return; // the receiver is gone: the agent is stopping
                }
            }
        }
        loop {
            if let Some(outgoing) = self.core.poll(now(), wall_now()) {
                self.refresh_membership();
                let outcome = self.send(&outgoing.bytes).await;
                // Fails only once the receiver stopped, on the way out.
                let _ = self.link.announced.send(Announced {
                    early: outgoing.early,
                    outcome,
                });
            }
            let next = self.core.next_wakeup();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(cue) = self.link.cues.recv() => match cue {
                    Cue::Newcomer(at) => self.core.newcomer(at),
                    Cue::Now(at) => self.core.announce_now(at),
                },
                changed = self.link.sockets.changed() => {
                    if changed.is_err() {
                        break; // the receiver is gone: the agent is stopping
                    }
                    // A new socket has a new membership: peers that stopped hearing the old
                    // one hear this node at once.
                    if self.link.sockets.borrow_and_update().is_some() {
                        self.core.announce_now(now());
                    }
                }
                _ = tokio::time::sleep_until(next.into()) => {}
            }
        }
        if let Some(notifier) = &self.notifier {
            notifier.send(notify::STOPPING);
        }
        let goodbye = self.core.goodbye(wall_now());
        if self.send(&goodbye).await.is_sent() {
            info!("goodbye sent");
        }
    }

    /// Re-asserts the group membership before a beacon: an interface that was removed and
    /// added again (a container disconnected and reconnected) lost it.
    fn refresh_membership(&self) {
        let Some(socket) = self.link.sockets.borrow().clone() else {
            return;
        };
        let (group, interface) = (self.config.group, self.config.interface);
        match socket::refresh_membership(&socket, group, interface) {
            Ok(true) => {
                info!(%group, %interface, "rejoined the multicast group: the interface came back")
            }
            Ok(false) => {}
            // The interface is gone for now; sending fails too and says so.
            Err(err) => {
                debug!(%group, %interface, error = %err, "cannot rejoin the multicast group")
            }
        }
    }

    /// Sends one beacon to the group; returns what became of it. Only the first of a run of
    /// failures is a warning, so an unplugged link does not fill the log.
    async fn send(&mut self, beacon: &[u8]) -> Outcome {
        let target: SocketAddr = self.config.group_addr();
        let Some(socket) = self.link.sockets.borrow().clone() else {
            return Outcome::NoSocket;
        };
        let was_sending = std::mem::replace(&mut self.sending, false);
        match socket.send_to(beacon, target).await {
            Ok(_) => {
                debug!("beacon sent");
                if !was_sending {
                    info!(%target, "sending beacons again");
                }
                self.sending = true;
                Outcome::Sent
            }
            // Not fatal: a link that is down now may be up by the next beacon.
            Err(err) => {
                if was_sending {
                    warn!(%target, error = %err, "cannot send beacon; will keep trying every interval");
                } else {
                    debug!(%target, error = %err, "cannot send beacon");
                }
                Outcome::Failed(err.to_string())
            }
        }
    }
}
