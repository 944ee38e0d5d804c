//! The agent itself, as `GET /v1/status`, `/metrics` and `peerd health --json` show it, and
//! the one place it is put together: the agent's settings, the figures its tasks counted and
//! the API's own counts.

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::types::{ConflictInfo, HookCounts, millis};
use crate::engine::shown;
use crate::status::{Joined, NotSending, Refused};
use crate::wire::beacon::format_instance;
use crate::{EventCounts, Settings, Status as Figures};

/// The agent itself, as `GET /v1/status` and `peerd health --json` show it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub hostname: String,
    pub instance: String,
    /// `group:port` of the beacons.
    pub group: String,
    /// The addresses of the interfaces it announces on, IPv4 first, an IPv6 one with its
    /// interface (`10.0.0.2, fe80::1%eth0`); before it joins any, what `--interface` names.
    pub interface: String,
    /// `[group]:port` of the beacons over IPv6. Empty from an agent older than IPv6.
    #[serde(default)]
    pub group6: String,
    /// The interfaces it announces on, each with its addresses, as `interface` lists them.
    #[serde(default)]
    pub interfaces: Vec<InterfaceInfo>,
    pub interval_ms: u64,
    pub ttl_ms: u64,
    pub peers: usize,
    pub uptime_ms: u64,
    pub beacons_sent: u64,
    /// Beacons to the group brought forward to answer newcomers: at most two a second.
    /// Newcomers answered by unicast are under `unicast.answers`.
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
    /// How long ago a beacon last went out; `null` before the first.
    #[serde(default)]
    pub last_beacon_sent_ms_ago: Option<u64>,
    /// Set while the agent is not sending: no beacon went out for two jittered intervals. Then
    /// `/healthz` answers 503 and `peerd health` exits 1, saying why. An older agent's answer
    /// lacks it, and reads as sending.
    #[serde(default)]
    pub not_sending: Option<NotSendingInfo>,
    /// Peer events since the start, by kind.
    pub events: EventCounts,
    /// What the `--on-event` programs did.
    pub hooks: HookCounts,
    /// The API's connections and what its limits closed. Absent from an older agent's answer,
    /// so a newer client still reads that as zeros.
    #[serde(default)]
    pub api: ApiCounts,
    /// Beacons by unicast: targets, the names they come from, and the counts. Absent from an
    /// older agent's answer, which reads as no targets (and `multicast` true).
    #[serde(default)]
    pub unicast: UnicastInfo,
}

/// The agent's unicast side, as `/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnicastInfo {
    /// It joins the group and sends to it (not `--no-multicast`).
    pub multicast: bool,
    /// The UDP port beacons go out from and unicast arrives on, while the socket is open.
    #[serde(default)]
    pub port: Option<u16>,
    /// Every address each beacon goes to besides the group, as `ip:port`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Each `--peers-dns` name, and each name in `--peer`, with its latest answer.
    #[serde(default)]
    pub names: Vec<NameInfo>,
    /// Beacons sent by unicast: to targets, and answers to newcomers.
    #[serde(default)]
    pub sent: u64,
    /// Datagrams that came by unicast, whatever became of them (refusals are under
    /// `refused.unicast`).
    #[serde(default)]
    pub received: u64,
    /// Beacons heard both on the group and by unicast: the second copy changed nothing.
    #[serde(default)]
    pub duplicates: u64,
    /// Newcomers answered by unicast, one beacon each (`early_answers` counts the group's).
    #[serde(default)]
    pub answers: u64,
}

impl Default for UnicastInfo {
    fn default() -> UnicastInfo {
        UnicastInfo {
            multicast: true,
            port: None,
            targets: Vec::new(),
            names: Vec::new(),
            sent: 0,
            received: 0,
            duplicates: 0,
            answers: 0,
        }
    }
}

/// One name the agent resolves, with its latest answer.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameInfo {
    /// `NAME:PORT` as given.
    pub name: String,
    /// `peers-dns` or `peer`: the flag it came from.
    pub from: String,
    /// The addresses of its latest answer that named any, kept through errors.
    pub addresses: Vec<String>,
    /// How long ago an answer last named addresses; `null` before the first.
    pub resolved_ms_ago: Option<u64>,
    /// How long ago it was last asked, whatever the answer.
    pub asked_ms_ago: Option<u64>,
    /// The latest attempt's error, until an answer names addresses again.
    pub error: Option<String>,
}

