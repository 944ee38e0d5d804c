//! Running the agent: a [`Discovery`] instance, and around it the hooks, the HTTP API, the
//! metrics listener and systemd's notifications, all under one cancellation token. It reaches
//! the instance through the library's public API only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span};

use super::hooks;
use crate::api::HookCounters;
use super::notify::{self, Notifier};
use crate::api::routes::{self, ApiState};
use crate::api::server::{self, ApiCounters};
use crate::clock::wall_now;
use crate::{Builder, Discovery};

/// The most connections the `--metrics` listener keeps open: a scraper or two, each with a
/// connection kept alive between scrapes, with room for a curl by hand.
const METRICS_CONNECTIONS: usize = 16;

/// What the agent adds to a discovery instance.
#[derive(Debug)]
pub struct AgentParts {
    /// The local HTTP API's listener, taken bound so tests can use port 0.
    pub api: TcpListener,
    /// Serves `/metrics` and `/healthz` only (`--metrics`).
    pub metrics: Option<TcpListener>,
    /// Programs run for each peer event, in this order.
    pub hooks: Vec<PathBuf>,
    /// How long a hook may run before it is killed.
    pub hook_timeout: Duration,
    /// Under systemd: hears `READY=1` once the sockets first open, `WATCHDOG=1` each time the
    /// instance answers a status query at the watchdog's interval, `STOPPING=1` before the
    /// goodbye.
    pub notifier: Option<Notifier>,
}

/// Runs the agent until `shutdown` is cancelled, then says goodbye and returns.
///
/// The instance is spawned, not started: when its sockets cannot open yet (an interface that
/// comes up late), they are retried while the API already answers and says why.
pub async fn run(
    discovery: Builder,
    parts: AgentParts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let started_wall = wall_now();
    let discovery = Arc::new(discovery.spawn()?);
    let settings = discovery.settings();
    let api_addr = parts.api.local_addr().context("reading the API address")?;
    info!(api = %api_addr, "agent started");

    let tracker = TaskTracker::new();
    let hook_counters = Arc::new(HookCounters::default());
    if !parts.hooks.is_empty() {
        // Subscribed before the instance runs, so the peers found at start-up fire `joined`.
        let run = hooks::run(
            parts.hooks,
            parts.hook_timeout,
            discovery.subscribe(),
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
    let notifier = parts.notifier.map(Arc::new);
    if let Some(notifier) = &notifier {
        tracker.spawn(notify_systemd(
            Arc::clone(notifier),
            Arc::clone(&discovery),
            shutdown.clone(),
        ));
    }

    let api_counters = Arc::new(ApiCounters::default());
    let state = ApiState {
        discovery: Arc::clone(&discovery),
        settings,
        counters: Arc::clone(&api_counters),
        hooks: hook_counters,
        started: started_wall,
    };
    if let Some(listener) = parts.metrics {
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
        server::serve(
            parts.api,
            routes::router(state),
            api_counters,
            shutdown.clone(),
        )
        .instrument(info_span!("api")),
    );
    tracker.close();
    shutdown.cancelled().await;
    if let Some(notifier) = &notifier {
        notifier.send(notify::STOPPING);
    }
    discovery.shutdown().await;
    server.await.context("the API task panicked")?;
    tracker.wait().await;
    info!("agent stopped");
    Ok(())
}

/// `READY=1` once the sockets first open, then, if the manager asked for them, `WATCHDOG=1`
/// at its interval whenever the instance answers a status query within it: only a receive
/// loop that keeps turning keeps the service alive.
async fn notify_systemd(
    notifier: Arc<Notifier>,
    discovery: Arc<Discovery>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        () = discovery.opened() => notifier.send(notify::READY),
    };
    let Some(interval) = notifier.watchdog() else {
        return;
    };
    loop {
        let answered = tokio::time::timeout(interval, discovery.status());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            answered = answered => if matches!(answered, Ok(Ok(_))) {
                notifier.send(notify::WATCHDOG);
            },
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
