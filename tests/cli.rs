//! The command line's answers to mistakes: a clear line on stderr and a non-zero exit.
//! None of these reach the network: usage errors stop before any socket is opened, and every
//! `peerd agent` here is pinned to loopback in case one ever started by mistake.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{PEERD, wait_for};

/// Runs `peerd args...` with `envs` and no other `PEERD_` setting from the caller. An agent (or
/// the doctor) is always given `--interface 127.0.0.1`: these tests run in the machine's own namespace, so
/// if a regression let one past validation its beacons must stay on loopback, and it is
/// killed after a few seconds instead of hanging the test.
fn peerd_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    peerd_by(Command::new(PEERD), args, envs)
}

/// [`peerd_with`], run by `cmd` (`peerd` itself, or a wrapper that runs it).
pub(crate) fn peerd_by(mut cmd: Command, args: &[&str], envs: &[(&str, &str)]) -> Output {
    cmd.args(args);
    match args.first() {
        Some(&"agent") => {
            cmd.args(["--interface", "127.0.0.1", "--api", "127.0.0.1:0"]);
        }
        // The doctor sends a probe beacon: pinned to loopback like an agent.
        Some(&"doctor") => {
            cmd.args(["--interface", "127.0.0.1"]);
        }
        _ => {}
    }
    cmd.envs(envs.iter().copied());
    refusal(cmd, args)
}

