//! A subscriber's view of the peers: a snapshot, then each change in order, and a fresh
//! snapshot, announced by `Lagged`, whenever it fell too far behind to be given every change.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, oneshot};

use crate::engine::query::{Query, Start, Subscription};
use crate::engine::{Event, Snapshot};

/// What a subscriber is told, in this order: a [`Snapshot`](Change::Snapshot), then each
/// [`Event`](Change::Event) as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Every live peer at one moment. The events that follow are those after it, each once:
    /// a list replaced by the snapshot and kept by the events is exact.
    Snapshot(Snapshot),
    /// One change, numbered one above the change (or the snapshot) before it.
    Event(Arc<Event>),
    /// The subscriber fell more than [`SUBSCRIBER_LAG`](crate::SUBSCRIBER_LAG) events behind:
    /// a fresh [`Snapshot`](Change::Snapshot) follows at once, then the events after it.
    /// Replace what you kept with that snapshot.
    Lagged {
        /// How many events the snapshot stands for: those since the last change given, which
        /// the subscriber will not be given one by one.
        missed: u64,
    },
}

/// A subscription to an instance's peers and their changes, from
/// [`Discovery::subscribe`](crate::Discovery::subscribe).
///
/// It starts with a snapshot taken when it was made, then gives every change in order with
/// none skipped and none twice. The instance never waits for a subscriber: one that does not
/// read holds at most [`SUBSCRIBER_LAG`](crate::SUBSCRIBER_LAG) events, then falls behind and
/// is told so with [`Change::Lagged`] and a fresh snapshot when it reads again. Memory stays
/// bounded however long it sleeps.
///
/// A list kept in sync replaces its contents at each snapshot and applies each event:
///
/// ```no_run
/// # async fn keep(discovery: peerd::Discovery) {
/// use std::collections::BTreeMap;
/// use peerd::Change;
///
/// let mut peers = BTreeMap::new();
/// let mut changes = discovery.subscribe();
/// while let Some(change) = changes.next().await {
///     match change {
///         Change::Snapshot(snapshot) => {
///             peers = snapshot.peers.into_iter().map(|p| (p.hostname.clone(), p)).collect();
///         }
///         Change::Event(event) if event.kind.lists_the_peer() => {
///             peers.insert(event.peer.hostname.clone(), event.peer.clone());
///         }
///         Change::Event(event) => {
///             peers.remove(&event.peer.hostname);
///         }
///         _ => {} // Lagged: the snapshot that follows replaces the list
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Changes {
    queries: mpsc::Sender<Query>,
    /// The subscription asked for at once, while the answer is awaited.
    asked: Option<oneshot::Receiver<Subscription>>,
    /// What to ask for when no subscription is asked for or live: the events after this id.
    after: Option<u64>,
    queued: VecDeque<Change>,
    events: Option<broadcast::Receiver<Arc<Event>>>,
    /// Set when it fell behind, to the id of the last change given before: the `Lagged` to
    /// put before the next snapshot.
    lagged_after: Option<u64>,
    ended: bool,
}

impl Changes {
    pub(super) fn new(queries: mpsc::Sender<Query>, after: Option<u64>) -> Changes {
        // Asked now rather than at the first `next`, so the snapshot is of the moment of
        // subscribing; if the queue is full, the first `next` asks.
        let (reply, answer) = oneshot::channel();
        let asked = queries
            .try_send(Query::Subscribe { after, reply })
            .ok()
            .map(|()| answer);
        Changes {
            queries,
            asked,
            after,
            queued: VecDeque::new(),
            events: None,
            lagged_after: None,
            ended: false,
        }
    }

    /// The next change; `None` once the instance has stopped.
    ///
    /// Cancel safe: a `next` dropped before it returns loses no change.
    pub async fn next(&mut self) -> Option<Change> {
        loop {
            if let Some(change) = self.queued.pop_front() {
                match &change {
                    Change::Snapshot(snapshot) => self.after = Some(snapshot.id),
                    Change::Event(event) => self.after = Some(event.id),
                    Change::Lagged { .. } => {}
                }
                return Some(change);
            }
            if self.ended {
                return None;
            }
            let Some(events) = &mut self.events else {
                self.start().await;
                continue;
            };
            match events.recv().await {
                Ok(event) => {
                    self.after = Some(event.id);
                    return Some(Change::Event(event));
                }
                Err(RecvError::Closed) => self.ended = true,
                Err(RecvError::Lagged(_)) => {
                    // Too slow to keep up: start again from a fresh snapshot rather than skip,
                    // and say how many events it stands for (kept here, not on the stack, so
                    // a `next` cancelled while the snapshot is asked for loses nothing).
                    self.lagged_after = self.after.take();
                    self.events = None;
                }
            }
        }
    }

    /// Subscribes (or takes the subscription already asked for) and queues where it starts,
    /// after a `Lagged` if it starts again after one; ends the changes if the instance has
    /// stopped. Cancel safe: the question asked stays asked until its answer is read.
    async fn start(&mut self) {
        if self.asked.is_none() {
            let (reply, answer) = oneshot::channel();
            let after = self.after;
            if self
                .queries
                .send(Query::Subscribe { after, reply })
                .await
                .is_err()
            {
                self.ended = true;
                return;
            }
            self.asked = Some(answer);
        }
        let Some(answer) = &mut self.asked else {
            return;
        };
        let answered = answer.await;
        self.asked = None;
        let Ok(subscription) = answered else {
            self.ended = true;
            return;
        };
        match subscription.start {
            Start::Missed(missed) => self.queued.extend(missed.into_iter().map(Change::Event)),
            Start::Snapshot(snapshot) => {
                if let Some(last) = self.lagged_after.take() {
                    let missed = snapshot.id.saturating_sub(last);
                    self.queued.push_back(Change::Lagged { missed });
                }
                self.queued.push_back(Change::Snapshot(snapshot));
            }
        }
        self.events = Some(subscription.events);
    }
}
