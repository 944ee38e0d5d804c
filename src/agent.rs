//! The running agent: a beacon task that announces this node, a receive task that owns the
//! registry, and the HTTP API. No socket options here (see `socket`), no argv (see `main`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::api::{self, AgentStatus, PeerInfo, Query, format_instance, millis};
use crate::beacon::{Beacon, MAX_BEACON_LEN};
use crate::config::{Config, JITTER, early_beacon_spacing};
use crate::registry::{PeerEvent, Registry};
use crate::socket;

/// At most one debug line per this period about ignored datagrams, so a flood cannot flood logs.
const IGNORED_LOG_PERIOD: Duration = Duration::from_secs(1);

/// Counters written by one task and read by the status query.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
}

/// Runs the agent until `shutdown` is cancelled, then sends a goodbye beacon and returns.
///
/// `socket` comes from [`crate::socket::bind_multicast`] for `config`; `api` is the bound
/// listener of the local HTTP API. Both are taken bound so tests can use port 0.
pub async fn run(
    config: Config,
    socket: UdpSocket,
    api: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let instance = fastrand::u64(..);
    let socket = Arc::new(socket);
    let counters = Arc::new(Counters::default());
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
    let newcomer = Arc::new(Notify::new());
    let tracker = TaskTracker::new();
    let beacons = BeaconTask {
        socket: Arc::clone(&socket),
        config: config.clone(),
        instance,
        counters: Arc::clone(&counters),
        newcomer: Arc::clone(&newcomer),
    };
    tracker.spawn(
        beacons
            .run(shutdown.clone())
            .instrument(info_span!("beacon")),
    );
    let receiver = ReceiveTask {
        socket,
        registry: Registry::new(instance, config.ttl, Instant::now()),
        config,
        instance,
        counters,
        newcomer,
        started: Instant::now(),
        received: 0,
        own_received: 0,
        ignored: 0,
        ignored_unlogged: 0,
        last_ignored_log: None,
    };
    tracker.spawn(
        receiver
            .run(query_rx, shutdown.clone())
            .instrument(info_span!("receive")),
    );
    let server_shutdown = shutdown.clone();
    let server = tracker.spawn(
        async move {
            axum::serve(api, api::router(queries))
                .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
                .await
        }
        .instrument(info_span!("api")),
    );
    tracker.close();
    let served = server.await.context("the API task panicked")?;
    // The API only stops on its own if it failed; take the rest down with it.
    shutdown.cancel();
    tracker.wait().await;
    served.context("serving the HTTP API")?;
    info!("agent stopped");
    Ok(())
}

/// Owns the schedule: the first beacon at once, then one per jittered interval, an early one
/// when a newcomer appears, and a goodbye on cancellation.
struct BeaconTask {
    socket: Arc<UdpSocket>,
    config: Config,
    instance: u64,
    counters: Arc<Counters>,
    /// Signalled by the receive task when a peer joins or restarts.
    newcomer: Arc<Notify>,
}

impl BeaconTask {
    async fn run(self, shutdown: CancellationToken) {
        let target = self.config.group_addr();
        // A newcomer announced itself at once, but would otherwise learn of us only at our next
        // beacon, up to an interval later. Answering early makes discovery take a round trip;
        // the spacing bounds the extra beacons when many nodes start together.
        let spacing = early_beacon_spacing(self.config.interval);
        let mut sequence = 0;
        let mut sending = true;
        let mut last_sent = tokio::time::Instant::now();
        let mut next_send = last_sent;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(next_send) => {
                    self.refresh_membership();
                    sending = self.send(target, sequence, false, sending).await;
                    sequence += 1;
                    last_sent = tokio::time::Instant::now();
                    next_send = last_sent + jittered(self.config.interval);
                }
                _ = self.newcomer.notified() => {
                    let early = (last_sent + spacing).max(tokio::time::Instant::now());
                    if early < next_send {
                        debug!("newcomer heard: announcing early");
                        next_send = early;
                    }
                }
            }
        }
        if self.send(target, sequence, true, sending).await {
            info!("goodbye sent");
        }
    }

    fn refresh_membership(&self) {
        let (group, interface) = (self.config.group, self.config.interface);
        match socket::refresh_membership(&self.socket, group, interface) {
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
    async fn send(
        &self,
        target: SocketAddr,
        sequence: u64,
        goodbye: bool,
        was_sending: bool,
    ) -> bool {
        let beacon = Beacon {
            instance: self.instance,
            sequence,
            goodbye,
            hostname: self.config.name.clone(),
        };
        match self.socket.send_to(&beacon.encode(), target).await {
            Ok(_) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                debug!(sequence, goodbye, "beacon sent");
                if !was_sending {
                    info!(%target, "sending beacons again");
                }
                true
            }
            // Not fatal: a link that is down now may be up by the next beacon.
            Err(err) if was_sending => {
                warn!(%target, error = %err, "cannot send beacon; will keep trying every interval");
                false
            }
            Err(err) => {
                debug!(%target, error = %err, "cannot send beacon");
                false
            }
        }
    }
}

