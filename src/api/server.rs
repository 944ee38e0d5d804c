//! Serves the HTTP API over a `TcpListener` within limits: a deadline for each request head, a
//! cap on open connections below the file-descriptor limit, and a short grace at shutdown. The
//! routes are `api`'s; this only decides which connections to keep.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use nix::sys::resource::{Resource, getrlimit};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::connections::{Connections, Room};
use super::status::ApiCounts;
use crate::clock::now;
use crate::throttle::Throttle;

/// How long a client may take to send a request head, from the moment its connection is
/// accepted or its previous response ends. A local client sends its request in one write, so
/// 5 s is generous even on a loaded machine. hyper runs this timer whenever a connection waits
/// for a head, so it is also how long an idle keep-alive connection stays open; a response in
/// flight, such as the event stream, is never cut by it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The most connections open at once, however many files the process may open: the CLI opens
/// one per command and the page a stream and a few requests, so 512 is far beyond any honest
/// use of a local API.
pub const MAX_CONNECTIONS: usize = 512;

/// How long, at shutdown, a request in flight has to finish before its connection is dropped:
/// the API answers in microseconds, and the agent must be gone within a second of SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

/// At most one warning this often about connections the limits closed, so an attack cannot
/// fill the log.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Connections the kernel holds until the serve loop accepts them. Past it the kernel drops a
/// new connection's SYN and the client retries only a second later, so a burst from a hostile
/// client would delay `peerd health` by that much; the loop accepts 2,000 in about 0.1 s (a
/// debug build), and with the standard library's 128 a burst of 2,000 overflowed it. 4096 is
/// the kernel's default ceiling (`net.core.somaxconn`).
pub const BACKLOG: u32 = 4096;

/// How long to stop accepting after the process ran out of something (file descriptors,
/// memory): accepting again at once would spin on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the limits did since the agent started; read by `/v1/status`.
#[derive(Debug, Default)]
pub struct ApiCounters {
    open: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
    requests: AtomicU64,
}

impl ApiCounters {
    pub fn snapshot(&self) -> ApiCounts {
        ApiCounts {
            open: self.open.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

/// The cap on open connections: [`MAX_CONNECTIONS`], or half the soft limit on open files if
/// that is lower. The other half is for the agent's own sockets, the hooks' pipes, and the one
/// more connection that must be accepted before it can be refused or make room.
pub fn connection_cap() -> usize {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => usize::try_from(soft / 2)
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_CONNECTIONS),
        Err(_) => MAX_CONNECTIONS,
    }
}

/// Binds the API's listener on `addr`, with room for a burst of connections ([`BACKLOG`]).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restarted agent can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, within the limits above; then
/// stops accepting, gives requests in flight [`SHUTDOWN_GRACE`] and drops every connection.
/// Never fails: a failed accept is logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    counters: Arc<ApiCounters>,
    shutdown: CancellationToken,
) {
    let cap = connection_cap();
    info!(
        max_connections = cap,
        header_timeout = %humantime::format_duration(HEADER_TIMEOUT),
        "serving the api"
    );
    serve_within(listener, router, cap, counters, shutdown).await;
}

/// As [`serve`], with at most `cap` connections open: for a second listener, which must leave
/// the API its share of the open files.
pub async fn serve_within(
    listener: TcpListener,
    router: Router,
    cap: usize,
    counters: Arc<ApiCounters>,
    shutdown: CancellationToken,
) {
    let mut server = Server::new(router, cap, counters, shutdown.clone());
    loop {
        let report_at = server.report.summary_due();
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => server.admit(stream),
                Err(err) => server.accept_failed(err).await,
            },
            Some(joined) = server.tasks.join_next() => server.ended(joined),
            () = tokio::time::sleep_until(report_at.unwrap_or_else(now).into()),
                if report_at.is_some() => {
                if server.report.summary(now()).is_some() {
                    server.say();
                }
            }
        }
    }
    // Closed first, so new connections are refused by the kernel instead of left waiting.
    drop(listener);
    server.close().await;
}

