//! Test harness: private network namespaces and real `peerd` processes inside them.
//! Every datagram a test sends stays in a namespace the test created and removes on drop.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use peerd::api::{AgentStatus, PeerInfo};

pub mod cluster;
pub mod docker;
pub mod lan;

/// Set by `.ci/run`: where namespaces always work, a skip would hide a broken test.
pub const REQUIRE_NETNS: &str = "PEERD_REQUIRE_NETNS";

pub const PEERD: &str = env!("CARGO_BIN_EXE_peerd");

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A unique, short name for namespaces and files of this test process.
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

/// Runs a setup command that must succeed.
pub fn must(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
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

/// Sends `signal` (`TERM`, `KILL`, ...) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    must("kill", &[&format!("-{signal}"), &pid.to_string()]);
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

/// A network namespace of our own, with loopback up; deleted (and its processes killed) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates a namespace, or returns `None` after saying loudly why the test is skipped.
    /// With `PEERD_REQUIRE_NETNS=1` a namespace that cannot be made fails the test instead.
    pub fn create(tag: &str) -> Option<Netns> {
        let name = unique(tag);
        let added = Command::new("ip").args(["netns", "add", &name]).output();
        let failure = match added {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(err) => Some(format!("cannot run `ip`: {err}")),
        };
        if let Some(why) = failure {
            let message =
                format!("cannot create a network namespace ({why}); needs root and iproute2");
            if std::env::var_os(REQUIRE_NETNS).is_some_and(|v| v == "1") {
                panic!("{message}, and {REQUIRE_NETNS}=1 forbids skipping");
            }
            eprintln!("\n*** SKIPPED: {message} ***\n");
            return None;
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // Lets plain tools (bash's /dev/udp) send to the group; agents set their interface
        // explicitly and do not need it.
        ns.ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
        Some(ns)
    }

    /// `ip -n <ns> args...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Sends each datagram to `group:port` from inside the namespace, with bash's /dev/udp.
    pub fn send_udp(&self, group: Ipv4Addr, port: u16, datagrams: &[&[u8]]) {
        for datagram in datagrams {
            let escaped: String = datagram.iter().map(|b| format!("\\x{b:02x}")).collect();
            let script = format!("printf '{escaped}' > /dev/udp/{group}/{port}");
            let out = self
                .command("bash")
                .args(["-c", &script])
                .output()
                .expect("run bash");
            assert!(
                out.status.success(),
                "sending garbage: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Short timings so a test sees joins, expiries and goodbyes in well under a second.
pub const INTERVAL: Duration = Duration::from_millis(200);
pub const TTL: Duration = Duration::from_millis(600);

/// A real `peerd agent` process in a namespace; SIGKILLed on drop, its log printed if the test
/// failed.
pub struct Agent {
    pub name: String,
    pub netns: String,
    pub api: String,
    pub log: PathBuf,
    child: Child,
}

impl Agent {
    /// Starts `peerd agent --name <name>` on loopback in `netns`, its API on
    /// `127.0.0.1:<api_port>` there, with the short test timings.
    pub fn start(netns: &Netns, name: &str, api_port: u16) -> Agent {
        Agent::start_timed(netns, name, api_port, INTERVAL, TTL)
    }

    /// [`Agent::start`] with other timings.
    pub fn start_timed(
        netns: &Netns,
        name: &str,
        api_port: u16,
        interval: Duration,
        ttl: Duration,
    ) -> Agent {
        let api = format!("127.0.0.1:{api_port}");
        let log = std::env::temp_dir().join(format!("{}-{name}.log", unique("agent")));
        let log_file = fs::File::create(&log).expect("create agent log");
        let interval = humantime::format_duration(interval).to_string();
        let ttl = humantime::format_duration(ttl).to_string();
        let child = netns
            .command(PEERD)
            .args([
                "agent",
                "--name",
                name,
                "--interface",
                "127.0.0.1",
                "--api",
                &api,
            ])
            .args(["--interval", &interval, "--ttl", &ttl])
            .env("RUST_LOG", "peerd=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn peerd agent");
        Agent {
            name: name.to_owned(),
            netns: netns.name.clone(),
            api,
            log,
            child,
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns, PEERD])
            .args(args)
            .args(["--api", &self.api, "--json"])
            .output()
            .expect("run peerd client")
    }

    /// This agent's live peers, or `None` while its API does not answer.
    pub fn peers(&self) -> Option<Vec<PeerInfo>> {
        let out = self.cli(&["peers"]);
        out.status.success().then(|| {
            serde_json::from_slice(&out.stdout)
                .expect("peers --json prints the API's PeerInfo array")
        })
    }

    /// Sorted hostnames of this agent's live peers (empty while its API does not answer).
    pub fn peer_names(&self) -> Vec<String> {
        sorted_hostnames(self.peers())
    }

    pub fn status(&self) -> Option<AgentStatus> {
        let out = self.cli(&["health"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("health --json prints AgentStatus"))
    }

    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        wait_for(within, || self.child.try_wait().expect("try_wait"))
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- log of agent {} ----\n{}", self.name, self.log_text());
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// Waits until every agent lists exactly all the others.
pub fn wait_all_see_each_other(agents: &[Agent], within: Duration) -> bool {
    let names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    wait_for(within, || {
        let whole = agents
            .iter()
            .all(|a| a.peer_names() == others(&names, &a.name));
        whole.then_some(())
    })
    .is_some()
}
