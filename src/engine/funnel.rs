//! The one funnel every peer event passes through: it numbers the event, logs it, counts it,
//! keeps it in a bounded history and publishes it. Subscribers (the library's, and through
//! them the API's stream, `watch`, `wait` and the hooks) consume it; none of them is a second
//! source of truth.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tracing::{info, warn};

use super::event::{Event, EventCounts};
use super::peer::shown;
use crate::registry::PeerEvent;
use crate::throttle::Throttle;
use crate::wire::beacon::format_instance;
use crate::wire::tags;

/// Events kept for a client that reconnects with `Last-Event-ID`: minutes of churn in a large
/// cluster, a few hundred kilobytes at most.
pub const HISTORY: usize = 1024;
/// How far a subscriber may fall behind before it is told to start again from a snapshot.
/// Publishing never waits for a subscriber, so a slow one cannot slow the agent.
pub const SUBSCRIBER_LAG: usize = 256;
/// Per-peer log lines in one [`LOG_WINDOW`] before the rest are only counted and summarised
/// ("412 peers joined in the last second"): a cluster starting up is logged peer by peer, a
/// flood of made-up hostnames costs a few lines a second.
pub const LOG_BURST: u32 = 5;
pub const LOG_WINDOW: Duration = Duration::from_secs(1);

pub struct Funnel {
    last_id: u64,
    history: VecDeque<Arc<Event>>,
    sender: broadcast::Sender<Arc<Event>>,
    counts: EventCounts,
    log: Throttle,
    /// The events of the current log window that were only counted, by kind.
    held_back: EventCounts,
}

impl Default for Funnel {
    fn default() -> Self {
        Funnel {
            last_id: 0,
            history: VecDeque::with_capacity(HISTORY),
            sender: broadcast::Sender::new(SUBSCRIBER_LAG),
            counts: EventCounts::default(),
            log: Throttle::with_burst(LOG_BURST, LOG_WINDOW),
            held_back: EventCounts::default(),
        }
    }
}

impl Funnel {
    /// Numbers `event`, logs it, counts it, keeps it and publishes it, as of `now`.
    pub fn publish(&mut self, event: &PeerEvent, now: Instant) {
        self.flush_summary(now);
        self.last_id += 1;
        let change = Arc::new(Event::new(self.last_id, event, now));
        if self.log.admit(now).is_some() {
            log(event);
        } else {
            self.held_back.count(change.kind);
        }
        self.counts.count(change.kind);
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Arc::clone(&change));
        // Fails only while nobody subscribes, which is no concern of ours.
        let _ = self.sender.send(change);
    }

    /// When the summary of the events not logged one by one is due, if any are waiting.
    pub fn summary_due(&self) -> Option<Instant> {
        self.log.summary_due()
    }

    /// Closes the log window if it is over by `now`: one line per kind of event that was only
    /// counted in it.
    pub fn flush_summary(&mut self, now: Instant) {
        if self.log.summary(now).is_none() {
            return;
        }
        let held = std::mem::take(&mut self.held_back);
        let lines = [
            (held.joined, "joined"),
            (held.moved, "moved"),
            (held.restarted, "restarted"),
            (held.left, "left"),
            (held.expired, "expired"),
            (held.evicted, "evicted"),
            (held.updated, "changed tags"),
        ];
        for (count, what) in lines {
            if count > 0 {
                info!(count, "{count} more peers {what} in the last second");
            }
        }
        if held.conflict > 0 {
            warn!(
                count = held.conflict,
                "{} more hostname conflicts in the last second", held.conflict
            );
        }
    }

    /// The id of the latest event, 0 before the first.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    pub fn counts(&self) -> EventCounts {
        self.counts
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// The events after `id`, if the history still holds every one of them.
    pub fn since(&self, id: u64) -> Option<Vec<Arc<Event>>> {
        let oldest_kept = self.history.front().map_or(self.last_id + 1, |c| c.id);
        if id > self.last_id || id + 1 < oldest_kept {
            return None;
        }
        Some(self.history.iter().filter(|c| c.id > id).cloned().collect())
    }
}

