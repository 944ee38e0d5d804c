//! The receiver task: the only owner of the registry. It drives the node's [`Receiver`] over
//! the socket (datagrams in, deadlines swept), keeps the socket working as the [`Keeper`] says,
//! publishes every event through the funnel and answers the API's queries between datagrams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::events::Funnel;
use super::hooks::HookCounters;
use super::link::{Announced, Cue, Outcome, ReceiverSide};
use super::notify::{self, Notifier};
use crate::api::query::{Figures, Query, Start, Subscription};
use crate::api::{PeerInfo, Snapshot};
use crate::clock::{now, wall_now};
use crate::config::Config;
use crate::net::keeper::{Keeper, SocketStats, stalled_for};
use crate::net::socket::{self, BATCH, Batch, DatagramBuf};
use crate::node::{Heard, Receiver};
use crate::wire::beacon::MAX_BEACON_LEN;

/// Datagrams read in one turn of the loop when they queue up: 64 handled beacons are some
/// 100 µs, a delay the API and the timers do not notice, and enough to spread the cost of a
/// turn thin.
const BURST: usize = 64;

pub(super) struct ReceiverTask {
    core: Receiver,
    keeper: Keeper,
    config: Arc<Config>,
    /// `None` until it opens, and while it is being opened again.
    socket: Option<Open>,
    link: ReceiverSide,
    /// Every event the node reports goes through it.
    funnel: Funnel,
    hooks: Arc<HookCounters>,
    started: Instant,
    notifier: Option<Arc<Notifier>>,
    /// When the next `WATCHDOG=1` is due, if the service manager asked for them.
    ping_at: Option<Instant>,
}

/// The socket while it is open, with what the kernel said of it.
struct Open {
    udp: Arc<UdpSocket>,
    receive_buffer: Option<usize>,
    /// Datagrams the kernel dropped for it, when it says.
    drops: Option<u64>,
}

/// What woke the loop.
enum Woke {
    Query(Query),
    Announced(Announced),
    /// The socket has datagrams queued (or an error to report).
    Readable(std::io::Result<()>),
    Timer,
}

impl ReceiverTask {
    pub(super) fn new(
        core: Receiver,
        config: Arc<Config>,
        link: ReceiverSide,
        funnel: Funnel,
        hooks: Arc<HookCounters>,
        notifier: Option<Arc<Notifier>>,
        now: Instant,
    ) -> ReceiverTask {
        ReceiverTask {
            core,
            keeper: Keeper::new(config.interval, config.ttl, now),
            config,
            socket: None,
            link,
            funnel,
            hooks,
            started: now,
            ping_at: notifier.as_ref().and_then(|n| n.watchdog()).map(|_| now),
            notifier,
        }
    }

    /// Opens the socket at `now`, before either task runs: the announcer then finds it open,
    /// and the first beacon goes out on the announcer's first poll, not a scheduling round
    /// later. A failure is retried by the loop, on the keeper's schedule.
    pub(super) fn open_first(&mut self, now: Instant) {
        if self.keeper.open_due(now) {
            self.open(now);
        }
    }

