//! Discovery without multicast: hosts on a bridge that drops every multicast datagram find each
//! other through `--peers-dns` (a DNS server of the test's own, whose answers the test changes,
//! stops and breaks) or through one `--peer` seed and a shared secret; and what they refuse.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use peerd::config::{EARLY_ANSWER_DELAY, PORT, UNICAST_SPREAD};
use peerd::wire::beacon::Beacon;

use crate::support::cluster::{self, Cluster};
use crate::support::dns::{DOMAIN, Dns, Lookup};
use crate::support::lan::{Lan, host_address};
use crate::support::netns::Netns;
use crate::support::secret::SecretFile;
use crate::support::timings::{POLL_SLACK, SCHEDULING_SLACK, Timings};
use crate::support::{PEERD, wait_for};

/// How often the agents here resolve their names again: a few times a ttl, so a test that
/// changes an answer sees it taken within a fraction of a second, not the default 5 s.
const RESOLVE_INTERVAL: Duration = Duration::from_millis(500);

/// The name every node of a test is listed under.
fn name() -> String {
    format!("peers.{DOMAIN}")
}

/// `--peers-dns <name> --resolve-interval <RESOLVE_INTERVAL>`.
fn dns_flags(name: &str) -> Vec<String> {
    vec![
        "--peers-dns".into(),
        name.into(),
        "--resolve-interval".into(),
        humantime::format_duration(RESOLVE_INTERVAL).to_string(),
    ]
}

/// Asserts that in `views` (every node's listing once whole) the last peer was first seen
/// within `bound` of `since` (the newest start), by the agents' own clocks; prints the figure.
fn all_knew_each_other_within(
    views: &[Vec<peerd::api::PeerInfo>],
    since: std::time::SystemTime,
    bound: Duration,
    what: &str,
) {
    let complete = views.iter().flatten().map(cluster::first_seen).max();
    let took = cluster::elapsed(since, complete.expect("peers"));
    eprintln!("{what}: all knew each other {took:?} after the newest start (bound {bound:?})");
    assert!(took <= bound, "{what}: took {took:?}, over {bound:?}");
}

fn add(lan: &mut Lan, node: &str, flags: &[String]) {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    lan.add(node, &flags).expect("a namespace for the node");
}

/// The addresses of the first `nodes` agents a bridged LAN starts.
fn addresses(nodes: usize) -> Vec<String> {
    (1..=nodes).map(host_address).collect()
}

/// `addresses` as the agents' status shows a name's answer: `ip:port`.
fn with_port(addresses: &[String]) -> Vec<String> {
    addresses.iter().map(|a| format!("{a}:{PORT}")).collect()
}

/// A LAN without multicast whose nodes `node1`..`node<nodes>` are all in the answer for
/// [`name`] before they start, each given `--peers-dns` for it and `extra`; `None` if this
/// machine cannot build one (the skip is recorded).
fn dns_lan(nodes: usize, extra: &[&str]) -> Option<Lan> {
    let mut lan = Lan::unicast(Timings::FAST)?;
    lan.dns().answer(&name(), &addresses(nodes));
    let mut flags = dns_flags(&name());
    flags.extend(extra.iter().map(|f| f.to_string()));
    for i in 1..=nodes {
        add(&mut lan, &format!("node{i}"), &flags);
    }
    Some(lan)
}

/// [`dns_lan`] without extra flags, once every node lists every other.
fn whole_dns_lan(nodes: usize) -> Option<Lan> {
    let lan = dns_lan(nodes, &[])?;
    let bound = lan.timings().unicast_discovery_bound() + POLL_SLACK;
    assert!(
        cluster::wait_whole(&lan, bound).is_some(),
        "the {nodes} nodes never all listed each other"
    );
    Some(lan)
}

/// Waits up to `bound` until no node reports an error for the name any more.
fn every_node_resolves_again(lan: &Lan, bound: Duration) {
    let answered = wait_for(bound, || {
        lan.nodes()
            .iter()
            .all(|node| name_info(lan, node).1.is_none())
            .then_some(())
    });
    assert!(
        answered.is_some(),
        "the nodes never resolved the name again"
    );
}