/// The serve loop's state: the open connections and the tasks that drive them.
struct Server {
    http: http1::Builder,
    router: Router,
    open: Connections<Slot>,
    /// One task per open connection; each returns its key in `open` and how it ended.
    tasks: JoinSet<(u64, Ended)>,
    counters: Arc<ApiCounters>,
    /// The warnings about connections the limits closed: the first at once, the rest together
    /// at most once a [`REPORT_EVERY`].
    report: Throttle,
    /// The totals the last warning covered.
    said: ApiCounts,
    /// At most one warning a second about failed accepts; the rest are debug lines.
    accept_log: Throttle,
    shutdown: CancellationToken,
}

/// One open connection as the serve loop keeps it.
struct Slot {
    state: Arc<ConnState>,
    task: AbortHandle,
}

/// What the serve loop reads of a connection its task drives.
#[derive(Debug, Default)]
struct ConnState {
    /// Requests whose response is not finished: from the parsed head until hyper drops the
    /// response body (after its last byte, or with the connection).
    in_flight: AtomicUsize,
    /// Whether a request head ever arrived.
    served: AtomicBool,
}

/// Marks one request in flight until dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: &Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        state.served.store(true, Ordering::Relaxed);
        InFlight(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a connection's task ended.
#[derive(Debug)]
enum Ended {
    Closed,
    /// No request head within [`HEADER_TIMEOUT`] of connecting.
    TimedOut,
    /// The client went away mid-request, sent something that is not HTTP, or let a kept-alive
    /// connection idle past the timeout: its own business, not a limit at work.
    Failed(hyper::Error),
}

impl Server {
    fn new(
        router: Router,
        cap: usize,
        counters: Arc<ApiCounters>,
        shutdown: CancellationToken,
    ) -> Server {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        Server {
            http,
            router,
            open: Connections::new(cap),
            tasks: JoinSet::new(),
            counters,
            report: Throttle::new(REPORT_EVERY),
            said: ApiCounts::default(),
            accept_log: Throttle::new(REPORT_EVERY),
            shutdown,
        }
    }

    /// Serves `stream`, making room for it first; refuses it (closes it at once) when every
    /// open connection has a request in flight.
    fn admit(&mut self, stream: TcpStream) {
        match self.open.make_room(Slot::busy) {
            Room::Free => {}
            Room::Evict(slot) => {
                // Dropping its connection closes the socket.
                slot.task.abort();
                self.count(|counters| &counters.evicted);
            }
            Room::Full => {
                drop(stream);
                self.count(|counters| &counters.refused);
                return;
            }
        }
        let state = Arc::new(ConnState::default());
        let router = TowerToHyperService::new(self.router.clone());
        let tracked = Arc::clone(&state);
        let counters = Arc::clone(&self.counters);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let in_flight = InFlight::new(&tracked);
            let answer = router.call(request);
            async move {
                let response = answer.await?;
                // The closure owns the marker, so it lives exactly as long as the body does.
                let body = response.map(|body| {
                    body.map_frame(move |frame| {
                        let _in_flight = &in_flight;
                        frame
                    })
                });
                Ok::<_, Infallible>(body)
            }
        });
        let connection = self.http.serve_connection(TokioIo::new(stream), service);
        let shutdown = self.shutdown.clone();
        let ended_state = Arc::clone(&state);
        self.open.insert_with(|key| {
            let task = self.tasks.spawn(async move {
                let mut connection = std::pin::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = shutdown.cancelled() => {
                        // A request in flight is finished, then the connection closed; the serve
                        // loop drops it anyway when the grace is over.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                (key, Ended::from(result, &ended_state))
            });
            Slot { state, task }
        });
        self.set_open();
    }

    fn ended(&mut self, joined: Result<(u64, Ended), JoinError>) {
        match joined {
            Ok((key, ended)) => {
                self.open.remove(key);
                match ended {
                    Ended::Closed => {}
                    Ended::TimedOut => self.count(|counters| &counters.timed_out),
                    Ended::Failed(err) => debug!(error = %err, "api connection ended"),
                }
            }
            // A handler panicked (a debug build: the release build aborts): forget its slot.
            Err(err) if err.is_panic() => {
                let id = err.id();
                self.open.retain(|slot| slot.task.id() != id);
                warn!("an api connection's task panicked");
            }
            // Aborted: evicted, so already out of `open`.
            Err(_) => {}
        }
        self.set_open();
    }

    async fn accept_failed(&mut self, err: io::Error) {
        use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        // The client gave up before we took its connection: nothing to do with us.
        if matches!(
            err.kind(),
            ConnectionAborted | ConnectionRefused | ConnectionReset
        ) {
            debug!(error = %err, "a connection failed before it was accepted");
            return;
        }
        if self.accept_log.admit(now()).is_some() {
            warn!(error = %err, open = self.open.len(), "cannot accept api connections; retrying");
        } else {
            debug!(error = %err, "cannot accept api connections");
        }
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }

    /// Counts one closure by the limits, and tells it at once if the last warning was long
    /// enough ago; otherwise the summary at the end of the period tells it.
    fn count(&mut self, counter: fn(&ApiCounters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
        if self.report.admit(now()).is_some() {
            self.say();
        }
    }

    fn say(&mut self) {
        let totals = self.counters.snapshot();
        let since = since(totals, std::mem::replace(&mut self.said, totals));
        warn!(
            refused = since.refused,
            evicted = since.evicted,
            timed_out = since.timed_out,
            open = since.open,
            "api connections closed at the limits: too many open, or too slow to send a request"
        );
    }

    fn set_open(&self) {
        let open = u64::try_from(self.open.len()).unwrap_or(u64::MAX);
        self.counters.open.store(open, Ordering::Relaxed);
    }

    /// Closes every connection: at once if it has no request in flight (hyper would keep one
    /// waiting for a request head until its timeout), after the request if it has one (its task
    /// has seen the cancellation), and in any case once the grace is over.
    async fn close(mut self) {
        for slot in self.open.iter().filter(|slot| !slot.busy()) {
            slot.task.abort();
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            debug!(
                open = self.tasks.len(),
                "dropping the api connections still open after the grace"
            );
        }
        self.tasks.shutdown().await;
    }
}

impl Slot {
    fn busy(&self) -> bool {
        self.state.in_flight.load(Ordering::Relaxed) > 0
    }
}

impl Ended {
    fn from(result: hyper::Result<()>, state: &ConnState) -> Ended {
        match result {
            Ok(()) => Ended::Closed,
            // A kept-alive connection that idles past the timeout after answering is closed
            // the same way, but it is no sign of a slow or hostile client: not counted.
            Err(err) if err.is_timeout() && !state.served.load(Ordering::Relaxed) => {
                Ended::TimedOut
            }
            Err(err) => Ended::Failed(err),
        }
    }
}

/// What changed from `said` to `totals`, with the connections open now.
fn since(totals: ApiCounts, said: ApiCounts) -> ApiCounts {
    ApiCounts {
        open: totals.open,
        refused: totals.refused - said.refused,
        evicted: totals.evicted - said.evicted,
        timed_out: totals.timed_out - said.timed_out,
        requests: totals.requests - said.requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(refused: u64, evicted: u64, timed_out: u64, open: u64) -> ApiCounts {
        ApiCounts {
            open,
            refused,
            evicted,
            timed_out,
            requests: 0,
        }
    }

    #[test]
    fn a_warning_tells_what_changed_since_the_last_one() {
        assert_eq!(
            since(counts(2, 400, 99, 512), counts(2, 1, 0, 9)),
            counts(0, 399, 99, 512),
            "the open connections as they are now"
        );
    }
}
