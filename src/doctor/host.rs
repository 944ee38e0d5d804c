//! The doctor's checks of this host: its interface, the probe's return, the group's
//! membership, rp_filter, the route and Docker (the local agent's are `agent.rs`'s). Each is a pure function of what was
//! read or heard, returning one line of the report; gathering the facts is `doctor`'s job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::check::{Check, Status};
use super::probe::Heard;
use crate::config::InterfaceSpec;
use crate::net::interface::{self, Candidate, Choice, LinkAddress};

/// The interface check. `given` is `--interface` and the address of this host it names, if
/// one; without it, `choice` is what the agent would pick among `candidates`.
pub fn check_interface(
    given: Option<(&InterfaceSpec, Option<&LinkAddress>)>,
    candidates: &[Candidate],
    choice: Option<&Choice>,
) -> Check {
    const NAME: &str = "interface";
    if let Some((spec, found)) = given {
        let Some(LinkAddress { address, link }) = found else {
            return Check::not_ok(
                NAME,
                Status::Fail,
                spec.missing(),
                "pass --interface with an address, interface name or network of this host (`ip -4 addr`)".into(),
            );
        };
        let name = &link.name;
        // A network says which of its addresses it found; an address or a name shows itself.
        let given = match spec {
            InterfaceSpec::Network(_) => format!(" for {spec}"),
            _ => String::new(),
        };
        if !link.up {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("{name} ({address}) is down"),
                format!("ip link set {name} up"),
            );
        }
        if link.loopback {
            return Check::ok(
                NAME,
                format!("{name} ({address}){given} is loopback: beacons reach this host only"),
            );
        }
        if !link.running {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("{name} ({address}){given} is up without carrier: it sends nowhere"),
                "connect its link (cable, Wi-Fi, the other end of a veth), or pass --interface with another".into(),
            );
        }
        if !link.multicast {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("{name} ({address}){given} does not do multicast"),
                format!("ip link set {name} multicast on"),
            );
        }
        return Check::ok(
            NAME,
            format!("{name} ({address}), as given{given}: up, carrier, multicast"),
        );
    }
    let Some(choice) = choice else {
        if candidates.is_empty() {
            return Check::not_ok(
                NAME,
                Status::Fail,
                "no interface is up, multicast-capable and has an IPv4 address".into(),
                "bring one up (`ip link set DEV up`), or pass --interface (127.0.0.1 for a single-host trial)".into(),
            );
        }
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!(
                "no candidate has carrier: {}",
                interface::describe_candidates(candidates)
            ),
            "connect the link of one of them, or pass --interface NAME of another".into(),
        );
    };
    let chosen = &choice.chosen;
    let detail = format!(
        "{} ({}): up, carrier, multicast; {}",
        chosen.name, chosen.address, choice.reason
    );
    if choice.others.is_empty() {
        return Check::ok(NAME, detail);
    }
    // A name, not an address: one service definition gives every replica the same flags,
    // and each replica's address differs.
    let first_other = &choice.others[0].interface.name;
    Check::not_ok(
        NAME,
        Status::Warn,
        format!(
            "{detail}; other candidates: {}",
            interface::describe_candidates(&choice.others)
        ),
        format!(
            "if the peers are on another of them, give it to every command by name or network: --interface NAME or NETWORK (e.g. --interface {first_other})"
        ),
    )
}

/// The loopback check: did the probe come back? `Err` if the probe socket could not be opened.
/// For the IPv6 group (`loopback6`) as for the IPv4 one.
pub fn check_loopback(
    heard: Result<&[Heard], &str>,
    probe: u64,
    group: impl Into<IpAddr>,
    port: u16,
    listen: Duration,
) -> Check {
    let group = group.into();
    let (name, ip, tables, route) = match group {
        IpAddr::V4(_) => (
            "loopback",
            "ip -4",
            "iptables",
            format!("ip route get {group}"),
        ),
        IpAddr::V6(_) => (
            "loopback6",
            "ip -6",
            "ip6tables",
            "ip -6 route show table local".to_owned(),
        ),
    };
    let to = SocketAddr::new(group, port);
    let heard = match heard {
        Ok(heard) => heard,
        Err(err) => {
            return Check::not_ok(
                name,
                Status::Fail,
                format!("cannot open a socket on the group: {err}"),
                format!(
                    "pass --interface with an address of this host (`{ip} addr`); another program may hold the port without SO_REUSEADDR (`ss -ulpn`)"
                ),
            );
        }
    };
    let back = heard.iter().find(|h| {
        h.beacon
            .as_ref()
            .is_ok_and(|b| b.instance == probe && !b.goodbye)
    });
    match back {
        Some(h) => Check::ok(
            name,
            format!(
                "the probe to {to} came back in {} ms: this host hears the group",
                h.at.as_millis()
            ),
        ),
        None => Check::not_ok(
            name,
            Status::Fail,
            format!(
                "the probe to {to} did not come back within {}: nothing sent to the group is heard here",
                humantime::format_duration(listen)
            ),
            format!(
                "look for a firewall rule dropping UDP port {port} or {group} (`nft list ruleset`, `{tables} -L -n -v`), and check the group's route (`{route}`)"
            ),
        ),
    }
}

