//! The routes: thin handlers that ask the registry's owner (`query`) and serialize the answer.
//! They hold no state of their own but the API's counters.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::{self, METRICS_PATH};
use super::server::ApiCounters;
use super::status::{AgentStatus, NotSendingInfo};
use super::types::PeerInfo;
use super::{page, stream};
use super::types::HookCounters;
use crate::clock::{now, wall_now};
use crate::{Discovery, Settings, Status};

pub const PEERS_PATH: &str = "/v1/peers";
pub const STATUS_PATH: &str = "/v1/status";
pub const HEALTH_PATH: &str = "/healthz";
pub const EVENTS_PATH: &str = "/v1/events";

/// A handler's failure: the status and a one-line body.
pub(crate) type ApiError = (StatusCode, &'static str);

pub(crate) const UNAVAILABLE: ApiError =
    (StatusCode::SERVICE_UNAVAILABLE, "agent is shutting down\n");

/// What the handlers are given: the discovery instance, and what the status adds to its
/// figures.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub discovery: Arc<Discovery>,
    /// The instance's settings: the status names them.
    pub settings: Settings,
    /// The API's own counts, which the status shows (the `--metrics` listener counts apart).
    pub counters: Arc<ApiCounters>,
    /// What the hooks did.
    pub hooks: Arc<HookCounters>,
    /// When the agent started, by the wall clock: read once, so the metric never moves.
    pub started: SystemTime,
}

// Handlers that need only the instance take only it.
impl FromRef<ApiState> for Arc<Discovery> {
    fn from_ref(state: &ApiState) -> Self {
        Arc::clone(&state.discovery)
    }
}

/// The routes, served over `state.discovery`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(PEERS_PATH, get(peers))
        .route(STATUS_PATH, get(status))
        .route(HEALTH_PATH, get(health))
        .route(EVENTS_PATH, get(stream::events))
        .route(METRICS_PATH, get(metrics))
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
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

async fn peers(
    State(discovery): State<Arc<Discovery>>,
) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    let peers = discovery.peers().await.map_err(|_| UNAVAILABLE)?;
    let (now, wall_now) = (now(), wall_now());
    let peers = peers.iter().map(|peer| PeerInfo::new(peer, now, wall_now));
    Ok(Json(peers.collect()))
}

async fn agent_status(state: &ApiState) -> Result<AgentStatus, ApiError> {
    let figures = state.discovery.status().await.map_err(|_| UNAVAILABLE)?;
    let api = state.counters.snapshot();
    Ok(AgentStatus::new(
        &state.settings,
        state.discovery.instance(),
        &figures,
        state.hooks.snapshot(),
        api,
    ))
}

async fn status(State(state): State<ApiState>) -> Result<Json<AgentStatus>, ApiError> {
    agent_status(&state).await.map(Json)
}

async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let status = agent_status(&state).await?;
    let page = metrics::render(&status, state.started);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], page))
}

/// The receive loop answers a query between two datagrams, in microseconds; past this it is
/// wedged, not busy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Healthy when the receive loop answers a query within [`HEALTH_TIMEOUT`] and the agent's
/// beacons go out: one its peers cannot hear is of no use, however well it answers. 503 with
/// the reason in one line otherwise. This handler runs on the API's task, so without the
/// timeout a wedged receive loop would make the check hang instead of fail. (A task that panics
/// does not go unnoticed either way: the release build aborts on panic, and in a debug build
/// the query channel closes and this answers 503.)
async fn health(
    State(discovery): State<Arc<Discovery>>,
) -> Result<&'static str, (StatusCode, String)> {
    healthy(tokio::time::timeout(HEALTH_TIMEOUT, discovery.status()).await)
}

/// The health check's answer, given how the status query went.
fn healthy(
    answered: Result<Result<Status, crate::Error>, tokio::time::error::Elapsed>,
) -> Result<&'static str, (StatusCode, String)> {
    let unavailable = |message: String| (StatusCode::SERVICE_UNAVAILABLE, message);
    let figures = match answered {
        Ok(Ok(figures)) => figures,
        Ok(Err(_)) => return Err(unavailable(UNAVAILABLE.1.to_owned())),
        Err(_) => {
            return Err(unavailable(
                "the receive loop did not answer within 1s\n".to_owned(),
            ));
        }
    };
    match &figures.sending.not_sending {
        None => Ok("ok\n"),
        Some(not_sending) => Err(unavailable(format!(
            "{}\n",
            NotSendingInfo::from(not_sending)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::status::NotSending;

    #[test]
    fn health_is_ok_while_the_receive_loop_answers() {
        assert_eq!(healthy(Ok(Ok(Status::zero(Instant::now())))), Ok("ok\n"));
    }

    #[test]
    fn health_fails_with_the_reason_while_the_agent_is_not_sending() {
        let mut figures = Status::zero(Instant::now());
        figures.sending.not_sending = Some(NotSending {
            since: Duration::from_millis(1500),
            reason: "cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use (os error 98)".into(),
        });
        let (code, message) = healthy(Ok(Ok(figures))).unwrap_err();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            message,
            "no beacon sent for 1s 500ms: cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use (os error 98)\n"
        );
    }

    // Paused clock: the timeout elapses as soon as nothing else can run, not after a real second.
    #[tokio::test(start_paused = true)]
    async fn health_fails_when_the_receive_loop_is_wedged() {
        let wedged = std::future::pending::<Result<Status, crate::Error>>();
        let answered = tokio::time::timeout(HEALTH_TIMEOUT, wedged).await;
        let (code, message) = healthy(answered).unwrap_err();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(message.contains("did not answer"), "{message}");
    }

    #[test]
    fn health_fails_when_the_receive_loop_is_gone() {
        let (code, message) = UNAVAILABLE;
        assert_eq!(
            healthy(Ok(Err(crate::Error::Stopped))),
            Err((code, message.to_owned()))
        );
    }
}
