//! The command line's answers to mistakes: a clear line on stderr and a non-zero exit.
//! None of these reach the network: usage errors stop before any socket is opened, and every
//! `peerd agent` here is pinned to loopback in case one ever started by mistake.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{PEERD, wait_for};

/// Runs `peerd args...` with `envs` and no other `PEERD_` setting from the caller. An agent is
/// always given `--interface 127.0.0.1`: these tests run in the machine's own namespace, so
/// if a regression let one past validation its beacons must stay on loopback, and it is
/// killed after a few seconds instead of hanging the test.
fn peerd_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(PEERD);
    cmd.args(args);
    if args.first() == Some(&"agent") {
        cmd.args(["--interface", "127.0.0.1", "--api", "127.0.0.1:0"]);
    }
    for (var, _) in std::env::vars().filter(|(var, _)| var.starts_with("PEERD_")) {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run peerd");
    // Refusing input takes milliseconds; ten seconds means it did not refuse.
    if wait_for(Duration::from_secs(10), || {
        child.try_wait().expect("try_wait")
    })
    .is_none()
    {
        let _ = child.kill();
        let _ = child.wait();
        panic!("peerd {args:?} kept running instead of refusing its input");
    }
    child.wait_with_output().expect("collect peerd output")
}

fn peerd(args: &[&str]) -> Output {
    peerd_with(args, &[])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A usage error: exit 2 and `expected` in the message.
fn assert_usage_error(out: &Output, expected: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
}

#[test]
fn peers_without_an_agent_names_the_address_and_suggests_starting_one() {
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    for args in [
        &["peers", "--api", "127.0.0.1:9"][..],
        &["peers", "--api", "127.0.0.1:9", "--json"],
    ] {
        let out = peerd(args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("127.0.0.1:9") && err.contains("peerd agent"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn ttl_not_above_interval_is_a_usage_error() {
    let out = peerd(&["agent", "--interval", "10s", "--ttl", "5s"]);
    assert_usage_error(&out, "ttl (5s) must exceed the beacon interval (10s)");
}

#[test]
fn malformed_flags_are_usage_errors() {
    let cases: [&[&str]; 7] = [
        &["agent", "--name", "under_score"],
        &["agent", "--on-event", "/nonexistent/hook"],
        &["agent", "--hook-timeout", "0s"],
        &["agent", "--interval", "soon"],
        &[
            "agent",
            "--group",
            "10.0.0.1",
            "--interval",
            "1s",
            "--ttl",
            "3s",
        ],
        &["agent", "--multicast-ttl", "0"],
        &["peers", "--api", "not-an-address"],
    ];
    for args in cases {
        assert_usage_error(&peerd(args), "error:");
    }
}

#[test]
fn environment_fallbacks_are_read() {
    let out = peerd_with(
        &["agent"],
        &[("PEERD_INTERVAL", "10s"), ("PEERD_TTL", "5s")],
    );
    assert_usage_error(&out, "ttl (5s)");
}
