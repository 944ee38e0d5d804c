//! Test harness: real `peerd` processes in private network namespaces or containers, and the
//! helpers every test shares. Every datagram a test sends stays in a namespace or a Docker
//! network the test created and removes on drop.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use peerd::api::PeerInfo;

pub mod agent;
pub mod cluster;
pub mod docker;
pub mod lan;
pub mod netns;
pub mod skip;
pub mod timings;

pub const PEERD: &str = env!("CARGO_BIN_EXE_peerd");

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A unique, short name for namespaces, networks and files of this test process.
pub fn unique(tag: &str) -> String {
    format!(
        "peerd-{tag}-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `program args...`, returning its output; panics with the command line if it cannot start.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} {args:?}: {err}"))
}

/// Runs a command that must succeed; returns its trimmed stdout.
pub fn must(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The hostnames in a peer listing, sorted; none for an agent that did not answer.
pub fn sorted_hostnames(peers: Option<Vec<PeerInfo>>) -> Vec<String> {
    let mut names: Vec<String> = peers
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.hostname)
        .collect();
    names.sort();
    names
}

/// The names in `all` other than `me`, sorted: what `me` lists once discovery is complete.
pub fn others(all: &[String], me: &str) -> Vec<String> {
    let mut others: Vec<String> = all.iter().filter(|n| *n != me).cloned().collect();
    others.sort();
    others
}

/// Polls `check` every 20 ms until it returns `Some` or `within` has passed.
pub fn wait_for<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// When the agent logged the first line containing `needle`, from the timestamp that opens each
/// of its log lines (RFC 3339, UTC). The agents' own clocks judge how fast they reacted, free of
/// the time it takes a test to poll them.
pub fn logged_at(log: &str, needle: &str) -> Option<SystemTime> {
    let line = log.lines().find(|line| line.contains(needle))?;
    let stamp = line.split_whitespace().next()?;
    Some(
        humantime::parse_rfc3339_weak(stamp)
            .unwrap_or_else(|err| panic!("log line without a timestamp ({err}): {line}")),
    )
}

/// How long after `earlier` the instant `later` came; zero if it came first (two processes'
/// log lines about one datagram can be a few microseconds out of order).
pub fn elapsed(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}