/// Runs `cmd` (a peerd command, given `args`) without the caller's `PEERD_` variables but its
/// own, expecting it to refuse its input and exit at once; panics if it keeps running.
pub(crate) fn refusal(mut cmd: Command, args: &[&str]) -> Output {
    let inherited: Vec<String> = std::env::vars()
        .map(|(var, _)| var)
        .filter(|var| var.starts_with("PEERD_"))
        .collect();
    let own: Vec<_> = cmd.get_envs().map(|(var, _)| var.to_owned()).collect();
    for var in inherited
        .iter()
        .filter(|var| !own.iter().any(|own| own == var.as_str()))
    {
        cmd.env_remove(var);
    }
    let mut child = cmd
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

/// A usage error: exit 2, `expected` in the message, as clap prints it: one `error:` line,
/// then the usage of the whole command if any (`Usage: peerd agent [OPTIONS]`, never
/// `Usage: agent`) and a pointer to `--help`.
pub(crate) fn assert_usage_error(out: &Output, expected: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    let mut lines = err.lines();
    assert!(
        lines.next().is_some_and(|l| l.starts_with("error: ")),
        "{err}"
    );
    assert!(
        lines.all(|l| !l.starts_with("error")
            && (!l.starts_with("Usage:") || l.starts_with("Usage: peerd "))),
        "one error line, then the usage of `peerd ...`: {err}"
    );
    assert!(
        err.ends_with("For more information, try '--help'.\n"),
        "{err}"
    );
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
    let out = peerd_with(
        &["agent", "--on-event", "peerd-no-such-hook"],
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_usage_error(
        &out,
        "--on-event peerd-no-such-hook: no executable of that name in PATH (/usr/bin:/bin)",
    );
}

#[test]
fn environment_fallbacks_are_read() {
    let out = peerd_with(
        &["agent"],
        &[("PEERD_INTERVAL", "10s"), ("PEERD_TTL", "5s")],
    );
    assert_usage_error(&out, "ttl (5s)");
}

#[test]
fn boolean_variables_take_the_usual_spellings_and_bad_values_name_the_variable() {
    // Each stops at the ttl that does not exceed the interval, past the flag parsing: the
    // value was read, and read as false.
    let tight = [("PEERD_INTERVAL", "10s"), ("PEERD_TTL", "5s")];
    for off in ["0", "false", "no", "off"] {
        let env = [&tight[..], &[("PEERD_ACCEPT_UNAUTHENTICATED", off)]].concat();
        assert_usage_error(&peerd_with(&["agent"], &env), "ttl (5s)");
    }
    for on in ["1", "true", "yes", "on"] {
        let out = peerd_with(&["agent"], &[("PEERD_ACCEPT_UNAUTHENTICATED", on)]);
        assert_usage_error(
            &out,
            "--accept-unauthenticated only makes sense with --secret-file",
        );
    }
    let out = peerd_with(&["agent"], &[("PEERD_ACCEPT_UNAUTHENTICATED", "maybe")]);
    assert_usage_error(
        &out,
        "invalid value 'maybe' for 'PEERD_ACCEPT_UNAUTHENTICATED'",
    );
    let out = peerd_with(&["agent"], &[("PEERD_TTL", "soon")]);
    assert_usage_error(&out, "invalid value 'soon' for 'PEERD_TTL'");
    // Typed on the command line, the flag is the culprit even with the variable set.
    let out = peerd_with(&["agent", "--ttl", "soon"], &[("PEERD_TTL", "soon")]);
    assert_usage_error(&out, "invalid value 'soon' for '--ttl <TTL>'");
}

#[test]
fn out_of_bounds_timings_ports_and_secrets_are_usage_errors() {
    let dir = std::env::temp_dir().join(crate::support::unique("secrets"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let short = dir.join("short");
    std::fs::write(&short, "hunter2\n").expect("write");
    let empty = dir.join("empty");
    std::fs::write(&empty, "").expect("write");
    let missing = dir.join("missing");
    let (short, empty, missing) = (
        short.to_str().expect("utf-8"),
        empty.to_str().expect("utf-8"),
        missing.to_str().expect("utf-8"),
    );
    let cases: [(&[&str], &str); 12] = [
        (
            &["agent", "--interval", "1ns"],
            "interval 1ns is outside 100ms..=1h",
        ),
        (&["agent", "--ttl", "300000000000y"], "error:"),
        (
            &["agent", "--interval", "2h", "--ttl", "3h"],
            "interval 2h is outside",
        ),
        (&["agent", "--port", "0"], "port 0 is no port"),
        (&["agent", "--max-peers", "0"], "error:"),
        (
            &["agent", "--secret-file", missing],
            "missing: no such file",
        ),
        (&["agent", "--secret-file", empty], "is empty"),
        (
            &["agent", "--secret-file", short],
            "holds 7 bytes; use at least 16",
        ),
        (&["agent", "--accept-unauthenticated"], "--secret-file"),
        (
            &["agent", "--group", "10.0.0.1"],
            "not an IPv4 multicast address",
        ),
        (
            &["agent", "--group", "fd00::1"],
            "group fd00::1 is not an IPv6 multicast address (ff00::/8",
        ),
        (
            &["agent", "--group", "239.1.1.1,239.1.1.2"],
            "--group: one group per family (IPv4 and IPv6); 239.1.1.2 is a second",
        ),
    ];
    for (args, expected) in cases {
        let out = peerd(args);
        assert_usage_error(&out, expected);
        assert!(!stderr(&out).contains("hunter2"), "the secret leaked");
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn secret_files_that_are_not_regular_files_are_refused_at_once() {
    let dir = std::env::temp_dir().join(crate::support::unique("secret-kinds"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("fifo");
    crate::support::must("mkfifo", &[fifo.to_str().expect("utf-8")]);
    let large = dir.join("large");
    std::fs::write(&large, "k".repeat(5000)).expect("write");
    let (fifo, large, dir_path) = (
        fifo.to_str().expect("utf-8"),
        large.to_str().expect("utf-8"),
        dir.to_str().expect("utf-8"),
    );
    let cases = [
        // Read whole, /dev/zero would fill the memory: a limit of 1 GiB makes a regression
        // fail within a second instead of taking the machine's memory.
        ("/dev/zero", "is not a regular file (a character device)"),
        // Opened to read, a FIFO waits for a writer: a regression keeps running.
        (fifo, "is not a regular file (a FIFO)"),
        (dir_path, "is not a regular file (a directory)"),
        (large, "is larger than 4096 bytes"),
    ];
    for (path, expected) in cases {
        let mut limited = Command::new("prlimit");
        limited.args(["--as=1073741824", PEERD]);
        let out = peerd_by(limited, &["agent", "--secret-file", path], &[]);
        assert_usage_error(&out, expected);
        let err = stderr(&out);
        let line = err.lines().find(|l| l.starts_with("error:"));
        assert!(
            line.is_some_and(|l| l.contains(path) && l.contains(expected)),
            "one line naming the file and what is wrong: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn addresses_that_name_no_interface_are_usage_errors() {
    // The cases that cannot be pinned to loopback: each runs in a namespace of its own with
    // no network at all, so a regression could not reach one. It would wait for the address
    // forever; `peerd_by` kills it after a few seconds.
    if crate::support::run("unshare", &["--net", "true"])
        .status
        .code()
        != Some(0)
    {
        crate::support::skip::skip::<()>("needs root for unshare --net", "PEERD_REQUIRE_NETNS");
        return;
    }
    for (address, what) in [
        ("0.0.0.0", "any address"),
        ("239.255.49.1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
    ] {
        let args = [
            "--net",
            PEERD,
            "agent",
            "--interface",
            address,
            "--api",
            "127.0.0.1:0",
        ];
        let out = peerd_by(Command::new("unshare"), &args, &[]);
        assert_usage_error(
            &out,
            &format!("interface {address} names no interface ({what})"),
        );
    }
}

#[test]
fn bad_or_oversized_tags_are_usage_errors() {
    let many: Vec<String> = (0..40)
        .map(|i| format!("key-{i:02}={}", "v".repeat(20)))
        .collect();
    let mut args = vec!["agent"];
    for tag in &many {
        args.extend(["--tag", tag]);
    }
    assert_usage_error(&peerd(&args), "the tags make a beacon");
    assert_usage_error(
        &peerd(&["agent", "--tag", "sp ace=v"]),
        "is not a valid tag",
    );
    assert_usage_error(
        &peerd(&["agent", "--tag", "a=1", "--tag", "a=2"]),
        "each key at most once",
    );
    assert_usage_error(&peerd(&["peers", "--tag", "novalue"]), "is not a valid tag");
}

#[test]
fn doctor_refuses_a_window_group_or_port_it_cannot_use() {
    // Each refused before any socket is opened: none of these reaches the network.
    for (args, expected) in [
        (
            &["doctor", "--listen", "0s"][..],
            "--listen 0s is outside 100ms..=10m",
        ),
        (
            &["doctor", "--group", "10.0.0.1"],
            "not an IPv4 multicast address",
        ),
        (
            &["doctor", "--group", "ff12::1", "--group", "ff12::2"],
            "one group per family",
        ),
        (&["doctor", "--port", "0"], "port 0 is no port"),
    ] {
        assert_usage_error(&peerd(args), expected);
    }
}
