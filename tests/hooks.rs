//! `--on-event` hooks on loopback agents: each event runs the program with the event in its
//! environment and as JSON on its stdin, in event order, starting with the peers found at
//! start-up; a hook that fails or hangs is counted, killed at its timeout, and stalls nothing;
//! its failures and its output reach the log within bounds.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use peerd::agent::hook_output;
use peerd::agent::hooks::{WARN_BURST, WARN_WINDOW};
use peerd::api::{EventKind, HookCounts, PeerChange};

use crate::support::cluster::{self, Cluster};
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{unique, wait_for};

/// A directory of hook scripts, removed on drop.
struct Scripts(PathBuf);

impl Scripts {
    fn new() -> Scripts {
        let dir = std::env::temp_dir().join(unique("hooks"));
        fs::create_dir(&dir).expect("create the scripts' directory");
        Scripts(dir)
    }

    /// Writes an executable bash script `name` running `body`; returns its path.
    fn script(&self, name: &str, body: &str) -> String {
        let path = self.0.join(name);
        fs::write(&path, format!("#!/bin/bash\n{body}\n")).expect("write the script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod the script");
        path.display().to_string()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn hooks_get_each_event_in_order_with_its_environment_and_json() {
    let Some(mut lan) = Lan::loopback(2, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    let record = scripts.file("events");
    let hook = scripts.script(
        "record",
        &format!(
            r#"json=$(cat)
printf '%s %s %s %s %s\n' "$PEERD_EVENT" "$PEERD_PEER_HOSTNAME" "$PEERD_PEER_ADDRESS" "$PEERD_PEER_INSTANCE" "$json" >> {}"#,
            record.display()
        ),
    );
    lan.add("hooked", &["--on-event", &hook])
        .expect("the namespace exists");
    let lines = |count: usize| {
        wait_for(POLL_SLACK, || {
            let text = fs::read_to_string(&record).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(String::from).collect();
            (lines.len() >= count).then_some(lines)
        })
        .unwrap_or_else(|| panic!("the hook did not record {count} events"))
    };
    // The peers found at start-up fire `joined`: a hook keeping a file in sync needs them.
    let mut joined: Vec<String> = lines(2)
        .iter()
        .map(|line| line.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    joined.sort();
    assert_eq!(joined, ["joined node1 127.0.0.1", "joined node2 127.0.0.1"]);

    assert!(lan.stop("node2"));
    let all = lines(3);
    let mut fields = all[2].splitn(5, ' ');
    let env: Vec<&str> = fields.by_ref().take(4).collect();
    let change: PeerChange =
        serde_json::from_str(fields.next().expect("the JSON")).expect("stdin is a PeerChange");
    assert_eq!(env[..3], ["left", "node2", "127.0.0.1"]);
    assert_eq!(
        (change.event, change.peer.hostname.as_str()),
        (EventKind::Left, "node2")
    );
    assert_eq!(change.peer.instance, env[3]);
    let ids: Vec<u64> = all
        .iter()
        .map(|line| {
            let json = line.splitn(5, ' ').nth(4).expect("the JSON");
            serde_json::from_str::<PeerChange>(json)
                .expect("a PeerChange")
                .id
        })
        .collect();
    assert_eq!(ids, [1, 2, 3], "run in event order");
    let status = lan.status("hooked").expect("answers");
    assert_eq!((status.hooks.runs, status.hooks.failures), (3, 0));
}

#[test]
fn a_failing_or_hanging_hook_is_counted_killed_and_stalls_nothing() {
    let Some(mut lan) = Lan::loopback(2, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    let fail = scripts.script("fail", "exit 3");
    let hang = scripts.script("hang", "sleep 30");
    let flags = [
        "--on-event",
        &fail,
        "--on-event",
        &hang,
        "--hook-timeout",
        "300ms",
    ];
    lan.add("hooked", &flags).expect("the namespace exists");
    // Two joins: each runs `fail` (exit 3) and then `hang` (killed after 300 ms).
    let counted = wait_for(POLL_SLACK, || {
        let hooks = lan.status("hooked")?.hooks;
        (hooks.failures >= 2 && hooks.timeouts >= 2).then_some(hooks)
    });
    assert!(counted.is_some(), "failures and timeouts not counted");
    let log = lan.log("hooked");
    assert!(log.contains("hook failed") && log.contains("hook timed out and was killed"));
    let sleeping = |lan: &Lan| {
        let names = lan.agent("node1").processes_in_namespace();
        names.iter().filter(|n| *n == "sleep").count()
    };
    // Killed with its process group: at most the run still within its 300 ms is sleeping.
    assert!(
        sleeping(&lan) <= 1,
        "timed-out hooks left their children running"
    );
    // The hooks hung for longer than a ttl in all, yet every peer stayed listed throughout.
    assert!(
        !log.contains("peer expired"),
        "a hanging hook stalled the agent"
    );
    assert!(cluster::wait_whole(&lan, POLL_SLACK).is_some());
}

#[test]
fn a_running_hook_does_not_hold_up_the_exit() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    let started = scripts.file("started");
    let hang = scripts.script("hang", &format!("touch {}\nsleep 30", started.display()));
    lan.add("hooked", &["--on-event", &hang])
        .expect("the namespace exists");
    assert!(
        wait_for(POLL_SLACK, || started.exists().then_some(())).is_some(),
        "the hook never ran"
    );
    // Agent::stop fails the test unless the agent exits within a second.
    assert!(lan.stop("hooked"), "did not exit 0 with a hook running");
    assert!(lan.log("hooked").contains("goodbye sent"));
    // The hook's whole process group goes with it, `sleep` included.
    let gone = wait_for(POLL_SLACK, || {
        let names = lan.agent("node1").processes_in_namespace();
        (!names.iter().any(|n| n == "sleep")).then_some(())
    });
    assert!(gone.is_some(), "the hook's sleep outlived the agent");
}

#[test]
fn hooks_that_fall_behind_drop_events_count_them_and_stall_nothing() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    let slow = scripts.script("slow", "sleep 1");
    lan.add("hooked", &["--on-event", &slow])
        .expect("the namespace exists");
    // A flood of made-up peers: a join and an expiry each, far more than the hooks' queue.
    lan.announce_made_up_peers(600);
    let counted = wait_for(POLL_SLACK, || {
        let status = lan.status("hooked")?;
        // Every made-up peer joined and expired; node1 stays.
        let events = status.events;
        let all_seen = events.joined >= 300 && events.expired + 1 == events.joined;
        (all_seen && status.hooks.dropped > 0).then_some(status)
    });
    let status =
        counted.unwrap_or_else(|| panic!("dropped events not counted: {:?}", lan.status("hooked")));
    assert!(
        lan.log("hooked").contains("hooks fell behind"),
        "not logged"
    );
    // The agent kept up meanwhile: every made-up peer came and went, and node1 stayed.
    assert_eq!(status.peers, 1, "{status:?}");
}

#[test]
fn a_hook_deleted_after_start_warns_within_the_budget_and_counts_every_failure() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    let hook = scripts.script("deleted", "exit 0");
    lan.add("hooked", &["--on-event", &hook])
        .expect("the namespace exists");
    let ran = wait_for(POLL_SLACK, || {
        (lan.status("hooked")?.hooks.runs == 1).then_some(())
    });
    assert!(ran.is_some(), "node1's join did not run the hook");
    fs::remove_file(&hook).expect("delete the hook");
    let flooded = Instant::now();
    // A join and an expiry each: 2,000 events, every one a run that cannot start (or, if the
    // hooks fall behind the burst of joins, an event dropped).
    lan.announce_made_up_peers(1000);
    let counted = wait_for(POLL_SLACK, || {
        let status = lan.status("hooked")?;
        let (events, hooks) = (status.events, status.hooks);
        let all_seen = events.joined > 500 && events.expired + 1 == events.joined;
        let all_done = hooks.runs + hooks.dropped == events.joined + events.expired;
        (all_seen && all_done).then_some(status)
    });
    let status =
        counted.unwrap_or_else(|| panic!("not every event counted: {:?}", lan.status("hooked")));
    assert_eq!(
        status.hooks.failures,
        status.hooks.runs - 1,
        "every run after the deletion is a failure: {status:?}"
    );
    assert!(status.hooks.failures > 100, "{status:?}");
    // Failing hooks take turns with the receiver: it keeps reading, so its own beacons, queued
    // behind the flood, are not taken for lost (the socket opened again, the queue thrown away).
    assert_eq!(status.socket_reopens, 0, "{status:?}");
    let warnings = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|line| line.contains(" WARN ") && line.contains("hook"))
            .map(String::from)
            .collect()
    };
    // At most a burst per window the test has run into, a summary being one of the burst of
    // the window after the one it sums up.
    let windows = 1 + flooded.elapsed().as_secs() / WARN_WINDOW.as_secs();
    let logged = warnings(&lan.log("hooked"));
    assert!(
        logged.len() as u64 <= windows * u64::from(WARN_BURST),
        "{} hook warnings for {} failures:\n{}",
        logged.len(),
        status.hooks.failures,
        logged.join("\n")
    );
    assert!(
        logged.iter().any(|line| line.contains("cannot run hook")),
        "{logged:?}"
    );
    // The failures held back are summarised as their window ends: with those logged one by
    // one, every failure is in the log.
    let summarised = |log: &str| -> u64 {
        warnings(log)
            .iter()
            .filter(|line| line.contains("more hook runs failed"))
            .filter_map(|line| {
                let count = line.split(" failed=").nth(1)?.split_whitespace().next()?;
                count.parse::<u64>().ok()
            })
            .sum()
    };
    let in_full = |log: &str| {
        warnings(log)
            .iter()
            .filter(|l| l.contains("cannot run hook"))
            .count()
    };
    let told = wait_for(WARN_WINDOW + POLL_SLACK, || {
        let log = lan.log("hooked");
        let told = in_full(&log) as u64 + summarised(&log);
        (told == status.hooks.failures).then_some(())
    });
    assert!(
        told.is_some(),
        "the log does not add up to {} failures:\n{}",
        status.hooks.failures,
        warnings(&lan.log("hooked")).join("\n")
    );
}

