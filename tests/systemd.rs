//! peerd under systemd: the notify protocol as a service manager sees it, on a socket of the
//! test's own, and the unit file in `deploy/` as `systemd-analyze verify` reads it. Nothing
//! here talks to this machine's systemd.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::netns::Netns;
use crate::support::skip::skip;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{PEERD, run, unique};

/// Set by `.ci/run`, which installs systemd: there a skip would hide a broken unit.
const REQUIRE_SYSTEMD_ANALYZE: &str = "PEERD_REQUIRE_SYSTEMD_ANALYZE";

/// What a service manager would hear on `NOTIFY_SOCKET`: a datagram socket in a fresh
/// directory, removed on drop.
struct Manager {
    socket: UnixDatagram,
    dir: std::path::PathBuf,
}

impl Manager {
    fn bind() -> Manager {
        let dir = std::env::temp_dir().join(unique("notify"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = UnixDatagram::bind(dir.join("notify")).expect("bind the notify socket");
        Manager { socket, dir }
    }

    fn path(&self) -> String {
        self.dir.join("notify").to_str().expect("utf-8").to_owned()
    }

    /// The next message, waiting at most `within`.
    fn next(&self, within: Duration) -> Option<String> {
        let timeout = within.max(Duration::from_millis(1));
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("set the timeout");
        let mut buf = [0u8; 4096];
        let len = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// Every message until `message` arrives, which is the last; panics after `within`.
    fn until(&self, message: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(got) => {
                    let done = got == message;
                    seen.push(got);
                    if done {
                        return seen;
                    }
                }
                None => panic!("no {message} within {within:?}; heard {seen:?}"),
            }
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn the_agent_says_ready_pings_the_watchdog_and_says_stopping_before_its_goodbye() {
    let Some(ns) = Netns::create("notify") else {
        return;
    };
    let manager = Manager::bind();
    let path = manager.path();
    // A 60 s interval: beacons cannot be what wakes the loop ten times a second.
    let mut agent = Agent::launch_with_env(
        &ns,
        "notified",
        "127.0.0.1:24901",
        Some("127.0.0.1"),
        Timings::SLOW,
        &[],
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")],
    );

    let before_ready = manager.until("READY=1", POLL_SLACK);
    assert!(
        before_ready[..before_ready.len() - 1]
            .iter()
            .all(|m| m == "WATCHDOG=1"),
        "{before_ready:?}"
    );
    // By READY=1 the API answers.
    assert!(agent.status().is_some(), "READY=1 before the API answered");

    // Pings every 100 ms (half of WATCHDOG_USEC): at least three within a second.
    let start = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let left = Duration::from_secs(1).saturating_sub(start.elapsed());
        match manager.next(left) {
            Some(m) if m == "WATCHDOG=1" => pings += 1,
            Some(other) => panic!("unexpected {other:?} while running"),
            None => panic!("{pings} watchdog pings in {:?}", start.elapsed()),
        }
    }

    // SIGTERM: STOPPING=1 is queued by the time it exits 0, and the goodbye went out after.
    assert!(agent.stop(), "did not exit 0 on SIGTERM");
    let rest = manager.until("STOPPING=1", Duration::from_millis(100));
    assert!(
        rest.iter().all(|m| m == "WATCHDOG=1" || m == "STOPPING=1"),
        "{rest:?}"
    );
    assert_eq!(manager.next(Duration::from_millis(100)), None);
    assert!(agent.log().contains("goodbye sent"), "{}", agent.log());
}

#[test]
fn without_notify_socket_the_agent_runs_as_before() {
    let Some(ns) = Netns::create("nonotify") else {
        return;
    };
    let mut agent = Agent::launch(
        &ns,
        "plain",
        "127.0.0.1:24901",
        Some("127.0.0.1"),
        Timings::FAST,
        &[],
    );
    agent.wait_ready();
    assert!(agent.stop(), "did not exit 0 on SIGTERM");
    assert!(!agent.log().contains("service manager"), "{}", agent.log());
}

/// Runs `systemd-analyze verify` on `unit`; panics on a failure or any complaint about it.
fn verify(unit: &Path) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Warnings about the unit (an unknown key, a bad value) do not change the exit status.
    let about_it: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|line| line.contains("peerd.service"))
        .collect();
    assert!(
        out.status.success() && about_it.is_empty(),
        "systemd-analyze verify {}: {}\n{stderr}{stdout}",
        unit.display(),
        out.status
    );
}

#[test]
fn the_unit_file_verifies_with_and_without_the_secret() {
    if run("sh", &["-c", "command -v systemd-analyze"])
        .status
        .code()
        != Some(0)
    {
        skip::<()>(
            "no systemd-analyze (Debian package systemd)",
            REQUIRE_SYSTEMD_ANALYZE,
        );
        return;
    }
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/peerd.service"))
            .expect("read deploy/peerd.service");
    let installed = "ExecStart=/usr/local/bin/peerd agent";
    assert!(unit.contains(installed), "{installed:?} is gone");
    // verify checks that ExecStart= is executable: the built binary stands in for the
    // installed one.
    let unit = unit.replace(installed, &format!("ExecStart={PEERD} agent"));
    let with_secret = unit.replace("#LoadCredential=", "LoadCredential=").replace(
        "#Environment=PEERD_SECRET_FILE",
        "Environment=PEERD_SECRET_FILE",
    );
    assert_ne!(unit, with_secret, "the commented-out secret lines are gone");

    for (tag, text) in [("unit", unit), ("unit-secret", with_secret)] {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("peerd.service");
        std::fs::write(&path, text).expect("write the unit");
        verify(&path);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
