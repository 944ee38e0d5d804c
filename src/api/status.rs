//! The agent itself, as `GET /v1/status`, `/metrics` and `peerd health --json` show it, and
//! the one place it is put together: the agent's settings, the figures its tasks counted and
//! the API's own counts.

use serde::{Deserialize, Serialize};

use super::query::Figures;
use super::types::{ConflictInfo, EventCounts, HookCounts, millis};
use crate::config::Config;
use crate::node::Refused;
use crate::wire::beacon::format_instance;

/// The agent itself, as `GET /v1/status` and `peerd health --json` show it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub hostname: String,
    pub instance: String,
    /// `group:port` of the beacons.
    pub group: String,
    /// IPv4 address of the interface it announces on.
    pub interface: String,
    pub interval_ms: u64,
    pub ttl_ms: u64,
    pub peers: usize,
    pub uptime_ms: u64,
    pub beacons_sent: u64,
    /// Beacons brought forward to answer a newcomer: at most two a second.
    pub early_answers: u64,
    /// Valid beacons from other agents, taken in (the refused ones are under `refused`).
    pub beacons_received: u64,
    /// Our own beacons looped back by the kernel: proof the socket hears the group.
    pub own_beacons_received: u64,
    /// Datagrams on the port that were not valid beacons (foreign, truncated, bad version...).
    pub datagrams_ignored: u64,
    /// Datagrams ignored or refused, by reason; they add up to `datagrams_ignored`.
    #[serde(default)]
    pub refused: RefusedCounts,
    /// Datagrams the kernel dropped because the socket's receive queue was full, when known.
    #[serde(default)]
    pub receive_queue_drops: Option<u64>,
    /// The socket's receive buffer in bytes, as the kernel granted it, when known.
    #[serde(default)]
    pub receive_buffer_bytes: Option<usize>,
    /// At most this many peers are listed; beacons from further hostnames are refused.
    #[serde(default)]
    pub max_peers: usize,
    /// Ids of the keys beacons are signed (the first) and verified with; empty: unsigned.
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// With keys, unsigned beacons are accepted too (`--accept-unauthenticated`).
    #[serde(default)]
    pub accept_unauthenticated: bool,
    /// Another instance announcing this agent's own hostname, while one does.
    #[serde(default)]
    pub hostname_conflict: Option<ConflictInfo>,
    /// Times the agent found it had been stopped or stalled for more than a second.
    #[serde(default)]
    pub stalls: u64,
    /// Times the multicast socket was opened again after an error or a silence.
    #[serde(default)]
    pub socket_reopens: u64,
    /// Peer events since the start, by kind.
    pub events: EventCounts,
    /// What the `--on-event` programs did.
    pub hooks: HookCounts,
    /// The API's connections and what its limits closed. Absent from an older agent's answer,
    /// so a newer client still reads that as zeros.
    #[serde(default)]
    pub api: ApiCounts,
}

/// The HTTP API's connections: open now, and closed by its limits since the agent started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCounts {
    pub open: u64,
    /// Closed on arrival: every open connection had a request in flight.
    pub refused: u64,
    /// Closed to make room for a new one: the oldest with no request in flight.
    pub evicted: u64,
    /// Closed because no request head came within 5 s of connecting.
    pub timed_out: u64,
    /// Requests received (their heads read), whatever they asked for.
    #[serde(default)]
    pub requests: u64,
}

/// Datagrams on the beacon port that changed nothing, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedCounts {
    /// Not a beacon at all, truncated, or with broken extension fields.
    pub malformed: u64,
    /// Longer than a beacon may be.
    pub oversized: u64,
    /// A peerd beacon of another version.
    pub version: u64,
    /// A beacon whose hostname is not valid.
    pub hostname: u64,
    /// Unsigned where a signature is required, signed with an unknown key, a tag that does
    /// not verify, or signed where this agent has no secret.
    pub authentication: u64,
    /// Not newer than what was heard (duplicated, reordered, replayed), or a signed timestamp
    /// outside the replay window.
    pub replay: u64,
    /// A new hostname while `max_peers` are listed.
    pub capacity: u64,
    /// Another instance announcing this agent's own hostname.
    pub own_hostname: u64,
    /// Queued while the agent was stopped: old news by the time it could read them.
    pub stale: u64,
}

impl RefusedCounts {
    /// Each count with the name `/v1/status` and `/metrics` give its reason.
    pub fn by_reason(&self) -> [(&'static str, u64); 9] {
        [
            ("malformed", self.malformed),
            ("oversized", self.oversized),
            ("version", self.version),
            ("hostname", self.hostname),
            ("authentication", self.authentication),
            ("replay", self.replay),
            ("capacity", self.capacity),
            ("own_hostname", self.own_hostname),
            ("stale", self.stale),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, count)| count).sum()
    }
}

