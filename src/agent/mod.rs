//! The running agent: one task that drives the node's protocol (`node`) over the multicast
//! socket, and the HTTP API. No protocol here (see `node`), no socket options (see `socket`),
//! no argv (see `main`).

pub mod events;
pub mod hooks;
pub mod notify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use self::events::Funnel;
use self::hooks::HookCounters;
use self::notify::Notifier;
use crate::api::server::{self, ApiCounters};
use crate::api::{self, ApiState, Query, Snapshot, Start, Subscription, format_instance};
use crate::clock::now;
use crate::config::Config;
use crate::net::socket::{self, DatagramBuf};
use crate::node::{Node, SocketStats};
use crate::registry::PeerEvent;
use crate::throttle::Throttle;
use crate::wire::beacon::MAX_BEACON_LEN;

/// A loop that wakes this much later than it meant to was not running: the process was
/// stopped (SIGSTOP, a debugger) or the host stalled. Well above any scheduling delay.
const STALL: Duration = Duration::from_secs(1);
/// A socket that cannot be opened is tried again at the next beacon due (or sooner, this long at
/// first), and warned about after this long, doubling up to [`MAX_RETRY`]: an interface that
/// comes up late is used within an interval, and a missing one costs a log line every half
/// minute.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// This many receive errors in a row mean the socket is broken, not that one ICMP error came
/// back: it is opened again.
const ERRORS_BEFORE_REOPEN: u32 = 10;
/// Datagrams read in one turn of the loop when they queue up: 64 handled beacons are some
/// 100 µs, a delay the API and the timers do not notice, and enough to spread the cost of a
/// turn thin.
const BURST: usize = 64;
/// At most one warning per this period about receive errors.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);
/// The most connections the `--metrics` listener keeps open: a scraper or two, each with a
/// connection kept alive between scrapes, with room for a curl by hand.
const METRICS_CONNECTIONS: usize = 16;

/// Runs the agent until `shutdown` is cancelled, then sends a goodbye beacon and returns.
///
/// `api` is the bound listener of the local HTTP API, taken bound so tests can use port 0;
/// `metrics`, if given, serves `/metrics` and `/healthz` only (`--metrics`).
/// The multicast socket for `config` is opened here, and opened again whenever it fails: an
/// interface whose address is not there yet (a container whose network comes up late) is
/// retried with backoff, while the API already answers.
///
/// `notifier`, under systemd, hears `READY=1` once the socket first joins the group, a
/// `WATCHDOG=1` from the loop at its interval, and `STOPPING=1` before the goodbye.
pub async fn run(
    config: Config,
    api: TcpListener,
    metrics: Option<TcpListener>,
    notifier: Option<Notifier>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let started = SystemTime::now();
    let instance = fastrand::u64(..);
    let api_addr = api.local_addr().context("reading the API address")?;
    info!(
        hostname = %config.name,
        instance = %format_instance(instance),
        group = %config.group_addr(),
        interface = %config.interface,
        api = %api_addr,
        interval = %humantime::format_duration(config.interval),
        ttl = %humantime::format_duration(config.ttl),
        "agent started"
    );
    if config.ttl_is_tight() {
        warn!(
            "ttl is under twice the jittered interval: one lost beacon will expire this node at its peers"
        );
    }

    let (queries, query_rx) = mpsc::channel(16);
    let tracker = TaskTracker::new();
    let funnel = Funnel::default();
    let hook_counters = Arc::new(HookCounters::default());
    if !config.hooks.is_empty() {
        // Subscribed before the loop runs, so the peers found at start-up fire `joined` too.
        let run = hooks::run(
            config.hooks.clone(),
            config.hook_timeout,
            funnel.subscribe(),
            Arc::clone(&hook_counters),
        );
        let hooks_shutdown = shutdown.clone();
        tracker.spawn(
            async move {
                // A hook still running at shutdown is killed: it must not hold up the exit.
                tokio::select! {
                    _ = run => {}
                    _ = hooks_shutdown.cancelled() => {}
                }
            }
            .instrument(info_span!("hooks")),
        );
    }
    let now = now();
    let api_counters = Arc::new(ApiCounters::default());
    let driver = Driver {
        socket: None,
        node: Node::new(config, instance, fastrand::u64(..), now),
        funnel,
        hook_counters,
        api_counters: Arc::clone(&api_counters),
        sending: true,
        retry_at: now,
        retry_delay: FIRST_RETRY,
        open_failures: 0,
        open_warn_at: now,
        reopens: 0,
        receive_errors: 0,
        error_log: Throttle::new(ERROR_LOG_PERIOD),
        watchdog_at: notifier.as_ref().and_then(Notifier::watchdog).map(|_| now),
        notifier,
        ready: false,
    };
    // Not in a span: the driver is polled for every datagram and timer, and entering and
    // leaving a span on each poll was a seventh of an idle agent's CPU (bin/bench-lan's
    // profile). Its lines name their module instead.
    tracker.spawn(driver.run(query_rx, shutdown.clone()));
    let state = ApiState { queries, started };
    if let Some(listener) = metrics {
        let addr = listener
            .local_addr()
            .context("reading the metrics address")?;
        // A scraper opens a connection or two; the cap keeps the API's share of open files.
        let cap = METRICS_CONNECTIONS.min(server::connection_cap());
        info!(metrics = %addr, max_connections = cap, "serving /metrics");
        // Counted apart: the API's counters are about the API's clients.
        let counters = Arc::new(ApiCounters::default());
        let router = api::metrics_router(state.clone());
        tracker.spawn(
            server::serve_within(listener, router, cap, counters, shutdown.clone())
                .instrument(info_span!("metrics")),
        );
    }
    // It returns within its shutdown grace of the cancellation, whatever clients hold open.
    let server = tracker.spawn(
        server::serve(api, api::router(state), api_counters, shutdown.clone())
            .instrument(info_span!("api")),
    );
    tracker.close();
    server.await.context("the API task panicked")?;
    tracker.wait().await;
    info!("agent stopped");
    Ok(())
}

