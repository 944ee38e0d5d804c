//! The announcer task: drives the node's [`Announcer`] over the socket the receiver keeps open.
//! It owns the schedule alone: first beacon, jittered interval, early answers to the newcomers
//! the receiver cues, and the goodbye on cancellation.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::SockRef;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::link::{Announced, AnnouncerSide, Cue, Outcome};
use super::notify::{self, Notifier};
use crate::clock::{now, wall_now};
use crate::config::Config;
use crate::net::socket;
use crate::node::{Announcer, Destination};

/// Datagrams sent in a row before the task yields: a greeting to each of many new targets, or
/// many answers due together.
const BURST: usize = 64;

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
        self.core
            .set_targets(self.link.targets.borrow_and_update().clone(), now());
        loop {
            let mut sent = 0;
            while let Some(outgoing) = self.core.poll(now(), wall_now()) {
                sent += 1;
                if sent % BURST == 0 {
                    // Many targets due at once: let the receiver, the API and the signals run
                    // between bursts, as the send calls return at once and never yield.
                    tokio::task::yield_now().await;
                }
                if outgoing.to == Destination::Group {
                    self.refresh_membership();
                }
                let outcome = self.send(&outgoing.bytes, outgoing.to).await;
                // Fails only once the receiver stopped, on the way out.
                let _ = self.link.announced.send(Announced {
                    early: outgoing.early,
                    unicast: outgoing.to != Destination::Group,
                    outcome,
                });
            }
            let next = self.core.next_wakeup();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(cue) = self.link.cues.recv() => match cue {
                    Cue::Answer(at, request) => self.core.answer(at, request),
                    Cue::Now(at) => self.core.announce_now(at),
                },
                changed = self.link.targets.changed() => {
                    if changed.is_err() {
                        break; // the receiver is gone: the agent is stopping
                    }
                    let targets = self.link.targets.borrow_and_update().clone();
                    self.core.set_targets(targets, now());
                }
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
        let mut said = false;
        for goodbye in self.core.goodbye(wall_now()) {
            if self.send(&goodbye.bytes, goodbye.to).await.is_sent() && !said {
                info!("goodbye sent");
                said = true;
            }
        }
    }

    /// Re-asserts the group membership before a beacon: an interface that was removed and
    /// added again (a container disconnected and reconnected) lost it.
    fn refresh_membership(&self) {
        let Some(sockets) = self.link.sockets.borrow().clone() else {
            return;
        };
        let Some(group_socket) = &sockets.group else {
            return;
        };
        let (group, interface) = (self.config.group, self.config.interface);
        match socket::refresh_membership(group_socket, group, interface) {
            Ok(true) => {
                // The interface came back with a new index, which the sending socket does not
                // follow by itself.
                let _ = socket::refresh_interface(&sockets.unicast, interface);
                info!(%group, %interface, "rejoined the multicast group: the interface came back")
            }
            Ok(false) => {}
            // The interface is gone for now; sending fails too and says so.
            Err(err) => {
                debug!(%group, %interface, error = %err, "cannot rejoin the multicast group")
            }
        }
    }

    /// Sends one beacon to the group or a target; returns what became of it. Only the first
    /// of a run of failures to the group is a warning, so an unplugged link does not fill the
    /// log; failures to one target are debug lines (an address that went away is dropped from
    /// the targets a ttl later).
    async fn send(&mut self, beacon: &[u8], to: Destination) -> Outcome {
        let Some(sockets) = self.link.sockets.borrow().clone() else {
            return Outcome::NoSocket;
        };
        let target: SocketAddr = match to {
            Destination::Group => self.config.group_addr(),
            Destination::Unicast(address) => address,
        };
        // A target heard from lately is there: say so as the datagram goes (MSG_CONFIRM), so
        // the kernel keeps its neighbour entry without asking the link again by ARP.
        let heard = to != Destination::Group
            && self.link.heard.borrow().binary_search(&target.ip()).is_ok();
        let flags = if heard { nix::libc::MSG_CONFIRM } else { 0 };
        let send =
            || SockRef::from(&sockets.unicast).send_to_with_flags(beacon, &target.into(), flags);
        match sockets.unicast.async_io(Interest::WRITABLE, send).await {
            Ok(_) => {
                debug!(%target, "beacon sent");
                if to == Destination::Group && !std::mem::replace(&mut self.sending, true) {
                    info!(%target, "sending beacons again");
                }
                Outcome::Sent
            }
            Err(err) if to != Destination::Group => {
                debug!(%target, error = %err, "cannot send beacon to a target");
                Outcome::Failed(err.to_string())
            }
            // Not fatal: a link that is down now may be up by the next beacon.
            Err(err) => {
                if std::mem::replace(&mut self.sending, false) {
                    warn!(%target, error = %err, "cannot send beacon; will keep trying every interval");
                } else {
                    debug!(%target, error = %err, "cannot send beacon");
                }
                Outcome::Failed(err.to_string())
            }
        }
    }
}
