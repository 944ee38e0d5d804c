//! Which of this host's interfaces the agent announces on, and in which families: what each
//! `--interface` names, or the one interface picked when none is given. Pure: the interfaces
//! come from `host`, the routes and /etc/hosts from `interface`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::host::HostInterface;
use super::interface::{self, Candidate};
use crate::config::interface_spec::is_container_bridge;
use crate::config::{InterfaceSpec, Network};

/// An interface the agent joins the groups on and sends from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Joined {
    /// The interface's name (`eth0`).
    pub name: String,
    /// The kernel's index: an interface removed and added again has a new one, and is joined
    /// again.
    pub index: u32,
    /// The IPv4 address group beacons go out from, if the interface has one.
    pub v4: Option<Ipv4Addr>,
    /// Its IPv6 address past duplicate-address detection, if it has one and does multicast:
    /// beacons go to the IPv6 group on it.
    pub v6: Option<Ipv6Addr>,
    /// The networks of its addresses: where the group's datagrams can come from.
    pub networks: Vec<Network>,
    /// Why it was taken, for the log.
    pub why: String,
}

impl fmt::Display for Joined {
    /// `eth0 (10.0.0.2, fe80::1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addresses: Vec<String> = self
            .v4
            .map(|a| a.to_string())
            .into_iter()
            .chain(self.v6.map(|a| a.to_string()))
            .collect();
        write!(f, "{} ({})", self.name, addresses.join(", "))
    }
}

impl Joined {
    /// The same interface in the same families, IPv4 from the same address: nothing to join
    /// again. (The IPv6 address shown may change, as a link-local one passes DAD after a
    /// global one: the kernel picks the source of each beacon anyway.)
    pub fn same_as(&self, other: &Joined) -> bool {
        (self.index, self.v4, self.v6.is_some()) == (other.index, other.v4, other.v6.is_some())
    }

    fn of(interface: &HostInterface, v4: Option<Ipv4Addr>, why: String) -> Option<Joined> {
        let v6 = interface.usable_v6().filter(|_| interface.multicast);
        let v4 = v4.or_else(|| interface.first_v4());
        (v4.is_some() || v6.is_some()).then(|| Joined {
            name: interface.name.clone(),
            index: interface.index,
            v4,
            v6,
            networks: interface
                .networks()
                .filter_map(|(address, prefix)| Network::new(address, prefix))
                .collect(),
            why,
        })
    }
}

/// The interfaces `spec` names among `host` (in the kernel's order), each with why. An address
/// is found wherever it is; a name or a network only on an interface that is up, so one still
/// being set up is waited for; `all` only with carrier and multicast. Loopback counts when it
/// is named.
pub fn find<'a>(
    spec: &InterfaceSpec,
    host: &'a [HostInterface],
) -> Vec<(&'a HostInterface, String)> {
    find_keeping(spec, host, &[])
}

/// [`find`], where the interfaces with an index in `kept` (those in use) count as having
/// carrier: a link that loses it for a moment (a cable, a partition) is not left and joined
/// again.
fn find_keeping<'a>(
    spec: &InterfaceSpec,
    host: &'a [HostInterface],
    kept: &[u32],
) -> Vec<(&'a HostInterface, String)> {
    let up = |i: &&HostInterface| i.up;
    match spec {
        InterfaceSpec::Address(address) => host
            .iter()
            .find(|i| i.holds(*address))
            .map(|i| (i, "the address given".to_owned()))
            .into_iter()
            .collect(),
        InterfaceSpec::Name(name) => host
            .iter()
            .filter(up)
            .find(|i| i.name == *name && i.addresses().next().is_some())
            .map(|i| (i, format!("named by --interface {name}")))
            .into_iter()
            .collect(),
        InterfaceSpec::Network(network) => host
            .iter()
            .filter(up)
            .find(|i| i.addresses().any(|a| network.contains(a)))
            .map(|i| {
                (
                    i,
                    format!("the first that is up with an address in {network}"),
                )
            })
            .into_iter()
            .collect(),
        InterfaceSpec::All => host
            .iter()
            .filter(|i| {
                (i.running || kept.contains(&i.index))
                    && i.could_carry()
                    && !i.loopback
                    && !is_container_bridge(&i.name)
            })
            .map(|i| (i, "--interface all".to_owned()))
            .collect(),
    }
}