fn log(event: &PeerEvent) {
    let peer = event.peer();
    // IPv6 link-local addresses with their interface, as the API shows them.
    let (hostname, address) = (&peer.hostname, shown(peer.address));
    let instance = format_instance(peer.instance);
    match event {
        PeerEvent::Joined { .. } => info!(%hostname, %address, %instance, "peer joined"),
        PeerEvent::Updated { peer, old_tags } => info!(
            %hostname,
            %address,
            old_tags = %tags::display(old_tags),
            tags = %tags::display(&peer.tags),
            "peer tags changed"
        ),
        PeerEvent::Moved { old_address, .. } => {
            info!(%hostname, old_address = %shown(*old_address), %address, "peer moved")
        }
        PeerEvent::Restarted { old_instance, .. } => info!(
            %hostname,
            %address,
            old_instance = %format_instance(*old_instance),
            %instance,
            "peer restarted"
        ),
        PeerEvent::Left { .. } => info!(%hostname, %address, "peer left"),
        PeerEvent::Expired { .. } => info!(%hostname, %address, "peer expired"),
        PeerEvent::Evicted { .. } => info!(
            %hostname,
            %address,
            "peer evicted: heard once, it made room for a newcomer while the most peers were listed"
        ),
        PeerEvent::Conflict { peer } => {
            let rival = peer.rival.as_ref();
            warn!(
                %hostname,
                %address,
                %instance,
                other_address = %rival.map(|r| shown(r.address)).unwrap_or_default(),
                other_instance = %rival.map(|r| format_instance(r.instance)).unwrap_or_default(),
                "hostname conflict: two live instances announce this hostname"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::engine::EventKind;
    use crate::registry::Peer;

    fn joined(hostname: &str, now: Instant) -> PeerEvent {
        PeerEvent::Joined {
            peer: Peer {
                hostname: hostname.into(),
                address: SocketAddr::from(([10, 0, 0, 2], 24901)),
                other_addresses: Vec::new(),
                instance: 1,
                sequence: 0,
                first_seen: now,
                last_seen: now,
                deadline: now,
                ttl: Duration::from_secs(35),
                authenticated: false,
                first_timestamp: None,
                last_timestamp: None,
                tags: Default::default(),
                established: false,
                rival: None,
                paths: Default::default(),
            },
        }
    }

    #[test]
    fn numbers_counts_and_publishes_in_order() {
        let now = Instant::now();
        let mut funnel = Funnel::default();
        let mut receiver = funnel.subscribe();
        funnel.publish(&joined("a", now), now);
        funnel.publish(&joined("b", now), now);
        let first = receiver.try_recv().expect("published");
        let second = receiver.try_recv().expect("published");
        assert_eq!((first.id, first.peer.hostname.as_str()), (1, "a"));
        assert_eq!((second.id, second.kind), (2, EventKind::Joined));
        assert_eq!((funnel.last_id(), funnel.counts().joined), (2, 2));
    }

    #[test]
    fn history_serves_a_reconnect_until_it_has_moved_on() {
        let now = Instant::now();
        let mut funnel = Funnel::default();
        assert_eq!(
            funnel.since(0).map(|v| v.len()),
            Some(0),
            "nothing missed yet"
        );
        for _ in 0..HISTORY + 10 {
            funnel.publish(&joined("a", now), now);
        }
        let last = funnel.last_id();
        assert_eq!(funnel.since(last).map(|v| v.len()), Some(0));
        let missed = funnel.since(last - 3).expect("kept");
        assert_eq!(
            missed.iter().map(|c| c.id).collect::<Vec<_>>(),
            [last - 2, last - 1, last]
        );
        assert!(
            funnel.since(5).is_none(),
            "dropped from the history: snapshot instead"
        );
        assert!(
            funnel.since(last + 1).is_none(),
            "an id this agent never gave"
        );
    }

    #[test]
    fn a_lagging_subscriber_is_told_not_silently_skipped() {
        let now = Instant::now();
        let mut funnel = Funnel::default();
        let mut receiver = funnel.subscribe();
        for _ in 0..SUBSCRIBER_LAG + 1 {
            funnel.publish(&joined("a", now), now);
        }
        assert!(matches!(
            receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn past_a_burst_events_are_counted_for_a_summary_not_logged_one_by_one() {
        let t0 = Instant::now();
        let mut funnel = Funnel::default();
        for i in 0..LOG_BURST {
            funnel.publish(&joined(&format!("n{i}"), t0), t0);
        }
        assert_eq!(funnel.summary_due(), None, "a burst is logged line by line");
        for i in 0..400 {
            funnel.publish(&joined(&format!("m{i}"), t0), t0);
        }
        assert_eq!(funnel.held_back.joined, 400);
        assert_eq!(funnel.summary_due(), Some(t0 + LOG_WINDOW));
        funnel.flush_summary(t0 + LOG_WINDOW - std::time::Duration::from_millis(1));
        assert_eq!(funnel.summary_due(), Some(t0 + LOG_WINDOW), "not yet");
        funnel.flush_summary(t0 + LOG_WINDOW);
        assert_eq!(funnel.summary_due(), None);
        assert_eq!(
            funnel.counts().joined,
            400 + u64::from(LOG_BURST),
            "every event still counts"
        );
    }
}
