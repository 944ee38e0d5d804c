//! `GET /v1/events`: the event stream as Server-Sent Events, one `Feed` per subscriber. The
//! funnel (`events`) decides what happened; this only turns it into messages on the wire.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;

use super::types::{PeerChange, Snapshot};
use crate::clock::{now, wall_now};
use crate::wire::beacon::format_instance;
use crate::{Change, Changes, Discovery};

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
    State(discovery): State<Arc<Discovery>>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let instance = discovery.instance();
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_stream_id)
        .filter(|(of, _)| *of == instance);
    let changes = match after {
        Some((_, id)) => discovery.subscribe_after(id),
        None => discovery.subscribe(),
    };
    let feed = Feed {
        instance,
        changes,
        snapshot_name: "snapshot",
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One subscriber's stream: the instance's changes, as messages.
struct Feed {
    instance: u64,
    changes: Changes,
    /// What the next snapshot is called: `snapshot` first, `resync` after a fall behind.
    snapshot_name: &'static str,
}

impl Feed {
    /// The next message, or `None` once the agent stops.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            match self.changes.next().await? {
                Change::Event(event) => {
                    let change = PeerChange::new(&event, now(), wall_now());
                    return Some(change_event(self.instance, &change));
                }
                Change::Snapshot(snapshot) => {
                    let snapshot = Snapshot::new(&snapshot, now(), wall_now());
                    let event = SseEvent::default()
                        .id(stream_id(self.instance, snapshot.id))
                        .event(self.snapshot_name)
                        .json_data(&snapshot)
                        .expect("a snapshot serializes to JSON");
                    return Some(event);
                }
                // Too slow to keep up: the fresh snapshot that follows says so.
                Change::Lagged { .. } => self.snapshot_name = "resync",
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