/// Moves bytes between the socket and the [`Node`]: sends what it says is due, feeds it every
/// datagram, wakes it when it asks, and answers the API's queries between datagrams. Keeps the
/// socket working: opens it again after errors, silence or a missing interface.
struct Driver {
    /// `None` until it opens, and while it is being retried.
    socket: Option<UdpSocket>,
    node: Node,
    /// Every event the node reports goes through it.
    funnel: Funnel,
    hook_counters: Arc<HookCounters>,
    api_counters: Arc<ApiCounters>,
    /// Whether the last beacon went out: only the first of a run of failures is a warning.
    sending: bool,
    /// When to try opening the socket next, while it is closed.
    retry_at: Instant,
    retry_delay: Duration,
    /// Failed attempts to open the socket since it was last open.
    open_failures: u64,
    /// When a failure to open may be warned about again.
    open_warn_at: Instant,
    /// Times the socket was opened again after it had been open.
    reopens: u64,
    /// Receive errors in a row.
    receive_errors: u32,
    error_log: Throttle,
    notifier: Option<Notifier>,
    /// Whether `READY=1` went out: only the first open of the socket sends it.
    ready: bool,
    /// When the next `WATCHDOG=1` is due, if the service manager asked for them.
    watchdog_at: Option<Instant>,
}

/// What woke the driver's loop.
enum Woke {
    Query(Query),
    /// The socket has datagrams queued (or an error to report).
    Readable(std::io::Result<()>),
    Timer,
}

