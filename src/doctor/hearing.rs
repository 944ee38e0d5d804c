//! The doctor's checks of what was heard on the group during its window: other nodes,
//! foreign datagrams, a hostname from two instances, beacon spacing. Pure functions of the
//! datagrams heard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::check::{Check, Status, count};
use super::probe::{Heard, PROBE_HOSTNAME};
use crate::config;
use crate::wire::beacon::Beacon;

/// Whether `beacon` is the probe's: the doctor's own, or another doctor's on this network.
fn is_probe(beacon: &Beacon, probe: u64) -> bool {
    beacon.instance == probe || beacon.hostname == PROBE_HOSTNAME
}

/// Whether `beacon` is another node's: neither a probe's nor the local agent's (`local_agent`,
/// its instance, if it answered). The peers line and the Docker check both count by it, so
/// they cannot disagree.
fn is_other_node(beacon: &Beacon, probe: u64, local_agent: Option<u64>) -> bool {
    !is_probe(beacon, probe) && Some(beacon.instance) != local_agent
}

/// Whether any other node was heard, as the peers line counts them.
pub fn others_heard(heard: &[Heard], probe: u64, local_agent: Option<u64>) -> bool {
    heard.iter().any(|h| {
        h.beacon
            .as_ref()
            .is_ok_and(|b| is_other_node(b, probe, local_agent))
    })
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
        .filter(|(_, b)| !is_probe(b, probe))
        .collect();
    let others: Vec<&(Duration, &Beacon)> = beacons
        .iter()
        .filter(|(_, b)| is_other_node(b, probe, local_agent))
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
