//! The local HTTP/JSON API: response types shared with the CLI client, and a thin axum router.
//! Handlers only ask the receive task for a snapshot and serialize it; they never hold state.

pub mod client;
mod connections;
pub mod metrics;
pub mod page;
pub mod server;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

use self::metrics::METRICS_PATH;
use crate::registry::{Peer, PeerEvent};
use crate::wire::tags::Tags;

pub const PEERS_PATH: &str = "/v1/peers";
pub const STATUS_PATH: &str = "/v1/status";
pub const HEALTH_PATH: &str = "/healthz";
pub const EVENTS_PATH: &str = "/v1/events";

/// One live peer, as `GET /v1/peers` and `peerd peers --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub hostname: String,
    /// IP address its beacons come from.
    pub address: String,
    /// Instance id as 16 hex digits (a string: JSON numbers lose precision past 2^53).
    pub instance: String,
    /// Sequence number of its latest beacon.
    pub sequence: u64,
    /// RFC 3339, UTC: when this instance was first heard.
    pub first_seen: String,
    /// RFC 3339, UTC: when its latest beacon was heard.
    pub last_seen: String,
    pub last_seen_ms_ago: u64,
    /// Until it is dropped, unless another beacon arrives first.
    pub expires_in_ms: u64,
    /// Since `first_seen`.
    pub up_for_ms: u64,
    /// How long it stays listed after each beacon (its own ttl, as its beacons say).
    #[serde(default)]
    pub ttl_ms: u64,
    /// Its beacons are signed with a key this agent holds.
    #[serde(default)]
    pub authenticated: bool,
    /// The tags its latest beacon carried (`--tag KEY=VALUE` on that node).
    #[serde(default)]
    pub tags: Tags,
    /// Another live instance announcing the same hostname, while there is one.
    #[serde(default)]
    pub conflict: Option<ConflictInfo>,
}

/// The other instance of a hostname that two live instances announce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictInfo {
    pub address: String,
    pub instance: String,
    pub last_seen_ms_ago: u64,
}

impl PeerInfo {
    /// Describes `peer` as of `now`, the instant at which the wall clock read `wall_now`.
    pub fn new(peer: &Peer, now: Instant, wall_now: SystemTime) -> Self {
        let ago = |at: Instant| now.saturating_duration_since(at);
        let wall = |at: Instant| {
            let at = wall_now.checked_sub(ago(at)).unwrap_or(wall_now);
            humantime::format_rfc3339_millis(at).to_string()
        };
        let first_seen = wall(peer.first_seen);
        // A joined peer was first and last seen at once: formatting a time is most of what
        // describing an event costs, so the same instant is formatted once.
        let last_seen = if peer.last_seen == peer.first_seen {
            first_seen.clone()
        } else {
            wall(peer.last_seen)
        };
        PeerInfo {
            hostname: peer.hostname.clone(),
            address: peer.address.ip().to_string(),
            instance: format_instance(peer.instance),
            sequence: peer.sequence,
            first_seen,
            last_seen,
            last_seen_ms_ago: millis(ago(peer.last_seen)),
            expires_in_ms: millis(peer.deadline.saturating_duration_since(now)),
            up_for_ms: millis(ago(peer.first_seen)),
            ttl_ms: millis(peer.ttl),
            authenticated: peer.authenticated,
            tags: peer.tags.clone(),
            conflict: peer.conflict(now).map(|rival| ConflictInfo {
                address: rival.address.ip().to_string(),
                instance: format_instance(rival.instance),
                last_seen_ms_ago: millis(ago(rival.last_seen)),
            }),
        }
    }
}

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

/// What the `--on-event` programs did since the agent started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookCounts {
    /// Programs started (one per program per event).
    pub runs: u64,
    /// Runs that could not start or exited non-zero.
    pub failures: u64,
    /// Runs killed at the timeout.
    pub timeouts: u64,
    /// Events that never reached the hooks: they fell too far behind.
    pub dropped: u64,
}

/// What happened to a peer, as the event stream, `peerd watch` and `peerd wait` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A hostname not listed was heard: new, or back after it expired.
    Joined,
    /// A listed peer's beacons come from another address.
    Moved,
    /// A hostname is announced by a new process (a new instance id).
    Restarted,
    /// A peer said goodbye.
    Left,
    /// A peer went silent for a whole ttl.
    Expired,
    /// Two live instances announce the peer's hostname (see `peer.conflict`).
    Conflict,
    /// A listed peer's tags changed (see `old_tags`).
    Updated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Joined => "joined",
            EventKind::Moved => "moved",
            EventKind::Restarted => "restarted",
            EventKind::Left => "left",
            EventKind::Expired => "expired",
            EventKind::Conflict => "conflict",
            EventKind::Updated => "updated",
        }
    }

    /// Whether the peer is listed after an event of this kind.
    pub fn lists_the_peer(self) -> bool {
        !matches!(self, EventKind::Left | EventKind::Expired)
    }
}

