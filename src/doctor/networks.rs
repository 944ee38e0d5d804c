//! The doctor's check of this host's other networks: when nobody was heard on the interface
//! checked, whether the peers may be on another one, Docker Swarm's `docker_gwbridge` above
//! all. A pure function of the candidates, the routing table and what was heard.

use super::check::{Check, Status};
use crate::config::Network;
use crate::net::interface::{Candidate, Interface, routes};

/// What the networks check looks at.
pub struct Networks<'a> {
    /// The interface the doctor listened on.
    pub probed: &'a Interface,
    /// Every candidate interface, the probed one included.
    pub candidates: &'a [Candidate],
    /// The interface of the default route.
    pub default_route: Option<&'a str>,
    /// The text of `/proc/net/route`.
    pub routes: Option<&'a str>,
    /// In a container (Docker's `/.dockerenv`).
    pub in_container: bool,
}

/// `None` when it has nothing to say: another node was heard, or the probed interface is the
/// only candidate. Otherwise a warning naming the other candidates, each with its network (the
/// flag that fits every replica of a service, where an address fits one). When the probed
/// interface carries a container's default route and another candidate has no gateway, it
/// names Swarm's gwbridge: a task's default route goes through docker_gwbridge, where
/// containers do not hear each other, and its overlay has no gateway. That is a guess from
/// the routes (a container on two plain networks looks the same), so the line says so.
pub fn check_networks(networks: &Networks, others_heard: bool) -> Option<Check> {
    const NAME: &str = "networks";
    if others_heard {
        return None;
    }
    let probed = networks.probed;
    let others: Vec<&Candidate> = networks
        .candidates
        .iter()
        .filter(|c| c.running && c.interface.name != probed.name)
        .collect();
    let first = others.first()?;
    let network = |i: &Interface| networks.routes.and_then(|r| connected(r, i));
    let described: Vec<String> = others
        .iter()
        .map(|c| match network(&c.interface) {
            Some(net) => format!("{} ({}, {net})", c.interface.name, c.interface.address),
            None => format!("{} ({})", c.interface.name, c.interface.address),
        })
        .collect();
    let flags = match network(&first.interface) {
        Some(net) => format!("--interface {} or --interface {net}", first.interface.name),
        None => format!("--interface {}", first.interface.name),
    };
    let heard_on = format!(
        "no other node heard on {} ({})",
        probed.name, probed.address
    );
    let routes = networks.routes.unwrap_or_default();
    let gateway_bridge = networks.in_container
        && networks.default_route == Some(probed.name.as_str())
        && others
            .iter()
            .any(|c| !has_gateway(routes, &c.interface.name));
    if gateway_bridge {
        return Some(Check::not_ok(
            NAME,
            Status::Warn,
            format!(
                "{heard_on}, which carries this container's default route, while {} has no gateway: the shape of a Docker Swarm task, whose default route goes through docker_gwbridge, where containers do not hear each other (a guess from the routes: a container on two plain networks looks the same)",
                described.join(", ")
            ),
            format!(
                "announce on the overlay, the same flag for every replica: {flags}; where it carries no multicast (a Swarm overlay across hosts): --peers-dns tasks.SERVICE"
            ),
        ));
    }
    Some(Check::not_ok(
        NAME,
        Status::Warn,
        format!(
            "{heard_on}; this host has other candidates: {}",
            described.join(", ")
        ),
        format!("if the peers are on one of them, give it to every node: {flags}"),
    ))
}

/// RTF_UP and RTF_GATEWAY, from linux/route.h.
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;

/// The network of `interface`'s own link: its route without a gateway that holds its address.
fn connected(table: &str, interface: &Interface) -> Option<Network> {
    routes(table).find_map(|(device, dest, _, flags, mask)| {
        let address = u32::from_ne_bytes(interface.address.octets());
        let direct = flags & RTF_UP != 0 && flags & RTF_GATEWAY == 0;
        (device == interface.name && direct && mask != 0 && address & mask == dest)
            .then(|| {
                let prefix = u8::try_from(mask.count_ones()).expect("a u32 has at most 32 ones");
                Network::new(std::net::Ipv4Addr::from(dest.to_ne_bytes()), prefix)
            })
            .flatten()
    })
}

/// Whether any route through `device` goes via a gateway.
fn has_gateway(table: &str, device: &str) -> bool {
    routes(table).any(|(dev, _, _, flags, _)| dev == device && flags & RTF_GATEWAY != 0)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    /// `/proc/net/route` in a Swarm task, as read in one (Docker 20.10): the overlay 10.0.1.0/24
    /// on eth0, docker_gwbridge 172.22.0.0/16 on eth1 with the default route via 172.22.0.1.
    const SWARM_ROUTES: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth1\t00000000\t010016AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        eth1\t000016AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    fn candidate(name: &str, address: [u8; 4]) -> Candidate {
        Candidate {
            interface: Interface {
                name: name.into(),
                address: Ipv4Addr::from(address),
            },
            running: true,
        }
    }

    fn swarm_task() -> [Candidate; 2] {
        [
            candidate("eth0", [10, 0, 1, 3]),
            candidate("eth1", [172, 22, 0, 3]),
        ]
    }

    fn check(
        probed: &Interface,
        candidates: &[Candidate],
        container: bool,
        heard: bool,
    ) -> Option<Check> {
        let networks = Networks {
            probed,
            candidates,
            default_route: Some("eth1"),
            routes: Some(SWARM_ROUTES),
            in_container: container,
        };
        check_networks(&networks, heard)
    }

    #[test]
    fn a_swarm_task_on_its_gwbridge_is_named_with_the_flags_every_replica_can_take() {
        let task = swarm_task();
        let warn = check(&task[1].interface, &task, true, false).expect("a line");
        assert_eq!(warn.status, Status::Warn);
        assert!(warn.detail.contains("Docker Swarm task"), "{}", warn.detail);
        assert!(
            warn.detail.contains("eth0 (10.0.1.3, 10.0.1.0/24)"),
            "{}",
            warn.detail
        );
        assert!(warn.detail.contains("a guess"), "{}", warn.detail);
        let fix = warn.fix.unwrap_or_default();
        assert!(
            fix.contains("--interface eth0 or --interface 10.0.1.0/24")
                && fix.contains("--peers-dns tasks.SERVICE"),
            "{fix}"
        );
        // Heard: nothing to say.
        assert_eq!(check(&task[1].interface, &task, true, true), None);
    }

    #[test]
    fn other_candidates_are_named_when_nobody_is_heard() {
        let task = swarm_task();
        // Outside a container the same routes are a host with two networks: no Swarm.
        let host = check(&task[1].interface, &task, false, false).expect("a line");
        assert!(!host.detail.contains("Swarm"), "{}", host.detail);
        assert!(
            host.detail
                .contains("other candidates: eth0 (10.0.1.3, 10.0.1.0/24)")
        );
        // On the overlay, the gwbridge is just another candidate.
        let overlay = check(&task[0].interface, &task, true, false).expect("a line");
        assert!(!overlay.detail.contains("Swarm"), "{}", overlay.detail);
        assert!(
            overlay
                .fix
                .unwrap_or_default()
                .contains("--interface eth1 or --interface 172.22.0.0/16")
        );
        // Alone on its network, or the others without carrier: nothing to say.
        assert_eq!(check(&task[0].interface, &task[..1], true, false), None);
        let mut down = swarm_task();
        down[0].running = false;
        assert_eq!(check(&down[1].interface, &down, true, false), None);
    }
}
