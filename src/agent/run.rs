//! Starting the agent: its two tasks (announcer and receiver, joined only by `link`), the hooks,
//! the API and the metrics listener, all under one cancellation token.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use super::announcer::AnnouncerTask;
use super::events::Funnel;
use super::hooks::{self, HookCounters};
use super::link;
use super::notify::Notifier;
use super::receiver::ReceiverTask;
use crate::api::routes::{self, ApiState};
use crate::api::server::{self, ApiCounters};
use crate::clock::{now, wall_now};
use std::net::SocketAddr;

use super::resolver;
use crate::config::{Config, Target};
use crate::net::interface;
use crate::node::{Announcer, Receiver};
use crate::wire::beacon::format_instance;

/// The most connections the `--metrics` listener keeps open: a scraper or two, each with a
/// connection kept alive between scrapes, with room for a curl by hand.
const METRICS_CONNECTIONS: usize = 16;
/// Queries waiting for the receiver: the API's handlers wait their turn beyond it.
const QUERIES: usize = 16;
/// Resolver answers waiting for the receiver: one per name, read at once.
const RESOLVED: usize = 4;

/// This node's own unicast addresses, which are never its targets: every address of the host
/// on the port the others target. (A headless Service or a Compose service names this node
/// too.)
fn own_addresses(config: &Config) -> Vec<SocketAddr> {
    interface::local_addresses()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, config.port))
        .collect()
}

/// What `--interface` names, for the log: `eth0, fd00::/64`, or how one is picked.
fn interfaces_given(config: &Config) -> String {
    let given: Vec<String> = config.interfaces.iter().map(ToString::to_string).collect();
    match given.is_empty() {
        true => "the one picked (see the next line)".to_owned(),
        false => given.join(", "),
    }
}

/// Runs the agent until `shutdown` is cancelled, then sends a goodbye beacon and returns.
///
/// `api` is the bound listener of the local HTTP API, taken bound so tests can use port 0;
/// `metrics`, if given, serves `/metrics` and `/healthz` only (`--metrics`).
/// The multicast socket for `config` is opened by the receiver, and opened again whenever it
/// fails: an interface whose address is not there yet (a container whose network comes up
/// late) is retried with backoff, while the API already answers.
///
/// `notifier`, under systemd, hears `READY=1` once the socket first joins the group, a
/// `WATCHDOG=1` from the receiver's loop at its interval, and `STOPPING=1` before the goodbye.
pub async fn run(
    config: Config,
    api: TcpListener,
    metrics: Option<TcpListener>,
    notifier: Option<Notifier>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let config = Arc::new(config);
    let (started, started_wall) = (now(), wall_now());
    let instance = fastrand::u64(..);
    let api_addr = api.local_addr().context("reading the API address")?;
    info!(
        hostname = %config.name,
        instance = %format_instance(instance),
        groups = %config.groups(),
        interfaces = %interfaces_given(&config),
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

    let tracker = TaskTracker::new();
    let funnel = Funnel::default();
    let hook_counters = Arc::new(HookCounters::default());
    if !config.hooks.is_empty() {
        // Subscribed before the receiver runs, so the peers found at start-up fire `joined` too.
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

    let notifier = notifier.map(Arc::new);
    let (receiver_side, announcer_side) = link::link();
    let (queries, query_rx) = mpsc::channel(QUERIES);
    let (resolved, resolved_rx) = mpsc::channel(RESOLVED);
    let core = Receiver::new(&config, instance, started).with_own_addresses(own_addresses(&config));
    let names: Vec<Target> = core
        .targets()
        .names()
        .iter()
        .map(|name| name.target.clone())
        .collect();
    if config.has_targets() {
        info!(peers_dns = ?config.peers_dns.iter().map(ToString::to_string).collect::<Vec<_>>(),
            peers = ?config.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            multicast = config.multicast,
            resolve_interval = %humantime::format_duration(config.resolve_interval),
            "beaconing to unicast targets too");
    }
    tracker.spawn(resolver::run(
        names,
        config.resolve_interval,
        resolved,
        shutdown.clone(),
    ));
    let mut receiver = ReceiverTask::new(
        core,
        Arc::clone(&config),
        receiver_side,
        funnel,
        hook_counters,
        notifier.clone(),
        started,
    );
    receiver.open_first(started);
    let announcer = AnnouncerTask::new(
        Announcer::new(&config, instance, fastrand::u64(..), started),
        Arc::clone(&config),
        announcer_side,
        notifier,
    );
    // Not in spans: the receiver is polled for every datagram and timer, and entering and
    // leaving a span on each poll was a seventh of an idle agent's CPU (bin/bench-lan's
    // profile). Their lines name their modules instead.
    tracker.spawn(receiver.run(query_rx, resolved_rx, shutdown.clone()));
    tracker.spawn(announcer.run(shutdown.clone()));

    let api_counters = Arc::new(ApiCounters::default());
    let state = ApiState {
        queries,
        config,
        instance,
        counters: Arc::clone(&api_counters),
        started: started_wall,
    };
    if let Some(listener) = metrics {
        let addr = listener
            .local_addr()
            .context("reading the metrics address")?;
        // A scraper opens a connection or two; the cap keeps the API's share of open files.
        let cap = METRICS_CONNECTIONS.min(server::connection_cap());
        info!(metrics = %addr, max_connections = cap, "serving /metrics");
        // Counted apart: the API's counters are about the API's clients.
        let counters = Arc::new(ApiCounters::default());
        let router = routes::metrics_router(state.clone());
        tracker.spawn(
            server::serve_within(listener, router, cap, counters, shutdown.clone())
                .instrument(info_span!("metrics")),
        );
    }
    // It returns within its shutdown grace of the cancellation, whatever clients hold open.
    let server = tracker.spawn(
        server::serve(api, routes::router(state), api_counters, shutdown.clone())
            .instrument(info_span!("api")),
    );
    tracker.close();
    server.await.context("the API task panicked")?;
    tracker.wait().await;
    info!("agent stopped");
    Ok(())
}
