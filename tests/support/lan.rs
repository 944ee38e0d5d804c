//! A LAN of network namespaces: one per host, each with an `eth0` veth into a bridge that
//! lives in a namespace of its own. Nothing touches the machine's own namespace.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use peerd::api::PeerInfo;

use super::cluster::{Cluster, INTERVAL, TTL};
use super::{Netns, PEERD, send_signal, unique, wait_for};

struct Host {
    name: String,
    netns: Netns,
    agent: Option<Child>,
    log: PathBuf,
}

/// `hosts` namespaces on a private 10.77.0.0/24 bridge, each running `peerd agent` on its
/// defaults (first multicast interface: its eth0; API on its own 127.0.0.1).
pub struct Lan {
    hosts: Vec<Host>,
    /// Holds the bridge; dropped last, after the hosts.
    bridge: Netns,
    interval: Duration,
    ttl: Duration,
}

impl Lan {
    /// Builds the LAN and starts every agent with the scenario timings, or `None` if
    /// namespaces cannot be made here.
    pub fn start(hosts: usize) -> Option<Lan> {
        Lan::start_timed(hosts, INTERVAL, TTL)
    }

    /// [`Lan::start`] with other timings.
    pub fn start_timed(hosts: usize, interval: Duration, ttl: Duration) -> Option<Lan> {
        let bridge = Netns::create("br")?;
        bridge.ip(&["link", "add", "br0", "type", "bridge"]);
        bridge.ip(&["link", "set", "br0", "up"]);
        let mut lan = Lan {
            hosts: Vec::new(),
            bridge,
            interval,
            ttl,
        };
        for i in 1..=hosts {
            let netns = Netns::create("host")?;
            let port = format!("port{i}");
            lan.bridge.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &netns.name,
            ]);
            lan.bridge
                .ip(&["link", "set", &port, "master", "br0", "up"]);
            netns.ip(&[
                "addr",
                "add",
                &format!("10.77.0.{}/24", i + 1),
                "dev",
                "eth0",
            ]);
            netns.ip(&["link", "set", "eth0", "up"]);
            let name = format!("node{i}");
            let log = std::env::temp_dir().join(format!("{}-{name}.log", unique("lan")));
            lan.hosts.push(Host {
                name,
                netns,
                agent: None,
                log,
            });
        }
        for i in 0..hosts {
            lan.spawn(i);
        }
        Some(lan)
    }

    fn index(&self, node: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.name == node)
            .expect("known node")
    }

    fn spawn(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&host.log)
            .expect("open log");
        let child = host
            .netns
            .command(PEERD)
            .args(["agent", "--name", &host.name])
            .args([
                "--interval",
                &humantime::format_duration(INTERVAL).to_string(),
            ])
            .args(["--ttl", &humantime::format_duration(TTL).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn peerd agent");
        host.agent = Some(child);
    }

    fn signal(&self, node: &str, signal: &str) {
        if let Some(agent) = &self.hosts[self.index(node)].agent {
            send_signal(agent.id(), signal);
        }
    }

    fn reap(&mut self, node: &str) -> bool {
        let i = self.index(node);
        let Some(mut child) = self.hosts[i].agent.take() else {
            return false;
        };
        let status = wait_for(Duration::from_secs(2), || {
            child.try_wait().expect("try_wait")
        });
        status.is_some_and(|s| s.success())
    }

    fn bridge_port(&self, node: &str, state: &str) {
        let port = format!("port{}", self.index(node) + 1);
        self.bridge.ip(&["link", "set", &port, state]);
    }
}

impl Cluster for Lan {
    fn nodes(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    fn peers(&self, node: &str) -> Option<Vec<PeerInfo>> {
        let host = &self.hosts[self.index(node)];
        let out = host
            .netns
            .command(PEERD)
            .args(["peers", "--json"])
            .output()
            .expect("run peerd peers");
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("peers --json"))
    }

    fn stop(&mut self, node: &str) -> bool {
        self.signal(node, "TERM");
        self.reap(node)
    }

    fn kill(&mut self, node: &str) {
        self.signal(node, "KILL");
        self.reap(node);
    }

    fn partition(&mut self, node: &str) {
        self.bridge_port(node, "down");
    }

    fn heal(&mut self, node: &str) {
        self.bridge_port(node, "up");
    }

    fn restart(&mut self, node: &str) {
        assert!(self.stop(node), "{node} did not exit 0 on SIGTERM");
        let i = self.index(node);
        self.spawn(i);
    }

    fn log(&self, node: &str) -> String {
        fs::read_to_string(&self.hosts[self.index(node)].log).unwrap_or_default()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            if let Some(mut child) = host.agent.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            if std::thread::panicking() {
                eprintln!(
                    "---- log of {} ----\n{}",
                    host.name,
                    fs::read_to_string(&host.log).unwrap_or_default()
                );
            }
            let _ = fs::remove_file(&host.log);
        }
        // The host namespaces (and their veth ends) go as `hosts` drops, then the bridge.
    }
}
