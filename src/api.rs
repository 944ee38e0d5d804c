//! The local HTTP/JSON API: response types shared with the CLI client, and a thin axum router.
//! Handlers only ask the receive task for a snapshot and serialize it; they never hold state.

use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::registry::Peer;

pub const PEERS_PATH: &str = "/v1/peers";
pub const STATUS_PATH: &str = "/v1/status";
pub const HEALTH_PATH: &str = "/healthz";

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
}

impl PeerInfo {
    /// Describes `peer` as of `now`, the instant at which the wall clock read `wall_now`.
    pub fn new(peer: &Peer, now: Instant, wall_now: SystemTime) -> Self {
        let ago = |at: Instant| now.saturating_duration_since(at);
        let wall = |at: Instant| {
            let at = wall_now.checked_sub(ago(at)).unwrap_or(wall_now);
            humantime::format_rfc3339_millis(at).to_string()
        };
        PeerInfo {
            hostname: peer.hostname.clone(),
            address: peer.address.ip().to_string(),
            instance: format_instance(peer.instance),
            sequence: peer.sequence,
            first_seen: wall(peer.first_seen),
            last_seen: wall(peer.last_seen),
            last_seen_ms_ago: millis(ago(peer.last_seen)),
            expires_in_ms: millis(peer.deadline.saturating_duration_since(now)),
            up_for_ms: millis(ago(peer.first_seen)),
        }
    }
}

/// The agent itself, as `GET /v1/status` and `peerd health --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Valid beacons from other agents.
    pub beacons_received: u64,
    /// Our own beacons looped back by the kernel: proof the socket hears the group.
    pub own_beacons_received: u64,
    /// Datagrams on the port that were not valid beacons (foreign, truncated, bad version...).
    pub datagrams_ignored: u64,
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
}

/// The routes, served over `queries` to the registry's owner.
pub fn router(queries: mpsc::Sender<Query>) -> Router {
    Router::new()
        .route(PEERS_PATH, get(peers))
        .route(STATUS_PATH, get(status))
        .route(HEALTH_PATH, get(health))
        .with_state(queries)
}

type ApiError = (StatusCode, &'static str);

const UNAVAILABLE: ApiError = (StatusCode::SERVICE_UNAVAILABLE, "agent is shutting down\n");

async fn ask<T>(
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
            group: "239.255.49.1:49001".into(),
            interface: "127.0.0.1".into(),
            interval_ms: 15_000,
            ttl_ms: 35_000,
            peers: 0,
            uptime_ms: 0,
            beacons_sent: 0,
            beacons_received: 0,
            own_beacons_received: 0,
            datagrams_ignored: 0,
        }
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
