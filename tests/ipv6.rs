//! IPv6 and several interfaces (root only): the scenarios of `bridged` on hosts with IPv6
//! alone; dual-stack hosts, each listed once with both addresses; an IPv4-only host beside
//! them; a host on two bridges that keeps a peer through one link when the other fails, and
//! one that joins an interface added after its start.

use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::cluster::{self, Cluster};
use crate::support::lan::{Family, Lan};
use crate::support::netns::Netns;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

crate::scenario_tests!(Lan::bridged_in(Family::V6, 4, Timings::FAST));
crate::partition_test!(Lan::bridged_in(Family::V6, 4, Timings::FAST));

/// How many times each node saw a peer move, over the whole run.
fn moves(lan: &Lan) -> Vec<u64> {
    lan.nodes()
        .iter()
        .map(|node| lan.status(node).expect("answers").events.moved)
        .collect()
}

/// A dual-stack peer's beacons reach each node twice, over IPv4 and over IPv6, in no fixed
/// order: it is listed once, with both addresses, and never moves between them.
#[test]
fn a_dual_stack_peer_is_listed_once_with_both_addresses_and_never_moves() {
    // A ttl of ten intervals, as the defaults' 35 s is over two: a primary is stale after half
    // a ttl, and at 300 ms / 1 s a sender held up 170 ms on a loaded machine would be.
    let timings = Timings {
        interval: Duration::from_millis(300),
        ttl: Duration::from_secs(3),
    };
    let Some(lan) = Lan::bridged_in(Family::Dual, 3, timings) else {
        return;
    };
    cluster::wait_whole(&lan, POLL_SLACK).expect("never whole");
    let both = wait_for(POLL_SLACK, || {
        lan.nodes()
            .iter()
            .all(|node| {
                let peers = lan.peers(node).unwrap_or_default();
                peers.len() == 2 && peers.iter().all(|p| p.addresses.len() == 2)
            })
            .then_some(())
    });
    let node1 = lan.peers("node1").unwrap_or_default();
    assert!(
        both.is_some(),
        "not every peer listed with both addresses: {node1:#?}"
    );
    for peer in &node1 {
        let v4 = lan.address(&peer.hostname);
        let v6 = format!("{}%eth0", crate::support::lan::link_local(&v4));
        let mut addresses = peer.addresses.clone();
        addresses.sort();
        assert_eq!(addresses, [v4, v6], "{peer:#?}");
    }
    // Twenty beacons each, whose copies race: no move, no second listing.
    std::thread::sleep(timings.interval * 20);
    assert_eq!(moves(&lan), [0, 0, 0], "a peer moved between its addresses");
    for node in lan.nodes() {
        let status = lan.status(&node).expect("answers");
        assert_eq!((status.peers, status.events.joined), (2, 2), "{node}");
    }
}

/// The wire is the same over both families: a host with IPv4 alone (as every agent before
/// IPv6 was) and dual-stack hosts list each other over IPv4.
#[test]
fn an_ipv4_only_host_and_dual_stack_hosts_list_each_other() {
    let Some(mut lan) = Lan::bridged_in(Family::Dual, 2, Timings::FAST) else {
        return;
    };
    lan.add_in(Family::V4, "node3").expect("a namespace");
    let views = cluster::wait_whole(&lan, POLL_SLACK).expect("never whole");
    let node3 = &views[2];
    assert!(node3.iter().all(|p| p.addresses.len() == 1), "{node3:#?}");
    // Each dual-stack node lists node3 at its IPv4 address alone.
    for view in &views[..2] {
        let listed = view
            .iter()
            .find(|p| p.hostname == "node3")
            .expect("node3 listed");
        assert_eq!(listed.addresses, [lan.address("node3")], "{view:#?}");
    }
    let status = lan.status("node3").expect("answers");
    assert_eq!(status.interface, lan.address("node3"));
}

/// Two hosts, each on two bridges (eth0 on one, eth1 on the other), whose agents announce on
/// `all` their interfaces.
struct TwoLinks {
    agents: Vec<Agent>,
    hosts: Vec<Netns>,
    bridges: [Netns; 2],
}

