//! What the API asks of the task that owns the registry, and the answers: a request on a channel
//! with a one-shot reply, served between two datagrams. The handlers never touch the registry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::types::{EventCounts, HookCounts, PeerChange, PeerInfo, Snapshot};
use crate::net::keeper::{Sending, SocketStats};
use crate::node::NodeStats;

/// A question to the registry's owner; each carries its reply channel.
#[derive(Debug)]
pub enum Query {
    /// The live peers, sorted by hostname.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// What the agent's tasks counted, for the status.
    Status(oneshot::Sender<Figures>),
    /// Subscribe to the events after the given id of this agent instance, or from a snapshot.
    Subscribe {
        after: Option<(u64, u64)>,
        reply: oneshot::Sender<Subscription>,
    },
}

/// What the agent's tasks counted, as of `at`; the status adds the settings and the API's own
/// counts ([`AgentStatus::new`](super::AgentStatus::new)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub at: Instant,
    pub uptime: Duration,
    pub node: NodeStats,
    pub socket: SocketStats,
    /// Whether the beacons go out: the status says it, the health check fails on it.
    pub sending: Sending,
    pub events: EventCounts,
    pub hooks: HookCounts,
    /// The unicast targets now, and each name with its latest answer.
    pub targets: Vec<std::net::SocketAddr>,
    pub names: Vec<crate::node::targets::Name>,
    /// The port the unicast socket is bound to, while it is open.
    pub unicast_port: Option<u16>,
    /// The interfaces the groups are joined on.
    pub interfaces: Vec<crate::net::selection::Joined>,
}

#[cfg(test)]
impl Figures {
    /// The figures of an agent that has counted nothing, as of `at`.
    pub(crate) fn zero(at: Instant) -> Figures {
        Figures {
            at,
            uptime: Duration::ZERO,
            node: NodeStats::default(),
            socket: SocketStats::default(),
            sending: Sending::default(),
            events: EventCounts::default(),
            hooks: HookCounts::default(),
            targets: Vec::new(),
            names: Vec::new(),
            unicast_port: None,
            interfaces: Vec::new(),
        }
    }
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

/// A handler's failure: the status and a one-line body.
pub(crate) type ApiError = (StatusCode, &'static str);

pub(crate) const UNAVAILABLE: ApiError =
    (StatusCode::SERVICE_UNAVAILABLE, "agent is shutting down\n");

/// Asks the registry's owner and waits for its answer; 503 once it has stopped.
pub(crate) async fn ask<T>(
    queries: &mpsc::Sender<Query>,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    queries.send(make(reply)).await.map_err(|_| UNAVAILABLE)?;
    answer.await.map_err(|_| UNAVAILABLE)
}