/// What the agent joins: every interface `specs` name, each once (in the order named), or,
/// with none, the one [`choose`] picks. Also the specs that name nothing yet, which the agent
/// waits for. An interface in `current` (in use) that lost its carrier is kept: the pick
/// sticks to it while it is up with an address, and `all` keeps it.
///
/// `default_rule` reads the default rule's inputs (the default route's interface, this host's
/// own addresses by name): called only when a pick is to be made, as two files and the
/// hostname read at each reading would be wasted on an agent keeping its interface.
pub fn select<'s>(
    specs: &'s [InterfaceSpec],
    host: &[HostInterface],
    default_rule: impl FnOnce() -> (Option<String>, Vec<IpAddr>),
    current: &[Joined],
) -> (Vec<Joined>, Vec<&'s InterfaceSpec>) {
    let mut joined: Vec<Joined> = Vec::new();
    let mut missing = Vec::new();
    let kept: Vec<u32> = current.iter().map(|j| j.index).collect();
    if specs.is_empty() {
        let still = current.first().and_then(|current| {
            let interface = host.iter().find(|i| i.index == current.index && i.up)?;
            Joined::of(
                interface,
                current.v4.filter(|a| interface.holds((*a).into())),
                current.why.clone(),
            )
        });
        let chosen = still.or_else(|| {
            let (default_route, named) = default_rule();
            choose(host, default_route.as_deref(), &named)
        });
        return (chosen.into_iter().collect(), missing);
    }
    for spec in specs {
        let found = find_keeping(spec, host, &kept);
        if found.is_empty() {
            missing.push(spec);
        }
        for (interface, why) in found {
            if joined.iter().any(|j| j.index == interface.index) {
                continue;
            }
            // The IPv4 address given is the one beacons go out from, not the interface's first.
            let v4 = match spec {
                InterfaceSpec::Address(IpAddr::V4(v4)) => Some(*v4),
                _ => None,
            };
            joined.extend(Joined::of(interface, v4, why));
        }
    }
    (joined, missing)
}