/// The agent is not sending: for how long, and why.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotSendingInfo {
    /// How long ago the last beacon went out or, if none did since it started (or was stopped
    /// with nothing failing), since then.
    pub since_ms_ago: u64,
    /// The last failure: `cannot open the multicast socket: ...` or `cannot send a beacon: ...`.
    pub reason: String,
}

impl From<&NotSending> for NotSendingInfo {
    fn from(not_sending: &NotSending) -> NotSendingInfo {
        NotSendingInfo {
            since_ms_ago: millis(not_sending.since),
            reason: not_sending.reason.clone(),
        }
    }
}

/// The one line `/healthz`, `peerd health` and `peerd doctor` give.
impl fmt::Display for NotSendingInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = humantime::format_duration(Duration::from_millis(self.since_ms_ago));
        write!(f, "no beacon sent for {since}: {}", self.reason)
    }
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
    /// Unsigned, by unicast, from an address that is no `--peer` or `--peers-dns` target.
    #[serde(default)]
    pub unicast: u64,
}

impl RefusedCounts {
    /// Each count with the name `/v1/status` and `/metrics` give its reason.
    pub fn by_reason(&self) -> [(&'static str, u64); 10] {
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
            ("unicast", self.unicast),
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
            unicast,
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
            unicast,
        }
    }
}

/// One interface an agent announces on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub name: String,
    pub index: u32,
    /// The IPv4 address its group beacons go out from, if it has one.
    pub ipv4: Option<String>,
    /// Its IPv6 address, if beacons go to the IPv6 group on it.
    pub ipv6: Option<String>,
}

impl From<&Joined> for InterfaceInfo {
    fn from(joined: &Joined) -> InterfaceInfo {
        InterfaceInfo {
            name: joined.name.clone(),
            index: joined.index,
            ipv4: joined.v4.map(|a| a.to_string()),
            ipv6: joined.v6.map(|a| scoped(a, &joined.name)),
        }
    }
}

/// An IPv6 address as `ip` and `ping` take it: a link-local one with its interface.
pub fn scoped(address: Ipv6Addr, interface: &str) -> String {
    if address.is_unicast_link_local() {
        format!("{address}%{interface}")
    } else {
        address.to_string()
    }
}

/// The addresses the agent announces from, IPv4 first; before it joins any interface, what
/// `--interface` names (or `none yet`).
fn interface_line(config: &Settings, joined: &[Joined]) -> String {
    let v4 = joined.iter().filter_map(|j| j.v4.map(|a| a.to_string()));
    let v6 = joined
        .iter()
        .filter_map(|j| j.v6.map(|a| scoped(a, &j.name)));
    let addresses: Vec<String> = v4.chain(v6).collect();
    if !addresses.is_empty() {
        return addresses.join(", ");
    }
    let given: Vec<String> = config.interfaces().iter().map(ToString::to_string).collect();
    match given.is_empty() {
        true => "none yet".to_owned(),
        false => given.join(", "),
    }
}

