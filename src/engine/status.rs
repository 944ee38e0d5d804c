//! What an instance counted and where it stands: the figures `Discovery::status` returns, which
//! the agent's `/v1/status`, `/healthz` and `/metrics` show.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::event::EventCounts;
use crate::net::keeper::{Sending, SocketStats};
use crate::net::selection::Joined;
use crate::node::NodeStats;
use crate::node::targets::Name;

/// An instance's figures, as of [`at`](Status::at).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// When the figures were taken, on tokio's clock.
    pub at: Instant,
    /// How long the instance has run.
    pub uptime: Duration,
    /// The protocol's counts: beacons sent, received and refused (by reason), peers listed.
    pub node: NodeStats,
    /// What the kernel says of the sockets.
    pub socket: SocketStats,
    /// Whether the beacons go out: the one thing a health check should look at.
    pub sending: Sending,
    /// Peer events since the start, by kind.
    pub events: EventCounts,
    /// The unicast targets now (given, and resolved from names).
    pub targets: Vec<SocketAddr>,
    /// Each name among the targets with its latest answer.
    pub names: Vec<Name>,
    /// The port the unicast sockets are bound to, while they are open.
    pub unicast_port: Option<u16>,
    /// The interfaces the groups are joined on.
    pub interfaces: Vec<Joined>,
}

impl Status {
    /// Whether the beacons go out: false while the sockets cannot be opened, or the kernel
    /// refuses the beacons, for longer than two intervals ([`Sending::not_sending`] says why).
    pub fn is_sending(&self) -> bool {
        self.sending.not_sending.is_none()
    }
}

#[cfg(test)]
impl Status {
    /// The figures of an instance that has counted nothing, as of `at`.
    pub(crate) fn zero(at: Instant) -> Status {
        Status {
            at,
            uptime: Duration::ZERO,
            node: NodeStats::default(),
            socket: SocketStats::default(),
            sending: Sending::default(),
            events: EventCounts::default(),
            targets: Vec::new(),
            names: Vec::new(),
            unicast_port: None,
            interfaces: Vec::new(),
        }
    }
}