impl TwoLinks {
    /// `hosts` hosts, host i with 10.78.0.i on the first bridge and 10.79.0.i on the second,
    /// each running an agent with `--interface all`; only on the first bridge if `second` is
    /// false for it.
    fn start(links: &[(bool, bool)], timings: Timings) -> Option<TwoLinks> {
        let bridge = |tag| {
            let bridge = Netns::create(tag)?;
            bridge.ip(&["link", "add", "br0", "type", "bridge"]);
            bridge.ip(&["link", "set", "br0", "up"]);
            Some(bridge)
        };
        let bridges = [bridge("bra")?, bridge("brb")?];
        let mut lan = TwoLinks {
            agents: Vec::new(),
            hosts: Vec::new(),
            bridges,
        };
        for (i, &(first, second)) in (1..).zip(links) {
            let host = Netns::create("twolinks")?;
            for (on, link) in [(first, 0), (second, 1)] {
                if on {
                    lan.plug(&host, i, link);
                }
            }
            let agent = Agent::launch(
                &host,
                &format!("host{i}"),
                &peerd::config::API_ADDR.to_string(),
                Some("all"),
                timings,
                &[],
            );
            agent.wait_ready();
            lan.agents.push(agent);
            lan.hosts.push(host);
        }
        Some(lan)
    }

    /// Connects host `i` (from 1) to bridge `link` (0 or 1) as its eth`link`, with an IPv4
    /// address and a link-local IPv6 one past DAD at once.
    fn plug(&self, host: &Netns, i: usize, link: usize) {
        let device = format!("eth{link}");
        let port = format!("h{i}l{link}");
        self.bridges[link].ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", &device, "netns", &host.name,
        ]);
        self.bridges[link].ip(&["link", "set", &port, "master", "br0", "up"]);
        host.ip(&["link", "set", &device, "addrgenmode", "none"]);
        host.ip(&[
            "addr",
            "add",
            &format!("10.7{}.0.{i}/24", 8 + link),
            "dev",
            &device,
        ]);
        let link_local = format!("fe80::{}:{i}/64", link + 1);
        host.ip(&["addr", "add", &link_local, "dev", &device, "nodad"]);
        host.ip(&["link", "set", &device, "up"]);
    }

    /// Host `i`'s port on bridge `link`, up or down: the link fails, or comes back.
    fn set_link(&self, i: usize, link: usize, state: &str) {
        self.bridges[link].ip(&["link", "set", &format!("h{i}l{link}"), state]);
    }

    /// `hostname` as `observer` (from 1) lists it, if it does; asked again while the agent's
    /// API does not answer (a slow start on a loaded machine), so `None` means "not listed".
    fn peer(&self, observer: usize, hostname: &str) -> Option<peerd::api::PeerInfo> {
        let agent = &self.agents[observer - 1];
        let peers = wait_for(POLL_SLACK, || agent.peers()).expect("the API answers");
        peers.into_iter().find(|p| p.hostname == hostname)
    }
}

