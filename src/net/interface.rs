//! The rule that picks the interface to announce on when none is given, over this host's IPv4
//! candidates, and what it reads besides the interfaces: the routing table and /etc/hosts. The
//! doctor's view of the interfaces (IPv4 only) is here too; it never opens a socket.

use std::net::{IpAddr, Ipv4Addr};

use super::host::{self, HostInterface};

/// One IPv4 address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub address: Ipv4Addr,
}

/// An interface that could carry beacons: up, multicast-capable, not loopback, with an IPv4
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub interface: Interface,
    /// The link has carrier (`IFF_RUNNING`): an interface that is up without it sends nowhere.
    pub running: bool,
}

/// The interface chosen, why, and the candidates passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub chosen: Interface,
    pub reason: &'static str,
    pub others: Vec<Candidate>,
}

/// Why [`choose`] took the interface /etc/hosts names.
pub const BY_HOSTS: &str = "/etc/hosts gives its address for this host's name, as Docker and Kubernetes do for a container's own network";
/// Why [`choose`] took the default route's interface.
pub const BY_ROUTE: &str = "it carries the default route";
/// Why [`choose`] took the first candidate.
pub const BY_ORDER: &str =
    "the first that is up, has carrier and multicast (no default route through one)";

/// Picks among `candidates` (in the kernel's order), taking only one with carrier: the one
/// holding an address that /etc/hosts gives for this host's name (`named`, in the file's
/// order); else the interface of the default route; else the first. `None` when none has
/// carrier.
///
/// The name comes first because the default route says where the way out is, not where the
/// peers are. In a Docker Swarm task the default route goes through `docker_gwbridge`, which
/// carries no traffic between containers, while the overlay where the replicas meet has no
/// gateway at all; Docker writes the overlay's address for the container's name in its
/// /etc/hosts (seen with Docker 20.10), as Kubernetes writes the pod's. Neither depends on
/// address ranges, which both make configurable. On a host whose /etc/hosts names it by
/// loopback (127.0.1.1 on Debian) or by nothing, the rule does not apply.
pub fn choose(
    candidates: &[Candidate],
    default_route: Option<&str>,
    named: &[Ipv4Addr],
) -> Option<Choice> {
    let running = |c: &&Candidate| c.running;
    let by_name = named.iter().find_map(|address| {
        candidates
            .iter()
            .filter(running)
            .find(|c| c.interface.address == *address)
    });
    let by_route = || {
        candidates
            .iter()
            .filter(running)
            .find(|c| Some(c.interface.name.as_str()) == default_route)
    };
    let (chosen, reason) = match by_name.map(|c| (c, BY_HOSTS)) {
        Some(chosen) => chosen,
        None => match by_route() {
            Some(c) => (c, BY_ROUTE),
            None => (candidates.iter().find(running)?, BY_ORDER),
        },
    };
    let others = candidates
        .iter()
        .filter(|c| c.interface != chosen.interface)
        .cloned()
        .collect();
    Some(Choice {
        chosen: chosen.interface.clone(),
        reason,
        others,
    })
}

/// Every address `hosts` (the text of /etc/hosts) gives for `name`, in its order, as the C
/// library reads it: names compare without case and without a trailing dot.
pub fn hosts_entries(hosts: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    hosts
        .lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let address = fields.next()?.parse().ok()?;
            fields
                .any(|alias| alias.trim_end_matches('.').eq_ignore_ascii_case(name))
                .then_some(address)
        })
        .collect()
}

/// The addresses of both families /etc/hosts gives for this host's name; none if either
/// cannot be read.
pub fn named_addresses() -> Vec<IpAddr> {
    let hostname = hostname::get().ok();
    let hosts = std::fs::read_to_string("/etc/hosts").ok();
    match (hostname, hosts) {
        (Some(hostname), Some(hosts)) => hosts_entries(&hosts, &hostname.to_string_lossy()),
        _ => Vec::new(),
    }
}

/// The IPv4 ones among `addresses`.
pub fn v4_only(addresses: &[IpAddr]) -> Vec<Ipv4Addr> {
    addresses
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The interface of this host's default route, from `/proc/net/route`.
pub fn default_route() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    default_route_interface(&table).map(str::to_owned)
}

/// `eth0 (10.0.0.2), eth1 (10.1.0.2, no carrier)`: candidates as the agent's log and the
/// doctor name them.
pub fn describe_candidates(candidates: &[Candidate]) -> String {
    let described: Vec<String> = candidates
        .iter()
        .map(|c| {
            let carrier = if c.running { "" } else { ", no carrier" };
            format!("{} ({}{carrier})", c.interface.name, c.interface.address)
        })
        .collect();
    described.join(", ")
}

/// The candidates among `host`: one per IPv4 address of an interface that is up, does
/// multicast and is not loopback.
pub fn candidates_among(host: &[HostInterface]) -> Vec<Candidate> {
    host.iter()
        .filter(|i| i.up && i.multicast && !i.loopback)
        .flat_map(|i| {
            i.v4.iter().map(|a| Candidate {
                interface: Interface {
                    name: i.name.clone(),
                    address: a.address,
                },
                running: i.running,
            })
        })
        .collect()
}

/// The interface of the default route (destination 0.0.0.0, mask 0) in `/proc/net/route`,
/// the first if several.
pub(crate) fn default_route_interface(table: &str) -> Option<&str> {
    routes(table).find_map(|(device, dest, _, _, mask)| (dest == 0 && mask == 0).then_some(device))
}