/// Peer events since the agent started, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub joined: u64,
    pub moved: u64,
    pub restarted: u64,
    pub left: u64,
    pub expired: u64,
    pub conflict: u64,
    #[serde(default)]
    pub updated: u64,
}

impl EventCounts {
    /// Each count with the name of its kind, as the event stream gives it.
    pub fn by_kind(&self) -> [(&'static str, u64); 7] {
        [
            (EventKind::Joined.as_str(), self.joined),
            (EventKind::Moved.as_str(), self.moved),
            (EventKind::Restarted.as_str(), self.restarted),
            (EventKind::Left.as_str(), self.left),
            (EventKind::Expired.as_str(), self.expired),
            (EventKind::Conflict.as_str(), self.conflict),
            (EventKind::Updated.as_str(), self.updated),
        ]
    }

    pub fn count(&mut self, kind: EventKind) {
        let counter = match kind {
            EventKind::Joined => &mut self.joined,
            EventKind::Moved => &mut self.moved,
            EventKind::Restarted => &mut self.restarted,
            EventKind::Left => &mut self.left,
            EventKind::Expired => &mut self.expired,
            EventKind::Conflict => &mut self.conflict,
            EventKind::Updated => &mut self.updated,
        };
        *counter += 1;
    }
}

/// One change in membership: the one JSON shape of the event stream and `peerd watch --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerChange {
    /// Counts up from 1 each time the agent starts.
    pub id: u64,
    pub event: EventKind,
    /// RFC 3339, UTC.
    pub time: String,
    /// The peer after the change; for `left` and `expired`, as it was last listed.
    pub peer: PeerInfo,
    /// `moved`: the address its beacons came from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_address: Option<String>,
    /// `restarted`: the instance it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_instance: Option<String>,
    /// `updated`, and `restarted` when the new instance announces other tags: its tags before
    /// (`peer.tags` has the new ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_tags: Option<Tags>,
}

impl PeerChange {
    /// Describes `event` as number `id`, as of `now` (when the wall clock read `wall_now`).
    pub fn new(id: u64, event: &PeerEvent, now: Instant, wall_now: SystemTime) -> Self {
        let old_tags = match event {
            PeerEvent::Updated { old_tags, .. } => Some(old_tags.clone()),
            PeerEvent::Restarted { old_tags, .. } => old_tags.clone(),
            _ => None,
        };
        let (kind, old_address, old_instance) = match event {
            PeerEvent::Joined { .. } => (EventKind::Joined, None, None),
            PeerEvent::Updated { .. } => (EventKind::Updated, None, None),
            PeerEvent::Moved { old_address, .. } => {
                (EventKind::Moved, Some(old_address.ip().to_string()), None)
            }
            PeerEvent::Restarted { old_instance, .. } => (
                EventKind::Restarted,
                None,
                Some(format_instance(*old_instance)),
            ),
            PeerEvent::Left { .. } => (EventKind::Left, None, None),
            PeerEvent::Expired { .. } => (EventKind::Expired, None, None),
            PeerEvent::Conflict { .. } => (EventKind::Conflict, None, None),
        };
        let mut peer = PeerInfo::new(event.peer(), now, wall_now);
        if !kind.lists_the_peer() {
            // Gone: it no longer expires.
            peer.expires_in_ms = 0;
        }
        // A beacon's event happens when the peer was last seen: that time is formatted already.
        let time = if event.peer().last_seen == now {
            peer.last_seen.clone()
        } else {
            humantime::format_rfc3339_millis(wall_now).to_string()
        };
        PeerChange {
            id,
            event: kind,
            time,
            peer,
            old_address,
            old_instance,
            old_tags,
        }
    }
}

/// Every live peer at one moment: what the event stream sends first (`snapshot`), and again to
/// a subscriber that fell too far behind (`resync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The id of the latest event it includes; the stream goes on after it.
    pub id: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub peers: Vec<PeerInfo>,
}

/// What a new subscriber gets, atomically: where to start, and every event after that.
#[derive(Debug)]
pub struct Subscription {
    /// The agent's instance: stream ids name it, so a resume never crosses an agent restart.
    pub instance: u64,
    pub start: Start,
    pub events: broadcast::Receiver<Arc<PeerChange>>,
}

#[derive(Debug)]
pub enum Start {
    /// The events missed since the `Last-Event-ID` the client gave.
    Missed(Vec<Arc<PeerChange>>),
    /// Every live peer: for a new client, or one whose missed events are no longer kept.
    Snapshot(Snapshot),
}

