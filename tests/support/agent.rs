//! One `peerd agent` process in a network namespace: the one way the tests start an agent
//! outside a container. Killed on drop, its log printed if the test failed.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use peerd::api::{AgentStatus, PeerInfo};

use super::netns::Netns;
use super::timings::{POLL_SLACK, SCHEDULING_SLACK, Timings};
use super::{PEERD, must, unique, wait_for};

/// How soon an agent exits after SIGTERM: it sends one goodbye datagram and closes its API.
const EXIT_BOUND: Duration = Duration::from_secs(1);

pub struct Agent {
    pub name: String,
    netns: String,
    /// `peerd agent`'s arguments, kept for a restart.
    args: Vec<String>,
    api: String,
    log: PathBuf,
    /// The most files it may open (`prlimit --nofile`), if limited.
    open_files: Option<u32>,
    /// Environment variables set for it beyond `RUST_LOG`.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Agent {
    /// Starts `peerd agent --name <name> <extra>...` at `timings` in `netns`, its API on `api`
    /// there and announcing on `interface` (or the one the agent picks), without waiting for it:
    /// [`Agent::wait_ready`] does. A `--name` among `extra` announces that hostname instead of
    /// `name`, which still names the agent in the test.
    pub fn launch(
        netns: &Netns,
        name: &str,
        api: &str,
        interface: Option<&str>,
        timings: Timings,
        extra: &[&str],
    ) -> Agent {
        Agent::launch_with_env(netns, name, api, interface, timings, extra, &[])
    }

    /// [`Agent::launch`], with `env` set in the agent's environment (a service manager's
    /// `NOTIFY_SOCKET`, say).
    pub fn launch_with_env(
        netns: &Netns,
        name: &str,
        api: &str,
        interface: Option<&str>,
        timings: Timings,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        // `--name` among the extra flags announces another hostname; `name` stays the label.
        let (hostname, extra) = match extra.iter().position(|arg| *arg == "--name") {
            Some(i) => (
                extra.get(i + 1).copied().unwrap_or(name),
                [&extra[..i], extra.get(i + 2..).unwrap_or_default()].concat(),
            ),
            None => (name, extra.to_vec()),
        };
        let mut args: Vec<String> = ["agent", "--name", hostname, "--api", api]
            .map(String::from)
            .to_vec();
        args.extend(timings.flags());
        if let Some(interface) = interface {
            args.extend(["--interface".into(), interface.into()]);
        }
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let mut agent = Agent {
            name: name.to_owned(),
            netns: netns.name.clone(),
            args,
            api: api.to_owned(),
            log: std::env::temp_dir().join(format!("{}-{name}.log", unique("agent"))),
            open_files: None,
            env: env
                .iter()
                .map(|(var, value)| (var.to_string(), value.to_string()))
                .collect(),
            child: None,
        };
        agent.spawn();
        agent
    }