/// A delay of `interval` scaled by a uniformly random factor in `1 +/- JITTER`.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 + JITTER * (2.0 * fastrand::f64() - 1.0))
}

/// Owns the registry: takes in datagrams, sweeps expired peers at the next deadline, and
/// answers the API's queries between datagrams.
struct ReceiveTask {
    socket: Arc<UdpSocket>,
    registry: Registry,
    config: Config,
    instance: u64,
    counters: Arc<Counters>,
    newcomer: Arc<Notify>,
    started: Instant,
    received: u64,
    own_received: u64,
    ignored: u64,
    ignored_unlogged: u64,
    last_ignored_log: Option<Instant>,
}

impl ReceiveTask {
    async fn run(mut self, mut queries: mpsc::Receiver<Query>, shutdown: CancellationToken) {
        // One byte more than a beacon may have, so an oversized datagram shows as oversized
        // instead of being silently cut to a valid-looking length.
        let mut buf = [0u8; MAX_BEACON_LEN + 1];
        loop {
            let next_deadline = self.registry.next_deadline();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(query) = queries.recv() => self.answer(query),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.take_datagram(&buf[..len], from),
                    // ICMP errors surface here on Linux; the socket itself is still fine.
                    Err(err) => warn!(error = %err, "receive failed"),
                },
                _ = sleep_until(next_deadline) => self.sweep(now()),
            }
        }
    }

    fn take_datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        let now = now();
        match Beacon::decode(bytes) {
            Ok(beacon) if beacon.instance == self.instance => self.own_received += 1,
            Ok(beacon) => {
                self.received += 1;
                debug!(hostname = %beacon.hostname, %from, sequence = beacon.sequence, "beacon received");
                if let Some(event) = self.registry.observe(&beacon, from, now) {
                    if matches!(
                        event,
                        PeerEvent::Joined { .. } | PeerEvent::Restarted { .. }
                    ) {
                        self.newcomer.notify_one();
                    }
                    log_event(&event);
                }
            }
            Err(reason) => {
                self.ignored += 1;
                self.ignored_unlogged += 1;
                let due = self
                    .last_ignored_log
                    .is_none_or(|at| now.duration_since(at) >= IGNORED_LOG_PERIOD);
                if due {
                    debug!(%from, %reason, len = bytes.len(), ignored_since_last_log = self.ignored_unlogged, "datagram ignored");
                    self.ignored_unlogged = 0;
                    self.last_ignored_log = Some(now);
                }
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        for event in self.registry.expire(now) {
            log_event(&event);
        }
    }

    fn answer(&mut self, query: Query) {
        let now = now();
        self.sweep(now);
        // A reply channel closed by a client that hung up is no concern of ours.
        match query {
            Query::Peers(reply) => {
                let wall_now = SystemTime::now();
                let mut peers: Vec<PeerInfo> = self
                    .registry
                    .peers()
                    .map(|peer| PeerInfo::new(peer, now, wall_now))
                    .collect();
                peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
                let _ = reply.send(peers);
            }
            Query::Status(reply) => {
                let _ = reply.send(AgentStatus {
                    hostname: self.config.name.clone(),
                    instance: format_instance(self.instance),
                    group: self.config.group_addr().to_string(),
                    interface: self.config.interface.to_string(),
                    interval_ms: millis(self.config.interval),
                    ttl_ms: millis(self.config.ttl),
                    peers: self.registry.len(),
                    uptime_ms: millis(now.duration_since(self.started)),
                    beacons_sent: self.counters.sent.load(Ordering::Relaxed),
                    beacons_received: self.received,
                    own_beacons_received: self.own_received,
                    datagrams_ignored: self.ignored,
                });
            }
        }
    }
}

/// The current instant from tokio's clock, the one `sleep_until` waits on, so a deadline and the
/// sleep towards it are read from the same clock. (No test pauses that clock: timing is tested
/// on the registry with explicit instants, and on real agents in real time.)
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn log_event(event: &PeerEvent) {
    match event {
        PeerEvent::Joined {
            hostname,
            address,
            instance,
        } => {
            info!(%hostname, address = %address.ip(), instance = %format_instance(*instance), "peer joined")
        }
        PeerEvent::Updated {
            hostname,
            old_address,
            address,
        } => {
            info!(%hostname, old_address = %old_address.ip(), address = %address.ip(), "peer moved")
        }
        PeerEvent::Restarted {
            hostname,
            old_instance,
            instance,
            address,
        } => info!(
            %hostname,
            address = %address.ip(),
            old_instance = %format_instance(*old_instance),
            instance = %format_instance(*instance),
            "peer restarted"
        ),
        PeerEvent::Left { hostname, address } => {
            info!(%hostname, address = %address.ip(), "peer left")
        }
        PeerEvent::Expired { hostname, address } => {
            info!(%hostname, address = %address.ip(), "peer expired")
        }
    }
}