/// The unicast targets `node` beacons, as `ip:port`.
fn targets(lan: &Lan, node: &str) -> BTreeSet<String> {
    let status = lan.status(node).expect("the agent answers");
    status.unicast.targets.into_iter().collect()
}

/// The targets every node of `lan` should have: every other node, at its address.
fn every_other(lan: &Lan, node: &str) -> BTreeSet<String> {
    let nodes = lan.nodes();
    nodes
        .iter()
        .filter(|n| *n != node)
        .map(|n| format!("{}:{PORT}", lan.address(n)))
        .collect()
}

/// What `node` reports of [`name`]: the addresses of its latest good answer, and the latest
/// lookup's error.
fn name_info(lan: &Lan, node: &str) -> (Vec<String>, Option<String>) {
    let given = format!("{}:{PORT}", name());
    let status = lan.status(node).expect("the agent answers");
    let names = status.unicast.names;
    let info = names.iter().find(|n| n.name == given);
    let info = info.unwrap_or_else(|| panic!("{node} does not report {given}: {names:?}"));
    (info.addresses.clone(), info.error.clone())
}

/// Waits until every node reports a failed lookup of [`name`] (its resolver's error), then
/// checks each still holds its last good answer and beacons every other node.
fn every_node_keeps_its_targets_through_an_error(lan: &Lan, answer: &[String]) {
    let nodes = lan.nodes();
    // A lookup fails within a second (timeout:1 attempts:1), asked every resolve interval.
    let within = RESOLVE_INTERVAL + Duration::from_secs(2) + POLL_SLACK;
    let failed = wait_for(within, || {
        nodes
            .iter()
            .all(|node| name_info(lan, node).1.is_some())
            .then_some(())
    });
    assert!(
        failed.is_some(),
        "the nodes never reported the failed lookups"
    );
    for node in &nodes {
        let (addresses, error) = name_info(lan, node);
        eprintln!("{node}: kept {addresses:?} through {error:?}");
        assert_eq!(
            addresses,
            with_port(answer),
            "{node} forgot the last good answer"
        );
        assert_eq!(
            targets(lan, node),
            every_other(lan, node),
            "{node}'s targets"
        );
    }
}