#[test]
fn a_chatty_hook_has_its_first_lines_logged_at_debug_and_the_rest_counted() {
    const MEGABYTES: u64 = 32;
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    let bytes = MEGABYTES * 1_000_000;
    // Both streams at once, as fast as bash can: a reader that took one stream after the other
    // would leave the hook blocked on the other's full pipe.
    let hook = scripts.script(
        "chatty",
        &format!(
            r#"echo "first line on stdout"
echo "first line on stderr" >&2
yes "filler on stdout" | head -c {bytes} &
yes "filler on stderr" | head -c {bytes} >&2
wait"#
        ),
    );
    lan.add("hooked", &["--on-event", &hook])
        .expect("the namespace exists");
    let ran = wait_for(POLL_SLACK, || {
        let log = lan.log("hooked");
        log.contains("hook ran").then_some(log)
    });
    let log = ran.unwrap_or_else(|| panic!("the hook did not run: {:?}", lan.status("hooked")));
    let agent = lan.agent("hooked");
    assert!(
        agent.log_bytes() < 100_000,
        "{} bytes of log for a hook's {MEGABYTES} MB",
        agent.log_bytes()
    );
    let output: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" DEBUG ") && line.contains("hook output"))
        .collect();
    for stream in ["stdout", "stderr"] {
        let field = format!("stream=\"{stream}\"");
        let lines: Vec<&str> = output
            .iter()
            .copied()
            .filter(|line| line.contains(&field))
            .collect();
        assert!(
            lines
                .first()
                .is_some_and(|line| line.contains(&format!("first line on {stream}"))),
            "{stream}: {lines:?}"
        );
        assert_eq!(lines.len(), hook_output::LINES + 1, "{stream}: {lines:?}");
        // The last is the count of the rest.
        let dropped: u64 = lines[hook_output::LINES]
            .split("bytes=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no count of the bytes dropped: {}",
                    lines[hook_output::LINES]
                )
            });
        assert!(dropped > bytes - 1000, "{stream}: {dropped} bytes dropped");
    }
    // Read as it came, not gathered: the agent's peak memory stays far below what it read.
    let peak = agent.peak_memory_kib();
    assert!(peak < 24 * 1024, "the agent peaked at {peak} KiB");
    let status = lan.status("hooked").expect("answers");
    assert_eq!((status.hooks.runs, status.hooks.failures), (1, 0));
    assert_eq!(status.peers, 1, "node1 stayed listed");
}

