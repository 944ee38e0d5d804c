//! Finds the interface the agent announces on when none is given.
//! Reads the OS interface list and routing table; it never opens a socket.

use std::net::Ipv4Addr;

use anyhow::{Context, bail};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

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

/// Picks among `candidates` (in the kernel's order): the interface of the default route when
/// it has carrier; otherwise the first that has carrier. `None` when none has carrier.
pub fn choose(candidates: &[Candidate], default_route: Option<&str>) -> Option<Choice> {
    let running = |c: &&Candidate| c.running;
    let (chosen, reason) = match candidates
        .iter()
        .filter(running)
        .find(|c| Some(c.interface.name.as_str()) == default_route)
    {
        Some(c) => (c, "it carries the default route"),
        None => (
            candidates.iter().find(running)?,
            "the first that is up, has carrier and multicast (no default route through one)",
        ),
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

/// The default interface of this host, by [`choose`].
pub fn default_interface() -> anyhow::Result<Choice> {
    let candidates = candidates()?;
    let route = std::fs::read_to_string("/proc/net/route").ok();
    let default_route = route.as_deref().and_then(default_route_interface);
    if let Some(choice) = choose(&candidates, default_route) {
        return Ok(choice);
    }
    if candidates.is_empty() {
        bail!(
            "no interface is up, multicast-capable and has an IPv4 address; pass --interface ADDR \
             (127.0.0.1 for a single-host trial)"
        )
    }
    let names: Vec<&str> = candidates
        .iter()
        .map(|c| c.interface.name.as_str())
        .collect();
    bail!(
        "no multicast interface has carrier ({} up without a link); plug it in, or pass --interface ADDR",
        names.join(", ")
    )
}

/// Every interface that could carry beacons, in the kernel's order (see [`Candidate`]).
pub(crate) fn candidates() -> anyhow::Result<Vec<Candidate>> {
    let addrs = getifaddrs().context("listing network interfaces")?;
    let wanted = InterfaceFlags::IFF_UP | InterfaceFlags::IFF_MULTICAST;
    let mut found = Vec::new();
    for ifaddr in addrs {
        if !ifaddr.flags.contains(wanted) || ifaddr.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        let Some(ipv4) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        found.push(Candidate {
            interface: Interface {
                name: ifaddr.interface_name,
                address: ipv4.ip(),
            },
            running: ifaddr.flags.contains(InterfaceFlags::IFF_RUNNING),
        });
    }
    Ok(found)
}

/// The interface of the default route (destination 0.0.0.0, mask 0) in `/proc/net/route`,
/// the first if several.
pub(crate) fn default_route_interface(table: &str) -> Option<&str> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [iface, "00000000", _, _, _, _, _, "00000000", ..] => Some(iface),
            _ => None,
        }
    })
}

/// The state of the interface holding an address, as `peerd doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub up: bool,
    /// Carrier (`IFF_RUNNING`).
    pub running: bool,
    pub multicast: bool,
    pub loopback: bool,
}

/// The interface holding `address`, with its flags; `None` if no interface has it.
pub fn link_of(address: Ipv4Addr) -> Option<Link> {
    getifaddrs().ok()?.find_map(|ifaddr| {
        let ip = ifaddr.address.as_ref()?.as_sockaddr_in()?.ip();
        let flags = ifaddr.flags;
        (ip == address).then(|| Link {
            name: ifaddr.interface_name,
            up: flags.contains(InterfaceFlags::IFF_UP),
            running: flags.contains(InterfaceFlags::IFF_RUNNING),
            multicast: flags.contains(InterfaceFlags::IFF_MULTICAST),
            loopback: flags.contains(InterfaceFlags::IFF_LOOPBACK),
        })
    })
}

/// Every IPv4 address of this host's interfaces, whatever their state: none of them is a
/// unicast target of its own agent.
pub fn local_addresses() -> Vec<Ipv4Addr> {
    let Ok(addrs) = getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|ifaddr| Some(ifaddr.address.as_ref()?.as_sockaddr_in()?.ip()))
        .collect()
}

/// The network of the interface holding `address`, as an address and a prefix length: where
/// the group's datagrams can come from.
pub fn network_of(address: Ipv4Addr) -> Option<(Ipv4Addr, u8)> {
    getifaddrs().ok()?.find_map(|ifaddr| {
        let ip = ifaddr.address.as_ref()?.as_sockaddr_in()?.ip();
        if ip != address {
            return None;
        }
        let mask = ifaddr.netmask.as_ref()?.as_sockaddr_in()?.ip();
        let prefix = u8::try_from(u32::from(mask).leading_ones()).ok()?;
        Some((ip, prefix))
    })
}

/// The name of the interface holding `address`, for logs; `None` if no interface has it.
pub fn name_of(address: Ipv4Addr) -> Option<String> {
    getifaddrs().ok()?.find_map(|ifaddr| {
        let ip = ifaddr.address.as_ref()?.as_sockaddr_in()?.ip();
        (ip == address).then_some(ifaddr.interface_name)
    })
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
        let choice = choose(&all, Some("eth0")).expect("a choice");
        assert_eq!(choice.chosen.name, "eth0");
        assert_eq!(choice.reason, "it carries the default route");
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
        let choice = choose(&all, Some("eth0")).expect("a choice");
        assert_eq!(choice.chosen.name, "eth1");
        assert!(choice.reason.starts_with("the first"));
        assert_eq!(choose(&[candidate("eth0", 2, false)], Some("eth0")), None);
        assert_eq!(choose(&[], None), None);
    }

    #[test]
    fn reads_the_default_route_from_proc_net_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }
}
