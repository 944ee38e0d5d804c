//! The receiver's sockets: opening them (the groups' unless `--no-multicast`, and the unicast
//! ones, each per family), opening them again, and what a run of receive errors or a stall
//! does to them. What to do when is the keeper's say; here it is done.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::{Open, ReceiverTask};
use crate::engine::link::{Cue, Sockets};
use crate::engine::Opening;
use crate::net::keeper::Stall;
use crate::net::socket;

impl ReceiverTask {
    /// Opens the sockets, joins the groups on the interfaces the config names and hands them to
    /// the announcer, or leaves the next try to the keeper's backoff: sockets that cannot be
    /// bound, or no interface to announce on yet.
    pub(super) fn open(&mut self, now: Instant) {
        let opened = self.bind().and_then(|sockets| {
            let joined = self.join_interfaces(&sockets, now);
            // Off the group, the unicast sockets are all there is to open.
            if joined.is_empty() && self.config.multicast {
                anyhow::bail!("{}", self.no_interface());
            }
            Ok((sockets, joined))
        });
        match opened {
            Ok((sockets, joined)) => {
                let udp = sockets.group4.as_ref().unwrap_or(&sockets.unicast4);
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
                    info!(groups = %self.config.groups(), "multicast socket open: beaconing");
                }
                let sockets = Arc::new(sockets);
                self.link.sockets.send_replace(Some(Arc::clone(&sockets)));
                self.socket = Some(Open {
                    sockets,
                    receive_buffer,
                    drops: [drops; 4],
                });
                self.set_interfaces(joined);
                if opened.first {
                    self.opening.send_replace(Opening::Open);
                }
            }
            Err(err) => {
                let error = format!("{err:#}");
                self.opening.send_if_modified(|opening| match opening {
                    Opening::NotYet => {
                        *opening = Opening::Failed(error.clone());
                        true
                    }
                    _ => false,
                });
                if let Some(warning) = self.keeper.open_failed(now, error.clone()) {
                    warn!(%error, failures = warning.failures,
                        next_warning_in = %humantime::format_duration(warning.next_warning_in),
                        "cannot open the multicast socket; retrying");
                }
            }
        }
    }

    /// Binds the group sockets (unless `--no-multicast`; IPv6's only where the host has IPv6)
    /// and the unicast ones: on `--port` when nodes may target this one (they are configured
    /// alike), else on a port of the kernel's choosing, the same as before if it was opened
    /// already, and the same for both families.
    fn bind(&mut self) -> anyhow::Result<Sockets> {
        let config = &self.config;
        let (v4, v6) = (IpAddr::V4(config.group), IpAddr::V6(config.group6));
        let group = |group| socket::bind_group_socket(group, config.port, config.multicast_ttl);
        let group4 = config.multicast.then(|| group(v4)).transpose()?;
        let fixed = config.has_targets() || !config.multicast;
        let port = if fixed {
            config.port
        } else {
            self.unicast_port
        };
        // A port of the kernel's choosing kept from before may be taken by now (and the one
        // chosen for IPv4 may be taken in IPv6): any other will do there.
        let unicast = |family, port| {
            let bind = |port| socket::bind_unicast(family, port, config.multicast_ttl);
            match bind(port) {
                Err(_) if !fixed && port != 0 => bind(0),
                bound => bound,
            }
        };
        let unicast4 = unicast(v4, port)?;
        let port = unicast4.local_addr().map_or(0, |a| a.port());
        if !fixed {
            self.unicast_port = port;
        }
        // A kernel without IPv6 cannot make its sockets: the agent speaks IPv4 alone there.
        // The IPv6 group socket holds `--port` on every address (see `bind_group_socket`), so
        // where nodes target that port it is the IPv6 unicast socket too.
        let group6 = || match group(v6) {
            Ok(socket) => Some(socket),
            Err(err) => {
                warn!(error = %format!("{err:#}"), "cannot open the IPv6 group socket: IPv4 only");
                None
            }
        };
        let (group6, unicast6) = if config.multicast && fixed {
            (group6(), None)
        } else {
            match unicast(v6, port) {
                Ok(unicast6) => (config.multicast.then(group6).flatten(), Some(unicast6)),
                Err(err) => {
                    no_ipv6(&err);
                    (None, None)
                }
            }
        };
        Ok(Sockets {
            group4,
            group6,
            unicast4,
            unicast6,
        })
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
            let sockets = open.sockets.all();
            sockets
                .into_iter()
                .flatten()
                .map(socket::discard_queued)
                .sum()
        });
        warn!(%gap, stale_datagrams_dropped = stale,
            "the agent was stopped: each peer gets a ttl from now to be heard again, and it announces itself");
        self.core.stale_dropped(stale);
        self.keeper.backlog(false); // thrown away above
        let _ = self.link.cues.try_send(Cue::Now(now));
    }
}

/// Says why the agent goes without IPv6: quietly where the kernel has none, with a warning
/// where it has but the socket could not be opened.
fn no_ipv6(err: &anyhow::Error) {
    let unsupported = err
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.raw_os_error() == Some(nix::libc::EAFNOSUPPORT));
    if unsupported {
        debug!("the kernel has no IPv6: IPv4 only");
    } else {
        warn!(error = %format!("{err:#}"), "cannot open the IPv6 unicast socket: IPv4 only");
    }
}
