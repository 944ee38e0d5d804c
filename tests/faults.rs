//! Faults an agent rides out: being stopped for longer than a ttl or running seconds late, an
//! interface address that appears only after it started, a port another program holds
//! (unhealthy meanwhile, and saying why), and peers that run at other timings.

use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::cluster::Cluster;
use crate::support::lan::Lan;
use crate::support::netns::{Netns, load_nft};
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{api_addr, wait_for};

/// What `peerd health` said once it failed, within `timings`' bound for an agent that cannot
/// send (plus the harness's slack); panics with the agent's log if it kept saying ok.
fn health_fails(agent: &Agent, timings: Timings) -> String {
    let failed = wait_for(timings.not_sending_bound() + POLL_SLACK, || {
        let out = agent.health();
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    failed.unwrap_or_else(|| panic!("peerd health kept exiting 0:\n{}", agent.log()))
}

/// Waits until `peerd health` exits 0 again, within `bound` plus the harness's slack.
fn health_recovers(agent: &Agent, bound: Duration) {
    let healthy = wait_for(bound + POLL_SLACK, || {
        agent.health().status.success().then_some(())
    });
    assert!(healthy.is_some(), "never healthy again:\n{}", agent.log());
}

/// `GET /healthz` on `agent`'s API with curl in its namespace: the status code and the body.
fn healthz(agent: &Agent) -> (u16, String) {
    const MARK: &str = "\n@@code@@";
    let out = agent
        .command("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-w",
            &format!("{MARK}%{{http_code}}"),
        ])
        .arg(format!("http://{}/healthz", agent.api()))
        .output()
        .expect("run curl in the namespace (the test needs curl)");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once(MARK).expect("curl writes the code");
    (code.parse().expect("an HTTP status"), body.to_owned())
}

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
    assert!(log.contains("the agent was stopped"), "{log}");
    let expired: Vec<&str> = log.lines().filter(|l| l.contains("peer expired")).collect();
    assert!(
        expired.len() == 1 && expired[0].contains("node3"),
        "only node3 expires: {expired:?}"
    );
}

/// A host short of CPU (hundreds of agents starting on two cores) runs an agent seconds late:
/// that is a stall, not a stop, and what queued meanwhile is read, not dropped.
#[test]
fn a_goodbye_that_queued_while_an_agent_ran_late_is_not_lost() {
    // node1 and node3 keep a long ttl, so 4 s without running is well under it; node2 beacons
    // fast with a 1 s ttl, so node1 means to wake within a second or so to check its
    // deadline, and 4 s without running is a stall it notices.
    let slow = Timings {
        interval: Duration::from_secs(1),
        ttl: Duration::from_secs(10),
    };
    let Some(mut lan) = Lan::loopback(1, slow) else {
        return;
    };
    lan.add_at("node2", Timings::FAST, &[])
        .expect("on the same loopback");
    lan.add("node3", &[]).expect("on the same loopback");
    for peer in ["node2", "node3"] {
        wait_for(POLL_SLACK, || lists(&lan, "node1", peer).then_some(()))
            .expect("node1 lists its peers");
    }
    lan.agent("node1").send("STOP");
    assert!(
        lan.agent_mut("node3").stop(),
        "node3 exits 0 after its goodbye"
    );
    std::thread::sleep(Duration::from_secs(4));
    let resumed = Instant::now();
    lan.agent("node1").send("CONT");
    wait_for(POLL_SLACK, || {
        (!lists(&lan, "node1", "node3")).then_some(())
    })
    .expect("node1 reads node3's queued goodbye");
    assert!(
        resumed.elapsed() < slow.ttl / 2,
        "node3 went {:?} after the resume: its goodbye was lost and it expired",
        resumed.elapsed()
    );
    let status = lan.status("node1").expect("node1 answers");
    assert!(status.stalls >= 1, "node1 noticed it ran late");
    assert_eq!(status.refused.stale, 0, "nothing was dropped unread");
    assert!(lists(&lan, "node1", "node2"), "the live node2 stays listed");
    let log = lan.log("node1");
    assert!(log.contains("the agent ran late"), "{log}");
    assert!(
        log.contains("peer left") && !log.contains("peer expired"),
        "{log}"
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
    // Unhealthy two jittered intervals after its start, saying why.
    let said = health_fails(&agent, Timings::FAST);
    assert!(
        said.starts_with("peerd: late on 239.255.49.1:24901 via 10.98.0.1 is not sending: no beacon sent for ")
            && said.contains("cannot open the multicast socket: no interface to announce on yet: no interface has 10.98.0.1 (--interface 10.98.0.1)"),
        "{said}"
    );
    let (code, body) = healthz(&agent);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot open the multicast socket"), "{body}");
    netns.ip(&["addr", "add", "10.98.0.1/24", "dev", "eth0"]);
    // The backoff doubles from 1 s; the first retries come within a few seconds.
    let heard = wait_for(POLL_SLACK * 2, || {
        agent.status().filter(|s| s.own_beacons_received > 0)
    });
    assert!(heard.is_some(), "never beaconed: {}", agent.log());
    assert!(agent.log().contains("multicast socket open: beaconing"));
    health_recovers(&agent, Duration::ZERO);
    assert_eq!(healthz(&agent), (200, "ok\n".to_owned()));
}

#[test]
fn an_agent_whose_port_another_program_holds_is_unhealthy_until_it_is_freed() {
    let Some(netns) = Netns::create("held") else {
        return;
    };
    let holder = netns.hold_udp_port(peerd::config::PORT);
    let timings = Timings::FAST;
    let agent = Agent::launch(
        &netns,
        "held",
        &api_addr(0),
        Some("127.0.0.1"),
        timings,
        &[],
    );
    // At the default timings it has 33 s to send before it is unhealthy: a new agent is
    // healthy, whatever its first tries met.
    let patient = Agent::launch(
        &netns,
        "patient",
        &api_addr(1),
        Some("127.0.0.1"),
        Timings::DEFAULT,
        &[],
    );
    agent.wait_ready();
    patient.wait_ready();

    let said = health_fails(&agent, timings);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.contains("is not sending: no beacon sent for ")
            && said.contains("cannot open the multicast socket: binding UDP 239.255.49.1:24901: Address already in use"),
        "{said}"
    );
    // With --json it prints the status all the same, the reason in it, and fails.
    let out = agent
        .client("health", &["--json"])
        .output()
        .expect("run peerd health");
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("health --json prints the status");
    let reason = status["not_sending"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("cannot open the multicast socket: "),
        "{status:#}"
    );
    let limit = u64::try_from((timings.longest_gap() * 2).as_millis()).expect("a few ms");
    assert!(
        status["not_sending"]["since_ms_ago"].as_u64() > Some(limit),
        "not sending only after two jittered intervals: {status:#}"
    );
    assert_eq!(status["last_beacon_sent_ms_ago"], serde_json::Value::Null);
    let (code, body) = healthz(&agent);
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("no beacon sent for ")
            && body.ends_with("Address already in use (os error 98)\n"),
        "{body}"
    );
    let early = patient.health();
    assert!(
        early.status.success(),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );

    drop(holder);
    // Retried every interval at the latest; a new socket announces at once.
    health_recovers(&agent, timings.longest_gap());
    assert_eq!(healthz(&agent), (200, "ok\n".to_owned()));
    assert!(agent.status().expect("answers").beacons_sent > 0);
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
    let nft = |rules: &str| load_nft(agent.command("nft"), rules);
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
