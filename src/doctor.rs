//! `peerd doctor`: why discovery may not work on this host. Each check is a pure function of
//! what was read or heard; [`run`] gathers those facts. It changes nothing on the host and sends
//! two beacons: a probe, which peers answer early, and the probe's goodbye.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::api::{self, AgentStatus};
use crate::beacon::{Beacon, DecodeError, MAX_BEACON_LEN};
use crate::config::{self, MIN_TIMING};
use crate::interface::{self, Candidate, Choice, Link};
use crate::{client, socket};

/// The hostname the probe announces: agents list it from the probe to its goodbye, a moment.
pub const PROBE_HOSTNAME: &str = "peerd-doctor-probe";

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something is likely to bite: the fix says what to look at.
    Warn,
    /// Discovery cannot work as things are: `peerd doctor` exits 1.
    Fail,
    /// Could not be found out (a file unreadable, too short a window): the fix says how.
    Unknown,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// A command or flag that fixes or tells more; `None` only when the status is `Ok`.
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: String) -> Check {
        Check {
            check,
            status: Status::Ok,
            detail,
            fix: None,
        }
    }

    fn not_ok(check: &'static str, status: Status, detail: String, fix: String) -> Check {
        Check {
            check,
            status,
            detail,
            fix: Some(fix),
        }
    }
}

/// What `peerd doctor` is asked to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub group: Ipv4Addr,
    pub port: u16,
    /// The interface given with `--interface`; `None`: the one the agent would pick.
    pub interface: Option<Ipv4Addr>,
    /// Where a local agent's API may answer.
    pub api: SocketAddr,
    /// How long to listen to the group.
    pub listen: Duration,
}

/// One datagram heard on the group during the window.
#[derive(Debug, Clone)]
pub struct Heard {
    /// Since the probe went out.
    pub at: Duration,
    pub beacon: Result<Beacon, DecodeError>,
}

/// The interface check. `given` is `--interface` and `link` the interface holding it; without
/// it, `choice` is what the agent would pick among `candidates`.
pub fn check_interface(
    given: Option<Ipv4Addr>,
    link: Option<&Link>,
    candidates: &[Candidate],
    choice: Option<&Choice>,
) -> Check {
    const NAME: &str = "interface";
    if let Some(address) = given {
        let Some(link) = link else {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("no interface of this host has {address}"),
                "pass --interface with an address of this host (`ip -4 addr`)".into(),
            );
        };
        let name = &link.name;
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
                format!("{name} ({address}) is loopback: beacons reach this host only"),
            );
        }
        if !link.running {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("{name} ({address}) is up without carrier: it sends nowhere"),
                "connect its link (cable, Wi-Fi, the other end of a veth), or pass --interface ADDR of another".into(),
            );
        }
        if !link.multicast {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("{name} ({address}) does not do multicast"),
                format!("ip link set {name} multicast on"),
            );
        }
        return Check::ok(
            NAME,
            format!("{name} ({address}), as given: up, carrier, multicast"),
        );
    }
    let Some(choice) = choice else {
        if candidates.is_empty() {
            return Check::not_ok(
                NAME,
                Status::Fail,
                "no interface is up, multicast-capable and has an IPv4 address".into(),
                "bring one up (`ip link set DEV up`), or pass --interface ADDR (127.0.0.1 for a single-host trial)".into(),
            );
        }
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!(
                "no candidate has carrier: {}",
                describe_candidates(candidates)
            ),
            "connect the link of one of them, or pass --interface ADDR".into(),
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
    let first_other = &choice.others[0].interface.address;
    Check::not_ok(
        NAME,
        Status::Warn,
        format!(
            "{detail}; other candidates: {}",
            describe_candidates(&choice.others)
        ),
        format!(
            "if the peers are on another of them, give it to every command: --interface ADDR (e.g. --interface {first_other})"
        ),
    )
}

fn describe_candidates(candidates: &[Candidate]) -> String {
    let described: Vec<String> = candidates
        .iter()
        .map(|c| {
            let carrier = if c.running { "" } else { ", no carrier" };
            format!("{} ({}{carrier})", c.interface.name, c.interface.address)
        })
        .collect();
    described.join(", ")
}

