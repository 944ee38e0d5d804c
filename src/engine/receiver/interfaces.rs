//! The interfaces the receiver joins the groups on: selected as `--interface` says, followed as
//! the host's come and go (read again whenever the kernel says they changed, and every
//! [`CHECK_INTERFACES`] where it cannot say) and handed to the announcer. Selecting is
//! `net::selection`'s; joining and leaving happen here.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::ReceiverTask;
use crate::engine::link::Sockets;
use crate::net::selection::{self, Joined};
use crate::net::{host, interface, socket};

/// How often the host's interfaces are read again where netlink cannot tell of changes: an
/// interface or address that appears is used within a second, one that goes is dropped as soon.
/// Reading them took 31 µs in a namespace with a veth pair, 64 µs among a machine's dozen
/// interfaces (release build).
pub const CHECK_INTERFACES: Duration = Duration::from_secs(1);
/// How often they are read again all the same where netlink tells of changes: a message it
/// dropped (its queue full) is made up for at the first wake-up of the loop after this (a
/// beacon at the latest), at no wake-up of its own.
pub const CHECK_INTERFACES_ANYWAY: Duration = Duration::from_secs(30);

impl ReceiverTask {
    /// Selects the interfaces now and joins the groups on each; returns those joined in at
    /// least one family. With `--no-multicast` there is nothing to join.
    pub(super) fn join_interfaces(&mut self, sockets: &Sockets, now: Instant) -> Vec<Joined> {
        self.interfaces_at = now + self.check_every();
        if !self.config.multicast {
            return Vec::new();
        }
        let selected = self.select(sockets).unwrap_or_default();
        selected
            .into_iter()
            .filter_map(|joined| self.join_on(sockets, joined, false))
            .collect()
    }

    /// What `--interface` names now, or the interface picked without it, in the families there
    /// is a socket for. Remembers what is missing, for the log and the health. `None` when the
    /// interfaces cannot be read (out of file descriptors, say): nothing is known to have
    /// changed, so nothing is left.
    fn select(&mut self, sockets: &Sockets) -> Option<Vec<Joined>> {
        let host = match host::list() {
            Ok(host) => host,
            Err(err) => {
                warn!(error = %format!("{err:#}"), "cannot read the interfaces; keeping those joined");
                return None;
            }
        };
        let default_rule = || (interface::default_route(), interface::named_addresses());
        let (mut selected, missing) = selection::select(
            &self.config.interfaces,
            &host,
            default_rule,
            &self.interfaces,
        );
        self.missing = missing
            .iter()
            .map(|spec| format!("{} (--interface {spec})", spec.missing()))
            .collect();
        // A family without its socket (IPv6 where it could not be opened) is none to join.
        for joined in &mut selected {
            if sockets.group4.is_none() {
                joined.v4 = None;
            }
            if sockets.group6.is_none() {
                joined.v6 = None;
            }
        }
        selected.retain(|j| j.v4.is_some() || j.v6.is_some());
        Some(selected)
    }

    /// Joins the groups on `joined` in each family it has (for one `known` already, re-asserts
    /// them: the kernel drops a membership with an interface that goes away). A family whose
    /// join fails is left out, with a warning the first time for that interface and family;
    /// `None` if both were.
    fn join_on(&mut self, sockets: &Sockets, mut joined: Joined, known: bool) -> Option<Joined> {
        for (group, udp, wanted) in self.families(sockets, &joined) {
            let (true, Some(udp)) = (wanted, udp) else {
                continue;
            };
            let failure = (joined.index, group);
            match socket::join(udp, group, joined.index) {
                Ok(rejoined) => {
                    self.join_failed.retain(|f| *f != failure);
                    if rejoined && known {
                        info!(%group, interface = %joined.name, "rejoined the multicast group: the interface came back");
                    }
                }
                Err(err) => {
                    if self.join_failed.contains(&failure) {
                        debug!(%group, interface = %joined.name, error = %err, "cannot join the multicast group on this interface");
                    } else {
                        warn!(%group, interface = %joined.name, error = %err,
                            "cannot join the multicast group on this interface; it goes without this family, and is tried again as the interfaces change");
                        self.join_failed.push(failure);
                    }
                    match group {
                        IpAddr::V4(_) => joined.v4 = None,
                        IpAddr::V6(_) => joined.v6 = None,
                    }
                }
            }
        }
        (joined.v4.is_some() || joined.v6.is_some()).then_some(joined)
    }

