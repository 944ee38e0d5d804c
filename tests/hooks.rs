//! `--on-event` hooks on loopback agents: each event runs the program with the event in its
//! environment and as JSON on its stdin, in event order, starting with the peers found at
//! start-up; a hook that fails or hangs is counted, killed at its timeout, and stalls nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use peerd::api::{EventKind, PeerChange};

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
fn a_program_named_without_a_slash_is_found_in_path_as_a_shell_would() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    // `true` and `false` from the PATH the tests run with, as `sh -c true` would find them.
    lan.add("hooked", &["--on-event", "true", "--on-event", "false"])
        .expect("the namespace exists");
    // node1's join runs both: `true` succeeds, `false` fails.
    let hooks = wait_for(POLL_SLACK, || {
        let status = lan.status("hooked")?;
        (status.hooks.runs >= 2).then_some(status.hooks)
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
