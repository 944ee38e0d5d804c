//! Agents on network namespaces: all on the loopback of one namespace, or one namespace per
//! host with an `eth0` veth into a bridge in a namespace of its own, which may drop the group's
//! datagrams and serve names. Nothing touches the machine's own namespace.

use peerd::api::{AgentStatus, PeerInfo};
use peerd::config::{MULTICAST_GROUP, PORT};
use peerd::wire::beacon::Beacon;

use super::agent::Agent;
use super::api_addr;
use super::cluster::Cluster;
use super::dns::Dns;
use super::netns::{Netns, load_nft};
use super::timings::Timings;

/// The bridge's own address on a LAN without multicast, where its DNS server answers.
pub const DNS_ADDRESS: &str = "10.77.0.1";

pub struct Lan {
    /// Dropped first, so no agent outlives its namespace.
    agents: Vec<Agent>,
    /// The address each agent announces from, in the order of `agents`.
    addresses: Vec<String>,
    /// One per node, in the order of `agents`, or a single one that every node shares.
    hosts: Vec<Netns>,
    /// The names a LAN without multicast serves; stopped before its namespace goes.
    dns: Option<Dns>,
    /// Holds the bridge of a bridged LAN; dropped last, after the hosts' veth ends.
    bridge: Option<Netns>,
    /// How many hosts the bridge has had: each takes the next port, `port<n>`.
    ports: usize,
    timings: Timings,
    /// The families of the hosts' addresses on a bridged LAN.
    family: Family,
}

/// Which addresses a bridged LAN's hosts have on their eth0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 10.77.0.<n> alone.
    V4,
    /// The link-local fe80::<n> alone, past DAD at once (`nodad`).
    V6,
    /// Both.
    Dual,
}

