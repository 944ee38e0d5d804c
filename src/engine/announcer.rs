//! The announcer task: drives the node's [`Announcer`] over the sockets the receiver keeps open,
//! on each interface it joined.
//! It owns the schedule alone: first beacon, jittered interval, early answers to the newcomers
//! the receiver cues, and the goodbye on cancellation.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::stop::Stop;
use super::link::{Announced, AnnouncerSide, Cue, Outcome, Sockets};
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
    /// Whether the last beacon went out: only the first of a run of failures is a warning.
    sending: bool,
}

impl AnnouncerTask {
    pub(super) fn new(
        core: Announcer,
        config: Arc<Config>,
        link: AnnouncerSide,
    ) -> AnnouncerTask {
        AnnouncerTask {
            core,
            config,
            link,
            sending: true,
        }
    }

    /// Announces until `shutdown` is cancelled, then says goodbye. The first
    /// beacon waits for the socket: nothing is announced before it can go out.
    pub(super) async fn run(mut self, shutdown: Stop) {
        tokio::select! {
            () = shutdown.requested() => return,
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
                () = shutdown.requested() => break,
                Some(cue) = self.link.cues.recv() => match cue {
                    Cue::Answer(at, request) => self.core.answer(at, request),
                    Cue::Now(at) => self.core.announce_now(at),
                },
                changed = self.link.targets.changed() => {
                    if changed.is_err() {
                        break; // the receiver is gone: see below
                    }
                    let targets = self.link.targets.borrow_and_update().clone();
                    self.core.set_targets(targets, now());
                }
                changed = self.link.interfaces.changed() => {
                    if changed.is_err() {
                        break; // the receiver is gone: see below
                    }
                    // Peers on an interface that came are not told by the old ones: announce.
                    let interfaces = self.link.interfaces.borrow_and_update();
                    if !interfaces.is_empty() {
                        drop(interfaces);
                        self.core.announce_now(now());
                    }
                }
                changed = self.link.sockets.changed() => {
                    if changed.is_err() {
                        break; // the receiver is gone: see below
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
        // The receiver stops only when asked to, or when the handle was dropped (its abort may
        // land on the receiver first, on another worker): no goodbye then.
        if !shutdown.is_requested() {
            return;
        }
        let mut said = false;
        for goodbye in self.core.goodbye(wall_now()) {
            if self.send(&goodbye.bytes, goodbye.to).await.is_sent() && !said {
                info!("goodbye sent");
                said = true;
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
        let address = match to {
            Destination::Group => return self.send_to_groups(&sockets, beacon).await,
            Destination::Unicast(address) => address,
        };
        let Some(udp) = sockets.unicast_for(address.ip()) else {
            debug!(target = %address, "no IPv6 socket: cannot send beacon to an IPv6 target");
            return Outcome::Failed("this host has no IPv6".to_owned());
        };
        match socket::send_to(udp, beacon, address, self.heard(address)).await {
            Ok(()) => {
                debug!(target = %address, "beacon sent");
                Outcome::Sent
            }
            Err(err) => {
                debug!(target = %address, error = %err, "cannot send beacon to a target");
                Outcome::Failed(err.to_string())
            }
        }
    }

    /// Whether `address` was heard from lately: its neighbour entry can be confirmed.
    fn heard(&self, address: SocketAddr) -> bool {
        self.link
            .heard
            .borrow()
            .binary_search(&address.ip())
            .is_ok()
    }

    /// Sends one beacon to the group on every interface joined, in each family it has. It went
    /// out if it went out on any; else the error of the last try.
    async fn send_to_groups(&mut self, sockets: &Sockets, beacon: &[u8]) -> Outcome {
        let interfaces = self.link.interfaces.borrow().clone();
        let mut failure = None;
        let mut sent = false;
        for joined in &interfaces {
            // One copy per family: its socket, its group, and the source set on the socket for
            // this interface (the two families' sockets are apart, so both are set first).
            let v4 = joined.v4.map(|v4| {
                let udp = &sockets.unicast4;
                (udp, self.config.group_addr(), socket::send_from(udp, v4))
            });
            let v6 = (joined.v6.and_then(|v6| sockets.unicast_for(v6.into()))).map(|udp| {
                let group = self.config.group6_addr(joined.index);
                (udp, group, socket::send_from6(udp, joined.index))
            });
            for (udp, group, source) in [v4, v6].into_iter().flatten() {
                let result = match source {
                    Ok(()) => socket::send_to(udp, beacon, group, false).await,
                    Err(err) => Err(err),
                };
                self.note(group, &joined.name, result, &mut sent, &mut failure);
            }
        }
        if sent {
            if !std::mem::replace(&mut self.sending, true) {
                info!(groups = %self.config.groups(), "sending beacons again");
            }
            return Outcome::Sent;
        }
        let error = failure.unwrap_or_else(|| "no interface to announce on".to_owned());
        // Not fatal: a link that is down now may be up by the next beacon.
        if std::mem::replace(&mut self.sending, false) {
            warn!(%error, "cannot send beacon; will keep trying every interval");
        } else {
            debug!(%error, "cannot send beacon");
        }
        Outcome::Failed(error)
    }

    /// Takes in what became of one copy to a group: a failure on one interface is a debug line
    /// while others carry the beacon.
    fn note(
        &self,
        group: SocketAddr,
        interface: &str,
        result: std::io::Result<()>,
        sent: &mut bool,
        failure: &mut Option<String>,
    ) {
        match result {
            Ok(()) => {
                debug!(%group, interface, "beacon sent");
                *sent = true;
            }
            Err(err) => {
                debug!(%group, interface, error = %err, "cannot send beacon on this interface");
                *failure = Some(err.to_string());
            }
        }
    }
}