impl Driver {
    async fn run(mut self, mut queries: mpsc::Receiver<Query>, shutdown: CancellationToken) {
        let mut bufs: Box<[DatagramBuf; socket::BATCH]> =
            Box::new([[0; MAX_BEACON_LEN + 1]; socket::BATCH]);
        let mut got = Vec::with_capacity(socket::BATCH);
        loop {
            let turn = now();
            if self.socket.is_none() && turn >= self.retry_at {
                self.open(turn);
            }
            if let Some(silence) = self.node.silent_for(turn) {
                warn!(silence = %humantime::format_duration(silence),
                    "not even our own beacons came back for a ttl: opening the socket again");
                self.reopen(turn);
            }
            if let Some(beacon) = self.node.poll_beacon(turn, SystemTime::now()) {
                self.refresh_membership();
                self.send(&beacon).await;
            }
            self.ping_watchdog(turn);
            let mut wakeup = self.node.next_wakeup();
            if let Some(at) = self.funnel.summary_due() {
                wakeup = wakeup.min(at);
            }
            if let Some(at) = self.watchdog_at {
                wakeup = wakeup.min(at);
            }
            if self.socket.is_none() {
                wakeup = wakeup.min(self.retry_at);
            }
            // By then at the latest the loop runs again, unless the process is not running.
            let expected_by = wakeup.max(turn);
            let socket = self.socket.as_ref();
            let readable = async {
                match socket {
                    Some(socket) => socket.readable().await,
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(query) = queries.recv() => Woke::Query(query),
                readable = readable => Woke::Readable(readable),
                _ = tokio::time::sleep_until(wakeup.into()) => Woke::Timer,
            };
            // Checked before anything that woke the loop is handled: after a stop, the timer
            // would expire every peer at once and the datagram would be stale news.
            let now = now();
            if now > expected_by + STALL {
                self.stalled(now - expected_by, now);
                if matches!(woke, Woke::Readable(Ok(()))) {
                    continue; // what was readable was stale, and is gone
                }
            }
            match woke {
                Woke::Query(query) => self.answer(query),
                Woke::Readable(Ok(())) => {
                    self.drain(&mut bufs, &mut got, now);
                    if self.node.sweep_due(now) {
                        self.sweep(now);
                    }
                }
                Woke::Readable(Err(err)) => self.receive_failed(&err, now),
                Woke::Timer => self.sweep(now),
            }
        }
        self.notify(notify::STOPPING);
        let goodbye = self.node.goodbye(SystemTime::now());
        if self.send(&goodbye).await {
            info!("goodbye sent");
        }
    }

    /// Reads and takes in what is queued, a batch per system call, up to [`BURST`] datagrams
    /// before going back round the loop: a turn of it (a timer armed and dropped, the
    /// cancellation and query futures polled, the clock read) costs as much as a datagram.
    /// Bounded, so a flood still leaves room for the API's queries, the beacons and the
    /// deadlines. One `now` serves the burst: it lasts some 100 µs, far below a wheel tick.
    fn drain(
        &mut self,
        bufs: &mut [DatagramBuf; socket::BATCH],
        got: &mut Vec<(usize, SocketAddr)>,
        now: Instant,
    ) {
        let wall_now = SystemTime::now();
        for _ in 0..BURST / socket::BATCH {
            let Some(sock) = &self.socket else {
                return;
            };
            match socket::recv_batch(sock, bufs, got) {
                Ok(()) => {
                    self.receive_errors = 0;
                    for (buf, &(len, from)) in bufs.iter().zip(got.iter()) {
                        let event = self.node.handle_datagram(&buf[..len], from, now, wall_now);
                        if let Some(event) = event {
                            self.funnel.publish(&event, now, wall_now);
                        }
                    }
                    if got.len() < socket::BATCH {
                        return; // most likely drained; the next turn finds out for sure
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    self.receive_failed(&err, now);
                    return;
                }
            }
        }
    }

    /// Opens the multicast socket, or schedules the next try with backoff.
    fn open(&mut self, now: Instant) {
        let config = self.node.config();
        let opened = socket::bind_multicast(
            config.group,
            config.port,
            config.interface,
            config.multicast_ttl,
        );
        match opened {
            Ok(socket) => {
                let granted = socket::receive_buffer(&socket).unwrap_or(0);
                if granted < socket::RECEIVE_BUFFER {
                    warn!(
                        bytes = granted,
                        "the kernel granted a small receive buffer: a burst of beacons from many peers may be dropped (raise net.core.rmem_max, or run with CAP_NET_ADMIN)"
                    );
                }
                if self.retry_delay > FIRST_RETRY {
                    info!(group = %config.group_addr(), interface = %config.interface, "multicast socket open: beaconing");
                }
                self.socket = Some(socket);
                self.retry_delay = FIRST_RETRY;
                self.open_failures = 0;
                self.open_warn_at = now;
                self.node.socket_reopened(now);
                if !std::mem::replace(&mut self.ready, true) {
                    self.notify(notify::READY);
                }
            }
            Err(err) => {
                // Tried again at every beacon due at the latest, so a link that comes back is
                // used within an interval; warned about on the backoff's schedule only.
                let interval = config.interval;
                self.open_failures += 1;
                if now >= self.open_warn_at {
                    warn!(error = %format!("{err:#}"), failures = self.open_failures,
                        next_warning_in = %humantime::format_duration(self.retry_delay),
                        "cannot open the multicast socket; retrying every interval");
                    self.open_warn_at = now + self.retry_delay;
                    self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
                }
                self.retry_at = now + self.retry_delay.min(interval);
            }
        }
    }

    /// Sends `WATCHDOG=1` if it is due: only a loop that keeps turning keeps the service alive.
    fn ping_watchdog(&mut self, now: Instant) {
        let (Some(at), Some(interval)) = (
            self.watchdog_at,
            self.notifier.as_ref().and_then(Notifier::watchdog),
        ) else {
            return;
        };
        if now >= at {
            self.notify(notify::WATCHDOG);
            self.watchdog_at = Some(now + interval);
        }
    }

    fn notify(&self, message: &str) {
        if let Some(notifier) = &self.notifier {
            notifier.send(message);
        }
    }

    /// Drops the socket and opens a new one at once: this leaves and rejoins the group.
    fn reopen(&mut self, now: Instant) {
        self.socket = None;
        self.reopens += 1;
        self.retry_delay = FIRST_RETRY;
        self.open(now);
        // Whether or not it opened, the watchdog waits another ttl before it tries again.
        self.node.socket_reopened(now);
    }

    fn receive_failed(&mut self, err: &std::io::Error, now: Instant) {
        self.receive_errors += 1;
        if let Some(held_back) = self.error_log.admit(now) {
            warn!(error = %err, errors_since_last_log = held_back, "receive failed");
        }
        if self.receive_errors >= ERRORS_BEFORE_REOPEN {
            warn!(
                errors = self.receive_errors,
                "the socket keeps failing: opening it again"
            );
            self.receive_errors = 0;
            self.reopen(now);
        }
    }

    /// The loop ran `gap` later than it meant to: the agent was stopped. What queued up on
    /// the socket meanwhile is old news (a peer that died during the stop would look alive),
    /// so it is dropped unread; the node does not count the gap against its peers.
    fn stalled(&mut self, gap: Duration, now: Instant) {
        let stale = self.socket.as_ref().map_or(0, socket::discard_queued);
        warn!(gap = %humantime::format_duration(gap), stale_datagrams_dropped = stale,
            "the agent was stopped or stalled: each peer gets a ttl from now to be heard again, and it announces itself");
        self.node.stale_dropped(stale);
        self.node.handle_stall(now);
    }

    fn socket_stats(&self) -> SocketStats {
        SocketStats {
            receive_queue_drops: self.socket.as_ref().and_then(socket::receive_queue_drops),
            receive_buffer_bytes: self.socket.as_ref().and_then(socket::receive_buffer),
            reopens: self.reopens,
        }
    }

    fn sweep(&mut self, now: Instant) {
        for event in self.node.handle_timeout(now) {
            self.publish(&event, now);
        }
        self.funnel.flush_summary(now);
    }

    fn publish(&mut self, event: &PeerEvent, now: Instant) {
        self.funnel.publish(event, now, SystemTime::now());
    }

    fn refresh_membership(&self) {
        let Some(socket) = &self.socket else {
            return;
        };
        let config = self.node.config();
        let (group, interface) = (config.group, config.interface);
        match socket::refresh_membership(socket, group, interface) {
            Ok(true) => {
                info!(%group, %interface, "rejoined the multicast group: the interface came back")
            }
            Ok(false) => {}
            // The interface is gone for now; sending fails too and says so.
            Err(err) => {
                debug!(%group, %interface, error = %err, "cannot rejoin the multicast group")
            }
        }
    }

    /// Sends one beacon; returns whether it went out. Only the first of a run of failures is
    /// a warning, so an unplugged link does not fill the log.
    async fn send(&mut self, beacon: &[u8]) -> bool {
        let target = self.node.config().group_addr();
        let Some(socket) = &self.socket else {
            return false; // not open yet: the failure to open was logged
        };
        let was_sending = std::mem::replace(&mut self.sending, false);
        match socket.send_to(beacon, target).await {
            Ok(_) => {
                self.node.beacon_sent();
                debug!("beacon sent");
                if !was_sending {
                    info!(%target, "sending beacons again");
                }
                self.sending = true;
            }
            // Not fatal: a link that is down now may be up by the next beacon.
            Err(err) if was_sending => {
                warn!(%target, error = %err, "cannot send beacon; will keep trying every interval")
            }
            Err(err) => debug!(%target, error = %err, "cannot send beacon"),
        }
        self.sending
    }

    fn answer(&mut self, query: Query) {
        let now = now();
        self.sweep(now);
        // A reply channel closed by a client that hung up is no concern of ours.
        match query {
            Query::Peers(reply) => {
                let _ = reply.send(self.node.peers(now, SystemTime::now()));
            }
            Query::Status(reply) => {
                let hooks = self.hook_counters.snapshot();
                let socket = self.socket_stats();
                let mut status = self.node.status(now, self.funnel.counts(), hooks, socket);
                status.api = self.api_counters.snapshot();
                let _ = reply.send(status);
            }
            Query::Subscribe { after, reply } => {
                let _ = reply.send(self.subscribe(after, now));
            }
        }
    }

    /// Answered between two events, so the start and the receiver fit together exactly: no
    /// event is both in the start and received, and none falls between them.
    fn subscribe(&self, after: Option<(u64, u64)>, now: Instant) -> Subscription {
        let instance = self.node.instance();
        let missed = after
            .filter(|(of, _)| *of == instance)
            .and_then(|(_, id)| self.funnel.since(id));
        let start = match missed {
            Some(missed) => Start::Missed(missed),
            None => {
                let wall_now = SystemTime::now();
                Start::Snapshot(Snapshot {
                    id: self.funnel.last_id(),
                    time: humantime::format_rfc3339_millis(wall_now).to_string(),
                    peers: self.node.peers(now, wall_now),
                })
            }
        };
        Subscription {
            instance,
            start,
            events: self.funnel.subscribe(),
        }
    }
}
