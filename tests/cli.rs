//! The command line's answers to mistakes: a clear line on stderr and a non-zero exit.
//! None of these reach the network: usage errors stop before any socket is opened.

use std::process::{Command, Output};

const PEERD: &str = env!("CARGO_BIN_EXE_peerd");

fn peerd(args: &[&str]) -> Output {
    Command::new(PEERD)
        .args(args)
        .env_remove("PEERD_API")
        .output()
        .expect("run peerd")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ttl (5s) must exceed the beacon interval (10s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_flags_are_usage_errors() {
    let cases: [&[&str]; 5] = [
        &["agent", "--name", "under_score"],
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
        let out = peerd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn environment_fallbacks_are_read() {
    let out = Command::new(PEERD)
        .args(["agent"])
        .env("PEERD_INTERVAL", "10s")
        .env("PEERD_TTL", "5s")
        .output()
        .expect("run peerd");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ttl (5s)"));
}
