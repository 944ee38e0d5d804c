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
use tokio::sync::mpsc;

use super::metrics::{self, METRICS_PATH};
use super::query::{ApiError, Query, ask};
use super::server::ApiCounters;
use super::status::{AgentStatus, NotSendingInfo};
use super::types::PeerInfo;
use super::{page, stream};
use crate::config::Config;

pub const PEERS_PATH: &str = "/v1/peers";
pub const STATUS_PATH: &str = "/v1/status";
pub const HEALTH_PATH: &str = "/healthz";
pub const EVENTS_PATH: &str = "/v1/events";

/// What the handlers are given: the way to the registry's owner, and what the status adds to
/// its figures.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub queries: mpsc::Sender<Query>,
    /// The agent's settings: the status names them.
    pub config: Arc<Config>,
    /// The agent's instance id.
    pub instance: u64,
    /// The API's own counts, which the status shows (the `--metrics` listener counts apart).
    pub counters: Arc<ApiCounters>,
    /// When the agent started, by the wall clock: read once, so the metric never moves.
    pub started: SystemTime,
}

// Handlers that need only the queries take only them.
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
    State(queries): State<mpsc::Sender<Query>>,
) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    ask(&queries, Query::Peers).await.map(Json)
}

async fn agent_status(state: &ApiState) -> Result<AgentStatus, ApiError> {
    let figures = ask(&state.queries, Query::Status).await?;
    let api = state.counters.snapshot();
    Ok(AgentStatus::new(
        &state.config,
        state.instance,
        &figures,
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
    State(queries): State<mpsc::Sender<Query>>,
) -> Result<&'static str, (StatusCode, String)> {
    let unavailable = |message: String| (StatusCode::SERVICE_UNAVAILABLE, message);
    let figures = match tokio::time::timeout(HEALTH_TIMEOUT, ask(&queries, Query::Status)).await {
        Ok(answer) => answer.map_err(|(code, message)| (code, message.to_owned()))?,
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
    use crate::api::query::{Figures, UNAVAILABLE};
    use crate::net::keeper::NotSending;

    /// A receive loop that answers one status query with `figures`.
    fn answering(figures: Figures) -> mpsc::Sender<Query> {
        let (queries, mut loop_side) = mpsc::channel(1);
        tokio::spawn(async move {
            if let Some(Query::Status(reply)) = loop_side.recv().await {
                let _ = reply.send(figures);
            }
        });
        queries
    }

    #[tokio::test]
    async fn health_is_ok_while_the_receive_loop_answers() {
        let queries = answering(Figures::zero(Instant::now()));
        assert_eq!(health(State(queries)).await, Ok("ok\n"));
    }

    #[tokio::test]
    async fn health_fails_with_the_reason_while_the_agent_is_not_sending() {
        let mut figures = Figures::zero(Instant::now());
        figures.sending.not_sending = Some(NotSending {
            since: Duration::from_millis(1500),
            reason: "cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use (os error 98)".into(),
        });
        let (code, message) = health(State(answering(figures))).await.unwrap_err();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            message,
            "no beacon sent for 1s 500ms: cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use (os error 98)\n"
        );
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
        let (code, message) = UNAVAILABLE;
        assert_eq!(
            health(State(queries)).await,
            Err((code, message.to_owned()))
        );
    }
}
