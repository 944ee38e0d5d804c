//! The doctor's checks of what was heard on the group during its window: other nodes,
//! foreign datagrams, a hostname from two instances, beacon spacing. Pure functions of the
//! datagrams heard.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::check::{Check, Status, count};
use super::probe::{Heard, PROBE_HOSTNAME};
use crate::wire::beacon::Beacon;

/// What to do where the network carries no multicast, for every line that heard nobody.
pub const NO_MULTICAST: &str = "where the network carries no multicast (Wi-Fi with isolation, cloud networks, Swarm overlays between hosts, most Kubernetes networks, Docker --internal networks), name the peers instead: peerd agent --peers-dns NAME (a name with every peer's address: tasks.SERVICE in Swarm, a headless Service in Kubernetes) or --peer HOST";

/// Whether `beacon` is the probe's: the doctor's own, or another doctor's on this network.
fn is_probe(beacon: &Beacon, probe: u64) -> bool {
    beacon.instance == probe || beacon.hostname == PROBE_HOSTNAME
}

/// Whether `beacon` is another node's: neither a probe's nor the local agent's (`local_agent`,
/// its instance, if it answered). The peers line and the Docker check both count by it, so
/// they cannot disagree.
pub(super) fn is_other_node(beacon: &Beacon, probe: u64, local_agent: Option<u64>) -> bool {
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
            format!(
                "start peerd on another host; listen longer than the peers' interval: --listen 20s; {NO_MULTICAST}"
            ),
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

/// How much longer than the ttl a window must be to judge spacing: the peers' first beacons
/// (their early answers to the probe) come within a second, and a few more seconds of slack.
const SPACING_SLACK: Duration = Duration::from_secs(5);

/// Whether any node's beacons are spaced wider than `ttl`. A gap is only seen inside the
/// window, so a window no longer than the ttl cannot tell, however many beacons it heard: it
/// says how long to listen instead. A node silent from its last beacon to the end of a longer
/// window (and no goodbye) was silent for that long too.
fn check_spacing(others: &[&(Duration, &Beacon)], ttl: Duration, listen: Duration) -> Check {
    let ttl_text = humantime::format_duration(ttl);
    let window = humantime::format_duration(listen);
    if listen <= ttl {
        return Check::not_ok(
            "timings",
            Status::Unknown,
            format!(
                "beacon spacing not judged: a gap wider than the ttl of {ttl_text} does not fit in a {window} window"
            ),
            format!(
                "listen past the ttl: --listen {}",
                humantime::format_duration(ttl + SPACING_SLACK)
            ),
        );
    }
    let mut times: BTreeMap<u64, (&str, Vec<Duration>, bool)> = BTreeMap::new();
    for (at, b) in others {
        let entry = times
            .entry(b.instance)
            .or_insert((&b.hostname, Vec::new(), false));
        entry.1.push(*at);
        entry.2 |= b.goodbye;
    }
    let mut measured = 0;
    let mut slow = Vec::new();
    for (name, ats, left) in times.values() {
        let between = ats.windows(2).map(|w| w[1].saturating_sub(w[0]));
        let after = ats
            .last()
            .filter(|_| !left)
            .map(|last| listen.saturating_sub(*last));
        let widest = between.clone().chain(after).max();
        match widest.filter(|gap| *gap > ttl) {
            Some(gap) => slow.push(format!("{name} ({})", humantime::format_duration(gap))),
            None if between.len() > 0 => measured += 1,
            None => {}
        }
    }
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
            format!("no other node heard twice in {window}: beacon spacing not measured"),
            format!(
                "listen past the peers' interval: --listen {}",
                humantime::format_duration(listen.max(ttl) + SPACING_SLACK)
            ),
        );
    }
    Check::ok(
        "timings",
        format!(
            "{} heard twice in {window}, none silent for longer than the ttl of {ttl_text}",
            count(measured, "node")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beacon(at_ms: u64, hostname: &str, instance: u64, goodbye: bool) -> Heard {
        Heard {
            at: Duration::from_millis(at_ms),
            beacon: Ok(Beacon {
                instance,
                hostname: hostname.into(),
                goodbye,
                ..Beacon::default()
            }),
        }
    }

    fn spacing(heard: &[Heard], listen: Duration) -> Check {
        let ttl = crate::config::PEER_TTL;
        let checks = check_heard(heard, 0xd0c, None, ttl, listen);
        checks
            .into_iter()
            .find(|c| c.check == "timings")
            .expect("a timings check")
    }

    const SECOND: u64 = 1000;

    #[test]
    fn a_window_no_longer_than_the_ttl_says_how_long_to_listen() {
        // The default window at the default timings: two answers to the probe, 3 s apart
        // would be a fast peer, but no gap wider than 35 s could have shown in 3 s.
        let heard = [
            beacon(20, "node2", 2, false),
            beacon(2 * SECOND, "node2", 2, false),
        ];
        let check = spacing(&heard, Duration::from_secs(3));
        assert_eq!(check.status, Status::Unknown, "{check:?}");
        assert_eq!(
            check.detail,
            "beacon spacing not judged: a gap wider than the ttl of 35s does not fit in a 3s window"
        );
        assert_eq!(
            check.fix.as_deref(),
            Some("listen past the ttl: --listen 40s")
        );
    }

    #[test]
    fn the_window_it_asks_for_judges_the_default_timings() {
        // An early answer to the probe, then beacons 15 s apart: ok in 40 s.
        let heard = [
            beacon(20, "node2", 2, false),
            beacon(15 * SECOND, "node2", 2, false),
            beacon(30 * SECOND, "node2", 2, false),
        ];
        let check = spacing(&heard, Duration::from_secs(40));
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert_eq!(
            check.detail,
            "1 node heard twice in 40s, none silent for longer than the ttl of 35s"
        );
        // A node at a 60 s interval answers the probe, then stays silent to the end.
        let slow = [beacon(20, "slow", 3, false)];
        let check = spacing(&slow, Duration::from_secs(40));
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(
            check.detail.contains("slow (39s 980ms)"),
            "{}",
            check.detail
        );
        // One that said goodbye was not silent: it left.
        let gone = [
            beacon(20, "gone", 4, false),
            beacon(SECOND, "gone", 4, true),
        ];
        assert_eq!(spacing(&gone, Duration::from_secs(40)).status, Status::Ok);
    }
}