impl Lan {
    /// `nodes` agents, `node1`.., in one namespace, all announcing on its loopback with their
    /// APIs on [`api_addr`]`(1)`...; `None` if namespaces cannot be made here.
    pub fn loopback(nodes: usize, timings: Timings) -> Option<Lan> {
        let mut lan = Lan {
            agents: Vec::new(),
            addresses: Vec::new(),
            hosts: vec![Netns::create("lo")?],
            dns: None,
            bridge: None,
            ports: 0,
            timings,
            family: Family::V4,
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
        Lan::bridged_in(Family::V4, nodes, timings)
    }

    /// [`Lan::bridged`] with the hosts' addresses of `family`.
    pub fn bridged_in(family: Family, nodes: usize, timings: Timings) -> Option<Lan> {
        let mut lan = Lan::bridge(timings)?;
        lan.family = family;
        for i in 1..=nodes {
            lan.add(&node(i), &[])?;
        }
        Some(lan)
    }

    /// [`Lan::bridged`] with every agent started at once, not each after the one before.
    pub fn bridged_together(nodes: usize, timings: Timings) -> Option<Lan> {
        let mut lan = Lan::bridge(timings)?;
        let hosts: Vec<Netns> = (1..=nodes)
            .map(|i| lan.host(&host_address(i)))
            .collect::<Option<_>>()?;
        let api = peerd::config::API_ADDR.to_string();
        for (i, host) in (1..).zip(&hosts) {
            let agent = Agent::launch(host, &node(i), &api, None, timings, &[]);
            lan.agents.push(agent);
            lan.addresses.push(host_address(i));
        }
        lan.hosts.extend(hosts);
        for agent in &lan.agents {
            agent.wait_ready();
        }
        Some(lan)
    }

    /// A bridged LAN whose bridge forwards no multicast datagram, so agents find each other
    /// only by unicast, with a DNS server on the bridge's own address ([`DNS_ADDRESS`]) that
    /// every host's resolver asks. No agent yet: [`Lan::add`] starts them, with the flags
    /// that name their targets. `None` if namespaces (or dnsmasq) are missing here.
    pub fn unicast(timings: Timings) -> Option<Lan> {
        let mut lan = Lan::bridge(timings)?;
        let bridge = lan.bridge.as_ref().expect("just made");
        bridge.ip(&["addr", "add", &format!("{DNS_ADDRESS}/24"), "dev", "br0"]);
        // In the bridge family, so it applies to what the bridge forwards between hosts
        // (224.0.0.0/4 covers the group whatever --group says); the DNS server's own traffic
        // is not forwarded and not touched.
        let rules = "table bridge peerd_unicast {\n\
                     chain forward {\n\
                     type filter hook forward priority 0;\n\
                     ip daddr 224.0.0.0/4 drop\n\
                     }\n\
                     }\n";
        load_nft(bridge.command("nft"), rules);
        lan.dns = Some(Dns::start(bridge, DNS_ADDRESS)?);
        Some(lan)
    }

    fn bridge(timings: Timings) -> Option<Lan> {
        let bridge = Netns::create("br")?;
        bridge.ip(&["link", "add", "br0", "type", "bridge"]);
        // A MAC of its own: otherwise a bridge takes the lowest of its ports', and changes it as
        // hosts join. A host that cached the old one for the DNS server's address (on br0)
        // then had its lookups dropped (the frames no longer match br0) until its neighbour
        // entry was probed again, some ten seconds: the unicast tests' resolver failed for it.
        bridge.ip(&["link", "set", "br0", "address", "02:00:00:00:00:01"]);
        bridge.ip(&["link", "set", "br0", "up"]);
        Some(Lan {
            agents: Vec::new(),
            addresses: Vec::new(),
            hosts: Vec::new(),
            dns: None,
            bridge: Some(bridge),
            ports: 0,
            timings,
            family: Family::V4,
        })
    }

    /// A new host on the bridge: a namespace whose eth0 has `address` (in 10.77.0.0/24) and,
    /// on a LAN with a DNS server, whose resolver asks it.
    fn host(&mut self, address: &str) -> Option<Netns> {
        let host = Netns::create("host")?;
        let bridge = self.bridge.as_ref().expect("a bridged LAN");
        self.ports += 1;
        let port = format!("port{}", self.ports);
        bridge.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &host.name,
        ]);
        bridge.ip(&["link", "set", &port, "master", "br0", "up"]);
        // No address of the kernel's making: a link-local one waits a second or two for DAD,
        // and its arrival would change what a test of one family sees.
        host.ip(&["link", "set", "eth0", "addrgenmode", "none"]);
        if self.family != Family::V6 {
            host.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"]);
        }
        if self.family != Family::V4 {
            let link_local = format!("{}/64", link_local(address));
            host.ip(&["addr", "add", &link_local, "dev", "eth0", "nodad"]);
        }
        host.ip(&["link", "set", "eth0", "up"]);
        if let Some(dns) = &self.dns {
            host.resolver(dns.address());
        }
        Some(host)
    }

    /// A host on the bridge at `address` that runs no agent: for a test's own sender or
    /// listener. `None` if its namespace cannot be made.
    pub fn bare_host(&mut self, address: &str) -> Option<Netns> {
        self.host(address)
    }

    /// The DNS server of a LAN made by [`Lan::unicast`].
    pub fn dns(&mut self) -> &mut Dns {
        self.dns.as_mut().expect("a LAN with a DNS server")
    }

    /// Stops `node`'s agent gracefully and starts it again, with the same flags, on a new host
    /// at `address`: a node that moved. Returns its old host, which keeps the old address (and
    /// the MAC address its peers' neighbour caches hold for it) and runs no agent any more.
    pub fn move_node(&mut self, node: &str, address: &str) -> Option<Netns> {
        let i = self.index(node);
        assert!(self.agents[i].stop(), "{node} did not exit 0 on SIGTERM");
        let new = self.host(address)?;
        let old = std::mem::replace(&mut self.hosts[i], new);
        self.addresses[i] = address.to_owned();
        self.agents[i].start_in(&self.hosts[i]);
        Some(old)
    }

    /// Starts one more agent, with `extra` flags: on the shared loopback, or on a host of its
    /// own on the bridge. `None` if its namespace cannot be made.
    pub fn add(&mut self, name: &str, extra: &[&str]) -> Option<()> {
        self.add_at(name, self.timings, extra)
    }

    /// [`Lan::add`] on a host whose addresses are of `family`, whatever the LAN's.
    pub fn add_in(&mut self, family: Family, name: &str) -> Option<()> {
        let lan = std::mem::replace(&mut self.family, family);
        let added = self.add(name, &[]);
        self.family = lan;
        added
    }

    /// [`Lan::add`] at timings of its own.
    pub fn add_at(&mut self, name: &str, timings: Timings, extra: &[&str]) -> Option<()> {
        let i = self.agents.len() + 1;
        let (agent, address) = match self.bridge {
            None => {
                let api = api_addr(u16::try_from(i).expect("a few agents"));
                let netns = &self.hosts[0];
                let agent = Agent::launch(netns, name, &api, Some("127.0.0.1"), timings, extra);
                (agent, "127.0.0.1".to_owned())
            }
            Some(_) => {
                let address = host_address(i);
                let host = self.host(&address)?;
                let api = peerd::config::API_ADDR.to_string();
                let agent = Agent::launch(&host, name, &api, None, timings, extra);
                self.hosts.push(host);
                // Its peers list it by the first address they hear it from: over IPv6 alone,
                // its link-local one, on the interface they hear it on (eth0 for all).
                let listed = match self.family {
                    Family::V6 => format!("{}%eth0", link_local(&address)),
                    _ => address,
                };
                (agent, listed)
            }
        };
        agent.wait_ready();
        self.agents.push(agent);
        self.addresses.push(address);
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

    pub fn agent_mut(&mut self, node: &str) -> &mut Agent {
        let i = self.index(node);
        &mut self.agents[i]
    }

    /// Sets `node`'s port on the bridge up or down.
    fn link(&self, node: &str, state: &str) {
        let bridge = self
            .bridge
            .as_ref()
            .expect("a loopback LAN is one link for all: it cannot be partitioned");
        // Agents' hosts took the first ports, in order; bare hosts only come after.
        let port = format!("port{}", self.index(node) + 1);
        assert!(
            self.ports == self.agents.len(),
            "a LAN with bare hosts cannot be partitioned"
        );
        bridge.ip(&["link", "set", &port, state]);
    }
}

fn node(i: usize) -> String {
    format!("node{i}")
}

/// The IPv6 link-local address of a host whose IPv4 one is `address`: `fe80::` and its last
/// byte (10.77.0.5: fe80::5).
pub fn link_local(address: &str) -> String {
    let last = address.rsplit('.').next().unwrap_or_default();
    format!("fe80::{last}")
}

/// The address of the `i`th agent started on a bridged LAN (from 1): 10.77.0.<i+1>, after the
/// bridge's own.
pub fn host_address(i: usize) -> String {
    format!("10.77.0.{}", i + 1)
}

impl Cluster for Lan {
    fn timings(&self) -> Timings {
        self.timings
    }

    fn nodes(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.name.clone()).collect()
    }

    fn address(&self, node: &str) -> String {
        self.addresses[self.index(node)].clone()
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
