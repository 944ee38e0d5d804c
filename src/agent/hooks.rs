//! Runs the user's programs for each peer event: in event order, one at a time, off the agent's
//! loop, each with a timeout. A hook that hangs, fails or falls behind never stalls beacons or
//! expiry: it is killed, or events are dropped, and either way logged and counted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::{debug, warn};

use crate::api::{HookCounts, PeerChange};

/// What the hooks have done since the agent started; read by `/v1/status`.
#[derive(Debug, Default)]
pub struct HookCounters {
    runs: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    dropped: AtomicU64,
}

impl HookCounters {
    pub fn snapshot(&self) -> HookCounts {
        HookCounts {
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Runs every program in `programs` for each event `events` brings, until it closes. The
/// receiver is the queue: it holds the events published while a hook runs, up to the funnel's
/// bound, and past it the oldest are dropped and counted.
pub async fn run(
    programs: Vec<PathBuf>,
    timeout: Duration,
    mut events: broadcast::Receiver<Arc<PeerChange>>,
    counters: Arc<HookCounters>,
) {
    loop {
        let change = match events.recv().await {
            Ok(change) => change,
            Err(RecvError::Closed) => return,
            Err(RecvError::Lagged(missed)) => {
                counters.dropped.fetch_add(missed, Ordering::Relaxed);
                warn!(
                    missed,
                    "hooks fell behind: events dropped without running the hooks"
                );
                continue;
            }
        };
        // Once per event, however many programs read it.
        let json = serde_json::to_vec(&*change).expect("a peer change serializes to JSON");
        for program in &programs {
            run_one(program, &change, &json, timeout, &counters).await;
        }
    }
}

/// Runs `program` once for `change`: directly, not through a shell (the image has none), with
/// the event in its environment and as `json` on its stdin.
async fn run_one(
    program: &Path,
    change: &PeerChange,
    json: &[u8],
    timeout: Duration,
    counters: &HookCounters,
) {
    let event = change.event.as_str();
    let hostname = &change.peer.hostname;
    counters.runs.fetch_add(1, Ordering::Relaxed);
    let spawned = tokio::process::Command::new(program)
        .env("PEERD_EVENT", event)
        .env("PEERD_EVENT_ID", change.id.to_string())
        .env("PEERD_PEER_HOSTNAME", hostname)
        .env("PEERD_PEER_ADDRESS", &change.peer.address)
        .env("PEERD_PEER_INSTANCE", &change.peer.instance)
        .env(
            "PEERD_PEER_TAGS",
            crate::wire::tags::display(&change.peer.tags),
        )
        .stdin(Stdio::piped())
        // A group of its own, so a timeout or shutdown kills whatever the hook started too.
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            warn!(program = %program.display(), event, %hostname, error = %err, "cannot run hook");
            return;
        }
    };
    // Kills the group if this run ends early: at the timeout, or when shutdown drops it.
    let mut group = KillGroupOnDrop(child.id());
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its stdin is its own business.
            let _ = stdin.write_all(json).await;
        }
        child.wait().await
    };
    let finished = tokio::time::timeout(timeout, run).await;
    if finished.is_ok() {
        // It exited by itself: what it left running in the background is its own business.
        group.0 = None;
    }
    match finished {
        Ok(Ok(status)) if status.success() => {
            debug!(program = %program.display(), event, %hostname, "hook ran");
        }
        Ok(Ok(status)) => {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            warn!(program = %program.display(), event, %hostname, %status, "hook failed");
        }
        Ok(Err(err)) => {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            warn!(program = %program.display(), event, %hostname, error = %err, "hook failed");
        }
        Err(_) => {
            counters.timeouts.fetch_add(1, Ordering::Relaxed);
            warn!(
                program = %program.display(),
                event,
                %hostname,
                timeout = %humantime::format_duration(timeout),
                "hook timed out and was killed"
            );
        }
    }
}

/// Sends SIGKILL to a running hook's process group when dropped, unless cleared (`None`).
struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