    /// Each family's group, the socket that hears it, and whether `joined` is used in it.
    fn families<'s>(
        &self,
        sockets: &'s Sockets,
        joined: &Joined,
    ) -> [(IpAddr, Option<&'s tokio::net::UdpSocket>, bool); 2] {
        [
            (
                IpAddr::V4(self.config.group),
                sockets.group4.as_ref(),
                joined.v4.is_some(),
            ),
            (
                IpAddr::V6(self.config.group6),
                sockets.group6.as_ref(),
                joined.v6.is_some(),
            ),
        ]
    }

    /// Reads the host's interfaces again, if it is time: leaves the groups on those that went
    /// (first, in each family no interface of the same index still uses), joins them on those
    /// that came, re-asserts them on the others, and hands the announcer the list if it
    /// changed.
    pub(super) fn check_interfaces(&mut self, now: Instant) {
        if now < self.interfaces_at || !self.config.multicast {
            return;
        }
        let Some(sockets) = self.socket.as_ref().map(|open| open.sockets.clone()) else {
            return;
        };
        self.interfaces_at = now + self.check_every();
        let Some(selected) = self.select(&sockets) else {
            return;
        };
        for gone in &self.interfaces {
            let still = selected.iter().filter(|k| k.index == gone.index);
            let kept = [
                still.clone().any(|k| k.v4.is_some()),
                still.clone().any(|k| k.v6.is_some()),
            ];
            for ((group, udp, was), kept) in self.families(&sockets, gone).into_iter().zip(kept) {
                if let (true, false, Some(udp)) = (was, kept, udp) {
                    socket::leave(udp, group, gone.index);
                }
            }
        }
        let mut kept = Vec::new();
        for joined in selected {
            let known = self.interfaces.iter().any(|j| j.same_as(&joined));
            kept.extend(self.join_on(&sockets, joined, known));
        }
        self.set_interfaces(kept);
    }

    /// Takes `joined` as the interfaces in use: logs what came and went, and hands the list to
    /// the announcer and the node (whose on-link networks follow it) if it changed.
    pub(super) fn set_interfaces(&mut self, joined: Vec<Joined>) {
        for came in joined
            .iter()
            .filter(|j| !self.interfaces.iter().any(|i| i.same_as(j)))
        {
            info!(interface = %came, "announcing on this interface: {}", came.why);
        }
        for gone in self
            .interfaces
            .iter()
            .filter(|i| !joined.iter().any(|j| j.same_as(i)))
        {
            info!(interface = %gone, "no longer announcing on this interface: it is gone or changed");
        }
        if joined.is_empty() && !self.interfaces.is_empty() {
            warn!(reason = %self.no_interface(), "no interface to announce on any more; waiting for one");
        }
        let changed = joined.len() != self.interfaces.len()
            || joined
                .iter()
                .zip(&self.interfaces)
                .any(|(a, b)| !a.same_as(b));
        // Addresses may change without a change the announcer must hear of (see `same_as`):
        // the status and the on-link networks follow them all the same.
        let networks = joined
            .iter()
            .flat_map(|j| j.networks.iter().copied())
            .collect();
        let indexes = joined.iter().map(|j| j.index).collect();
        self.core.set_on_link(networks, indexes);
        self.interfaces = joined;
        if changed {
            self.link.interfaces.send_replace(self.interfaces.clone());
        }
    }

    /// The kernel says the interfaces changed: read them now, or try opening at once if no
    /// interface was there to open on.
    pub(super) fn interfaces_changed(&mut self, now: Instant) {
        if self.socket.is_none() {
            self.open(now);
        } else {
            self.interfaces_at = now;
            self.check_interfaces(now);
        }
    }

    /// How long until the interfaces are read again without a word from the kernel.
    fn check_every(&self) -> Duration {
        match self.changes {
            Some(_) => CHECK_INTERFACES_ANYWAY,
            None => CHECK_INTERFACES,
        }
    }

    /// Why no interface is joined: what each `--interface` lacks, or what the pick found.
    pub(super) fn no_interface(&self) -> String {
        if self.missing.is_empty() {
            return "no interface is up with carrier, multicast and an address; pass --interface (127.0.0.1 for a single-host trial)".to_owned();
        }
        format!(
            "no interface to announce on yet: {}",
            self.missing.join("; ")
        )
    }
}