/// The loopback check: did the probe come back? `Err` if the probe socket could not be opened.
pub fn check_loopback(
    heard: Result<&[Heard], &str>,
    probe: u64,
    group: Ipv4Addr,
    port: u16,
    listen: Duration,
) -> Check {
    const NAME: &str = "loopback";
    let heard = match heard {
        Ok(heard) => heard,
        Err(err) => {
            return Check::not_ok(
                NAME,
                Status::Fail,
                format!("cannot open a socket on the group: {err}"),
                "pass --interface with an address of this host (`ip -4 addr`); another program may hold the port without SO_REUSEADDR (`ss -ulpn`)".into(),
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
            NAME,
            format!(
                "the probe to {group}:{port} came back in {} ms: this host hears the group",
                h.at.as_millis()
            ),
        ),
        None => Check::not_ok(
            NAME,
            Status::Fail,
            format!(
                "the probe to {group}:{port} did not come back within {}: nothing sent to the group is heard here",
                humantime::format_duration(listen)
            ),
            format!(
                "look for a firewall rule dropping UDP port {port} or {group} (`nft list ruleset`, `iptables -L -n -v`), and check the group's route (`ip route get {group}`)"
            ),
        ),
    }
}

/// The membership check, from `/proc/net/igmp` read while the probe socket had joined.
pub fn check_igmp(table: Option<&str>, device: &str, group: Ipv4Addr) -> Check {
    const NAME: &str = "membership";
    let Some(table) = table else {
        return Check::not_ok(
            NAME,
            Status::Unknown,
            "/proc/net/igmp is unreadable".into(),
            format!("ip maddr show dev {device}"),
        );
    };
    if igmp_groups(table, device).contains(&group) {
        Check::ok(NAME, format!("the kernel lists {group} joined on {device}"))
    } else {
        Check::not_ok(
            NAME,
            Status::Warn,
            format!(
                "the kernel lists no membership of {group} on {device}, though the probe joined it"
            ),
            format!("ip maddr show dev {device}"),
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

/// The checks of what was heard: other nodes, foreign datagrams, duplicate hostnames, timings.
/// `local_agent` is the instance of the agent on this host, if one answered: its beacons are
/// not another node's. `ttl` is how long this node keeps a silent peer.
pub fn check_heard(
    heard: &[Heard],
    probe: u64,
    local_agent: Option<u64>,
    ttl: Duration,
    listen: Duration,
) -> Vec<Check> {
    let beacons: Vec<(Duration, &Beacon)> = heard
        .iter()
        .filter_map(|h| Some((h.at, h.beacon.as_ref().ok()?)))
        .filter(|(_, b)| b.instance != probe && b.hostname != PROBE_HOSTNAME)
        .collect();
    let others: Vec<&(Duration, &Beacon)> = beacons
        .iter()
        .filter(|(_, b)| Some(b.instance) != local_agent)
        .collect();
    let mut instances: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for (_, b) in &others {
        instances.entry(&b.hostname).or_default().insert(b.instance);
    }
    let local = if beacons.len() > others.len() {
        " and the local agent"
    } else {
        ""
    };
    let window = humantime::format_duration(listen);
    let peers = if instances.is_empty() {
        Check::not_ok(
            "peers",
            Status::Warn,
            format!("no other node heard in {window}{local}"),
            "start peerd on another host, or check that the network carries multicast (a Wi-Fi or cloud network may not); listen longer than the peers' interval: --listen 20s".into(),
        )
    } else {
        let names: Vec<&str> = instances.keys().copied().collect();
        Check::ok(
            "peers",
            format!(
                "heard {} in {window}{local}: {}",
                count(instances.len(), "other node"),
                names.join(", ")
            ),
        )
    };
    vec![
        peers,
        check_foreign(heard),
        check_duplicates(&others),
        check_spacing(&others, ttl, listen),
    ]
}

fn check_foreign(heard: &[Heard]) -> Check {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for h in heard {
        if let Err(err) = &h.beacon {
            *reasons.entry(err.to_string()).or_default() += 1;
        }
    }
    if reasons.is_empty() {
        return Check::ok(
            "datagrams",
            if heard.is_empty() {
                "no datagram heard".to_owned()
            } else {
                format!(
                    "all {} heard were peerd beacons",
                    count(heard.len(), "datagram")
                )
            },
        );
    }
    let total: usize = reasons.values().sum();
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    Check::not_ok(
        "datagrams",
        Status::Warn,
        format!(
            "{total} of {} datagrams were not valid beacons: {}",
            heard.len(),
            reasons.join(", ")
        ),
        "find the sender (`tcpdump -ni any udp port PORT`): another program or another peerd version shares the group; move with --group and --port on every node".into(),
    )
}

fn check_duplicates(others: &[&(Duration, &Beacon)]) -> Check {
    // An instance that said goodbye was replaced by a restart, not doubled.
    let mut live: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let gone: BTreeSet<u64> = others
        .iter()
        .filter(|(_, b)| b.goodbye)
        .map(|(_, b)| b.instance)
        .collect();
    for (_, b) in others {
        if !gone.contains(&b.instance) {
            live.entry(&b.hostname).or_default().insert(b.instance);
        }
    }
    let doubled: Vec<String> = live
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(name, ids)| format!("{name} ({} instances)", ids.len()))
        .collect();
    if doubled.is_empty() {
        return Check::ok(
            "hostnames",
            "no hostname heard from two instances at once".into(),
        );
    }
    Check::not_ok(
        "hostnames",
        Status::Warn,
        format!(
            "hostnames announced by several nodes at once: {}",
            doubled.join(", ")
        ),
        "give each node its own name: peerd agent --name NAME".into(),
    )
}

fn check_spacing(others: &[&(Duration, &Beacon)], ttl: Duration, listen: Duration) -> Check {
    let mut times: BTreeMap<u64, (&str, Vec<Duration>)> = BTreeMap::new();
    for (at, b) in others {
        let entry = times.entry(b.instance).or_insert((&b.hostname, Vec::new()));
        entry.1.push(*at);
    }
    let mut measured = 0;
    let mut slow = Vec::new();
    for (name, ats) in times.values() {
        if ats.len() < 2 {
            continue;
        }
        measured += 1;
        let widest = ats.windows(2).map(|w| w[1].saturating_sub(w[0])).max();
        if let Some(gap) = widest.filter(|gap| *gap > ttl) {
            slow.push(format!("{name} ({})", humantime::format_duration(gap)));
        }
    }
    let ttl_text = humantime::format_duration(ttl);
    if !slow.is_empty() {
        return Check::not_ok(
            "timings",
            Status::Warn,
            format!(
                "beacons spaced wider than this node's ttl of {ttl_text}: {}; they carry their ttl, so they stay listed, but the nodes run at different timings",
                slow.join(", ")
            ),
            "give every node the same --interval and --ttl".into(),
        );
    }
    if measured == 0 {
        return Check::not_ok(
            "timings",
            Status::Unknown,
            format!(
                "no other node heard twice in {}: beacon spacing not measured",
                humantime::format_duration(listen)
            ),
            format!(
                "listen past the peers' interval: --listen {}",
                humantime::format_duration(config::BEACON_INTERVAL + Duration::from_secs(5))
            ),
        );
    }
    Check::ok(
        "timings",
        format!(
            "{} heard twice, none spaced wider than the ttl of {ttl_text}",
            count(measured, "node")
        ),
    )
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
    let route = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let hex = |i: usize| u32::from_str_radix(fields.get(i)?, 16).ok();
            let (dest, flags, mask) = (hex(1)?, hex(3)?, hex(7)?);
            // RTF_UP
            (flags & 1 == 1 && target & mask == dest).then(|| (fields[0], mask.count_ones()))
        })
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

/// The local agent, if one answered (`Err`: why not, naming its address), asked before the
/// window and, in `after`, again after it. `probed` is the interface the doctor checked.
pub fn check_agent(
    before: Result<&AgentStatus, &str>,
    after: Option<&AgentStatus>,
    probed: Option<Ipv4Addr>,
) -> Check {
    const NAME: &str = "agent";
    let before = match before {
        Ok(before) => before,
        Err(err) => {
            return Check::not_ok(
                NAME,
                Status::Warn,
                // The client's message ends with the same advice as the fix.
                err.split("; start one").next().unwrap_or(err).to_owned(),
                "start one: peerd agent (or point --api at the one running)".into(),
            );
        }
    };
    let status = after.unwrap_or(before);
    let detail = format!(
        "{} on {} via {}: {} peers, {} beacons sent, {} of its own heard back",
        status.hostname,
        status.group,
        status.interface,
        status.peers,
        status.beacons_sent,
        status.own_beacons_received
    );
    // Its counters since it started would hide a firewall rule added since: what changed
    // during the window tells, when it sent a beacon then.
    let deaf_now = status.beacons_sent > before.beacons_sent
        && status.own_beacons_received == before.own_beacons_received;
    let deaf_ever = status.beacons_sent > 0 && status.own_beacons_received == 0;
    if deaf_now || deaf_ever {
        let sent = status.beacons_sent - before.beacons_sent;
        let why = if deaf_now {
            format!("{sent} of its beacons during the check, none heard back")
        } else {
            "none of its own beacons ever heard back".to_owned()
        };
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!("{detail}: it does not hear the group ({why})"),
            format!(
                "look for a firewall rule dropping the group's port (`nft list ruleset`), and check `ip route get {}`",
                status.group.split(':').next().unwrap_or_default()
            ),
        );
    }
    if let Some(probed) = probed.filter(|p| p.to_string() != status.interface) {
        return Check::not_ok(
            NAME,
            Status::Warn,
            format!("{detail}; the doctor checked {probed}, not the agent's interface"),
            format!("peerd doctor --interface {}", status.interface),
        );
    }
    Check::ok(NAME, detail)
}

/// `1 node`, `2 nodes`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
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

    let link = options.interface.and_then(interface::link_of);
    let candidates = interface::candidates().unwrap_or_default();
    let choice = match options.interface {
        Some(_) => None,
        None => {
            let route = std::fs::read_to_string("/proc/net/route").ok();
            let default_route = route
                .as_deref()
                .and_then(interface::default_route_interface);
            interface::choose(&candidates, default_route)
        }
    };
    let mut checks = vec![check_interface(
        options.interface,
        link.as_ref(),
        &candidates,
        choice.as_ref(),
    )];
    let probed = match (options.interface, &link, &choice) {
        (Some(address), Some(link), _) => Some((address, link.name.clone())),
        (None, _, Some(choice)) => Some((choice.chosen.address, choice.chosen.name.clone())),
        _ => None,
    };

    let Some((address, device)) = probed else {
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

    let probe = fastrand::u64(..);
    let listened = listen(options, address, probe).await;
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
        let local_agent = status
            .as_ref()
            .ok()
            .and_then(|s| u64::from_str_radix(&s.instance, 16).ok());
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
    let routes = std::fs::read_to_string("/proc/net/route").ok();
    checks.push(check_route(routes.as_deref(), options.group, &device));
    let after = match &status {
        Ok(_) => client::get_json::<AgentStatus>(options.api, api::STATUS_PATH)
            .await
            .ok(),
        Err(_) => None,
    };
    checks.push(check_agent(
        status.as_ref().map_err(String::as_str),
        after.as_ref(),
        Some(address),
    ));
    checks
}

/// Joins the group on `address` as the agent does, sends the probe, and records every datagram
/// for `options.listen`; also `/proc/net/igmp` as it reads while the probe socket is joined.
async fn listen(
    options: &Options,
    address: Ipv4Addr,
    probe: u64,
) -> Result<(Vec<Heard>, Option<String>), String> {
    let socket =
        socket::bind_multicast(options.group, options.port, address, config::MULTICAST_TTL)
            .map_err(|err| format!("{err:#}"))?;
    let igmp = std::fs::read_to_string("/proc/net/igmp").ok();
    let mut beacon = Beacon {
        instance: probe,
        sequence: 0,
        hostname: PROBE_HOSTNAME.into(),
        // The shortest ttl agents take: should the goodbye be lost, the probe is gone soon.
        ttl: Some(MIN_TIMING),
        ..Beacon::default()
    };
    let to = SocketAddr::from((options.group, options.port));
    let start = tokio::time::Instant::now();
    socket
        .send_to(&beacon.encode(), to)
        .await
        .map_err(|err| format!("sending the probe to {to}: {err}"))?;
    let mut heard = Vec::new();
    let mut said_goodbye = false;
    // One byte more than a beacon may have, so an oversized datagram shows as one.
    let mut buf = [0u8; MAX_BEACON_LEN + 1];
    let deadline = start + options.listen;
    while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        let (len, _) = received.map_err(|err| format!("receiving on {to}: {err}"))?;
        let decoded = Beacon::decode(&buf[..len]);
        let probe_back = decoded.as_ref().is_ok_and(|b| b.instance == probe);
        heard.push(Heard {
            at: start.elapsed(),
            beacon: decoded,
        });
        if probe_back && !said_goodbye {
            // Peers have heard the probe, and answer it early: it can leave their lists now.
            said_goodbye = true;
            beacon.sequence = 1;
            beacon.goodbye = true;
            // Best effort: unanswered, agents drop the probe after its short ttl anyway.
            let _ = socket.send_to(&beacon.encode(), to).await;
        }
    }
    if !said_goodbye {
        beacon.sequence = 1;
        beacon.goodbye = true;
        let _ = socket.send_to(&beacon.encode(), to).await;
    }
    Ok((heard, igmp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interface::Interface;

    fn candidate(name: &str, last: u8, running: bool) -> Candidate {
        Candidate {
            interface: Interface {
                name: name.into(),
                address: Ipv4Addr::new(10, 0, 0, last),
            },
            running,
        }
    }

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
        let check = check_interface(None, None, &all, None);
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("a0 (10.0.0.1, no carrier)"));
        assert!(
            check
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("--interface ADDR"))
        );
        let none = check_interface(None, None, &[], None);
        assert_eq!(none.status, Status::Fail);
    }

    #[test]
    fn several_candidates_warn_and_name_the_others() {
        let all = [candidate("eth0", 1, true), candidate("docker0", 2, true)];
        let choice = interface::choose(&all, Some("eth0")).expect("a choice");
        let check = check_interface(None, None, &all, Some(&choice));
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.detail.contains("docker0 (10.0.0.2)"),
            "{}",
            check.detail
        );
        assert!(
            check
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("--interface 10.0.0.2"))
        );
        let alone = interface::choose(&all[..1], Some("eth0")).expect("a choice");
        assert_eq!(
            check_interface(None, None, &all[..1], Some(&alone)).status,
            Status::Ok
        );
    }

    #[test]
    fn a_given_interface_must_exist_be_up_have_carrier_and_multicast() {
        let addr = Some(Ipv4Addr::new(10, 0, 0, 1));
        let status = |l: Option<&Link>| check_interface(addr, l, &[], None).status;
        assert_eq!(status(None), Status::Fail);
        assert_eq!(status(Some(&link("e", false, false, true))), Status::Fail);
        assert_eq!(status(Some(&link("e", true, false, true))), Status::Fail);
        assert_eq!(status(Some(&link("e", true, true, false))), Status::Fail);
        assert_eq!(status(Some(&link("e", true, true, true))), Status::Ok);
        // lo has no IFF_MULTICAST, yet carries the group to this host's own sockets.
        let lo = Link {
            loopback: true,
            ..link("lo", true, true, false)
        };
        assert_eq!(status(Some(&lo)), Status::Ok);
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
            beacon(400, "node2", 2),
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
        assert_eq!(alone[3].status, Status::Unknown);
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
}