#[test]
fn a_hook_that_leaves_a_program_holding_its_output_holds_up_nothing() {
    let Some(mut lan) = Lan::loopback(2, Timings::FAST) else {
        return;
    };
    let scripts = Scripts::new();
    // The background `sleep` keeps the hook's stdout and stderr open long after it exits.
    let hook = scripts.script(
        "daemon",
        r#"echo "started for $PEERD_PEER_HOSTNAME"
sleep 30 &"#,
    );
    lan.add("hooked", &["--on-event", &hook, "--hook-timeout", "30s"])
        .expect("the namespace exists");
    // Two joins, two runs, each over as its hook exits: the output is not read to its end.
    let ran = wait_for(POLL_SLACK, || {
        let log = lan.log("hooked");
        (log.matches("hook ran").count() == 2).then_some(log)
    });
    let log = ran.unwrap_or_else(|| panic!("the runs were held up: {:?}", lan.status("hooked")));
    for node in ["node1", "node2"] {
        assert!(log.contains(&format!("started for {node}")), "{node}");
    }
    let status = lan.status("hooked").expect("answers");
    assert_eq!(
        status.hooks,
        HookCounts {
            runs: 2,
            ..HookCounts::default()
        }
    );
    // What it left running is its own business: not killed.
    let sleeping = lan.agent("hooked").processes_in_namespace();
    assert!(sleeping.iter().any(|name| name == "sleep"), "{sleeping:?}");
}

#[test]
fn a_program_named_without_a_slash_is_found_in_path_as_a_shell_would() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    // `true` and `false` from the PATH the tests run with, as `sh -c true` would find them.
    lan.add("hooked", &["--on-event", "true", "--on-event", "false"])
        .expect("the namespace exists");
    // node1's join runs both: `true` succeeds, `false` fails.
    // A run counts when it starts, its failure once it ends: wait for both.
    let hooks = wait_for(POLL_SLACK, || {
        let status = lan.status("hooked")?;
        (status.hooks.runs >= 2 && status.hooks.failures >= 1).then_some(status.hooks)
    })
    .expect("both programs ran for node1's join");
    assert_eq!((hooks.runs, hooks.failures), (2, 1), "{hooks:?}");
    let log = lan.agent("hooked").log();
    assert!(
        log.lines().any(
            |line| line.contains("hook program found") && line.contains("given=true program=/")
        ),
        "the log says which file runs: {log}"
    );
}
