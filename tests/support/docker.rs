//! A LAN of containers: the peerd image on a bridge network the test creates, removed with
//! its containers on drop.
//!
//! Not `--internal`: Docker's isolation rules for internal networks drop every datagram whose
//! destination is outside the subnet, multicast included, wherever bridged traffic passes
//! through iptables (the usual case). Beacons carry IP TTL 1 and the agent sends nothing else,
//! so nothing leaves the bridge.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use peerd::api::PeerInfo;

use super::cluster::{Cluster, INTERVAL, TTL};
use super::{run, unique};

/// Names the image to test; `bin/test` builds it and sets this when a Docker engine answers.
pub const IMAGE_VAR: &str = "PEERD_IMAGE";
/// Set by `.ci/run` when an engine answers: then a missing image is a failure, not a skip.
pub const REQUIRE_VAR: &str = "PEERD_REQUIRE_DOCKER";

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

struct Node {
    name: String,
    container: String,
    ip: String,
}

pub struct DockerLan {
    network: String,
    nodes: Vec<Node>,
}

fn docker(args: &[&str]) -> std::process::Output {
    run("docker", args)
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The image to test, or `None` after saying loudly why the Docker tests are skipped.
fn image() -> Option<String> {
    let image = std::env::var(IMAGE_VAR).ok().filter(|i| !i.is_empty());
    let answers = Command::new("docker")
        .args(["info"])
        .output()
        .is_ok_and(|o| o.status.success());
    let why = match (&image, answers) {
        (Some(_), true) => return image,
        (_, false) => "no Docker engine answers".to_owned(),
        (None, true) => format!("{IMAGE_VAR} is not set (bin/test builds the image and sets it)"),
    };
    if std::env::var_os(REQUIRE_VAR).is_some_and(|v| v == "1") {
        panic!("Docker test cannot run: {why}, and {REQUIRE_VAR}=1 forbids skipping");
    }
    eprintln!("\n*** SKIPPED Docker test: {why} ***\n");
    None
}

impl DockerLan {
    /// Creates the network and starts `nodes` containers, `node1`.., with the scenario
    /// timings; `None` if Docker is not here.
    pub fn start(nodes: usize) -> Option<DockerLan> {
        DockerLan::start_timed(nodes, INTERVAL, TTL)
    }

    /// [`DockerLan::start`] with other timings.
    pub fn start_timed(nodes: usize, interval: Duration, ttl: Duration) -> Option<DockerLan> {
        let image = image()?;
        let network = unique("net");
        // A fixed subnet so a reconnected container gets its address back (`--ip` needs one);
        // tried in turn, since another network may hold one already.
        let mut prefix = None;
        for _ in 0..64 {
            let n = (std::process::id() + NEXT_SUBNET.fetch_add(1, Ordering::Relaxed)) % 200;
            let candidate = format!("10.213.{n}");
            let subnet = format!("{candidate}.0/24");
            let created = docker(&["network", "create", "--subnet", &subnet, &network]);
            if created.status.success() {
                prefix = Some(candidate);
                break;
            }
        }
        let prefix = prefix.expect("no free 10.213.x.0/24 subnet for a Docker network");
        let mut lan = DockerLan {
            network,
            nodes: Vec::new(),
        };
        for i in 1..=nodes {
            let name = format!("node{i}");
            let node = Node {
                container: format!("{}-{name}", lan.network),
                ip: format!("{prefix}.{}", i + 1),
                name,
            };
            // Listed before it is run, so a `docker run` that fails half-way (container
            // created, not started) is still removed on drop.
            lan.nodes.push(node);
            let node = lan.nodes.last().expect("just pushed");
            docker_ok(&[
                "run",
                "--detach",
                "--name",
                &node.container,
                "--hostname",
                &node.name,
                "--network",
                &lan.network,
                "--ip",
                &node.ip,
                "--env",
                &format!("PEERD_INTERVAL={}", humantime::format_duration(interval)),
                "--env",
                &format!("PEERD_TTL={}", humantime::format_duration(ttl)),
                &image,
            ]);
        }
        Some(lan)
    }

    /// The container running `node`.
    pub fn container(&self, node: &str) -> &str {
        &self.node(node).container
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("known node")
    }
}

impl Cluster for DockerLan {
    fn nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn peers(&self, node: &str) -> Option<Vec<PeerInfo>> {
        let out = docker(&[
            "exec",
            &self.node(node).container,
            "peerd",
            "peers",
            "--json",
        ]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            eprintln!("peers on {node} failed: {}", err.trim());
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("peers --json"))
    }

    fn stop(&mut self, node: &str) -> bool {
        let container = &self.node(node).container;
        docker_ok(&["stop", "--time", "5", container]);
        docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", container]) == "0"
    }

    fn kill(&mut self, node: &str) {
        docker_ok(&["kill", "--signal", "KILL", &self.node(node).container]);
    }

    fn partition(&mut self, node: &str) {
        docker_ok(&[
            "network",
            "disconnect",
            &self.network,
            &self.node(node).container,
        ]);
    }

    fn heal(&mut self, node: &str) {
        let node = self.node(node);
        docker_ok(&[
            "network",
            "connect",
            "--ip",
            &node.ip,
            &self.network,
            &node.container,
        ]);
    }

    fn restart(&mut self, node: &str) {
        docker_ok(&["restart", "--time", "5", &self.node(node).container]);
    }

    fn log(&self, node: &str) -> String {
        let out = docker(&["logs", &self.node(node).container]);
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    }
}

impl Drop for DockerLan {
    fn drop(&mut self) {
        for node in &self.nodes {
            if std::thread::panicking() {
                eprintln!("---- log of {} ----\n{}", node.name, self.log(&node.name));
            }
            let _ = docker(&["rm", "--force", &node.container]);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}