/// Checks, as often as the agents answer, for `duration`, that every node lists every other
/// at every check; and that no agent logged an expiry meanwhile. Pacing, not readiness: the
/// point is that nothing changes for that long.
fn stays_whole(lan: &Lan, duration: Duration, during: &str) {
    let nodes = lan.nodes();
    let started = Instant::now();
    let mut checks = 0;
    while started.elapsed() < duration {
        for node in &nodes {
            let mut expected: BTreeSet<String> = nodes.iter().cloned().collect();
            expected.remove(node);
            let seen = cluster::listed(lan, node);
            assert_eq!(
                seen,
                expected,
                "{node}'s listing {:?} into {during}",
                started.elapsed()
            );
        }
        checks += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let expiries: usize = nodes
        .iter()
        .map(|node| lan.log(node).matches("peer expired").count())
        .sum();
    eprintln!("{during}: whole at all {checks} checks over {duration:?}, {expiries} expiries");
    assert_eq!(expiries, 0, "expiries during {during}");
}

/// Proves the drop the other tests rely on: on the bridge of [`Lan::unicast`], agents with no
/// unicast target find nobody, although each has sent several beacons to the group.
#[test]
fn without_targets_nobody_is_found_on_a_bridge_that_drops_multicast() {
    let Some(mut lan) = Lan::unicast(Timings::FAST) else {
        return;
    };
    add(&mut lan, "node1", &[]);
    add(&mut lan, "node2", &[]);
    // Three beacons each: on a plain bridge the first would have been enough.
    let sent_three = wait_for(POLL_SLACK, || {
        let sent = |node| lan.status(node).map_or(0, |s| s.beacons_sent);
        (sent("node1") >= 3 && sent("node2") >= 3).then_some(())
    });
    assert!(sent_three.is_some(), "the agents do not send");
    for node in ["node1", "node2"] {
        assert_eq!(
            cluster::listed(&lan, node),
            BTreeSet::new(),
            "{node} heard the group"
        );
        let status = lan.status(node).expect("answers");
        assert!(
            status.own_beacons_received > 0,
            "{node} hears its own beacons: the group works on its host, not across the bridge"
        );
    }
}

/// Scenario: three nodes each given one name that resolves to all three list each other,
/// within the unicast discovery bound of the newest start (by the agents' own clocks).
#[test]
fn nodes_named_by_one_dns_name_all_list_each_other() {
    let Some(lan) = dns_lan(3, &[]) else { return };
    let timings = lan.timings();
    let views = cluster::wait_whole(&lan, timings.unicast_discovery_bound() + POLL_SLACK)
        .expect("the nodes never all listed each other");
    for (node, view) in lan.nodes().iter().zip(&views) {
        for peer in view {
            assert_eq!(peer.address, lan.address(&peer.hostname));
            assert_eq!(
                peer.heard_via, "unicast",
                "{node}'s listing of {}",
                peer.hostname
            );
        }
        assert_eq!(
            targets(&lan, node),
            every_other(&lan, node),
            "{node}'s targets"
        );
        let answer = (with_port(&addresses(3)), None);
        assert_eq!(name_info(&lan, node), answer, "{node}'s answer");
    }
    let newest_start = lan
        .nodes()
        .iter()
        .map(|node| cluster::logged(&lan, node, "agent started"))
        .max()
        .expect("nodes");
    let what = format!("3 nodes by DNS at {timings}");
    all_knew_each_other_within(
        &views,
        newest_start,
        timings.unicast_discovery_bound(),
        &what,
    );
}

/// A node added to the answer, and started after it changed, is listed by the nodes already
/// running once they resolve the name again: within a resolve interval and the unicast
/// discovery bound of its start.
#[test]
fn a_node_added_to_the_answer_is_found() {
    let Some(mut lan) = whole_dns_lan(2) else {
        return;
    };
    let timings = lan.timings();
    lan.dns().answer(&name(), &addresses(3));
    add(&mut lan, "node3", &dns_flags(&name()));
    let views = cluster::wait_whole(&lan, RESOLVE_INTERVAL + POLL_SLACK)
        .expect("node3 was never listed by all, nor listed all");
    let started = cluster::logged(&lan, "node3", "agent started");
    let bound = RESOLVE_INTERVAL + timings.unicast_discovery_bound();
    all_knew_each_other_within(&views, started, bound, "a node added to the answer");
}

/// A node that moves to another address, and the answer with it, is listed at its new address;
/// its old address, no longer in any answer and silent, is dropped from the targets within a
/// ttl: a listener that takes the old address hears the others' beacons until the answer
/// changes, and none from a resolve interval plus the expiry bound after that.
#[test]
fn a_node_that_moves_is_listed_at_its_new_address_and_its_old_one_is_dropped() {
    let Some(mut lan) = whole_dns_lan(3) else {
        return;
    };
    let timings = lan.timings();
    let old = lan.address("node3");
    let new = "10.77.0.50";
    let old_host = lan
        .move_node("node3", new)
        .expect("a namespace for the move");
    let mut capture = old_host.capture_udp(PORT);
    let others = [lan.address("node1"), lan.address("node2")];
    let heard = wait_for(timings.longest_gap() + UNICAST_SPREAD + POLL_SLACK, || {
        capture.collect(Duration::from_millis(50));
        let senders = capture.senders();
        others.iter().all(|o| senders.contains(o)).then_some(())
    });
    assert!(
        heard.is_some(),
        "the old address, still in the answer, is not beaconed by both others: heard {:?}",
        capture.senders()
    );

    let mut answer = vec![lan.address("node1"), lan.address("node2"), new.to_owned()];
    answer.sort();
    lan.dns().answer(&name(), &answer);
    let changed = Instant::now();
    let moved = wait_for(RESOLVE_INTERVAL + POLL_SLACK, || {
        ["node1", "node2"]
            .iter()
            .all(|observer| {
                lan.peers(observer)
                    .unwrap_or_default()
                    .iter()
                    .any(|p| p.hostname == "node3" && p.address == new)
            })
            .then_some(())
    });
    assert!(
        moved.is_some(),
        "node3 is not listed at {new} by both others"
    );
    eprintln!(
        "moved node: seen listed at its new address {:?} after the answer changed",
        changed.elapsed()
    );

    // A beacon already on its way when the target went may land up to one spread later.
    let cutoff = changed + RESOLVE_INTERVAL + timings.expiry_bound() + UNICAST_SPREAD;
    // Three of the longest gaps after that: each other node would have beaconed it thrice.
    let until = cutoff + timings.longest_gap() * 3;
    while Instant::now() < until {
        capture.collect(until - Instant::now());
    }
    let late: Vec<_> = capture
        .received
        .iter()
        .filter(|(_, at)| *at > cutoff)
        .map(|(from, at)| format!("{from} at {:?}", at.duration_since(changed)))
        .collect();
    let last = capture
        .received
        .iter()
        .map(|(_, at)| at.saturating_duration_since(changed))
        .max();
    eprintln!(
        "old address {old}: last datagram {last:?} after the answer changed (cutoff {:?})",
        cutoff - changed
    );
    assert!(
        late.is_empty(),
        "{old} still beaconed after it left the answer and fell silent: {late:?}"
    );
    for node in ["node1", "node2"] {
        assert_eq!(
            targets(&lan, node),
            every_other(&lan, node),
            "{node}'s targets"
        );
    }
    drop(old_host);
}

/// A resolver that stops answering for five ttls (at the default timings a 60 s outage is less
/// than two of the 35 s ttls; here it is 5 s at a 1 s ttl) expires nobody: the agents keep the
/// last answer they had, and every node lists every other throughout.
#[test]
fn a_resolver_outage_of_five_ttls_expires_nobody() {
    let Some(mut lan) = whole_dns_lan(3) else {
        return;
    };
    let timings = lan.timings();
    lan.dns().pause();
    let outage = Instant::now();
    let lookup = Dns::lookup(lan.agent("node1").netns(), &name());
    assert!(
        matches!(lookup, Lookup::Failed(_)),
        "the outage is not one: {lookup:?}"
    );
    every_node_keeps_its_targets_through_an_error(&lan, &addresses(3));
    stays_whole(
        &lan,
        (timings.ttl * 5).saturating_sub(outage.elapsed()),
        "a resolver outage",
    );
    lan.dns().resume();
    every_node_resolves_again(&lan, RESOLVE_INTERVAL + Duration::from_secs(2) + POLL_SLACK);
    stays_whole(&lan, timings.ttl, "the resolver's return");
}

/// A name removed from the DNS (NXDOMAIN), then present with no address (an empty answer):
/// the agents keep the last good set of targets, and every node lists every other throughout,
/// for three ttls each.
#[test]
fn a_name_that_fails_or_answers_nothing_keeps_targets_and_peers() {
    let Some(mut lan) = whole_dns_lan(3) else {
        return;
    };
    let timings = lan.timings();
    lan.dns().remove(&name());
    every_node_keeps_its_targets_through_an_error(&lan, &addresses(3));
    stays_whole(&lan, timings.ttl * 3, "NXDOMAIN");
    lan.dns().answer(&name(), &addresses(3));
    every_node_resolves_again(&lan, RESOLVE_INTERVAL + POLL_SLACK);
    lan.dns().answer_nothing(&name());
    every_node_keeps_its_targets_through_an_error(&lan, &addresses(3));
    stays_whole(&lan, timings.ttl * 3, "an empty answer");
}

/// Every node given only `--peer` the first node (itself included) and the cluster's secret,
/// with the group off, lists every other: the seed tells each newcomer of the peers it lists,
/// and the newcomer greets each at once. At the default timings, so that nothing here waits
/// for a regular beacon (15 s): two round trips, each a spread of copies and an answer.
#[test]
fn one_seed_and_a_shared_secret_find_everyone() {
    let Some(mut lan) = Lan::unicast(Timings::DEFAULT) else {
        return;
    };
    let secret = SecretFile::new("c2hhcmVkIHNlY3JldCBvZiB0aGUgdGVzdCBjbHVzdGVy");
    let seed = host_address(1);
    let flags: Vec<String> = [
        "--peer",
        &seed,
        "--secret-file",
        secret.path(),
        "--no-multicast",
    ]
    .map(String::from)
    .to_vec();
    for i in 1..=4 {
        add(&mut lan, &format!("node{i}"), &flags);
    }
    // The newcomer reaches the seed at once; the seed's answer names the others; the
    // newcomer greets them at once, and they answer.
    let bound = (UNICAST_SPREAD + EARLY_ANSWER_DELAY) * 2 + SCHEDULING_SLACK;
    let views = cluster::wait_whole(&lan, bound + POLL_SLACK)
        .expect("the nodes never all listed each other");
    for (node, view) in lan.nodes().iter().zip(&views) {
        for peer in view {
            assert!(
                peer.authenticated,
                "{node} lists {} unsigned",
                peer.hostname
            );
            assert_eq!(peer.address, lan.address(&peer.hostname));
        }
    }
    let newest_start = cluster::logged(&lan, "node4", "agent started");
    all_knew_each_other_within(&views, newest_start, bound, "4 nodes from one seed");
}

/// The count of unicast beacons `node` refused, from `peerd health --json`.
fn refused_unicast(lan: &Lan, node: &str) -> u64 {
    lan.status(node).expect("the agent answers").refused.unicast
}

/// Sends one unsigned beacon of hostname `stranger` from `from` to `node`'s port, and waits
/// until `node` counts it refused; it is not listed then, nor after.
fn refused_from(lan: &Lan, from: &Netns, node: &str) {
    let before = refused_unicast(lan, node);
    let beacon = Beacon {
        instance: 7,
        sequence: 0,
        goodbye: false,
        hostname: "stranger".into(),
        ..Beacon::default()
    }
    .encode();
    let to = lan.address(node).parse().expect("an IPv4 address");
    from.send_udp(to, PORT, &[&beacon]);
    let counted = wait_for(POLL_SLACK, || {
        (refused_unicast(lan, node) > before).then_some(())
    });
    assert!(
        counted.is_some(),
        "{node} did not count the stranger's beacon refused"
    );
    // Counted, so taken in and judged: it would be listed by now.
    let mut others: BTreeSet<String> = lan.nodes().into_iter().collect();
    others.remove(node);
    assert_eq!(
        cluster::listed(lan, node),
        others,
        "{node} lists the stranger"
    );
}

/// An unsigned beacon sent by unicast from a host that is no target of the agent is refused,
/// counted as such, and never listed: from another subnet, by an agent that joins the group;
/// and from its own link, by an agent with `--no-multicast`. (An agent on the group takes
/// unsigned unicast from its link, where anyone could send to the group anyway.)
#[test]
fn an_unsigned_unicast_beacon_from_outside_the_targets_is_refused() {
    let Some(mut lan) = Lan::unicast(Timings::FAST) else {
        return;
    };
    lan.dns().answer(&name(), &addresses(2));
    add(&mut lan, "node1", &dns_flags(&name()));
    let mut flags = dns_flags(&name());
    flags.push("--no-multicast".into());
    add(&mut lan, "node2", &flags);
    let timings = lan.timings();
    assert!(
        cluster::wait_whole(&lan, timings.unicast_discovery_bound() + POLL_SLACK).is_some(),
        "never whole"
    );
    // On the bridge but in 10.78.0.0/24, reaching 10.77.0.0/24 directly on its link.
    let beyond = lan.bare_host("10.78.0.100").expect("a namespace");
    beyond.ip(&["route", "add", "10.77.0.0/24", "dev", "eth0"]);
    refused_from(&lan, &beyond, "node1");
    let on_link = lan.bare_host("10.77.0.100").expect("a namespace");
    refused_from(&lan, &on_link, "node2");
}

/// The new flags' bad values stop the agent before it opens a socket, with one line and exit
/// 2; run inside a namespace all the same, so nothing could leave it.
#[test]
fn bad_unicast_flags_are_usage_errors() {
    let Some(netns) = Netns::create("cli") else {
        return;
    };
    let cases: [(&[&str], &str); 5] = [
        (&["agent", "--peer", "seed:0"], "1 to 65535"),
        (&["agent", "--peers-dns", ""], "--peers-dns"),
        (&["agent", "--peer", "under_score"], "--peer"),
        (
            &["agent", "--peer", "seed", "--resolve-interval", "0s"],
            "resolve interval",
        ),
        (
            &["agent", "--no-multicast"],
            "--no-multicast needs --peer or --peers-dns",
        ),
    ];
    for (args, expected) in cases {
        let out = crate::cli::peerd_by(netns.command(PEERD), args, &[]);
        crate::cli::assert_usage_error(&out, expected);
    }
}

/// A name that never resolves does not stop the agent: it runs, and its status names it.
#[test]
fn a_name_that_never_resolves_is_reported_not_refused() {
    let Some(mut lan) = Lan::unicast(Timings::FAST) else {
        return;
    };
    let nowhere = format!("nowhere.{DOMAIN}");
    add(&mut lan, "node1", &dns_flags(&nowhere));
    let given = format!("{nowhere}:{PORT}");
    let reported = wait_for(RESOLVE_INTERVAL + POLL_SLACK, || {
        let status = lan.status("node1")?;
        let entry = status.unicast.names.into_iter().find(|n| n.name == given)?;
        entry.error.is_some().then_some(entry)
    });
    let entry = reported.expect("the status never says why the name does not resolve");
    eprintln!("a name that never resolves: {entry:?}");
    assert_eq!(entry.from, "peers-dns");
    assert!(entry.addresses.is_empty() && entry.resolved_ms_ago.is_none());
    assert!(lan.agent_mut("node1").alive(), "the agent stopped");
}

/// Off the group, with a name that resolves to nobody yet, an agent has nobody to send to: it
/// stays healthy. In Swarm a task is in `tasks.SERVICE` only once it is healthy, so an
/// unhealthy lone agent would keep every task out of the answer for good.
#[test]
fn alone_off_the_group_is_healthy_not_silent() {
    let Some(mut lan) = Lan::unicast(Timings::FAST) else {
        return;
    };
    let timings = lan.timings();
    let nowhere = format!("nowhere.{DOMAIN}");
    let mut flags = dns_flags(&nowhere);
    flags.push("--no-multicast".into());
    add(&mut lan, "node1", &flags);
    // Longer than the agent may go without sending before its health fails.
    std::thread::sleep(timings.not_sending_bound() * 2);
    let status = lan.status("node1").expect("the agent answers");
    assert_eq!(status.not_sending, None, "{status:?}");
    assert!(status.unicast.targets.is_empty());
    let health = lan.agent("node1").health();
    assert!(health.status.success(), "peerd health failed: {health:?}");
}

/// `--peers-dns _service._proto.NAME` reads SRV records, whose ports win over the flag's: each
/// agent here listens on 24950, the name is given with 24901, and only the records say 24950.
#[test]
fn an_srv_name_gives_the_targets_and_their_ports() {
    let port = 24950;
    let Some(mut lan) = Lan::unicast(Timings::FAST) else {
        return;
    };
    let service = format!("_beacons._udp.{DOMAIN}");
    let targets: Vec<(String, u16)> = (1..=3)
        .map(|i| {
            let host = format!("node{i}.{DOMAIN}");
            (host, port)
        })
        .collect();
    for (i, (host, _)) in (1..).zip(&targets) {
        lan.dns().answer(host, &[host_address(i)]);
    }
    lan.dns().services(&service, &targets);
    let port_flag = port.to_string();
    for i in 1..=3 {
        let mut flags = dns_flags(&format!("{service}:{PORT}"));
        flags.extend([
            "--port".to_owned(),
            port_flag.clone(),
            "--no-multicast".to_owned(),
        ]);
        add(&mut lan, &format!("node{i}"), &flags);
    }
    let timings = lan.timings();
    let views = cluster::wait_whole(&lan, timings.unicast_discovery_bound() + POLL_SLACK)
        .expect("the nodes never found each other through the SRV records");
    assert!(views.iter().flatten().all(|p| p.heard_via == "unicast"));
    let given = format!("{service}:{PORT}");
    let status = lan.status("node1").expect("the agent answers");
    let name = status.unicast.names.iter().find(|n| n.name == given);
    let name = name.unwrap_or_else(|| panic!("no {given} in {:?}", status.unicast.names));
    let expected: BTreeSet<String> = (1..=3)
        .map(|i| format!("{}:{port}", host_address(i)))
        .collect();
    assert_eq!(
        name.addresses.iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
}
