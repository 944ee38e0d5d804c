//! The CLI's side of `GET /v1/events`: reads the Server-Sent Events stream into the API's own
//! types, and resumes with `Last-Event-ID` after the agent went away. No printing here.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::api::client;
use crate::api::{EVENTS_PATH, PeerChange, Snapshot};
use crate::wire::tags;

/// Between two attempts to reach an agent that went away.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Every live peer: the first message of a new stream.
    Snapshot(Snapshot),
    /// Every live peer again, after this client fell too far behind or reconnected too late
    /// to be told what it missed.
    Resync(Snapshot),
    /// Boxed: a change is several times the size of the other variants.
    Change(Box<PeerChange>),
}

impl Message {
    /// The peers of a snapshot or a resync; `None` for a change.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        match self {
            Message::Snapshot(snapshot) | Message::Resync(snapshot) => Some(snapshot),
            Message::Change(_) => None,
        }
    }

    /// Brings `live`, the hostnames listed with every tag in `filter`, up to date with this
    /// message.
    pub fn update(self, live: &mut HashSet<String>, filter: &[(String, String)]) {
        match self {
            Message::Snapshot(snapshot) | Message::Resync(snapshot) => {
                *live = snapshot
                    .peers
                    .into_iter()
                    .filter(|p| tags::matches(&p.tags, filter))
                    .map(|p| p.hostname)
                    .collect();
            }
            Message::Change(change)
                if change.event.lists_the_peer() && tags::matches(&change.peer.tags, filter) =>
            {
                live.insert(change.peer.hostname);
            }
            Message::Change(change) => {
                live.remove(&change.peer.hostname);
            }
        }
    }

    /// What of this message concerns peers with every tag in `filter`: the matching peers of a
    /// snapshot, and a change to a peer that matches, or matched before its tags changed (so a
    /// watcher sees it leave the set). `None` when nothing does.
    pub fn filtered(self, filter: &[(String, String)]) -> Option<Message> {
        if filter.is_empty() {
            return Some(self);
        }
        match self {
            Message::Snapshot(mut snapshot) => {
                snapshot.peers.retain(|p| tags::matches(&p.tags, filter));
                Some(Message::Snapshot(snapshot))
            }
            Message::Resync(mut snapshot) => {
                snapshot.peers.retain(|p| tags::matches(&p.tags, filter));
                Some(Message::Resync(snapshot))
            }
            Message::Change(change) => {
                let now = tags::matches(&change.peer.tags, filter);
                let before = change
                    .old_tags
                    .as_ref()
                    .is_some_and(|old| tags::matches(old, filter));
                (now || before).then_some(Message::Change(change))
            }
        }
    }
}

/// An open event stream.
pub struct Stream {
    body: Incoming,
    pending: Vec<u8>,
}

impl Stream {
    /// Opens the stream of the agent at `api`, resuming after `last_event_id` if given.
    pub async fn open(api: SocketAddr, last_event_id: Option<&str>) -> anyhow::Result<Stream> {
        let mut headers = vec![("accept", "text/event-stream")];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        let body = client::open(api, EVENTS_PATH, &headers).await?;
        Ok(Stream {
            body,
            pending: Vec::new(),
        })
    }

    /// The next message with its stream id, or `None` when the agent ended the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<(String, Message)>> {
        loop {
            if let Some(end) = find(&self.pending, b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..end + 2).collect();
                if let Some(message) = parse_block(&String::from_utf8_lossy(&block))? {
                    return Ok(Some(message));
                }
                continue; // a keep-alive comment
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    let frame = frame.context("reading the event stream")?;
                    if let Ok(data) = frame.into_data() {
                        self.pending.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One SSE block (the lines up to a blank line) as a message; `None` for a comment.
fn parse_block(block: &str) -> anyhow::Result<Option<(String, Message)>> {
    let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = value.to_owned(),
            "event" => event = value.to_owned(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {} // comments (keep-alives) and fields this client does not use
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    let context = || format!("decoding a {event:?} event from the agent");
    let message = match event.as_str() {
        "snapshot" => Message::Snapshot(serde_json::from_str(&data).with_context(context)?),
        "resync" => Message::Resync(serde_json::from_str(&data).with_context(context)?),
        _ => Message::Change(Box::new(serde_json::from_str(&data).with_context(context)?)),
    };
    Ok(Some((id, message)))
}

/// What [`Follower::next`] reports: a message, or a change in the connection.
#[derive(Debug)]
pub enum Followed {
    Message(Message),
    /// The agent went away (the reason); the follower keeps trying to reach it.
    Lost(String),
    /// The agent answers again; the stream resumes after the last message seen.
    Back,
}

/// Follows an agent's events for as long as it is asked to, across the agent's restarts.
pub struct Follower {
    api: SocketAddr,
    stream: Option<Stream>,
    last_id: Option<String>,
    lost: bool,
}

impl Follower {
    /// Connects once; an agent that does not answer now is an error, as for `peerd peers`.
    pub async fn connect(api: SocketAddr) -> anyhow::Result<Follower> {
        let stream = Stream::open(api, None).await?;
        Ok(Follower {
            api,
            stream: Some(stream),
            last_id: None,
            lost: false,
        })
    }

    pub async fn next(&mut self) -> Followed {
        loop {
            let Some(stream) = &mut self.stream else {
                match Stream::open(self.api, self.last_id.as_deref()).await {
                    Ok(stream) => {
                        self.stream = Some(stream);
                        self.lost = false;
                        return Followed::Back;
                    }
                    Err(_) => {
                        tokio::time::sleep(RETRY_EVERY).await;
                        continue;
                    }
                }
            };
            let why = match stream.next().await {
                Ok(Some((id, message))) => {
                    self.last_id = Some(id);
                    return Followed::Message(message);
                }
                Ok(None) => "the agent closed the stream".to_owned(),
                Err(err) => format!("{err:#}"),
            };
            self.stream = None;
            if !self.lost {
                self.lost = true;
                return Followed::Lost(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_snapshots_and_skips_keep_alives() {
        assert!(parse_block(":\n\n").expect("a comment").is_none());
        let snapshot = parse_block(
            "id: 00000000000000ff-3\nevent: snapshot\ndata: {\"id\":3,\"time\":\"t\",\"peers\":[]}\n\n",
        )
        .expect("valid")
        .expect("a message");
        assert_eq!(snapshot.0, "00000000000000ff-3");
        assert!(matches!(
            snapshot.1,
            Message::Snapshot(Snapshot { id: 3, .. })
        ));
        let garbage = parse_block("event: joined\ndata: {not json}\n\n");
        assert!(garbage.is_err());
    }
}
