//! Faults an agent rides out: being stopped for longer than a ttl, an interface address that
//! appears only after it started, and peers that run at other timings.

use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::cluster::Cluster;
use crate::support::lan::Lan;
use crate::support::netns::Netns;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

fn lists(lan: &Lan, node: &str, peer: &str) -> bool {
    lan.peers(node)
        .unwrap_or_default()
        .iter()
        .any(|p| p.hostname == peer)
}

#[test]
fn a_stopped_agent_takes_no_queued_beacon_as_news_and_reports_no_expiry_storm() {
    let Some(mut lan) = Lan::loopback(3, Timings::FAST) else {
        return;
    };
    for peer in ["node2", "node3"] {
        wait_for(POLL_SLACK, || lists(&lan, "node1", peer).then_some(()))
            .expect("node1 lists its peers");
    }
    lan.agent("node1").send("STOP");
    lan.kill("node3");
    // Stopped for well over a ttl, while node2's beacons and node3's last ones queue up.
    std::thread::sleep(Timings::FAST.ttl * 3);
    let resumed = Instant::now();
    lan.agent("node1").send("CONT");
    let status = wait_for(POLL_SLACK, || lan.status("node1").filter(|s| s.stalls > 0));
    let status = status.expect("node1 noticed it had been stopped");
    assert!(status.refused.stale > 0, "queued beacons dropped unread");
    wait_for(POLL_SLACK, || {
        (!lists(&lan, "node1", "node3")).then_some(())
    })
    .expect("the dead node3 expires, a ttl after the resume");
    assert!(
        resumed.elapsed() >= Timings::FAST.ttl - Duration::from_millis(100),
        "node3 was dropped {:?} after the resume: the stop counted against it",
        resumed.elapsed()
    );
    assert!(lists(&lan, "node1", "node2"), "the live node2 stays listed");
    let log = lan.log("node1");
    assert!(log.contains("the agent was stopped or stalled"), "{log}");
    let expired: Vec<&str> = log.lines().filter(|l| l.contains("peer expired")).collect();
    assert!(
        expired.len() == 1 && expired[0].contains("node3"),
        "only node3 expires: {expired:?}"
    );
}

#[test]
fn an_agent_whose_address_is_missing_at_start_retries_until_it_is_there() {
    let Some(netns) = Netns::create("late") else {
        return;
    };
    netns.ip(&["link", "set", "lo", "up"]);
    // A veth pair inside the namespace: an interface that is up, without the address yet.
    netns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ]);
    netns.ip(&["link", "set", "eth1", "up"]);
    netns.ip(&["link", "set", "eth0", "up"]);
    let agent = Agent::launch(
        &netns,
        "late",
        "127.0.0.1:24901",
        Some("10.98.0.1"),
        Timings::FAST,
        &[],
    );
    agent.wait_ready();
    let retrying = wait_for(POLL_SLACK, || {
        agent
            .log()
            .contains("cannot open the multicast socket; retrying")
            .then_some(())
    });
    assert!(retrying.is_some(), "{}", agent.log());
    assert_eq!(
        agent
            .status()
            .expect("the API answers meanwhile")
            .beacons_sent,
        0
    );
    netns.ip(&["addr", "add", "10.98.0.1/24", "dev", "eth0"]);
    // The backoff doubles from 1 s; the first retries come within a few seconds.
    let heard = wait_for(POLL_SLACK * 2, || {
        agent.status().filter(|s| s.own_beacons_received > 0)
    });
    assert!(heard.is_some(), "never beaconed: {}", agent.log());
    assert!(agent.log().contains("multicast socket open: beaconing"));
}

#[test]
fn nodes_with_other_timings_keep_each_other_listed() {
    let Some(mut lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    // Every 2 s, against node1's ttl of 1 s: without the ttl in its beacons, node1 would drop
    // it between any two. Its ttl is four of node1's, the most an unsigned beacon may ask.
    let slow = Timings {
        interval: Duration::from_secs(2),
        ttl: Duration::from_secs(4),
    };
    lan.add_at("slow", slow, &[]).expect("namespace");
    let listed = wait_for(POLL_SLACK, || {
        lan.peers("node1")?
            .into_iter()
            .find(|p| p.hostname == "slow")
    });
    assert_eq!(listed.expect("node1 lists slow").ttl_ms, 4_000);
    // Three of slow's intervals, watched: node1 never lets it expire.
    std::thread::sleep(slow.interval * 3);
    assert!(lists(&lan, "node1", "slow"));
    assert_eq!(lan.status("node1").expect("answers").events.expired, 0);
    assert_eq!(lan.status("slow").expect("answers").events.expired, 0);
}

#[test]
fn an_agent_that_stops_hearing_itself_reopens_its_socket() {
    let Some(lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let agent = lan.agent("node1");
    let nft = |rules: &str| {
        let out = agent
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut nft| {
                use std::io::Write;
                nft.stdin
                    .take()
                    .expect("piped")
                    .write_all(rules.as_bytes())?;
                nft.wait_with_output()
            })
            .expect("run nft in the namespace");
        assert!(out.status.success(), "nft {rules}");
    };
    // The group's datagrams, the agent's own looped-back beacons included, dropped on input.
    nft(&format!(
        "table ip peerd_test {{\n chain input {{\n  type filter hook input priority 0;\n  udp dport {} drop\n }}\n}}\n",
        peerd::config::PORT
    ));
    let reopened = wait_for(POLL_SLACK, || {
        lan.status("node1").filter(|s| s.socket_reopens > 0)
    });
    assert!(reopened.is_some(), "{}", lan.log("node1"));
    assert!(
        lan.log("node1")
            .contains("not even our own beacons came back for a ttl")
    );
    let heard = lan.status("node1").expect("answers").own_beacons_received;
    nft("delete table ip peerd_test\n");
    let again = wait_for(POLL_SLACK, || {
        lan.status("node1")
            .filter(|s| s.own_beacons_received > heard)
    });
    assert!(
        again.is_some(),
        "it hears itself again once the link is back"
    );
}
