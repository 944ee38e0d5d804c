//! Agents in containers of the peerd image on a bridge network the test creates, removed with
//! its containers on drop.
//!
//! Not `--internal` by default: Docker's isolation rules for internal networks drop every
//! datagram whose destination is outside the subnet, multicast included, wherever bridged
//! traffic passes through iptables (the usual case). Beacons carry IP TTL 1 and the agent sends
//! nothing else, so nothing leaves the bridge. The tests of the doctor and of unicast discovery
//! ask for an internal network ([`Setup`]), for that very reason.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use peerd::api::{AgentStatus, PeerInfo};

use super::cluster::Cluster;
use super::skip::skip;
use super::timings::{POLL_SLACK, Timings};
use super::{must, run, unique, wait_for};

/// Names the image to test; `bin/test` builds it and sets this when a Docker engine answers.
pub const IMAGE_VAR: &str = "PEERD_IMAGE";
/// Set by `.ci/run` when an engine answers: then a missing image is a failure, not a skip.
pub const REQUIRE_DOCKER: &str = "PEERD_REQUIRE_DOCKER";

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

struct Node {
    name: String,
    container: String,
    ip: String,
}

pub struct DockerLan {
    pub image: String,
    network: String,
    /// The network's first three octets: node n (from 1, in order started) is `prefix.n+1`.
    prefix: String,
    /// The `docker run` flags every node gets: its settings, then the setup's own flags.
    run: Vec<String>,
    /// Nodes started so far, removed ones included, so no address is given twice.
    started: usize,
    nodes: Vec<Node>,
    timings: Timings,
}

fn docker(args: &[&str]) -> Output {
    run("docker", args)
}

pub fn docker_ok(args: &[&str]) -> String {
    must("docker", args)
}

/// The image to test, or a skip (see [`skip`]) saying why there is none.
pub fn image() -> Option<String> {
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
    skip(&format!("Docker test cannot run: {why}"), REQUIRE_DOCKER)
}

/// How a [`DockerLan`] differs from plain agents on a plain bridge.
#[derive(Debug, Default, Clone, Copy)]
pub struct Setup<'a> {
    /// `docker network create` flags, e.g. `--internal`.
    pub network: &'a [&'a str],
    /// `VAR=value` settings every agent gets.
    pub env: &'a [&'a str],
    /// `docker run` flags every container gets, e.g. `--network-alias peerd`.
    pub run: &'a [&'a str],
}

impl DockerLan {
    /// Creates the network and starts `nodes` containers, `node1`.., at `timings`, each once
    /// the one before answers; `None` (a skip) if Docker or the image is not here.
    pub fn start(nodes: usize, timings: Timings) -> Option<DockerLan> {
        DockerLan::start_with(nodes, timings, Setup::default())
    }

    /// [`DockerLan::start`], with the network and the agents set up as `setup` says.
    pub fn start_with(nodes: usize, timings: Timings, setup: Setup) -> Option<DockerLan> {
        let image = image()?;
        let network = unique("net");
        // A fixed subnet so a reconnected container gets its address back (`--ip` needs one);
        // tried in turn, since another network may hold one already.
        let mut prefix = None;
        for _ in 0..64 {
            let n = (std::process::id() + NEXT_SUBNET.fetch_add(1, Ordering::Relaxed)) % 200;
            let candidate = format!("10.213.{n}");
            let subnet = format!("{candidate}.0/24");
            let create = [&["network", "create", "--subnet", &subnet], setup.network].concat();
            let created = docker(&[&create[..], &[network.as_str()]].concat());
            if created.status.success() {
                prefix = Some(candidate);
                break;
            }
        }
        let prefix = prefix.expect("no free 10.213.x.0/24 subnet for a Docker network");
        let [_, interval, _, ttl] = timings.flags();
        let timing = [
            format!("PEERD_INTERVAL={interval}"),
            format!("PEERD_TTL={ttl}"),
        ];
        let mut run = Vec::new();
        for var in timing
            .iter()
            .map(String::as_str)
            .chain(setup.env.iter().copied())
        {
            run.extend(["--env".to_owned(), var.to_owned()]);
        }
        run.extend(setup.run.iter().map(|&flag| flag.to_owned()));
        let mut lan = DockerLan {
            image,
            network,
            prefix,
            run,
            started: 0,
            nodes: Vec::new(),
            timings,
        };
        for i in 1..=nodes {
            lan.add(&format!("node{i}"));
        }
        Some(lan)
    }

    /// Starts one more node, `name`, set up as the others; returns once its agent answers.
    pub fn add(&mut self, name: &str) {
        self.started += 1;
        // Listed before it is run, so a `docker run` that fails half-way (container created,
        // not started) is still removed on drop.
        self.nodes.push(Node {
            container: format!("{}-{name}", self.network),
            ip: format!("{}.{}", self.prefix, self.started + 1),
            name: name.to_owned(),
        });
        let node = self.nodes.last().expect("just pushed");
        let run = [
            "run",
            "--detach",
            "--name",
            &node.container,
            "--hostname",
            &node.name,
            "--network",
            &self.network,
            "--ip",
            &node.ip,
        ];
        let settings: Vec<&str> = self.run.iter().map(String::as_str).collect();
        docker_ok(&[&run[..], &settings, &[self.image.as_str()]].concat());
        assert!(
            wait_for(POLL_SLACK, || self.status(name)).is_some(),
            "{name} did not answer within {POLL_SLACK:?} of its start"
        );
    }

    /// The container running `node`.
    pub fn container(&self, node: &str) -> &str {
        &self.node(node).container
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("a node of this LAN")
    }

    /// `peerd <command> --json` in `node`'s container, decoded; `None` if it printed nothing
    /// (`peerd health` prints the status of an agent that is not sending, and exits 1).
    fn cli<T: serde::de::DeserializeOwned>(&self, node: &str, command: &str) -> Option<T> {
        let out = self.exec(node, &["peerd", command, "--json"]);
        (!out.stdout.is_empty()).then(|| {
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|err| panic!("peerd {command} --json on {node}: {err}"))
        })
    }

    /// `docker exec` of `command` in `node`'s container.
    pub fn exec(&self, node: &str, command: &[&str]) -> Output {
        let container = self.node(node).container.as_str();
        docker(&[&["exec", container], command].concat())
    }
}

impl Cluster for DockerLan {
    fn timings(&self) -> Timings {
        self.timings
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn address(&self, node: &str) -> String {
        self.node(node).ip.clone()
    }

    fn peers(&self, node: &str) -> Option<Vec<PeerInfo>> {
        self.cli(node, "peers")
    }

    fn status(&self, node: &str) -> Option<AgentStatus> {
        self.cli(node, "health")
    }

    fn stop(&mut self, node: &str) -> bool {
        let container = &self.node(node).container;
        docker_ok(&["stop", "--time", "5", container]);
        docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", container]) == "0"
    }

    fn kill(&mut self, node: &str) {
        let container = &self.node(node).container;
        docker_ok(&["kill", "--signal", "KILL", container]);
        // Returns once the container has stopped: no beacon can follow.
        docker_ok(&["wait", container]);
    }

    fn partition(&mut self, node: &str) {
        let container = &self.node(node).container;
        docker_ok(&["network", "disconnect", &self.network, container]);
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
