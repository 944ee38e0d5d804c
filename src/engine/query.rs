//! What a handle asks of the task that owns the registry, and the answers: a request on a
//! channel with a one-shot reply, served between two datagrams. Nothing else touches the
//! registry.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::event::Event;
use super::peer::Peer;
use super::status::Status;
use super::Snapshot;

/// Queries waiting for the receiver: the callers wait their turn beyond it.
pub(crate) const QUERIES: usize = 16;

/// A question to the registry's owner; each carries its reply channel.
#[derive(Debug)]
pub(crate) enum Query {
    /// The live peers, sorted by hostname.
    Peers(oneshot::Sender<Vec<Peer>>),
    /// What the tasks counted.
    Status(oneshot::Sender<Status>),
    /// Subscribe to the events after the given id, or from a snapshot.
    Subscribe {
        after: Option<u64>,
        reply: oneshot::Sender<Subscription>,
    },
}

/// What a new subscriber gets, atomically: where to start, and every event after that.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub start: Start,
    pub events: broadcast::Receiver<Arc<Event>>,
}

#[derive(Debug)]
pub(crate) enum Start {
    /// The events missed since the id the subscriber gave.
    Missed(Vec<Arc<Event>>),
    /// Every live peer: for a new subscriber, or one whose missed events are no longer kept.
    Snapshot(Snapshot),
}

/// The registry's owner has stopped: the instance was shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// Asks the registry's owner and waits for its answer.
pub(crate) async fn ask<T>(
    queries: &mpsc::Sender<Query>,
    make: impl FnOnce(oneshot::Sender<T>) -> Query,
) -> Result<T, Gone> {
    let (reply, answer) = oneshot::channel();
    queries.send(make(reply)).await.map_err(|_| Gone)?;
    answer.await.map_err(|_| Gone)
}