/// A peer on two links is listed once with an address on each; when one link fails, it stays
/// listed through the other (it neither leaves nor expires, and moves at most once), and the
/// address on the failed link goes within a ttl. An interface of the observer that goes away
/// is left without disturbing the other.
#[test]
fn a_peer_on_two_links_is_listed_once_and_stays_through_one_when_the_other_fails() {
    let timings = Timings::FAST;
    let Some(lan) = TwoLinks::start(&[(true, true), (true, true)], timings) else {
        return;
    };
    // Each address on each link: IPv4 and IPv6 on both, four in all.
    let listed = wait_for(POLL_SLACK, || {
        lan.peer(1, "host2").filter(|p| p.addresses.len() == 4)
    });
    let listed = listed.unwrap_or_else(|| {
        panic!(
            "host2 not listed with four addresses: {:#?}\n{}",
            lan.peer(1, "host2"),
            lan.agents[0].log()
        )
    });
    let on_first: Vec<&String> = listed
        .addresses
        .iter()
        .filter(|a| a.starts_with("10.78.") || a.starts_with("fe80::1:"))
        .collect();
    assert_eq!(on_first.len(), 2, "{listed:#?}");

    lan.set_link(2, 0, "down");
    let cut = Instant::now();
    // Polled for three ttls: listed all along, and the failed link's addresses gone.
    let mut last = None;
    while cut.elapsed() < timings.ttl * 3 {
        let peer = lan.peer(1, "host2");
        assert!(
            peer.is_some(),
            "host2 dropped {:?} after one link failed",
            cut.elapsed()
        );
        last = peer;
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = last.expect("listed");
    assert!(
        last.addresses
            .iter()
            .all(|a| a.starts_with("10.79.") || a.starts_with("fe80::2:")),
        "the failed link's addresses are still listed: {last:#?}"
    );
    let events = lan.agents[0].status().expect("answers").events;
    assert_eq!((events.left, events.expired), (0, 0), "{events:?}");
    assert!(events.moved <= 1, "host2 moved {} times", events.moved);

    // The link comes back; then host1's second interface goes away altogether: host1 leaves
    // it, keeps announcing on the first, and host2 stays listed through it.
    lan.set_link(2, 0, "up");
    let both_again = wait_for(timings.ttl + POLL_SLACK, || {
        lan.peer(1, "host2").filter(|p| p.addresses.len() == 4)
    });
    assert!(both_again.is_some(), "{:#?}", lan.peer(1, "host2"));
    lan.hosts[0].ip(&["link", "del", "eth1"]);
    let removed = Instant::now();
    let left = wait_for(POLL_SLACK, || {
        let status = lan.agents[0].status()?;
        status
            .interfaces
            .iter()
            .all(|i| i.name != "eth1")
            .then_some(status)
    });
    let left = left.unwrap_or_else(|| panic!("eth1 still joined: {}", lan.agents[0].log()));
    assert_eq!(left.interfaces.len(), 1, "{:?}", left.interfaces);
    eprintln!("an interface removed: left {:?} later", removed.elapsed());
    while removed.elapsed() < timings.ttl * 2 {
        assert!(
            lan.peer(1, "host2").is_some(),
            "host2 dropped after host1 lost eth1"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = lan.agents[0].status().expect("answers").events;
    assert_eq!((events.left, events.expired), (0, 0), "{events:?}");
}

/// An interface that appears after the start is used within a second (the kernel tells the
/// agent at once; where it cannot, the agent looks every second): a host whose second link is
/// plugged in later finds the peer that is only there.
#[test]
fn an_interface_added_after_the_start_is_announced_on_within_a_second() {
    let timings = Timings::DEFAULT;
    // host1 on the first bridge only, for now; host2 on the second only.
    let Some(lan) = TwoLinks::start(&[(true, false), (false, true)], timings) else {
        return;
    };
    assert!(lan.peer(1, "host2").is_none());
    lan.plug(&lan.hosts[0], 1, 1);
    let plugged = Instant::now();
    let found = wait_for(Duration::from_secs(1) + POLL_SLACK, || {
        (lan.peer(1, "host2").is_some() && lan.peer(2, "host1").is_some()).then_some(())
    });
    assert!(
        found.is_some(),
        "the new link was not used: {}",
        lan.agents[0].log()
    );
    let took = plugged.elapsed();
    eprintln!("an interface plugged in after the start: both listed each other {took:?} later");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

/// Unicast targets over IPv6: a name whose addresses are IPv6 ones (as an AAAA answer or
/// /etc/hosts gives them) makes targets that are beaconed, off the group, over IPv6.
#[test]
fn a_name_with_ipv6_addresses_makes_targets_beaconed_over_ipv6() {
    let (Some(one), Some(two)) = (Netns::create("v6peer"), Netns::create("v6peer")) else {
        return;
    };
    one.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &two.name,
    ]);
    let hosts = "fd79::1 peers.v6.test\nfd79::2 peers.v6.test\n";
    let mut agents = Vec::new();
    for (i, host) in [(1, &one), (2, &two)] {
        host.ip(&["link", "set", "eth0", "addrgenmode", "none"]);
        host.ip(&[
            "addr",
            "add",
            &format!("fd79::{i}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        host.ip(&["link", "set", "eth0", "up"]);
        host.hosts(hosts);
        let agent = Agent::launch(
            host,
            &format!("v6peer{i}"),
            &peerd::config::API_ADDR.to_string(),
            None,
            Timings::FAST,
            &["--no-multicast", "--peers-dns", "peers.v6.test"],
        );
        agent.wait_ready();
        agents.push(agent);
    }
    let listed = wait_for(POLL_SLACK, || {
        let first = agents[0].peers()?;
        let second = agents[1].peers()?;
        (first.len() == 1 && second.len() == 1).then_some((first, second))
    });
    let (first, second) = listed.unwrap_or_else(|| panic!("{}", agents[0].log()));
    assert_eq!(first[0].address, "fd79::2");
    assert_eq!(second[0].address, "fd79::1");
    assert_eq!(first[0].heard_via, "unicast");
}

/// An IPv6 group of wider scope than the link is taken, with a warning: routers that forward
/// by scope could carry it further, whatever the hop limit.
#[test]
fn a_group_beyond_the_link_is_taken_with_a_warning() {
    let Some(netns) = Netns::create("v6scope") else {
        return;
    };
    let agent = Agent::launch(
        &netns,
        "scope",
        "127.0.0.1:24901",
        Some("127.0.0.1"),
        Timings::FAST,
        &["--group", "ff0e::2490"],
    );
    agent.wait_ready();
    let log = agent.log();
    assert!(
        log.contains("the IPv6 group is of wider scope than the link")
            && log.contains("ff0e::2490"),
        "{log}"
    );
    let status = wait_for(POLL_SLACK, || agent.status()).expect("the API answers");
    assert_eq!(status.group6, "[ff0e::2490]:24901");
}