impl AgentStatus {
    /// The status of the agent running `config` as `instance`, from the `figures` its
    /// discovery instance reported, what the `hooks` did and the `api`'s own counts.
    pub fn new(
        config: &Settings,
        instance: u64,
        figures: &Figures,
        hooks: HookCounts,
        api: ApiCounts,
    ) -> AgentStatus {
        let node = &figures.node;
        let refused = RefusedCounts::from(node.refused);
        AgentStatus {
            hostname: config.hostname().to_owned(),
            instance: format_instance(instance),
            group: config.group().to_string(),
            interface: interface_line(config, &figures.interfaces),
            group6: config.group6().to_string(),
            interfaces: figures.interfaces.iter().map(InterfaceInfo::from).collect(),
            interval_ms: millis(config.interval()),
            ttl_ms: millis(config.ttl()),
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
            max_peers: config.max_peers(),
            key_ids: config.key_ids(),
            accept_unauthenticated: config.accept_unauthenticated(),
            hostname_conflict: node.impostor.map(|impostor| ConflictInfo {
                address: shown(impostor.address),
                instance: format_instance(impostor.instance),
                last_seen_ms_ago: millis(figures.at.saturating_duration_since(impostor.last_seen)),
            }),
            stalls: node.stalls,
            socket_reopens: figures.socket.reopens,
            last_beacon_sent_ms_ago: figures.sending.last_sent.map(millis),
            not_sending: figures
                .sending
                .not_sending
                .as_ref()
                .map(NotSendingInfo::from),
            events: figures.events,
            hooks,
            api,
            unicast: UnicastInfo {
                multicast: config.multicast(),
                port: figures.unicast_port,
                targets: figures.targets.iter().map(ToString::to_string).collect(),
                names: figures
                    .names
                    .iter()
                    .map(|name| NameInfo {
                        name: name.target.to_string(),
                        from: if name.dns { "peers-dns" } else { "peer" }.to_owned(),
                        addresses: name.addresses.iter().map(ToString::to_string).collect(),
                        resolved_ms_ago: name
                            .resolved_at
                            .map(|at| millis(figures.at.saturating_duration_since(at))),
                        asked_ms_ago: name
                            .asked_at
                            .map(|at| millis(figures.at.saturating_duration_since(at))),
                        error: name.error.clone(),
                    })
                    .collect(),
                sent: node.unicast_sent,
                received: node.unicast_received,
                duplicates: node.duplicates,
                answers: node.unicast_answers,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::Config;
    use crate::status::{Impostor, NodeStats, Sending, SocketStats};

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
    fn an_older_agents_status_reads_as_sending() {
        let mut json = serde_json::to_value(AgentStatus::default()).expect("a status serializes");
        let fields = json.as_object_mut().expect("an object");
        for field in ["not_sending", "last_beacon_sent_ms_ago"] {
            assert!(fields.remove(field).is_some(), "{field} is in the status");
        }
        let read: AgentStatus = serde_json::from_value(json).expect("it still parses");
        assert_eq!(
            (read.not_sending, read.last_beacon_sent_ms_ago),
            (None, None)
        );
    }

    #[test]
    fn an_agent_not_sending_says_for_how_long_and_why_in_one_line() {
        let config = Settings::new(Config::new("node-1", Ipv4Addr::LOCALHOST).into());
        let figures = Figures {
            sending: Sending {
                last_sent: Some(Duration::from_millis(40_250)),
                not_sending: Some(NotSending {
                    since: Duration::from_millis(40_250),
                    reason: "cannot send a beacon: Network is unreachable (os error 101)".into(),
                }),
            },
            ..Figures::zero(Instant::now())
        };
        let status = AgentStatus::new(&config, 1, &figures, HookCounts::default(), ApiCounts::default());
        assert_eq!(status.last_beacon_sent_ms_ago, Some(40_250));
        let not_sending = status.not_sending.expect("not sending");
        assert_eq!(
            not_sending.to_string(),
            "no beacon sent for 40s 250ms: cannot send a beacon: Network is unreachable (os error 101)"
        );
        let json = serde_json::to_value(&not_sending).expect("serializes");
        assert_eq!(json["since_ms_ago"], 40_250);
        let zero = Figures::zero(Instant::now());
        let sending = AgentStatus::new(&config, 1, &zero, HookCounts::default(), ApiCounts::default());
        assert_eq!(sending.not_sending, None);
    }

    #[test]
    fn the_figures_of_every_task_land_in_one_status() {
        let at = Instant::now();
        let config = Settings::new(Config::new("node-1", Ipv4Addr::LOCALHOST).into());
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
            sending: Sending::default(),
            events: EventCounts {
                joined: 3,
                ..EventCounts::default()
            },
            targets: vec![SocketAddr::from(([10, 0, 0, 7], 24901))],
            names: Vec::new(),
            unicast_port: Some(24901),
            interfaces: Vec::new(),
        };
        let api = ApiCounts {
            requests: 7,
            ..ApiCounts::default()
        };
        let hooks = HookCounts {
            runs: 3,
            ..HookCounts::default()
        };
        let status = AgentStatus::new(&config, 1, &figures, hooks, api);
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
