//! The receiver's sockets: opening them (the group's unless `--no-multicast`, and the unicast
//! one), opening them again, and what a run of receive errors or a stall does to them. What to
//! do when is the keeper's say; here it is done.

use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::{Open, ReceiverTask};
use crate::agent::link::{Cue, Sockets};
use crate::agent::notify;
use crate::net::keeper::Stall;
use crate::net::socket;

impl ReceiverTask {
    /// Opens the sockets and hands them to the announcer, or leaves the next try to the
    /// keeper's backoff.
    pub(super) fn open(&mut self, now: Instant) {
        let opened = self.bind();
        let config = &self.config;
        match opened {
            Ok(sockets) => {
                let udp = sockets.group.as_ref().unwrap_or(&sockets.unicast);
                let receive_buffer = socket::receive_buffer(udp);
                if receive_buffer.unwrap_or(0) < socket::RECEIVE_BUFFER {
                    warn!(
                        bytes = receive_buffer.unwrap_or(0),
                        "the kernel granted a small receive buffer: a burst of beacons from many peers may be dropped (raise net.core.rmem_max, or run with CAP_NET_ADMIN)"
                    );
                }
                let drops = socket::reports_drops(udp).then_some(0);
                let opened = self.keeper.opened(now);
                if opened.after_warnings {
                    info!(group = %config.group_addr(), interface = %config.interface, "multicast socket open: beaconing");
                }
                let sockets = Arc::new(sockets);
                self.link.sockets.send_replace(Some(Arc::clone(&sockets)));
                self.socket = Some(Open {
                    sockets,
                    receive_buffer,
                    drops: [drops, drops],
                });
                if opened.first {
                    self.notify(notify::READY);
                }
            }
            Err(err) => {
                let error = format!("{err:#}");
                if let Some(warning) = self.keeper.open_failed(now, error.clone()) {
                    warn!(%error, failures = warning.failures,
                        next_warning_in = %humantime::format_duration(warning.next_warning_in),
                        "cannot open the multicast socket; retrying every interval");
                }
            }
        }
    }

    /// Binds the group socket (unless `--no-multicast`) and the unicast one: on `--port` when
    /// nodes may target this one (they are configured alike), else on a port of the kernel's
    /// choosing, the same as before if it was opened already.
    fn bind(&mut self) -> anyhow::Result<Sockets> {
        let config = &self.config;
        let group = match config.multicast {
            true => Some(socket::bind_multicast(
                config.group,
                config.port,
                config.interface,
                config.multicast_ttl,
            )?),
            false => None,
        };
        let fixed = config.has_targets() || !config.multicast;
        let port = if fixed {
            config.port
        } else {
            self.unicast_port
        };
        let unicast = match socket::bind_unicast(port, config.interface, config.multicast_ttl) {
            Err(_) if !fixed && port != 0 => {
                socket::bind_unicast(0, config.interface, config.multicast_ttl)?
            }
            bound => bound?,
        };
        if !fixed {
            self.unicast_port = unicast.local_addr().map_or(0, |a| a.port());
        }
        Ok(Sockets { group, unicast })
    }

    /// Drops the socket and opens a new one at once: this leaves and rejoins the group.
    pub(super) fn reopen(&mut self, now: Instant) {
        self.socket = None;
        self.link.sockets.send_replace(None);
        self.keeper.reopen(now);
        self.open(now);
    }

    pub(super) fn receive_failed(&mut self, err: &std::io::Error, now: Instant) {
        let failure = self.keeper.receive_failed(now);
        if let Some(held_back) = failure.warn {
            warn!(error = %err, errors_since_last_log = held_back, "receive failed");
        }
        if failure.reopen {
            warn!("the socket keeps failing: opening it again");
            self.reopen(now);
        }
    }

    /// The loop ran `stall.gap` later than it meant to: the node does not count the gap
    /// against its peers. After a stop (see [`Stall::stopped`]), what queued on the socket
    /// meanwhile is old news (a peer that joined and died during the stop would look alive),
    /// so it is dropped unread, and the announcer announces at once, so that peers that expired
    /// this node meanwhile answer. After a shorter stall it is read, goodbyes included.
    pub(super) fn stalled(&mut self, stall: Stall, now: Instant) {
        let gap = humantime::format_duration(stall.gap);
        self.core.handle_stall(now);
        self.keeper.stalled(now);
        if !stall.stopped {
            warn!(%gap, "the agent ran late (the host is short of CPU, or it was stopped briefly): each peer gets a ttl from now to be heard again");
            return;
        }
        let stale = self.socket.as_ref().map_or(0, |open| {
            let group = open
                .sockets
                .group
                .as_ref()
                .map_or(0, socket::discard_queued);
            group + socket::discard_queued(&open.sockets.unicast)
        });
        warn!(%gap, stale_datagrams_dropped = stale,
            "the agent was stopped: each peer gets a ttl from now to be heard again, and it announces itself");
        self.core.stale_dropped(stale);
        self.keeper.backlog(false); // thrown away above
        let _ = self.link.cues.try_send(Cue::Now(now));
    }
}