impl From<Refused> for RefusedCounts {
    fn from(refused: Refused) -> RefusedCounts {
        let Refused {
            malformed,
            oversized,
            version,
            hostname,
            authentication,
            replay,
            capacity,
            own_hostname,
            stale,
        } = refused;
        RefusedCounts {
            malformed,
            oversized,
            version,
            hostname,
            authentication,
            replay,
            capacity,
            own_hostname,
            stale,
        }
    }
}

impl AgentStatus {
    /// The status of the agent running `config` as `instance`, from the `figures` its loop
    /// reported and the `api`'s own counts.
    pub fn new(config: &Config, instance: u64, figures: &Figures, api: ApiCounts) -> AgentStatus {
        let node = &figures.node;
        let refused = RefusedCounts::from(node.refused);
        AgentStatus {
            hostname: config.name.clone(),
            instance: format_instance(instance),
            group: config.group_addr().to_string(),
            interface: config.interface.to_string(),
            interval_ms: millis(config.interval),
            ttl_ms: millis(config.ttl),
            peers: node.peers,
            uptime_ms: millis(figures.uptime),
            beacons_sent: node.beacons_sent,
            early_answers: node.early_answers,
            beacons_received: node.beacons_received,
            own_beacons_received: node.own_beacons_received,
            datagrams_ignored: refused.total(),
            refused,
            receive_queue_drops: figures.socket.receive_queue_drops,
            receive_buffer_bytes: figures.socket.receive_buffer_bytes,
            max_peers: config.max_peers,
            key_ids: config.keys.ids(),
            accept_unauthenticated: config.accept_unauthenticated,
            hostname_conflict: node.impostor.map(|impostor| ConflictInfo {
                address: impostor.address.ip().to_string(),
                instance: format_instance(impostor.instance),
                last_seen_ms_ago: millis(figures.at.saturating_duration_since(impostor.last_seen)),
            }),
            stalls: node.stalls,
            socket_reopens: figures.socket.reopens,
            events: figures.events,
            hooks: figures.hooks,
            api,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::net::keeper::SocketStats;
    use crate::node::{Impostor, NodeStats};

    #[test]
    fn an_older_agents_status_reads_as_no_connections_closed() {
        let status = AgentStatus {
            hostname: "node-1".into(),
            ..AgentStatus::default()
        };
        let mut json = serde_json::to_value(status).expect("a status serializes");
        json.as_object_mut().expect("an object").remove("api");
        let read: AgentStatus = serde_json::from_value(json).expect("it still parses");
        assert_eq!(read.api, ApiCounts::default());
    }

    #[test]
    fn the_figures_of_every_task_land_in_one_status() {
        let at = Instant::now();
        let config = Config::new("node-1", Ipv4Addr::LOCALHOST);
        let figures = Figures {
            at,
            uptime: Duration::from_secs(2),
            node: NodeStats {
                peers: 3,
                beacons_sent: 4,
                refused: Refused {
                    malformed: 1,
                    replay: 2,
                    ..Refused::default()
                },
                impostor: Some(Impostor {
                    instance: 99,
                    address: SocketAddr::from(([10, 0, 0, 9], 24901)),
                    last_seen: at - Duration::from_millis(250),
                }),
                ..NodeStats::default()
            },
            socket: SocketStats {
                receive_queue_drops: Some(5),
                receive_buffer_bytes: Some(2048),
                reopens: 1,
            },
            events: EventCounts {
                joined: 3,
                ..EventCounts::default()
            },
            hooks: HookCounts {
                runs: 3,
                ..HookCounts::default()
            },
        };
        let api = ApiCounts {
            requests: 7,
            ..ApiCounts::default()
        };
        let status = AgentStatus::new(&config, 1, &figures, api);
        assert_eq!(status.instance, "0000000000000001");
        assert_eq!(status.group, "239.255.49.1:24901");
        assert_eq!(
            (status.peers, status.uptime_ms, status.beacons_sent),
            (3, 2000, 4)
        );
        assert_eq!(status.datagrams_ignored, 3, "every refusal, by any reason");
        assert_eq!(status.refused.replay, 2);
        assert_eq!(status.receive_queue_drops, Some(5));
        assert_eq!(status.socket_reopens, 1);
        let conflict = status.hostname_conflict.expect("an impostor is a conflict");
        assert_eq!(
            (conflict.address.as_str(), conflict.last_seen_ms_ago),
            ("10.0.0.9", 250)
        );
        assert_eq!(
            (status.events.joined, status.hooks.runs, status.api.requests),
            (3, 3, 7)
        );
    }
}