/// The interface the agent announces on when none is given, by [`interface::choose`]'s rule
/// among the interfaces with IPv4; on a host where none has carrier, the first interface with
/// carrier and IPv6 (the one /etc/hosts names first). `None` while no interface can carry
/// beacons.
pub fn choose(
    host: &[HostInterface],
    default_route: Option<&str>,
    named: &[IpAddr],
) -> Option<Joined> {
    let candidates: Vec<Candidate> = interface::candidates_among(host);
    let named_v4 = interface::v4_only(named);
    if let Some(choice) = interface::choose(&candidates, default_route, &named_v4) {
        let chosen = host.iter().find(|i| i.name == choice.chosen.name)?;
        let mut why = choice.reason.to_owned();
        if !choice.others.is_empty() {
            why = format!(
                "{why}; other candidates passed over: {}; pick one with --interface NAME, ADDR or NETWORK, or all",
                interface::describe_candidates(&choice.others)
            );
        }
        return Joined::of(chosen, Some(choice.chosen.address), why);
    }
    let v6_only = || {
        host.iter()
            .filter(|i| i.running && i.multicast && !i.loopback && i.usable_v6().is_some())
    };
    let by_name = v6_only().find(|i| named.iter().any(|a| i.holds(*a)));
    let (chosen, why) = match by_name {
        Some(i) => (i, interface::BY_HOSTS),
        None => (v6_only().next()?, interface::BY_ORDER),
    };
    Joined::of(chosen, None, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::host::{Inet4, Inet6};

    /// Interface `name` (index `index`), up with carrier, with the addresses given.
    fn interface(name: &str, index: u32, v4: &[[u8; 4]], v6: &[&str]) -> HostInterface {
        HostInterface {
            name: name.into(),
            index,
            up: true,
            running: true,
            multicast: name != "lo",
            loopback: name == "lo",
            v4: v4
                .iter()
                .map(|a| Inet4 {
                    address: Ipv4Addr::from(*a),
                    prefix: 24,
                })
                .collect(),
            v6: v6
                .iter()
                .map(|a| Inet6 {
                    address: a.parse().expect("an address"),
                    prefix: 64,
                    flags: 0x80,
                })
                .collect(),
        }
    }

    fn host() -> Vec<HostInterface> {
        let mut down = interface("eth0", 2, &[[10, 0, 1, 3]], &[]);
        down.up = false;
        vec![
            interface("lo", 1, &[[127, 0, 0, 1]], &["::1"]),
            down,
            interface("eth1", 3, &[[172, 22, 0, 3]], &["fe80::3"]),
            interface(
                "eth2",
                4,
                &[[10, 0, 2, 3], [10, 0, 3, 3]],
                &["fd00::4", "fe80::4"],
            ),
            interface("wg0", 5, &[], &["fd01::5"]),
            interface("docker0", 6, &[[172, 17, 0, 1]], &["fe80::6"]),
        ]
    }

    fn names(specs: &[&str]) -> (Vec<String>, usize) {
        let specs: Vec<InterfaceSpec> = specs.iter().map(|s| s.parse().expect("valid")).collect();
        let host = host();
        let (joined, missing) = select(&specs, &host, || (None, Vec::new()), &[]);
        (
            joined.into_iter().map(|j| j.to_string()).collect(),
            missing.len(),
        )
    }

    #[test]
    fn a_name_an_address_or_a_network_names_an_interface_that_is_up_in_both_families() {
        // eth0 is down: waited for, not taken.
        assert_eq!(names(&["eth0"]), (vec![], 1));
        assert_eq!(
            names(&["10.0.0.0/8"]),
            (vec!["eth2 (10.0.2.3, fe80::4)".into()], 0)
        );
        assert_eq!(
            names(&["fd00::/16"]),
            (vec!["eth2 (10.0.2.3, fe80::4)".into()], 0)
        );
        assert_eq!(names(&["wg0"]), (vec!["wg0 (fd01::5)".into()], 0));
        // The IPv4 address given is the one beacons go out from.
        assert_eq!(
            names(&["10.0.3.3"]),
            (vec!["eth2 (10.0.3.3, fe80::4)".into()], 0)
        );
        assert_eq!(
            names(&["fe80::3"]),
            (vec!["eth1 (172.22.0.3, fe80::3)".into()], 0)
        );
        // Loopback does no IPv6 multicast: named, it carries IPv4 alone.
        assert_eq!(names(&["lo"]), (vec!["lo (127.0.0.1)".into()], 0));
        assert_eq!(names(&["192.168.0.0/16", "wlan0"]), (vec![], 2));
    }

    #[test]
    fn several_specs_name_each_interface_once_and_all_leaves_out_loopback_and_bridges() {
        assert_eq!(
            names(&["eth2", "10.0.2.3", "eth1", "wlan0"]),
            (
                vec![
                    "eth2 (10.0.2.3, fe80::4)".into(),
                    "eth1 (172.22.0.3, fe80::3)".into()
                ],
                1
            )
        );
        assert_eq!(
            names(&["all"]),
            (
                vec![
                    "eth1 (172.22.0.3, fe80::3)".into(),
                    "eth2 (10.0.2.3, fe80::4)".into(),
                    "wg0 (fd01::5)".into()
                ],
                0
            )
        );
        assert_eq!(
            names(&["all", "docker0"]).0.len(),
            4,
            "a bridge named is taken"
        );
    }

    #[test]
    fn without_a_spec_the_ipv4_rule_picks_else_the_first_with_ipv6() {
        let host = host();
        let chosen = choose(&host, Some("eth1"), &[]).expect("a choice");
        assert_eq!((chosen.name.as_str(), chosen.v6.is_some()), ("eth1", true));
        // No IPv4 candidate with carrier: an IPv6-only host announces over IPv6.
        let v6_only = vec![
            interface("lo", 1, &[[127, 0, 0, 1]], &["::1"]),
            interface("eth0", 2, &[], &["fe80::2"]),
            interface("eth1", 3, &[], &["fd00::3", "fe80::3"]),
        ];
        let chosen = choose(&v6_only, None, &[]).expect("a choice");
        assert_eq!(chosen.to_string(), "eth0 (fe80::2)");
        let named = ["fd00::3".parse().expect("an address")];
        let chosen = choose(&v6_only, None, &named).expect("a choice");
        assert_eq!(
            (chosen.name.as_str(), chosen.why.as_str()),
            ("eth1", interface::BY_HOSTS)
        );
        assert_eq!(choose(&v6_only[..1], None, &[]), None);
    }
}
