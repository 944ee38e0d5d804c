//! `GET /v1/events`: the event stream as Server-Sent Events, one `Feed` per subscriber. The
//! funnel (`events`) decides what happened; this only turns it into messages on the wire.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::query::{ApiError, Query, Start, Subscription, ask};
use super::types::PeerChange;
use crate::wire::beacon::format_instance;

/// A comment line this often keeps an idle stream's proxies and clients from timing it out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The stream's id of event `id` of agent `instance`: `<instance>-<id>`.
pub fn stream_id(instance: u64, id: u64) -> String {
    format!("{}-{id}", format_instance(instance))
}

/// Reads a stream id back; `None` for anything else (a client's guess, another program's id).
pub fn parse_stream_id(text: &str) -> Option<(u64, u64)> {
    let (instance, id) = text.trim().split_once('-')?;
    Some((u64::from_str_radix(instance, 16).ok()?, id.parse().ok()?))
}

/// `GET /v1/events`: Server-Sent Events. First a `snapshot` of every live peer (or, for a client
/// that sends `Last-Event-ID`, the events it missed while they are still kept), then each event
/// as it happens. A subscriber that falls too far behind gets a `resync` snapshot, never a gap.
/// The stream ends when the agent stops.
pub async fn events(
    State(queries): State<mpsc::Sender<Query>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_stream_id);
    let subscription = ask(&queries, |reply| Query::Subscribe { after, reply }).await?;
    let feed = Feed::new(subscription, "snapshot", queries);
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One subscriber's stream: what is queued to send, then the live events.
struct Feed {
    instance: u64,
    queued: VecDeque<SseEvent>,
    events: broadcast::Receiver<Arc<PeerChange>>,
    queries: mpsc::Sender<Query>,
}

impl Feed {
    /// Starts with `subscription`'s start; a snapshot goes out as an event named `snapshot_name`.
    fn new(subscription: Subscription, snapshot_name: &str, queries: mpsc::Sender<Query>) -> Feed {
        let instance = subscription.instance;
        let queued = match subscription.start {
            Start::Missed(changes) => changes
                .iter()
                .map(|change| change_event(instance, change))
                .collect(),
            Start::Snapshot(snapshot) => {
                let event = SseEvent::default()
                    .id(stream_id(instance, snapshot.id))
                    .event(snapshot_name)
                    .json_data(&snapshot)
                    .expect("a snapshot serializes to JSON");
                VecDeque::from([event])
            }
        };
        Feed {
            instance,
            queued,
            events: subscription.events,
            queries,
        }
    }

    /// The next message, or `None` once the agent stops.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.queued.pop_front() {
                return Some(event);
            }
            match self.events.recv().await {
                Ok(change) => return Some(change_event(self.instance, &change)),
                Err(RecvError::Closed) => return None,
                // Too slow to keep up: start again from a fresh snapshot rather than skip.
                Err(RecvError::Lagged(_)) => {
                    let queries = self.queries.clone();
                    let again = ask(&queries, |reply| Query::Subscribe { after: None, reply });
                    *self = Feed::new(again.await.ok()?, "resync", queries);
                }
            }
        }
    }
}

fn change_event(instance: u64, change: &PeerChange) -> SseEvent {
    SseEvent::default()
        .id(stream_id(instance, change.id))
        .event(change.event.as_str())
        .json_data(change)
        .expect("a peer change serializes to JSON")
}
