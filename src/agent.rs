//! The running agent: one task that drives the node's protocol (`node`) over the multicast
//! socket, and the HTTP API. No protocol here (see `node`), no socket options (see `socket`),
//! no argv (see `main`).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::api::{self, Query, Snapshot, Start, Subscription, format_instance};
use crate::beacon::MAX_BEACON_LEN;
use crate::config::Config;
use crate::events::Funnel;
use crate::hooks::{self, HookCounters};
use crate::node::Node;
use crate::registry::PeerEvent;
use crate::server::{self, ApiCounters};
use crate::socket;

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
    let api_counters = Arc::new(ApiCounters::default());
    let driver = Driver {
        socket,
        node: Node::new(config, instance, fastrand::u64(..), now()),
        funnel,
        hook_counters,
        api_counters: Arc::clone(&api_counters),
        sending: true,
    };
    tracker.spawn(
        driver
            .run(query_rx, shutdown.clone())
            .instrument(info_span!("node")),
    );
    // It returns within its shutdown grace of the cancellation, whatever clients hold open.
    let server = tracker.spawn(
        server::serve(api, api::router(queries), api_counters, shutdown.clone())
            .instrument(info_span!("api")),
    );
    tracker.close();
    server.await.context("the API task panicked")?;
    tracker.wait().await;
    info!("agent stopped");
    Ok(())
}

/// Moves bytes between the socket and the [`Node`]: sends what it says is due, feeds it every
/// datagram, wakes it when it asks, and answers the API's queries between datagrams.
struct Driver {
    socket: UdpSocket,
    node: Node,
    /// Every event the node reports goes through it.
    funnel: Funnel,
    hook_counters: Arc<HookCounters>,
    api_counters: Arc<ApiCounters>,
    /// Whether the last beacon went out: only the first of a run of failures is a warning.
    sending: bool,
}

impl Driver {
    async fn run(mut self, mut queries: mpsc::Receiver<Query>, shutdown: CancellationToken) {
        // One byte more than a beacon may have, so an oversized datagram shows as oversized
        // instead of being silently cut to a valid-looking length.
        let mut buf = [0u8; MAX_BEACON_LEN + 1];
        loop {
            if let Some(beacon) = self.node.poll_beacon(now()) {
                self.refresh_membership();
                self.send(&beacon).await;
            }
            let wakeup = self.node.next_wakeup();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(query) = queries.recv() => self.answer(query),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => {
                        let now = now();
                        if let Some(event) = self.node.handle_datagram(&buf[..len], from, now) {
                            self.publish(&event, now);
                        }
                    }
                    // ICMP errors surface here on Linux; the socket itself is still fine.
                    Err(err) => warn!(error = %err, "receive failed"),
                },
                _ = tokio::time::sleep_until(wakeup.into()) => self.sweep(now()),
            }
        }
        let goodbye = self.node.goodbye();
        if self.send(&goodbye).await {
            info!("goodbye sent");
        }
    }

    fn sweep(&mut self, now: Instant) {
        for event in self.node.handle_timeout(now) {
            self.publish(&event, now);
        }
    }

    fn publish(&mut self, event: &PeerEvent, now: Instant) {
        self.funnel.publish(event, now, SystemTime::now());
    }

    fn refresh_membership(&self) {
        let config = self.node.config();
        let (group, interface) = (config.group, config.interface);
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
    async fn send(&mut self, beacon: &[u8]) -> bool {
        let target = self.node.config().group_addr();
        let was_sending = std::mem::replace(&mut self.sending, false);
        match self.socket.send_to(beacon, target).await {
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
                let mut status = self.node.status(now, self.funnel.counts(), hooks);
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

/// The current instant from tokio's clock, the one `sleep_until` waits on, so a deadline and the
/// sleep towards it are read from the same clock. (No test pauses that clock: timing is tested
/// on the registry with explicit instants, and on real agents in real time.)
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
