//! What a running instance was started with, as [`Discovery::settings`](crate::Discovery)
//! shows it: every setting at its value, the secrets by their key ids only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, InterfaceSpec, Target};
use crate::wire::tags::Tags;

/// The settings of a running instance, defaults filled in: what its status and logs name.
#[derive(Debug, Clone)]
pub struct Settings(Arc<Config>);

impl Settings {
    pub(crate) fn new(config: Arc<Config>) -> Settings {
        Settings(config)
    }

    /// The hostname it announces.
    pub fn hostname(&self) -> &str {
        &self.0.name
    }

    /// Where its beacons go over IPv4: the group and port.
    pub fn group(&self) -> SocketAddr {
        self.0.group_addr()
    }

    /// Where its beacons go over IPv6: the group and port (sent on each interface by index).
    pub fn group6(&self) -> SocketAddr {
        self.0.group6_addr(0)
    }

    /// The interfaces as given; empty: the one the routing table prefers.
    pub fn interfaces(&self) -> &[InterfaceSpec] {
        &self.0.interfaces
    }

    /// The mean time between beacons.
    pub fn interval(&self) -> Duration {
        self.0.interval
    }

    /// How long it stays listed at its peers after each beacon.
    pub fn ttl(&self) -> Duration {
        self.0.ttl
    }

    /// The beacons' IP TTL (IPv6 hop limit).
    pub fn multicast_ttl(&self) -> u32 {
        self.0.multicast_ttl
    }

    /// The ids of the keys its secrets make (the first signs): never the secrets.
    pub fn key_ids(&self) -> Vec<String> {
        self.0.keys.ids()
    }

    /// Whether it takes unsigned beacons beside signed ones.
    pub fn accept_unauthenticated(&self) -> bool {
        self.0.accept_unauthenticated
    }

    /// The most peers it lists at once.
    pub fn max_peers(&self) -> usize {
        self.0.max_peers
    }

    /// The tags it announces.
    pub fn tags(&self) -> &Tags {
        &self.0.tags
    }

    /// Whether it joins the groups and beacons to them.
    pub fn multicast(&self) -> bool {
        self.0.multicast
    }

    /// Its unicast targets as given, and the names whose addresses are targets.
    pub fn targets(&self) -> (&[Target], &[Target]) {
        (&self.0.peers, &self.0.peers_dns)
    }

    /// How often the names among the targets are resolved again.
    pub fn resolve_interval(&self) -> Duration {
        self.0.resolve_interval
    }
}