/// The routes of `/proc/net/route` as (device, destination, gateway, flags, mask); the kernel
/// prints each address as the u32 it holds in network order.
pub fn routes(table: &str) -> impl Iterator<Item = (&str, u32, u32, u32, u32)> {
    table.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| u32::from_str_radix(fields.get(i)?, 16).ok();
        Some((*fields.first()?, hex(1)?, hex(2)?, hex(3)?, hex(7)?))
    })
}

/// The state of an interface, as `peerd doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub up: bool,
    /// Carrier (`IFF_RUNNING`).
    pub running: bool,
    pub multicast: bool,
    pub loopback: bool,
}

/// An IPv4 address of this host and the interface holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddress {
    pub address: Ipv4Addr,
    pub link: Link,
}

/// Every IPv4 address among `host`'s interfaces, up or down, in the kernel's order.
pub fn link_addresses_among(host: &[HostInterface]) -> Vec<LinkAddress> {
    host.iter()
        .flat_map(|i| {
            let link = Link {
                name: i.name.clone(),
                up: i.up,
                running: i.running,
                multicast: i.multicast,
                loopback: i.loopback,
            };
            i.v4.iter().map(move |a| LinkAddress {
                address: a.address,
                link: link.clone(),
            })
        })
        .collect()
}

/// Every address of this host's interfaces, of both families, whatever their state: none of
/// them is a unicast target of its own agent.
pub fn local_addresses() -> Vec<IpAddr> {
    let host = host::list().unwrap_or_default();
    host.iter().flat_map(HostInterface::addresses).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Interface `name` with address 10.0.0.`last`, with carrier if `running`.
    pub(crate) fn candidate(name: &str, last: u8, running: bool) -> Candidate {
        Candidate {
            interface: Interface {
                name: name.into(),
                address: Ipv4Addr::new(10, 0, 0, last),
            },
            running,
        }
    }

    #[test]
    fn the_default_route_wins_when_it_has_carrier() {
        let all = [
            candidate("docker0", 1, true),
            candidate("eth0", 2, true),
            candidate("tun0", 3, true),
        ];
        let choice = choose(&all, Some("eth0"), &[]).expect("a choice");
        assert_eq!(choice.chosen.name, "eth0");
        assert_eq!(choice.reason, BY_ROUTE);
        let others: Vec<&str> = choice
            .others
            .iter()
            .map(|c| c.interface.name.as_str())
            .collect();
        assert_eq!(others, ["docker0", "tun0"]);
    }

    #[test]
    fn an_interface_without_carrier_is_never_chosen() {
        let all = [candidate("eth0", 2, false), candidate("eth1", 3, true)];
        let choice = choose(&all, Some("eth0"), &[]).expect("a choice");
        assert_eq!(choice.chosen.name, "eth1");
        assert_eq!(choice.reason, BY_ORDER);
        let lone = [candidate("eth0", 2, false)];
        assert_eq!(
            choose(&lone, Some("eth0"), &[Ipv4Addr::new(10, 0, 0, 2)]),
            None
        );
        assert_eq!(choose(&[], None, &[]), None);
    }

    #[test]
    fn reads_the_default_route_from_proc_net_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    /// A Swarm task as seen in one (Docker 20.10): the overlay on eth0 without a gateway, and
    /// docker_gwbridge on eth1 with the default route.
    fn swarm_task() -> [Candidate; 2] {
        let mut gwbridge = candidate("eth1", 3, true);
        gwbridge.interface.address = Ipv4Addr::new(172, 22, 0, 3);
        [candidate("eth0", 3, true), gwbridge]
    }

    #[test]
    fn the_address_etc_hosts_gives_the_hostname_wins_over_the_default_route() {
        let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n10.0.0.3\tcba1712b88e0\n";
        let named = v4_only(&hosts_entries(hosts, "cba1712b88e0"));
        assert_eq!(named, [Ipv4Addr::new(10, 0, 0, 3)]);
        let choice = choose(&swarm_task(), Some("eth1"), &named).expect("a choice");
        assert_eq!(choice.chosen.name, "eth0");
        assert_eq!(choice.reason, BY_HOSTS);
        assert_eq!(choice.others[0].interface.name, "eth1");
    }

    #[test]
    fn a_name_on_loopback_or_on_no_candidate_leaves_the_default_route() {
        // Debian's hosts file: the name on 127.0.1.1, which is no candidate.
        let hosts = "127.0.0.1 localhost\n127.0.1.1 laptop.home laptop\n";
        let named = v4_only(&hosts_entries(hosts, "laptop"));
        assert_eq!(named, [Ipv4Addr::new(127, 0, 1, 1)]);
        let choice = choose(&swarm_task(), Some("eth1"), &named).expect("a choice");
        assert_eq!(
            (choice.chosen.name.as_str(), choice.reason),
            ("eth1", BY_ROUTE)
        );
        // A named interface without carrier sends nowhere: passed over like any.
        let mut task = swarm_task();
        task[0].running = false;
        let named = [Ipv4Addr::new(10, 0, 0, 3)];
        let choice = choose(&task, Some("eth1"), &named).expect("a choice");
        assert_eq!(choice.chosen.name, "eth1");
    }

    #[test]
    fn reads_etc_hosts_as_a_resolver_does() {
        let hosts = "# 10.9.9.9 web\n10.0.0.1 db web # a comment\n\n10.0.0.2 WEB\nfe80::1 web\n  10.0.0.3\n";
        assert_eq!(
            v4_only(&hosts_entries(hosts, "web")),
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert!(v4_only(&hosts_entries(hosts, "we")).is_empty());
    }
}
