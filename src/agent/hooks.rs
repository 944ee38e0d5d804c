//! Runs the user's programs for each peer event: in event order, one at a time, off the agent's
//! loop, each with a timeout. A hook that hangs, fails, falls behind or writes without end never
//! stalls beacons or expiry: it is killed, events are dropped or its output is cut, and either
//! way it is counted, and logged within a budget.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use tracing::{debug, warn};

use super::hook_output::{self, Capture};
use crate::api::{HookCounters, PeerChange};
use crate::clock::{now, wall_now};
use crate::{Change, Changes};
use crate::throttle::Throttle;

/// Hook warnings logged per [`WARN_WINDOW`]: the failures of a few hooks, or of one in a few
/// ways, each show in full; the rest are counted by kind and summarised in one line as the
/// window ends, a line of the next window's burst.
pub const WARN_BURST: u32 = 5;
/// Ten seconds, as for the socket's errors: a hook that fails at every event of a flood costs
/// five lines per window, where it cost one per event.
pub const WARN_WINDOW: Duration = Duration::from_secs(10);
/// How long a hook's output is still read once it has exited, or been killed: what it wrote
/// last may still be in the pipes, which takes microseconds to read. A program it left running
/// with the pipes open holds up each run this long, not until it exits.
const OUTPUT_GRACE: Duration = Duration::from_millis(100);

/// Runs every program in `programs` for each event `changes` brings, until it ends. The
/// subscription is the queue: it holds the events published while a hook runs, up to its
/// bound, and past it they are dropped and counted. Snapshots run nothing: the subscription is
/// taken before the instance runs, so its first is empty, and the one after a fall behind is
/// no event.
pub async fn run(
    programs: Vec<PathBuf>,
    timeout: Duration,
    mut changes: Changes,
    counters: Arc<HookCounters>,
) {
    let mut warnings = Warnings::default();
    loop {
        let summary_at = warnings.summary_due();
        let received = tokio::select! {
            received = changes.next() => received,
            () = tokio::time::sleep_until(summary_at.unwrap_or_else(now).into()),
                if summary_at.is_some() => {
                warnings.flush(now());
                continue;
            }
        };
        let event = match received {
            Some(Change::Event(event)) => event,
            Some(Change::Snapshot(_)) => continue,
            None => return,
            Some(Change::Lagged { missed }) => {
                counters.dropped.fetch_add(missed, Ordering::Relaxed);
                if warnings.admit(Trouble::Dropped(missed), now()) {
                    warn!(
                        missed,
                        "hooks fell behind: events dropped without running the hooks"
                    );
                }
                continue;
            }
        };
        let change = PeerChange::new(&event, now(), wall_now());
        // Once per event, however many programs read it.
        let json = serde_json::to_vec(&change).expect("a peer change serializes to JSON");
        for program in &programs {
            run_one(program, &change, &json, timeout, &counters, &mut warnings).await;
        }
        // Starting a program is a blocking fork and exec on the agent's one thread, and one
        // that fails at once never waits: without a turn for the others, a backlog of events
        // ran 128 of them (tokio's budget) in a row, 660 ms of a loaded machine during which
        // the receiver read nothing and took its own queued beacons for lost.
        tokio::task::yield_now().await;
    }
}

/// Runs `program` once for `change`: directly, not through a shell (the image has none), with
/// the event in its environment and as `json` on its stdin, and its output read as it comes.
async fn run_one(
    program: &Path,
    change: &PeerChange,
    json: &[u8],
    timeout: Duration,
    counters: &HookCounters,
    warnings: &mut Warnings,
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
        // Never the agent's own: its log is no place for a hook's megabytes.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so a timeout or shutdown kills whatever the hook started too.
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            if warnings.admit(Trouble::Failed, now()) {
                warn!(program = %program.display(), event, %hostname, error = %err, "cannot run hook");
            }
            return;
        }
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Capture::default(), Capture::default());
    let log = |stream: &'static str| {
        move |line: &str| {
            debug!(
                program = %program.display(),
                event,
                %hostname,
                stream,
                line,
                "hook output"
            );
        }
    };
    let output = async {
        tokio::join!(
            hook_output::drain(stdout, &mut out, log("stdout")),
            hook_output::drain(stderr, &mut err, log("stderr")),
        );
    };
    let finished = wait_reading(&mut child, json, timeout, output).await;
    for (stream, capture) in [("stdout", &mut out), ("stderr", &mut err)] {
        capture.finish(&mut log(stream));
        let (lines, bytes) = capture.dropped();
        if bytes > 0 {
            debug!(
                program = %program.display(),
                event,
                %hostname,
                stream,
                lines,
                bytes,
                "hook output past its first lines dropped"
            );
        }
    }
    match finished {
        Some(Ok(status)) if status.success() => {
            debug!(program = %program.display(), event, %hostname, "hook ran");
        }
        Some(result) => {
            counters.failures.fetch_add(1, Ordering::Relaxed);
            if warnings.admit(Trouble::Failed, now()) {
                match result {
                    Ok(status) => {
                        warn!(program = %program.display(), event, %hostname, %status, "hook failed")
                    }
                    Err(error) => {
                        warn!(program = %program.display(), event, %hostname, %error, "hook failed")
                    }
                }
            }
        }
        None => {
            counters.timeouts.fetch_add(1, Ordering::Relaxed);
            if warnings.admit(Trouble::TimedOut, now()) {
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
}

/// Gives `child` the event's `json` on its stdin and waits for it to exit, `output` reading its
/// pipes meanwhile; `None` if it ran past `timeout`, and then it is killed with its group, as it
/// is if this is dropped (at shutdown). What it wrote just before it ended is read for
/// [`OUTPUT_GRACE`] more.
async fn wait_reading(
    child: &mut Child,
    json: &[u8],
    timeout: Duration,
    output: impl Future<Output = ()>,
) -> Option<io::Result<ExitStatus>> {
    // Kills the group if this run ends early: at the timeout, or when shutdown drops it.
    let mut group = KillGroupOnDrop(child.id());
    // Read while it runs, or a hook that fills a pipe would block until its timeout.
    let mut output = pin!(output);
    let mut drained = false;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its stdin is its own business.
            let _ = stdin.write_all(json).await;
        }
        child.wait().await
    };
    let finished = tokio::time::timeout(timeout, async {
        let mut run = pin!(run);
        loop {
            tokio::select! {
                status = &mut run => break status,
                () = &mut output, if !drained => drained = true,
            }
        }
    })
    .await
    .ok();
    if finished.is_some() {
        // It exited by itself: what it left running in the background is its own business.
        group.0 = None;
    }
    // Killed now if it timed out, so the pipes close and the reading ends.
    drop(group);
    if !drained {
        // Only a program it left running with the pipes open makes this wait it out.
        let _ = tokio::time::timeout(OUTPUT_GRACE, output).await;
    }
    finished
}