    /// Waits until the API answers: by then the agent has joined the group, so the next agent's
    /// first beacon reaches it.
    pub fn wait_ready(&self) {
        assert!(
            wait_for(POLL_SLACK, || self.status()).is_some(),
            "agent {} did not answer within {POLL_SLACK:?} of its start",
            self.name
        );
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the agent's log");
        let mut command = match self.open_files {
            Some(files) => {
                let mut prlimit = self.command("prlimit");
                prlimit.arg(format!("--nofile={files}:{files}")).arg(PEERD);
                prlimit
            }
            None => self.command(PEERD),
        };
        command.args(&self.args);
        // Only the flags above configure it, whatever PEERD_ settings the test runner has.
        for (var, _) in std::env::vars().filter(|(var, _)| var.starts_with("PEERD_")) {
            command.env_remove(var);
        }
        // Nor would it notify the service manager the test runner may be running under.
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            command.env_remove(var);
        }
        // Debug level unless the test's own environment says otherwise.
        let child = command
            .env("RUST_LOG", "peerd=debug")
            .envs(self.env.iter().map(|(var, value)| (var, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn peerd agent");
        self.child = Some(child);
    }

    /// A command that runs `program` in this agent's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns, program]);
        command
    }

    /// `peerd <command> args... --api <this agent's API>`, in its namespace.
    pub fn client(&self, command: &str, args: &[&str]) -> Command {
        let mut client = self.command(PEERD);
        client.arg(command).args(args).args(["--api", &self.api]);
        client
    }

    /// The names of the processes in this agent's namespace (its own, other agents', hooks').
    pub fn processes_in_namespace(&self) -> Vec<String> {
        let pids = must("ip", &["netns", "pids", &self.netns]);
        pids.split_whitespace()
            .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).ok())
            .map(|comm| comm.trim().to_owned())
            .collect()
    }

    /// The namespace it runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// This agent's API address, as its clients are given it.
    pub fn api(&self) -> &str {
        &self.api
    }

    fn cli(&self, command: &str) -> Output {
        self.client(command, &["--json"])
            .output()
            .expect("run the peerd client")
    }

    /// What `peerd peers --json` prints, or `None` while the API does not answer.
    pub fn peers(&self) -> Option<Vec<PeerInfo>> {
        let out = self.cli("peers");
        out.status.success().then(|| {
            serde_json::from_slice(&out.stdout).expect("peers --json prints the API's PeerInfo")
        })
    }

    /// What `peerd health --json` prints, or `None` while the API does not answer. An agent
    /// that answers but is not sending makes it exit 1, and prints its status all the same.
    pub fn status(&self) -> Option<AgentStatus> {
        let out = self.cli("health");
        (!out.stdout.is_empty())
            .then(|| serde_json::from_slice(&out.stdout).expect("health --json prints AgentStatus"))
    }

    /// What `peerd health` (for a human) did: exit 0 and `ok: ...`, or exit 1 and why not.
    pub fn health(&self) -> Output {
        self.client("health", &[])
            .output()
            .expect("run the peerd client")
    }

    fn signal(&mut self, signal: &str) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        must("kill", &[&format!("-{signal}"), &child.id().to_string()]);
        let bound = EXIT_BOUND + SCHEDULING_SLACK;
        let exited = wait_for(bound, || child.try_wait().expect("try_wait"));
        assert!(
            exited.is_some(),
            "{} still running {bound:?} after SIG{signal}",
            self.name
        );
        exited
    }

    /// Sends `signal` (`STOP`, `CONT`...) without waiting for anything.
    pub fn send(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        must("kill", &[&format!("-{signal}"), &child.id().to_string()]);
    }

    /// SIGTERM, as `docker stop` sends; returns whether it exited with status 0.
    pub fn stop(&mut self) -> bool {
        self.stop_with("TERM")
    }

    /// `SIG<signal>` (`"HUP"`, `"QUIT"`...); returns whether it exited with status 0.
    pub fn stop_with(&mut self, signal: &str) -> bool {
        self.signal(signal).is_some_and(|status| status.success())
    }

    /// SIGKILL: no goodbye. Returns once the process is gone.
    pub fn kill(&mut self) {
        self.signal("KILL");
    }

    /// Stops it gracefully and starts a new instance with the same flags and log.
    pub fn restart(&mut self) {
        assert!(self.stop(), "{} did not exit 0 on SIGTERM", self.name);
        self.start();
    }

    /// Starts a stopped agent again with the same flags and log; returns once it answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.spawn();
        self.wait_ready();
    }

    /// [`Agent::start`] in another namespace: the same node on another host.
    pub fn start_in(&mut self, netns: &Netns) {
        self.netns = netns.name.clone();
        self.start();
    }

    /// Stops it gracefully and starts it again allowed at most `files` open files, as a service
    /// manager's `LimitNOFILE=` would start it.
    pub fn restart_with_open_files(&mut self, files: u32) {
        self.open_files = Some(files);
        self.restart();
    }

    /// The agent's own pid: `ip netns exec` (and `prlimit`) exec it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The most memory it has held resident (VmHWM), in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("/proc/<pid>/status has VmHWM")
    }

    /// The size of its log so far.
    pub fn log_bytes(&self) -> u64 {
        fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// Its log so far, every instance of it.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- log of agent {} ----\n{}", self.name, self.log());
        }
        let _ = fs::remove_file(&self.log);
    }
}
