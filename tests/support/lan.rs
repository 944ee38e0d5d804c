//! Agents on network namespaces: all on the loopback of one namespace, or one namespace per
//! host with an `eth0` veth into a bridge in a namespace of its own. Nothing touches the
//! machine's own namespace.

use peerd::api::{AgentStatus, PeerInfo};
use peerd::config::{MULTICAST_GROUP, PORT};
use peerd::wire::beacon::Beacon;

use super::agent::Agent;
use super::api_addr;
use super::cluster::Cluster;
use super::netns::Netns;
use super::timings::Timings;

pub struct Lan {
    /// Dropped first, so no agent outlives its namespace.
    agents: Vec<Agent>,
    /// One per node, or a single one that every node shares.
    hosts: Vec<Netns>,
    /// Holds the bridge of a bridged LAN; dropped last, after the hosts' veth ends.
    bridge: Option<Netns>,
    timings: Timings,
}

impl Lan {
    /// `nodes` agents, `node1`.., in one namespace, all announcing on its loopback with their
    /// APIs on [`api_addr`]`(1)`...; `None` if namespaces cannot be made here.
    pub fn loopback(nodes: usize, timings: Timings) -> Option<Lan> {
        let mut lan = Lan {
            agents: Vec::new(),
            hosts: vec![Netns::create("lo")?],
            bridge: None,
            timings,
        };
        for i in 1..=nodes {
            lan.add(&node(i), &[])?;
        }
        Some(lan)
    }

    /// `nodes` hosts on a private 10.77.0.0/24 bridge, each running `peerd agent` with its
    /// default interface (the host's only multicast one, its eth0) and API, started one after
    /// another; `None` if namespaces cannot be made here.
    pub fn bridged(nodes: usize, timings: Timings) -> Option<Lan> {
        let mut lan = Lan::bridge(timings)?;
        for i in 1..=nodes {
            lan.add(&node(i), &[])?;
        }
        Some(lan)
    }

    /// [`Lan::bridged`] with every agent started at once, not each after the one before.
    pub fn bridged_together(nodes: usize, timings: Timings) -> Option<Lan> {
        let mut lan = Lan::bridge(timings)?;
        let hosts: Vec<Netns> = (1..=nodes).map(|i| lan.host(i)).collect::<Option<_>>()?;
        let api = peerd::config::API_ADDR.to_string();
        for (i, host) in (1..).zip(&hosts) {
            let agent = Agent::launch(host, &node(i), &api, None, timings, &[]);
            lan.agents.push(agent);
        }
        lan.hosts.extend(hosts);
        for agent in &lan.agents {
            agent.wait_ready();
        }
        Some(lan)
    }

    fn bridge(timings: Timings) -> Option<Lan> {
        let bridge = Netns::create("br")?;
        bridge.ip(&["link", "add", "br0", "type", "bridge"]);
        bridge.ip(&["link", "set", "br0", "up"]);
        Some(Lan {
            agents: Vec::new(),
            hosts: Vec::new(),
            bridge: Some(bridge),
            timings,
        })
    }

    /// Host `i` of a bridged LAN: a namespace whose eth0 (10.77.0.<i+1>) is on the bridge.
    fn host(&self, i: usize) -> Option<Netns> {
        let host = Netns::create("host")?;
        let bridge = self.bridge.as_ref().expect("a bridged LAN");
        let port = format!("port{i}");
        bridge.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &host.name,
        ]);
        bridge.ip(&["link", "set", &port, "master", "br0", "up"]);
        host.ip(&[
            "addr",
            "add",
            &format!("10.77.0.{}/24", i + 1),
            "dev",
            "eth0",
        ]);
        host.ip(&["link", "set", "eth0", "up"]);
        Some(host)
    }

    /// Starts one more agent, with `extra` flags: on the shared loopback, or on a host of its
    /// own on the bridge. `None` if its namespace cannot be made.
    pub fn add(&mut self, name: &str, extra: &[&str]) -> Option<()> {
        self.add_at(name, self.timings, extra)
    }

    /// [`Lan::add`] at timings of its own.
    pub fn add_at(&mut self, name: &str, timings: Timings, extra: &[&str]) -> Option<()> {
        let i = self.agents.len() + 1;
        let agent = match self.bridge {
            None => {
                let api = api_addr(u16::try_from(i).expect("a few agents"));
                let netns = &self.hosts[0];
                Agent::launch(netns, name, &api, Some("127.0.0.1"), timings, extra)
            }
            Some(_) => {
                let host = self.host(i)?;
                let api = peerd::config::API_ADDR.to_string();
                let agent = Agent::launch(&host, name, &api, None, timings, extra);
                self.hosts.push(host);
                agent
            }
        };
        agent.wait_ready();
        self.agents.push(agent);
        Some(())
    }

    /// Sends each datagram to the agents' group and port from the first host.
    pub fn send_to_group(&self, datagrams: &[&[u8]]) {
        self.hosts[0].send_udp(MULTICAST_GROUP, PORT, datagrams);
    }

    /// Announces `count` made-up peers (`made-up-0`..) once each: every agent sees them join,
    /// then, a ttl later, expire.
    pub fn announce_made_up_peers(&self, count: u64) {
        let beacons: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let beacon = Beacon {
                    instance: i + 1,
                    sequence: 0,
                    goodbye: false,
                    hostname: format!("made-up-{i}"),
                    ..Beacon::default()
                };
                beacon.encode()
            })
            .collect();
        let datagrams: Vec<&[u8]> = beacons.iter().map(Vec::as_slice).collect();
        self.send_to_group(&datagrams);
    }

    fn index(&self, node: &str) -> usize {
        self.agents
            .iter()
            .position(|a| a.name == node)
            .expect("a node of this LAN")
    }

    pub fn agent(&self, node: &str) -> &Agent {
        &self.agents[self.index(node)]
    }

    fn agent_mut(&mut self, node: &str) -> &mut Agent {
        let i = self.index(node);
        &mut self.agents[i]
    }

    /// Sets `node`'s port on the bridge up or down.
    fn link(&self, node: &str, state: &str) {
        let bridge = self
            .bridge
            .as_ref()
            .expect("a loopback LAN is one link for all: it cannot be partitioned");
        let port = format!("port{}", self.index(node) + 1);
        bridge.ip(&["link", "set", &port, state]);
    }
}

fn node(i: usize) -> String {
    format!("node{i}")
}

impl Cluster for Lan {
    fn timings(&self) -> Timings {
        self.timings
    }

    fn nodes(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.name.clone()).collect()
    }

    fn address(&self, node: &str) -> String {
        match self.bridge {
            Some(_) => format!("10.77.0.{}", self.index(node) + 2),
            None => "127.0.0.1".into(),
        }
    }

    fn peers(&self, node: &str) -> Option<Vec<PeerInfo>> {
        self.agent(node).peers()
    }

    fn status(&self, node: &str) -> Option<AgentStatus> {
        self.agent(node).status()
    }

    fn stop(&mut self, node: &str) -> bool {
        self.agent_mut(node).stop()
    }

    fn kill(&mut self, node: &str) {
        self.agent_mut(node).kill();
    }

    fn partition(&mut self, node: &str) {
        self.link(node, "down");
    }

    fn heal(&mut self, node: &str) {
        self.link(node, "up");
    }

    fn restart(&mut self, node: &str) {
        self.agent_mut(node).restart();
    }

    fn log(&self, node: &str) -> String {
        self.agent(node).log()
    }
}
