//! `peerd doctor`: why discovery may not work on this host. Each check is a pure function of
//! what was read or heard; [`run`] gathers those facts. It changes nothing on the host and sends
//! two beacons: a probe, which peers answer early, and the probe's goodbye.
//! The checks live in `host` (this host), `hearing` (the group), `networks` (the peers
//! maybe on another interface), `ipv6` (the same over IPv6, and DAD) and `agent` (the local
//! agent), the report's line in `check`, the probe in `probe`; it may import `api` (the agent's status), `net` and `wire`.

mod agent;
mod check;
mod hearing;
mod host;
mod ipv6;
mod networks;
mod probe;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use self::agent::{check_agent, check_unicast};
pub use self::check::{Check, Status};
use self::hearing::{check_heard, others_heard};
use self::host::*;
use self::networks::{Networks, check_networks};
pub use self::probe::{Heard, PROBE_HOSTNAME};
use crate::api::client;
use crate::api::{self, AgentStatus};
use crate::config;
use crate::config::InterfaceSpec;
use crate::net::interface::{self, Interface};
use crate::net::selection;

/// What `peerd doctor` is asked to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub group: Ipv4Addr,
    /// The IPv6 group, probed on the interface too when it has IPv6.
    pub group6: Ipv6Addr,
    pub port: u16,
    /// The interface given with `--interface`; `None`: the one the agent would pick.
    pub interface: Option<InterfaceSpec>,
    /// Where a local agent's API may answer.
    pub api: SocketAddr,
    /// How long to listen to the group.
    pub listen: Duration,
}

/// One line per check: status, name, what was found, and the fix for every non-ok.
pub fn render(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| {
            let status = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail => "fail",
                Status::Unknown => "unknown",
            };
            let fix = c
                .fix
                .as_ref()
                .map(|fix| format!("; fix: {fix}"))
                .unwrap_or_default();
            format!("{status:<7} {:<10} {}{fix}\n", c.check, c.detail)
        })
        .collect()
}