pub fn format_instance(instance: u64) -> String {
    format!("{instance:016x}")
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the API asks of the task that owns the registry; each carries its reply channel.
#[derive(Debug)]
pub enum Query {
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Status(oneshot::Sender<AgentStatus>),
    /// Subscribe to the events after the given id of this agent instance, or from a snapshot.
    Subscribe {
        after: Option<(u64, u64)>,
        reply: oneshot::Sender<Subscription>,
    },
}

/// What the handlers are given: the way to the registry's owner, and what `/metrics` adds.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub queries: mpsc::Sender<Query>,
    /// When the agent started, by the wall clock: read once, so the metric never moves.
    pub started: SystemTime,
}

// Handlers that need only the queries take them as before.
impl FromRef<ApiState> for mpsc::Sender<Query> {
    fn from_ref(state: &ApiState) -> Self {
        state.queries.clone()
    }
}

/// The routes, served over `state.queries` to the registry's owner.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(PEERS_PATH, get(peers))
        .route(STATUS_PATH, get(status))
        .route(HEALTH_PATH, get(health))
        .route(EVENTS_PATH, get(crate::api::stream::events))
        .route(METRICS_PATH, get(metrics))
        .route("/", get(crate::api::page::index))
        .route("/app.js", get(crate::api::page::script))
        .route("/app.css", get(crate::api::page::style))
        .with_state(state)
}

/// The routes of `--metrics`: the metrics and the health check, and nothing that lists peers,
/// so a scraper elsewhere can be let in without exposing the API.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new()
        .route(METRICS_PATH, get(metrics))
        .route(HEALTH_PATH, get(health))
        .with_state(state)
}

pub(crate) type ApiError = (StatusCode, &'static str);

const UNAVAILABLE: ApiError = (StatusCode::SERVICE_UNAVAILABLE, "agent is shutting down\n");

pub(crate) async fn ask<T>(
    queries: &mpsc::Sender<Query>,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    queries.send(make(reply)).await.map_err(|_| UNAVAILABLE)?;
    answer.await.map_err(|_| UNAVAILABLE)
}

async fn peers(
    State(queries): State<mpsc::Sender<Query>>,
) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    ask(&queries, Query::Peers).await.map(Json)
}

async fn status(State(queries): State<mpsc::Sender<Query>>) -> Result<Json<AgentStatus>, ApiError> {
    ask(&queries, Query::Status).await.map(Json)
}

async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let status = ask(&state.queries, Query::Status).await?;
    let page = metrics::render(&status, state.started);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], page))
}

/// The receive loop answers a query between two datagrams, in microseconds; past this it is
/// wedged, not busy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Healthy when the receive loop answers a query within [`HEALTH_TIMEOUT`]. This handler runs
/// on the API's task, so without the timeout a wedged receive loop would make the check hang
/// instead of fail. (A task that panics does not go unnoticed either way: the release build
/// aborts on panic, and in a debug build the query channel closes and this answers 503.)
async fn health(State(queries): State<mpsc::Sender<Query>>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(HEALTH_TIMEOUT, ask(&queries, Query::Status)).await {
        Ok(answer) => answer.map(|_| "ok\n"),
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the receive loop did not answer within 1s\n",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> AgentStatus {
        AgentStatus {
            hostname: "node-1".into(),
            instance: format_instance(1),
            group: "239.255.49.1:24901".into(),
            interface: "127.0.0.1".into(),
            interval_ms: 15_000,
            ttl_ms: 35_000,
            peers: 0,
            uptime_ms: 0,
            beacons_sent: 0,
            early_answers: 0,
            beacons_received: 0,
            own_beacons_received: 0,
            datagrams_ignored: 0,
            ..AgentStatus::default()
        }
    }

    #[test]
    fn an_older_agents_status_reads_as_no_connections_closed() {
        let mut json = serde_json::to_value(status()).expect("a status serializes");
        json.as_object_mut().expect("an object").remove("api");
        let read: AgentStatus = serde_json::from_value(json).expect("it still parses");
        assert_eq!(read.api, ApiCounts::default());
    }

    #[tokio::test]
    async fn health_is_ok_while_the_receive_loop_answers() {
        let (queries, mut loop_side) = mpsc::channel(1);
        tokio::spawn(async move {
            if let Some(Query::Status(reply)) = loop_side.recv().await {
                let _ = reply.send(status());
            }
        });
        assert_eq!(health(State(queries)).await, Ok("ok\n"));
    }

    // Paused clock: the timeout elapses as soon as nothing else can run, not after a real second.
    #[tokio::test(start_paused = true)]
    async fn health_fails_when_the_receive_loop_is_wedged() {
        let (queries, _wedged_loop) = mpsc::channel(1);
        let (code, message) = health(State(queries)).await.unwrap_err();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(message.contains("did not answer"), "{message}");
    }

    #[tokio::test]
    async fn health_fails_when_the_receive_loop_is_gone() {
        let (queries, gone_loop) = mpsc::channel(1);
        drop(gone_loop);
        assert_eq!(health(State(queries)).await, Err(UNAVAILABLE));
    }
}
