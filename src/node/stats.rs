//! What the node counts, as plain figures. The API turns them into its status; nothing here
//! knows how they are shown.

use std::net::SocketAddr;
use std::time::Instant;

/// Datagrams on the beacon port that changed nothing, by reason. Every datagram read is counted
/// once: taken in ([`NodeStats::beacons_received`] or our own), or here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// Not a beacon at all, truncated, or with broken extension fields.
    pub malformed: u64,
    /// Longer than a beacon may be.
    pub oversized: u64,
    /// A peerd beacon of another version.
    pub version: u64,
    /// A beacon whose hostname is not valid.
    pub hostname: u64,
    /// Unsigned where a signature is required (by this agent, or by a peer that signs), signed
    /// with an unknown key, a tag that does not verify, or signed where this agent has no
    /// secret.
    pub authentication: u64,
    /// Not newer than what was heard (duplicated, reordered, replayed), or a signed timestamp
    /// outside the replay window.
    pub replay: u64,
    /// A new hostname while the most peers are listed.
    pub capacity: u64,
    /// Another instance announcing this agent's own hostname.
    pub own_hostname: u64,
    /// Queued while the agent was stopped: old news by the time it could read them.
    pub stale: u64,
    /// Unsigned, by unicast, from an address that is no configured target.
    pub unicast: u64,
}

impl Refused {
    /// All refused datagrams, whatever the reason.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.oversized
            + self.version
            + self.hostname
            + self.authentication
            + self.replay
            + self.capacity
            + self.own_hostname
            + self.stale
            + self.unicast
    }
}

/// Another instance announcing this node's own hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Impostor {
    /// Its instance id.
    pub instance: u64,
    /// Where its beacons come from.
    pub address: SocketAddr,
    /// When it was last heard.
    pub last_seen: Instant,
}

/// The node's figures since it started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Peers listed now.
    pub peers: usize,
    /// Beacons that went out.
    pub beacons_sent: u64,
    /// Beacons to the group brought forward to answer newcomers (sent or not): at most two a
    /// second.
    pub early_answers: u64,
    /// Beacons sent by unicast to one newcomer each, to answer it (sent or not).
    pub unicast_answers: u64,
    /// Valid beacons from other agents, taken in.
    pub beacons_received: u64,
    /// Our own beacons looped back by the kernel: proof the socket hears the group.
    pub own_beacons_received: u64,
    /// Datagrams refused, by reason.
    pub refused: Refused,
    /// Beacons heard twice, to the group and by unicast: the second copy changed nothing.
    pub duplicates: u64,
    /// Datagrams that came by unicast (to this node's address), whatever became of them.
    pub unicast_received: u64,
    /// Beacons sent by unicast: to targets, and answers to newcomers.
    pub unicast_sent: u64,
    /// Times the agent found it had been stopped or stalled.
    pub stalls: u64,
    /// Another instance announcing our hostname, while it has been heard within a ttl.
    pub impostor: Option<Impostor>,
}