/// Gathers the facts and runs every check, in the order a reader fixes things.
pub async fn run(options: &Options) -> Vec<Check> {
    let status = client::get_json::<AgentStatus>(options.api, api::STATUS_PATH)
        .await
        .map_err(|err| format!("{err:#}"));

    // Each read once: the interfaces, the routing table, this host's addresses by name.
    let host = crate::net::host::list().unwrap_or_default();
    let addresses = interface::link_addresses_among(&host);
    let candidates = interface::candidates_among(&host);
    let routes = std::fs::read_to_string("/proc/net/route").ok();
    let default_route = routes.as_deref().and_then(interface::default_route_interface);
    let named = interface::named_addresses();
    // The interface the spec names, first of those it names.
    let named_by_spec = options
        .interface
        .as_ref()
        .and_then(|spec| selection::find(spec, &host).into_iter().next());
    // The doctor checks IPv4: the IPv4 address of the interface the spec names (the one
    // given, for an address).
    let given = options.interface.as_ref().map(|spec| {
        let name = named_by_spec.as_ref().map(|(interface, _)| interface.name.as_str());
        // An IPv6 address names its interface, as a name does: its IPv4 address is probed.
        let found = addresses.iter().find(|a| match spec {
            InterfaceSpec::Address(IpAddr::V4(given)) => a.address == *given,
            _ => Some(a.link.name.as_str()) == name,
        });
        (spec, found)
    });
    let choice = match options.interface {
        Some(_) => None,
        None => interface::choose(&candidates, default_route, &interface::v4_only(&named)),
    };
    let mut checks = vec![check_interface(given, &candidates, choice.as_ref())];
    let probed = match (given, &choice) {
        (Some((_, Some(found))), _) => Some((found.address, found.link.name.clone())),
        (None, Some(choice)) => Some((choice.chosen.address, choice.chosen.name.clone())),
        _ => None,
    };
    // The interface checked, in both families: the one the spec names, the IPv4 pick, or
    // where no interface has IPv4, the one the agent would pick for IPv6.
    let (checked, why) = match &options.interface {
        Some(_) => match named_by_spec {
            Some((interface, why)) => (Some(interface), why),
            None => (None, String::new()),
        },
        None => {
            let chosen = selection::choose(&host, default_route, &named);
            let why = chosen.as_ref().map(|j| j.why.clone()).unwrap_or_default();
            (
                chosen.and_then(|j| host.iter().find(|i| i.index == j.index)),
                why,
            )
        }
    };
    let probe = fastrand::u64(..);
    // Its beacons are not another node's: neither the peers line nor the Docker check counts them.
    let local_agent = status
        .as_ref()
        .ok()
        .and_then(|s| u64::from_str_radix(&s.instance, 16).ok());
    let probe6 = checked.filter(|i| i.multicast && i.usable_v6().is_some());
    let listen6 = async {
        match probe6 {
            Some(interface) => Some(
                probe::listen6(
                    options.group6,
                    options.port,
                    interface.index,
                    options.listen,
                    probe,
                )
                .await,
            ),
            None => None,
        }
    };
    let six = |listened: Option<&ipv6::Listened>, others_v4, ipv4_hears| {
        checked.map_or_else(Vec::new, |interface| {
            ipv6::checks6(&ipv6::Probe6 {
                interface,
                listened,
                group: options.group6,
                port: options.port,
                listen: options.listen,
                probe,
                local_agent,
                others_v4,
                ipv4_hears,
            })
        })
    };

    let Some((address, device)) = probed else {
        if let Some(interface) = checked.filter(|i| i.v4.is_empty() && !i.v6.is_empty()) {
            // IPv6 alone: its lines stand for the IPv4 ones, which have nothing to check.
            checks[0] = ipv6::check_interface6(interface, &why);
            let listened6 = listen6.await;
            checks.extend(six(listened6.as_ref(), None, false));
            checks.push(check_agent(
                status.as_ref().map_err(String::as_str),
                None,
                None,
            ));
            return checks;
        }
        let fix = "fix the interface first".to_owned();
        for name in ["loopback", "peers"] {
            checks.push(Check::not_ok(
                name,
                Status::Unknown,
                "not checked: no interface to listen on".into(),
                fix.clone(),
            ));
        }
        checks.push(check_agent(
            status.as_ref().map_err(String::as_str),
            None,
            None,
        ));
        return checks;
    };

    // Both families at once: the doctor takes its window once.
    let (listened, listened6) = tokio::join!(
        probe::listen(options.group, options.port, address, options.listen, probe),
        listen6
    );
    let heard = listened.as_ref().map(|(heard, _)| heard.as_slice());
    checks.push(check_loopback(
        heard.map_err(String::as_str),
        probe,
        options.group,
        options.port,
        options.listen,
    ));
    if let Ok((heard, igmp)) = &listened {
        checks.push(check_igmp(igmp.as_deref(), &device, options.group));
        let ttl = status
            .as_ref()
            .map_or(config::PEER_TTL, |s| Duration::from_millis(s.ttl_ms));
        checks.extend(check_heard(heard, probe, local_agent, ttl, options.listen));
    }
    let conf = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter")).ok()
    };
    checks.push(check_rp_filter(
        conf("all").as_deref(),
        conf(&device).as_deref(),
        &device,
    ));
    checks.push(check_route(routes.as_deref(), options.group, &device));
    // Docker marks its containers with this file.
    let in_container = std::path::Path::new("/.dockerenv").exists();
    let others_heard = listened
        .as_ref()
        .is_ok_and(|(heard, _)| others_heard(heard, probe, local_agent));
    let ipv4_hears = checks
        .iter()
        .any(|c| c.check == "loopback" && c.status == Status::Ok);
    checks.extend(six(listened6.as_ref(), Some(others_heard), ipv4_hears));
    let probed = Interface {
        name: device,
        address,
    };
    let networks = Networks {
        probed: &probed,
        candidates: &candidates,
        default_route,
        routes: routes.as_deref(),
        in_container,
    };
    // Only once the group was listened to: an unopened socket heard nothing, and says so.
    if listened.is_ok() {
        checks.extend(check_networks(&networks, others_heard));
    }
    if in_container {
        checks.push(check_docker_network(
            others_heard,
            options.group,
            options.port,
        ));
    }
    let after = match &status {
        Ok(_) => client::get_json::<AgentStatus>(options.api, api::STATUS_PATH)
            .await
            .ok(),
        Err(_) => None,
    };
    if let Some(unicast) = after
        .as_ref()
        .or(status.as_ref().ok())
        .and_then(|status| check_unicast(status, others_heard))
    {
        checks.push(unicast);
    }
    checks.push(check_agent(
        status.as_ref().map_err(String::as_str),
        after.as_ref(),
        Some(address),
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::interface::tests::candidate;
    use crate::net::interface::{Link, LinkAddress};
    use crate::wire::beacon::{Beacon, DecodeError};

    fn link(name: &str, up: bool, running: bool, multicast: bool) -> Link {
        Link {
            name: name.into(),
            up,
            running,
            multicast,
            loopback: false,
        }
    }

    fn beacon(at_ms: u64, hostname: &str, instance: u64) -> Heard {
        Heard {
            at: Duration::from_millis(at_ms),
            beacon: Ok(Beacon {
                instance,
                hostname: hostname.into(),
                ..Beacon::default()
            }),
        }
    }

    const GROUP: Ipv4Addr = config::MULTICAST_GROUP;
    const PROBE: u64 = 0xd0c;
    const LISTEN: Duration = Duration::from_secs(3);

    #[test]
    fn no_candidate_with_carrier_fails_with_the_flag() {
        let all = [candidate("a0", 1, false)];
        let check = check_interface(None, &all, None);
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("a0 (10.0.0.1, no carrier)"));
        assert!(
            check
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("--interface NAME"))
        );
        let none = check_interface(None, &[], None);
        assert_eq!(none.status, Status::Fail);
    }

    #[test]
    fn several_candidates_warn_and_name_the_others_by_name() {
        let all = [candidate("eth0", 1, true), candidate("docker0", 2, true)];
        let choice = interface::choose(&all, Some("eth0"), &[]).expect("a choice");
        let check = check_interface(None, &all, Some(&choice));
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.detail.contains("docker0 (10.0.0.2)"),
            "{}",
            check.detail
        );
        // By name: an address would fit one replica of a service only.
        assert!(
            check
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("--interface docker0"))
        );
        let alone = interface::choose(&all[..1], Some("eth0"), &[]).expect("a choice");
        assert_eq!(
            check_interface(None, &all[..1], Some(&alone)).status,
            Status::Ok
        );
    }

    #[test]
    fn a_given_interface_must_exist_be_up_have_carrier_and_multicast() {
        let spec = InterfaceSpec::Address(Ipv4Addr::new(10, 0, 0, 1).into());
        let status = |l: Option<Link>| {
            let found = l.map(|link| LinkAddress {
                address: Ipv4Addr::new(10, 0, 0, 1),
                link,
            });
            check_interface(Some((&spec, found.as_ref())), &[], None).status
        };
        assert_eq!(status(None), Status::Fail);
        assert_eq!(status(Some(link("e", false, false, true))), Status::Fail);
        assert_eq!(status(Some(link("e", true, false, true))), Status::Fail);
        assert_eq!(status(Some(link("e", true, true, false))), Status::Fail);
        assert_eq!(status(Some(link("e", true, true, true))), Status::Ok);
        // lo has no IFF_MULTICAST, yet carries the group to this host's own sockets.
        let lo = Link {
            loopback: true,
            ..link("lo", true, true, false)
        };
        assert_eq!(status(Some(lo)), Status::Ok);
    }

    #[test]
    fn a_name_or_network_that_matches_nothing_fails_and_one_that_does_says_so() {
        let spec: InterfaceSpec = "10.0.0.0/8".parse().expect("valid");
        let missing = check_interface(Some((&spec, None)), &[], None);
        assert_eq!(missing.status, Status::Fail);
        assert_eq!(
            missing.detail,
            "no interface is up with an address in 10.0.0.0/8"
        );
        let found = LinkAddress {
            address: Ipv4Addr::new(10, 0, 1, 3),
            link: link("eth0", true, true, true),
        };
        let ok = check_interface(Some((&spec, Some(&found))), &[], None);
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(
            ok.detail,
            "eth0 (10.0.1.3), as given for 10.0.0.0/8: up, carrier, multicast"
        );
    }

    #[test]
    fn the_probe_must_come_back() {
        let back = [beacon(2, PROBE_HOSTNAME, PROBE)];
        let ok = check_loopback(Ok(&back), PROBE, GROUP, 24901, LISTEN);
        assert_eq!(ok.status, Status::Ok);
        let others = [beacon(2, "node1", 7)];
        let lost = check_loopback(Ok(&others), PROBE, GROUP, 24901, LISTEN);
        assert_eq!(lost.status, Status::Fail);
        let fix = lost.fix.expect("a fix");
        assert!(fix.contains("nft list ruleset") && fix.contains("ip route get 239.255.49.1"));
        let closed = check_loopback(Err("no such address"), PROBE, GROUP, 24901, LISTEN);
        assert_eq!(closed.status, Status::Fail);
    }

    #[test]
    fn reads_the_group_memberships_of_a_device() {
        let table = "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n\
                     1\tlo        :     2      V3\n\
                     \t\t\t\t0131FFEF     1 0:00000000\t\t0\n\
                     \t\t\t\t010000E0     1 0:00000000\t\t0\n\
                     2\teth0      :     1      V3\n\
                     \t\t\t\t010000E0     1 0:00000000\t\t0\n";
        // The kernel prints the address as the u32 it holds in network order.
        let hex = format!("{:08X}", u32::from_ne_bytes(GROUP.octets()));
        let table = table.replace("0131FFEF", &hex);
        assert_eq!(check_igmp(Some(&table), "lo", GROUP).status, Status::Ok);
        assert_eq!(check_igmp(Some(&table), "eth0", GROUP).status, Status::Warn);
        assert_eq!(check_igmp(None, "eth0", GROUP).status, Status::Unknown);
    }

    #[test]
    fn other_nodes_are_counted_without_the_probe_and_the_local_agent() {
        let heard = [
            beacon(1, PROBE_HOSTNAME, PROBE),
            beacon(2, "local", 1),
            beacon(3, "node2", 2),
            beacon(900, "node2", 2),
            // Heard to the end of the window: never silent for longer than the ttl.
            beacon(1_800, "node2", 2),
            beacon(2_700, "node2", 2),
        ];
        let checks = check_heard(&heard, PROBE, Some(1), Duration::from_secs(1), LISTEN);
        assert_eq!(checks[0].status, Status::Ok);
        assert!(
            checks[0].detail.starts_with("heard 1 other node "),
            "{}",
            checks[0].detail
        );
        assert!(checks[0].detail.contains("and the local agent"));
        assert_eq!(checks[3].status, Status::Ok, "{}", checks[3].detail);

        let alone = check_heard(&heard[..2], PROBE, Some(1), Duration::from_secs(1), LISTEN);
        assert_eq!(alone[0].status, Status::Warn);
        assert!(
            alone[0]
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("start peerd on another host"))
        );
        // Where multicast does not go, unicast does: the flags that name the peers.
        let fix = alone[0].fix.as_deref().unwrap_or_default();
        assert!(
            fix.contains("--peers-dns NAME") && fix.contains("--peer HOST"),
            "{fix}"
        );
        assert_eq!(alone[3].status, Status::Unknown);
    }

    #[test]
    fn the_docker_check_counts_the_nodes_the_peers_line_counts() {
        let probe = beacon(1, PROBE_HOSTNAME, PROBE);
        let other_probe = beacon(2, PROBE_HOSTNAME, 0xd0d);
        let local = beacon(3, "local", 1);
        let other = beacon(4, "node2", 2);
        let cases = [
            (vec![], false),
            (vec![probe.clone(), other_probe.clone()], false),
            // An agent in the container on an --internal network: only its own beacons.
            (vec![probe.clone(), local.clone(), local.clone()], false),
            (vec![probe, local, other], true),
        ];
        for (heard, others) in cases {
            assert_eq!(others_heard(&heard, PROBE, Some(1)), others, "{heard:?}");
            let peers = &check_heard(&heard, PROBE, Some(1), Duration::from_secs(1), LISTEN)[0];
            assert_eq!(peers.status == Status::Ok, others, "{heard:?}: {peers:?}");
            let docker = check_docker_network(others, GROUP, 24901);
            assert_eq!(docker.status == Status::Ok, others, "{heard:?}");
        }
        // Without an agent answering, its beacons are another node's like any.
        assert!(others_heard(&[beacon(3, "local", 1)], PROBE, None));
    }

    #[test]
    fn foreign_datagrams_and_doubled_hostnames_warn() {
        let mut heard = vec![
            beacon(1, "node1", 1),
            beacon(2, "node1", 2),
            beacon(3, "node2", 3),
            Heard {
                at: Duration::from_millis(4),
                beacon: Err(DecodeError::NotABeacon),
            },
        ];
        let checks = check_heard(&heard, PROBE, None, Duration::from_secs(1), LISTEN);
        assert_eq!(checks[1].status, Status::Warn);
        assert!(
            checks[1].detail.contains("1 no peerd magic"),
            "{}",
            checks[1].detail
        );
        assert_eq!(checks[2].status, Status::Warn);
        assert!(checks[2].detail.contains("node1 (2 instances)"));
        // A restart: the old instance said goodbye.
        if let Ok(b) = &mut heard[0].beacon {
            b.goodbye = true;
        }
        heard.pop();
        let checks = check_heard(&heard, PROBE, None, Duration::from_secs(1), LISTEN);
        assert_eq!(checks[1].status, Status::Ok);
        assert_eq!(checks[2].status, Status::Ok);
    }

    #[test]
    fn beacons_spaced_wider_than_the_ttl_warn() {
        let heard = [beacon(0, "slow", 5), beacon(2_500, "slow", 5)];
        let checks = check_heard(&heard, PROBE, None, Duration::from_secs(1), LISTEN);
        assert_eq!(checks[3].status, Status::Warn);
        assert!(
            checks[3].detail.contains("slow (2s 500ms)"),
            "{}",
            checks[3].detail
        );
    }

    #[test]
    fn strict_rp_filter_warns_with_the_sysctl() {
        let check = check_rp_filter(Some("0\n"), Some("1\n"), "eth0");
        assert_eq!(check.status, Status::Warn);
        assert!(
            check
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("net.ipv4.conf.eth0.rp_filter=2"))
        );
        assert_eq!(
            check_rp_filter(Some("2"), Some("0"), "eth0").status,
            Status::Ok
        );
        assert_eq!(
            check_rp_filter(None, Some("0"), "eth0").status,
            Status::Unknown
        );
    }

    #[test]
    fn the_longest_route_covering_the_group_is_named() {
        let head =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
        let multicast = format!(
            "lo\t{:08X}\t00000000\t0001\t0\t0\t0\t{:08X}\t0\t0\t0\n",
            u32::from_ne_bytes([224, 0, 0, 0]),
            u32::from_ne_bytes([240, 0, 0, 0])
        );
        let default = "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        let both = format!("{head}{default}{multicast}");
        let check = check_route(Some(&both), GROUP, "lo");
        assert_eq!(check.status, Status::Ok);
        assert!(
            check.detail.contains("through lo (a /4 route)"),
            "{}",
            check.detail
        );
        let only_default = format!("{head}{default}");
        let check = check_route(Some(&only_default), GROUP, "lo");
        assert!(
            check
                .detail
                .contains("through eth0 (a /0 route); the agent sends on lo")
        );
        assert_eq!(check_route(Some(head), GROUP, "lo").status, Status::Warn);
    }

    #[test]
    fn an_absent_agent_warns_and_a_deaf_one_fails() {
        assert_eq!(check_agent(Err("refused"), None, None).status, Status::Warn);
        let mut status = AgentStatus {
            hostname: "h".into(),
            instance: "01".into(),
            group: "239.255.49.1:24901".into(),
            interface: "127.0.0.1".into(),
            interval_ms: 300,
            ttl_ms: 1000,
            peers: 0,
            uptime_ms: 1,
            beacons_sent: 3,
            early_answers: 0,
            beacons_received: 0,
            own_beacons_received: 3,
            datagrams_ignored: 0,
            ..Default::default()
        };
        assert_eq!(
            check_agent(Ok(&status), None, Some(Ipv4Addr::LOCALHOST)).status,
            Status::Ok
        );
        let elsewhere = check_agent(Ok(&status), None, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(elsewhere.status, Status::Warn);
        // An agent on several addresses: the doctor checked one of them.
        let both = AgentStatus {
            interface: "10.0.0.1, fe80::1%eth0".into(),
            ..status.clone()
        };
        let checked = check_agent(Ok(&both), None, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(checked.status, Status::Ok, "{checked:?}");
        let other = check_agent(Ok(&both), None, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(
            other.fix.as_deref(),
            Some("peerd doctor --interface 10.0.0.1")
        );
        // A firewall rule added after it started: sent during the window, nothing came back.
        let mut later = status.clone();
        later.beacons_sent += 2;
        let deaf = check_agent(Ok(&status), Some(&later), None);
        assert_eq!(deaf.status, Status::Fail);
        assert!(
            deaf.detail.contains("2 of its beacons during the check"),
            "{}",
            deaf.detail
        );
        later.own_beacons_received += 2;
        assert_eq!(
            check_agent(Ok(&status), Some(&later), None).status,
            Status::Ok
        );
        status.own_beacons_received = 0;
        assert_eq!(check_agent(Ok(&status), None, None).status, Status::Fail);
        // Off the group, nothing of its own comes back, nor should it.
        status.unicast.multicast = false;
        let off = check_agent(Ok(&status), None, None);
        assert_eq!(off.status, Status::Ok, "{}", off.detail);
        assert!(off.detail.ends_with("off the group (--no-multicast)"));
    }

    #[test]
    fn the_unicast_line_says_unicast_is_in_use_and_which_names_do_not_resolve() {
        use crate::api::NameInfo;
        let mut status = AgentStatus {
            peers: 2,
            ..Default::default()
        };
        assert_eq!(
            check_unicast(&status, false),
            None,
            "no unicast side: no line"
        );
        status.unicast.names = vec![NameInfo {
            name: "tasks.peerd:24901".into(),
            from: "peers-dns".into(),
            addresses: vec!["10.0.1.3:24901".into(), "10.0.1.4:24901".into()],
            ..Default::default()
        }];
        status.unicast.targets = vec!["10.0.1.4:24901".into()];
        let fine = check_unicast(&status, false).expect("a line");
        assert_eq!(fine.status, Status::Ok);
        assert!(
            fine.detail.starts_with("the group is silent here, but the agent beacons 1 target by unicast from tasks.peerd:24901 (2 addresses): it lists 2 peers"),
            "{}",
            fine.detail
        );
        status.unicast.names[0].addresses.clear();
        status.unicast.names[0].error = Some("Name or service not known".into());
        status.unicast.targets.clear();
        let unresolved = check_unicast(&status, true).expect("a line");
        assert_eq!(unresolved.status, Status::Warn);
        assert!(
            unresolved
                .detail
                .contains("tasks.peerd:24901 (not resolved: Name or service not known)")
        );
        assert!(
            unresolved
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("check that tasks.peerd:24901 resolves")),
            "{:?}",
            unresolved.fix
        );
    }

    #[test]
    fn an_agent_that_is_not_sending_fails_with_the_reason() {
        let mut status = AgentStatus {
            hostname: "h".into(),
            group: "239.255.49.1:24901".into(),
            interface: "10.98.0.1".into(),
            ..Default::default()
        };
        // Nothing sent, nothing heard back: no sign of deafness, and it must still fail.
        assert_eq!(
            check_agent(Ok(&status), None, Some(Ipv4Addr::new(10, 98, 0, 1))).status,
            Status::Ok
        );
        status.not_sending = Some(api::NotSendingInfo {
            since_ms_ago: 2_000,
            reason: "cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use (os error 98)".into(),
        });
        let check = check_agent(Ok(&status), None, Some(Ipv4Addr::new(10, 98, 0, 1)));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.detail.ends_with(
                "it is not sending (no beacon sent for 2s: cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use (os error 98))"
            ),
            "{}",
            check.detail
        );
        let fix = check.fix.unwrap_or_default();
        assert!(
            fix.contains("UDP port 24901") && fix.contains("ss -ulpn"),
            "{fix}"
        );
        // The answer after the window is the one that counts.
        let mut after = status.clone();
        after.not_sending = None;
        assert_eq!(
            check_agent(Ok(&status), Some(&after), None).status,
            Status::Ok
        );
    }

    #[test]
    fn every_line_but_ok_carries_its_fix() {
        let checks = [
            Check::ok("agent", "fine".into()),
            Check::not_ok("peers", Status::Warn, "alone".into(), "start one".into()),
        ];
        assert_eq!(
            render(&checks),
            "ok      agent      fine\nwarn    peers      alone; fix: start one\n"
        );
    }

    #[test]
    fn a_silent_container_is_unknown_with_the_command_that_tells_an_internal_network() {
        let group = Ipv4Addr::new(239, 255, 49, 1);
        let silent = check_docker_network(false, group, 24901);
        assert_eq!(silent.status, Status::Unknown);
        let fix = silent.fix.unwrap_or_default();
        assert!(
            fix.contains("--format '{{.Internal}}'") && fix.contains("DOCKER-USER"),
            "{fix}"
        );
        assert_eq!(check_docker_network(true, group, 24901).status, Status::Ok);
    }
}