/// What went wrong with the hooks, as their warnings count it.
#[derive(Debug, Clone, Copy)]
enum Trouble {
    /// A run that could not start, or exited unsuccessfully.
    Failed,
    /// A run killed at its timeout.
    TimedOut,
    /// Events the hooks fell behind on, dropped without running them.
    Dropped(u64),
}

/// The hooks' warnings within one budget: [`WARN_BURST`] logged in full per [`WARN_WINDOW`],
/// the rest counted by kind and summarised once their window is over. The counters in
/// `/v1/status` count every one regardless.
#[derive(Debug)]
struct Warnings {
    throttle: Throttle,
    held: Held,
}

/// The warnings held back in a window, by kind: runs failed, runs timed out, events dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Held {
    failed: u64,
    timed_out: u64,
    dropped: u64,
}

impl Default for Warnings {
    fn default() -> Self {
        Warnings {
            throttle: Throttle::with_burst(WARN_BURST, WARN_WINDOW),
            held: Held::default(),
        }
    }
}

impl Warnings {
    /// Whether a warning about `trouble` at `now` may be logged in full; if not, it is counted
    /// for the summary. A window that is over is summarised first, so the log stays in order.
    fn admit(&mut self, trouble: Trouble, now: Instant) -> bool {
        self.flush(now);
        if self.throttle.admit(now).is_some() {
            return true;
        }
        match trouble {
            Trouble::Failed => self.held.failed += 1,
            Trouble::TimedOut => self.held.timed_out += 1,
            Trouble::Dropped(missed) => self.held.dropped += missed,
        }
        false
    }

    /// When the warnings held back may be summarised, if any were.
    fn summary_due(&self) -> Option<Instant> {
        self.throttle.summary_due()
    }

    /// Logs the summary of the warnings held back, one line, if their window is over by `now`;
    /// returns what it summarised.
    fn flush(&mut self, now: Instant) -> Option<Held> {
        self.throttle.summary(now)?;
        let held = std::mem::take(&mut self.held);
        let Held {
            failed,
            timed_out,
            dropped,
        } = held;
        let parts = [
            (failed, "hook runs failed"),
            (timed_out, "hook runs timed out and were killed"),
            (dropped, "events dropped by hooks that fell behind"),
        ];
        let told: Vec<String> = parts
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{count} more {what}"))
            .collect();
        let window = humantime::format_duration(WARN_WINDOW);
        warn!(
            failed,
            timed_out,
            dropped,
            "{} in the last {window}",
            told.join(", ")
        );
        Some(held)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_failures_warns_a_burst_then_one_summary_of_the_rest() {
        let t0 = Instant::now();
        let mut warnings = Warnings::default();
        let mut logged = 0;
        for i in 0..2000 {
            let trouble = if i % 2 == 0 {
                Trouble::Failed
            } else {
                Trouble::TimedOut
            };
            logged += u32::from(warnings.admit(trouble, t0 + Duration::from_millis(i)));
        }
        warnings.admit(Trouble::Dropped(300), t0 + Duration::from_secs(2));
        assert_eq!(logged, WARN_BURST);
        assert_eq!(warnings.summary_due(), Some(t0 + WARN_WINDOW));
        assert_eq!(
            warnings.flush(t0 + WARN_WINDOW / 2),
            None,
            "not before the window ends"
        );
        let held = warnings.flush(t0 + WARN_WINDOW);
        let (failed, timed_out) = (1000 - 3, 1000 - 2);
        assert_eq!(
            held,
            Some(Held {
                failed,
                timed_out,
                dropped: 300
            })
        );
        assert_eq!(warnings.summary_due(), None, "nothing left to summarise");
    }

    #[test]
    fn a_late_warning_is_preceded_by_the_summary_of_the_window_before() {
        let t0 = Instant::now();
        let mut warnings = Warnings::default();
        for i in 0..=WARN_BURST {
            warnings.admit(Trouble::Failed, t0 + Duration::from_millis(u64::from(i)));
        }
        // No wake-up came in time: the next warning closes the window first, and still shows.
        assert!(warnings.admit(Trouble::Failed, t0 + 2 * WARN_WINDOW));
        assert_eq!(warnings.summary_due(), None);
        assert_eq!(warnings.held, Held::default());
    }
}