    /// Receives until `shutdown` is cancelled, answering `queries` between datagrams.
    pub(super) async fn run(
        mut self,
        mut queries: mpsc::Receiver<Query>,
        shutdown: CancellationToken,
    ) {
        let mut bufs: Box<[DatagramBuf; BATCH]> = Box::new([[0; MAX_BEACON_LEN + 1]; BATCH]);
        let mut batch = Batch::default();
        loop {
            let turn = now();
            if self.keeper.open_due(turn) {
                self.open(turn);
            }
            if let Some(silence) = self.keeper.silent_for(turn) {
                warn!(silence = %humantime::format_duration(silence),
                    "not even our own beacons came back for a ttl: opening the socket again");
                self.reopen(turn);
            }
            self.ping_watchdog(turn);
            // At least once a ttl, so that a stop is noticed even with nothing else to wait
            // for; the announcer's beacons wake the loop more often than that anyway.
            let wakeup = [
                self.core.next_wakeup(),
                self.funnel.summary_due(),
                self.ping_at,
                self.keeper.next_wakeup(),
            ]
            .into_iter()
            .flatten()
            .fold(turn + self.config.ttl, Instant::min);
            // By then at the latest the loop runs again, unless the process is not running.
            let expected_by = wakeup.max(turn);
            let socket = self.socket.as_ref().map(|open| &open.udp);
            let readable = async {
                match socket {
                    Some(socket) => socket.readable().await,
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(query) = queries.recv() => Woke::Query(query),
                Some(announced) = self.link.announced.recv() => Woke::Announced(announced),
                readable = readable => Woke::Readable(readable),
                _ = tokio::time::sleep_until(wakeup.into()) => Woke::Timer,
            };
            // Checked before anything that woke the loop is handled: after a stop, the timer
            // would expire every peer at once and the datagram would be stale news.
            let now = now();
            if let Some(gap) = stalled_for(expected_by, now) {
                self.stalled(gap, now);
                if matches!(woke, Woke::Readable(Ok(()))) {
                    continue; // what was readable was stale, and is gone
                }
            }
            match woke {
                Woke::Query(query) => self.answer(query),
                Woke::Announced(Announced { early, outcome }) => {
                    self.core.announced(early, outcome.is_sent());
                    match outcome {
                        Outcome::Sent => self.keeper.beacon_sent(now),
                        Outcome::Failed(err) => self.keeper.send_failed(err),
                        Outcome::NoSocket => {} // its failure to open is the reason
                    }
                }
                Woke::Readable(Ok(())) => {
                    let more = self.drain(&mut bufs, &mut batch, now);
                    self.keeper.backlog(more);
                    if self.core.sweep_due(now) {
                        self.sweep(now);
                    }
                    if more {
                        // A flood: let the API, the announcer and the hooks run between two
                        // bursts. Tokio's own budget would yield only after 128 turns of the
                        // loop, and at capacity every made-up hostname is two events (its
                        // join and the eviction it causes): 8,192 datagrams were a third of a
                        // second of a debug build, during which `peerd health` waited.
                        tokio::task::yield_now().await;
                    }
                }
                Woke::Readable(Err(err)) => self.receive_failed(&err, now),
                Woke::Timer => self.sweep(now),
            }
        }
    }

    /// Reads and takes in what is queued, a batch per system call, up to [`BURST`] datagrams
    /// before going back round the loop: a turn of it (a timer armed and dropped, the
    /// cancellation and query futures polled, the clock read) costs as much as a datagram.
    /// Bounded, so a flood still leaves room for the API's queries, the beacons and the
    /// deadlines. One `now` serves the burst: it lasts some 100 µs, far below a wheel tick.
    ///
    /// Returns whether it read a whole burst: more may be queued.
    fn drain(&mut self, bufs: &mut [DatagramBuf; BATCH], batch: &mut Batch, now: Instant) -> bool {
        let wall_now = wall_now();
        for _ in 0..BURST / BATCH {
            let Some(open) = &mut self.socket else {
                return false;
            };
            match socket::recv_batch(&open.udp, bufs, batch) {
                Ok(()) => {
                    self.keeper.received();
                    if let Some(drops) = batch.drops {
                        open.drops = Some(u64::from(drops));
                    }
                    for (buf, &(len, from)) in bufs.iter().zip(batch.got.iter()) {
                        match self.core.handle_datagram(&buf[..len], from, now, wall_now) {
                            Heard::Changed(event) => {
                                if event.is_newcomer() {
                                    // Dropped when the cues are full: answers are pending.
                                    let _ = self.link.cues.try_send(Cue::Newcomer(now));
                                }
                                self.funnel.publish(&event, now, wall_now);
                            }
                            Heard::Replaced(events) => {
                                let _ = self.link.cues.try_send(Cue::Newcomer(now));
                                for event in events.iter() {
                                    self.funnel.publish(event, now, wall_now);
                                }
                            }
                            Heard::Own => self.keeper.heard_self(now),
                            Heard::Renewed | Heard::Refused => {}
                        }
                    }
                    if batch.got.len() < BATCH {
                        return false; // most likely drained; the next turn finds out for sure
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(err) => {
                    self.receive_failed(&err, now);
                    return false;
                }
            }
        }
        true
    }

    /// Opens the multicast socket and hands it to the announcer, or leaves the next try to the
    /// keeper's backoff.
    fn open(&mut self, now: Instant) {
        let config = &self.config;
        let opened = socket::bind_multicast(
            config.group,
            config.port,
            config.interface,
            config.multicast_ttl,
        );
        match opened {
            Ok(udp) => {
                let receive_buffer = socket::receive_buffer(&udp);
                if receive_buffer.unwrap_or(0) < socket::RECEIVE_BUFFER {
                    warn!(
                        bytes = receive_buffer.unwrap_or(0),
                        "the kernel granted a small receive buffer: a burst of beacons from many peers may be dropped (raise net.core.rmem_max, or run with CAP_NET_ADMIN)"
                    );
                }
                let drops = socket::reports_drops(&udp).then_some(0);
                let opened = self.keeper.opened(now);
                if opened.after_warnings {
                    info!(group = %config.group_addr(), interface = %config.interface, "multicast socket open: beaconing");
                }
                let udp = Arc::new(udp);
                self.link.sockets.send_replace(Some(Arc::clone(&udp)));
                self.socket = Some(Open {
                    udp,
                    receive_buffer,
                    drops,
                });
                if opened.first {
                    self.notify(notify::READY);
                }
            }
            Err(err) => {
                let error = format!("{err:#}");
                if let Some(warning) = self.keeper.open_failed(now, error.clone()) {
                    warn!(%error, failures = warning.failures,
                        next_warning_in = %humantime::format_duration(warning.next_warning_in),
                        "cannot open the multicast socket; retrying every interval");
                }
            }
        }
    }

    /// Drops the socket and opens a new one at once: this leaves and rejoins the group.
    fn reopen(&mut self, now: Instant) {
        self.socket = None;
        self.link.sockets.send_replace(None);
        self.keeper.reopen(now);
        self.open(now);
    }

    fn receive_failed(&mut self, err: &std::io::Error, now: Instant) {
        let failure = self.keeper.receive_failed(now);
        if let Some(held_back) = failure.warn {
            warn!(error = %err, errors_since_last_log = held_back, "receive failed");
        }
        if failure.reopen {
            warn!("the socket keeps failing: opening it again");
            self.reopen(now);
        }
    }

    /// The loop ran `gap` later than it meant to: the agent was stopped. What queued up on
    /// the socket meanwhile is old news (a peer that died during the stop would look alive),
    /// so it is dropped unread; the node does not count the gap against its peers, and the
    /// announcer announces at once, so that peers that expired this node meanwhile answer.
    fn stalled(&mut self, gap: Duration, now: Instant) {
        let stale = self
            .socket
            .as_ref()
            .map_or(0, |open| socket::discard_queued(&open.udp));
        warn!(gap = %humantime::format_duration(gap), stale_datagrams_dropped = stale,
            "the agent was stopped or stalled: each peer gets a ttl from now to be heard again, and it announces itself");
        self.core.stale_dropped(stale);
        self.core.handle_stall(now);
        self.keeper.backlog(false); // thrown away above
        self.keeper.stalled(now);
        let _ = self.link.cues.try_send(Cue::Now(now));
    }

    /// Sends `WATCHDOG=1` if it is due: only a loop that keeps turning keeps the service alive.
    fn ping_watchdog(&mut self, now: Instant) {
        let interval = self.notifier.as_ref().and_then(|n| n.watchdog());
        let (Some(at), Some(interval)) = (self.ping_at, interval) else {
            return;
        };
        if now >= at {
            self.notify(notify::WATCHDOG);
            self.ping_at = Some(now + interval);
        }
    }

    fn notify(&self, message: &str) {
        if let Some(notifier) = &self.notifier {
            notifier.send(message);
        }
    }

    fn sweep(&mut self, now: Instant) {
        let events = self.core.handle_timeout(now);
        if !events.is_empty() {
            let wall_now = wall_now();
            for event in &events {
                self.funnel.publish(event, now, wall_now);
            }
        }
        self.funnel.flush_summary(now);
    }

    fn answer(&mut self, query: Query) {
        let now = now();
        self.sweep(now);
        // A reply channel closed by a client that hung up is no concern of ours.
        match query {
            Query::Peers(reply) => {
                let _ = reply.send(self.peers(now));
            }
            Query::Status(reply) => {
                let _ = reply.send(self.figures(now));
            }
            Query::Subscribe { after, reply } => {
                let _ = reply.send(self.subscribe(after, now));
            }
        }
    }

    /// The live peers as of `now`, sorted by hostname.
    fn peers(&self, now: Instant) -> Vec<PeerInfo> {
        let wall_now = wall_now();
        let mut peers: Vec<PeerInfo> = self
            .core
            .peers()
            .map(|peer| PeerInfo::new(&peer, now, wall_now))
            .collect();
        peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        peers
    }

    fn figures(&self, now: Instant) -> Figures {
        let open = self.socket.as_ref();
        Figures {
            at: now,
            uptime: now.saturating_duration_since(self.started),
            node: self.core.stats(now),
            socket: SocketStats {
                receive_queue_drops: open.and_then(|open| open.drops),
                receive_buffer_bytes: open.and_then(|open| open.receive_buffer),
                reopens: self.keeper.reopens(),
            },
            sending: self.keeper.sending(now),
            events: self.funnel.counts(),
            hooks: self.hooks.snapshot(),
        }
    }

    /// Answered between two events, so the start and the receiver fit together exactly: no
    /// event is both in the start and received, and none falls between them.
    fn subscribe(&self, after: Option<(u64, u64)>, now: Instant) -> Subscription {
        let instance = self.core.instance();
        let missed = after
            .filter(|(of, _)| *of == instance)
            .and_then(|(_, id)| self.funnel.since(id));
        let start = match missed {
            Some(missed) => Start::Missed(missed),
            None => Start::Snapshot(Snapshot {
                id: self.funnel.last_id(),
                time: humantime::format_rfc3339_millis(wall_now()).to_string(),
                peers: self.peers(now),
            }),
        };
        Subscription {
            instance,
            start,
            events: self.funnel.subscribe(),
        }
    }
}