/// The membership check, from `/proc/net/igmp` (for an IPv6 group `/proc/net/igmp6`, the
/// `mld` line) read while the probe socket had joined.
pub fn check_igmp(table: Option<&str>, device: &str, group: impl Into<IpAddr>) -> Check {
    let group = group.into();
    let (name, file, maddr) = match group {
        IpAddr::V4(_) => ("membership", "/proc/net/igmp", "ip maddr show dev"),
        IpAddr::V6(_) => ("mld", "/proc/net/igmp6", "ip -6 maddr show dev"),
    };
    let Some(table) = table else {
        return Check::not_ok(
            name,
            Status::Unknown,
            format!("{file} is unreadable"),
            format!("{maddr} {device}"),
        );
    };
    let joined = match group {
        IpAddr::V4(group) => igmp_groups(table, device).contains(&group),
        IpAddr::V6(group) => igmp6_groups(table, device).contains(&group),
    };
    if joined {
        Check::ok(name, format!("the kernel lists {group} joined on {device}"))
    } else {
        Check::not_ok(
            name,
            Status::Warn,
            format!(
                "the kernel lists no membership of {group} on {device}, though the probe joined it"
            ),
            format!("{maddr} {device}"),
        )
    }
}

/// The groups `/proc/net/igmp` lists on `device`: a line per device (`Idx Device : Count ...`),
/// then an indented line per group, its address in hex as the kernel holds it (network order).
fn igmp_groups(table: &str, device: &str) -> Vec<Ipv4Addr> {
    let mut groups = Vec::new();
    let mut current = false;
    for line in table.lines().skip(1) {
        let mut fields = line.split_whitespace();
        if line.starts_with(char::is_whitespace) {
            let group = fields
                .next()
                .and_then(|hex| u32::from_str_radix(hex, 16).ok());
            if let (true, Some(group)) = (current, group) {
                groups.push(Ipv4Addr::from(group.to_ne_bytes()));
            }
        } else {
            current = fields.nth(1) == Some(device);
        }
    }
    groups
}

/// The groups `/proc/net/igmp6` lists on `device`: a line per membership, `index device group
/// users flags timer`, the group in 32 hex digits.
fn igmp6_groups(table: &str, device: &str) -> Vec<Ipv6Addr> {
    table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (&name, &group) = (fields.get(1)?, fields.get(2)?);
            let group = u128::from_str_radix(group, 16).ok()?;
            (name == device).then(|| Ipv6Addr::from(group))
        })
        .collect()
}

/// The reverse-path filter, from `/proc/sys/net/ipv4/conf/{all,DEVICE}/rp_filter`: the kernel
/// applies the stricter of the two.
pub fn check_rp_filter(all: Option<&str>, dev: Option<&str>, device: &str) -> Check {
    const NAME: &str = "rp_filter";
    let parse = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u8>().ok());
    let (Some(all), Some(dev)) = (parse(all), parse(dev)) else {
        return Check::not_ok(
            NAME,
            Status::Unknown,
            format!("net.ipv4.conf.{{all,{device}}}.rp_filter unreadable"),
            format!("sysctl net.ipv4.conf.all.rp_filter net.ipv4.conf.{device}.rp_filter"),
        );
    };
    // 0 off, 1 strict, 2 loose; the kernel applies the larger.
    match all.max(dev) {
        1 => Check::not_ok(
            NAME,
            Status::Warn,
            format!(
                "strict on {device} (all={all}, {device}={dev}): beacons from a source not routed back through {device} are dropped"
            ),
            format!("sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{device}.rp_filter=2"),
        ),
        level => Check::ok(
            NAME,
            format!(
                "{} on {device} (all={all}, {device}={dev})",
                if level == 0 { "off" } else { "loose" }
            ),
        ),
    }
}

/// The group's route, from `/proc/net/route`: the longest prefix that covers it.
pub fn check_route(table: Option<&str>, group: Ipv4Addr, device: &str) -> Check {
    const NAME: &str = "route";
    let Some(table) = table else {
        return Check::not_ok(
            NAME,
            Status::Unknown,
            "/proc/net/route is unreadable".into(),
            format!("ip route get {group}"),
        );
    };
    let target = u32::from_ne_bytes(group.octets());
    // RTF_UP, and a destination the group falls in: the most specific wins.
    let route = interface::routes(table)
        .filter(|&(_, dest, _, flags, mask)| flags & 1 == 1 && target & mask == dest)
        .map(|(device, _, _, _, mask)| (device, mask.count_ones()))
        .max_by_key(|(_, bits)| *bits);
    match route {
        Some((via, bits)) => {
            let also = if via == device {
                String::new()
            } else {
                format!("; the agent sends on {device} all the same: it sets the interface")
            };
            Check::ok(
                NAME,
                format!("{group} is routed through {via} (a /{bits} route){also}"),
            )
        }
        None => Check::not_ok(
            NAME,
            Status::Warn,
            format!(
                "no route covers {group}: the agent still works (it sets the interface), tools that do not cannot send to the group"
            ),
            format!("ip route add 224.0.0.0/4 dev {device}"),
        ),
    }
}

/// Inside a Docker container. A network made with `docker network create --internal` drops
/// multicast (moby/libnetwork#2260), yet looks like any other from inside (it even has a
/// default route, as tried with Docker 28), so a silent group there is `unknown`, with the
/// host-side command that tells.
pub fn check_docker_network(others_heard: bool, group: Ipv4Addr, port: u16) -> Check {
    const NAME: &str = "docker";
    if others_heard {
        return Check::ok(
            NAME,
            "in a Docker container, and other nodes are heard".into(),
        );
    }
    Check::not_ok(
        NAME,
        Status::Unknown,
        "in a Docker container and no other node heard: an --internal network drops multicast, and cannot be told from inside".into(),
        format!(
            "on the host: docker network inspect NETWORK --format '{{{{.Internal}}}}'; if true, use a plain bridge network, or: iptables -I DOCKER-USER -i br-ID -o br-ID -p udp -d {group} --dport {port} -j ACCEPT; or do without multicast: peerd agent --peers-dns NAME or --peer HOST"
        ),
    )
}
