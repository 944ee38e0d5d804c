//! `peerd doctor` in namespaces that each hold one cause: a healthy LAN, a firewall that drops
//! the group, an agent that cannot send, a node alone, an interface without carrier, no
//! multicast route and a strict rp_filter, nobody heard beside another network.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::agent::Agent;
use crate::support::lan::Lan;
use crate::support::netns::{Netns, load_nft};
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{PEERD, api_addr, wait_for};

/// Runs `peerd doctor --json args...` in `netns`; its exit code and its checks by name.
fn doctor(mut command: Command, args: &[&str]) -> (i32, Vec<Value>) {
    command.arg("doctor").arg("--json").args(args);
    // Only the flags above configure it, whatever PEERD_ settings the test runner has.
    for (var, _) in std::env::vars().filter(|(var, _)| var.starts_with("PEERD_")) {
        command.env_remove(var);
    }
    let out = command
        .stdin(Stdio::null())
        .output()
        .expect("run peerd doctor");
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "doctor --json printed no array ({err}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exited"), checks)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

fn status<'a>(checks: &'a [Value], name: &str) -> &'a str {
    check(checks, name)["status"].as_str().expect("a status")
}

const ON_LOOPBACK: [&str; 4] = ["--interface", "127.0.0.1", "--listen", "1s"];

#[test]
fn a_healthy_lan_passes_and_every_node_is_heard() {
    let Some(lan) = Lan::loopback(3, Timings::FAST) else {
        return;
    };
    let node1 = lan.agent("node1");
    // No agent at the default API: the doctor stands alone and hears all three.
    let (code, checks) = doctor(node1.command(PEERD), &ON_LOOPBACK);
    assert_eq!(code, 0, "{checks:#?}");
    assert!(checks.iter().all(|c| c["status"] != "fail"), "{checks:#?}");
    for name in ["interface", "loopback", "membership", "peers", "route"] {
        assert_eq!(status(&checks, name), "ok", "{checks:#?}");
    }
    let peers = check(&checks, "peers")["detail"].as_str().expect("detail");
    assert!(peers.starts_with("heard 3 other nodes "), "{peers}");
    assert_eq!(status(&checks, "agent"), "warn");
    assert!(
        checks
            .iter()
            .filter(|c| c["status"] != "ok")
            .all(|c| c["fix"].is_string()),
        "every non-ok check carries a fix: {checks:#?}"
    );

    // Pointed at node1's API: node1 is the local agent, heard and answering.
    let with_api = [&ON_LOOPBACK[..], &["--api", node1.api()]].concat();
    let (code, checks) = doctor(node1.command(PEERD), &with_api);
    assert_eq!(code, 0, "{checks:#?}");
    assert_eq!(status(&checks, "agent"), "ok", "{checks:#?}");
    let peers = check(&checks, "peers")["detail"].as_str().expect("detail");
    assert!(
        peers.starts_with("heard 2 other nodes ") && peers.contains("and the local agent"),
        "{peers}"
    );
    // The probe said goodbye: no agent keeps it listed.
    let listed = node1.peers().expect("node1 answers");
    assert!(
        listed
            .iter()
            .all(|p| p.hostname != peerd::doctor::PROBE_HOSTNAME),
        "{listed:?}"
    );
}

#[test]
fn a_firewall_that_drops_the_group_fails_the_loopback_and_agent_checks() {
    // An agent that heard itself until the rule below came: its counters since it started
    // look healthy, and only what changes during the check shows the rule.
    let Some(lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let node1 = lan.agent("node1");
    let heard_itself = wait_for(POLL_SLACK, || {
        node1.status().filter(|s| s.own_beacons_received > 0)
    });
    assert!(heard_itself.is_some(), "{}", node1.log());
    let rules = format!(
        "table ip peerd_test {{\n chain input {{\n  type filter hook input priority 0;\n  udp dport {} drop\n }}\n}}\n",
        peerd::config::PORT
    );
    load_nft(node1.command("nft"), &rules);

    let with_api = [&ON_LOOPBACK[..], &["--api", node1.api()]].concat();
    let (code, checks) = doctor(node1.command(PEERD), &with_api);
    assert_eq!(code, 1, "{checks:#?}");
    assert_eq!(status(&checks, "loopback"), "fail", "{checks:#?}");
    let fix = check(&checks, "loopback")["fix"].as_str().expect("a fix");
    assert!(
        fix.contains("nft list ruleset") && fix.contains("ip route get 239.255.49.1"),
        "{fix}"
    );
    // At 300 ms it sent beacons during the 1 s window, and heard none of them back.
    assert_eq!(status(&checks, "agent"), "fail", "{checks:#?}");
}

#[test]
fn an_agent_that_cannot_send_fails_the_agent_check_with_the_reason() {
    let Some(netns) = Netns::create("doc-held") else {
        return;
    };
    // Another program holds the port: neither the agent nor the doctor's probe can bind it.
    let _holder = netns.hold_udp_port(peerd::config::PORT);
    let timings = Timings::FAST;
    let agent = Agent::launch(
        &netns,
        "held",
        &api_addr(0),
        Some("127.0.0.1"),
        timings,
        &[],
    );
    // Up for longer than two jittered intervals, none of them sent.
    let limit = u64::try_from(timings.not_sending_bound().as_millis()).expect("a few ms");
    let up = wait_for(timings.not_sending_bound() + POLL_SLACK, || {
        agent.status().filter(|s| s.uptime_ms > limit)
    });
    assert_eq!(up.expect("the API answers").beacons_sent, 0);
    let with_api = [&ON_LOOPBACK[..], &["--api", agent.api()]].concat();
    let (code, checks) = doctor(netns.command(PEERD), &with_api);
    assert_eq!(code, 1, "{checks:#?}");
    assert_eq!(status(&checks, "loopback"), "fail", "{checks:#?}");
    assert_eq!(status(&checks, "agent"), "fail", "{checks:#?}");
    let agent_check = check(&checks, "agent");
    let detail = agent_check["detail"].as_str().expect("detail");
    assert!(
        detail.contains("0 beacons sent")
            && detail.contains("it is not sending (no beacon sent for ")
            && detail.contains("Address already in use"),
        "{detail}"
    );
    let fix = agent_check["fix"].as_str().expect("a fix");
    assert!(fix.contains("ss -ulpn"), "{fix}");
}

#[test]
fn a_node_alone_warns_that_it_hears_no_other() {
    let Some(netns) = Netns::create("doc-alone") else {
        return;
    };
    let (code, checks) = doctor(netns.command(PEERD), &ON_LOOPBACK);
    assert_eq!(code, 0, "{checks:#?}");
    assert_eq!(status(&checks, "loopback"), "ok", "{checks:#?}");
    assert_eq!(status(&checks, "peers"), "warn", "{checks:#?}");
    let fix = check(&checks, "peers")["fix"].as_str().expect("a fix");
    assert!(fix.contains("start peerd on another host"), "{fix}");
    // Nothing heard twice: the spacing is not known, and not claimed to be fine.
    assert_eq!(status(&checks, "timings"), "unknown", "{checks:#?}");
}

#[test]
fn an_interface_without_carrier_fails_the_interface_check() {
    let Some(netns) = Netns::create("doc-nocarrier") else {
        return;
    };
    // The only candidate: a veth up with an address, its other end left down.
    netns.veth("a0", "10.94.0.1/24", false);
    let (code, checks) = doctor(netns.command(PEERD), &["--listen", "1s"]);
    assert_eq!(code, 1, "{checks:#?}");
    let interface = check(&checks, "interface");
    assert_eq!(interface["status"], "fail", "{checks:#?}");
    let detail = interface["detail"].as_str().expect("detail");
    assert!(detail.contains("a0 (10.94.0.1, no carrier)"), "{detail}");
    let fix = interface["fix"].as_str().expect("a fix");
    assert!(fix.contains("--interface NAME"), "{fix}");
    // Nothing was probed: what could not be checked says so.
    assert_eq!(status(&checks, "loopback"), "unknown", "{checks:#?}");
}

#[test]
fn a_missing_multicast_route_and_a_strict_rp_filter_are_warned_with_their_fixes() {
    let Some(netns) = Netns::create("doc-route") else {
        return;
    };
    // One interface with carrier, and no route that covers the group (the harness's own
    // 224.0.0.0/4 on lo removed).
    netns.veth("b0", "10.95.0.1/24", true);
    netns.ip(&["route", "del", "224.0.0.0/4", "dev", "lo"]);
    for setting in [
        "net.ipv4.conf.all.rp_filter=1",
        "net.ipv4.conf.b0.rp_filter=1",
    ] {
        let set = netns
            .command("sysctl")
            .args(["-q", "-w", setting])
            .status()
            .expect("run sysctl in the namespace");
        assert!(set.success(), "sysctl -w {setting}");
    }
    let (code, checks) = doctor(netns.command(PEERD), &["--listen", "1s"]);
    assert_eq!(code, 0, "warnings only: {checks:#?}");
    assert_eq!(status(&checks, "interface"), "ok", "{checks:#?}");
    assert_eq!(
        status(&checks, "loopback"),
        "ok",
        "the agent sets its interface: {checks:#?}"
    );
    for (name, fix) in [("route", "ip route"), ("rp_filter", "sysctl -w")] {
        let found = check(&checks, name);
        assert_eq!(found["status"], "warn", "{checks:#?}");
        let said = found["fix"].as_str().expect("a fix");
        assert!(said.contains(fix), "{name}: {said}");
    }
}

#[test]
fn nobody_heard_beside_another_network_names_it_with_the_flags_every_node_can_take() {
    let Some(netns) = Netns::create("doc-networks") else {
        return;
    };
    // Two networks, the default route through the second: nobody on either.
    netns.veth("eth0", "10.99.1.3/24", true);
    netns.veth("eth1", "172.29.0.3/16", true);
    netns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "172.29.0.1",
        "dev",
        "eth1",
    ]);
    let (code, checks) = doctor(netns.command(PEERD), &["--listen", "1s"]);
    assert_eq!(code, 0, "warnings only: {checks:#?}");
    let networks = check(&checks, "networks");
    assert_eq!(networks["status"], "warn", "{checks:#?}");
    let detail = networks["detail"].as_str().expect("detail");
    assert!(
        detail.contains("no other node heard on eth1 (172.29.0.3)")
            && detail.contains("eth0 (10.99.1.3, 10.99.1.0/24)"),
        "{detail}"
    );
    // The guess at Swarm's gwbridge only in a container (this machine may be one).
    let container = std::path::Path::new("/.dockerenv").exists();
    assert_eq!(detail.contains("Docker Swarm task"), container, "{detail}");
    let fix = networks["fix"].as_str().expect("a fix");
    assert!(
        fix.contains("--interface eth0 or --interface 10.99.1.0/24"),
        "{fix}"
    );
    let peers = check(&checks, "peers")["fix"].as_str().expect("a fix");
    assert!(peers.contains("--peers-dns NAME"), "{peers}");

    // Given that network, the doctor checks eth0, and names eth1 in turn.
    let (_, checks) = doctor(
        netns.command(PEERD),
        &["--listen", "1s", "--interface", "10.99.0.0/16"],
    );
    let interface = check(&checks, "interface")["detail"]
        .as_str()
        .expect("detail");
    assert_eq!(
        interface, "eth0 (10.99.1.3), as given for 10.99.0.0/16: up, carrier, multicast",
        "{checks:#?}"
    );
    let networks = check(&checks, "networks")["detail"]
        .as_str()
        .expect("detail");
    assert!(
        networks.contains("eth1 (172.29.0.3, 172.29.0.0/16)"),
        "{networks}"
    );
}

/// On a link with IPv6 alone, the doctor checks IPv6: the address past DAD, the probe's return
/// on the IPv6 group, the kernel's MLD membership and the agent heard over IPv6, with no line
/// failed for the IPv4 it does not have. An interface whose only address is still tentative
/// (added without `nodad`, checked at once) is warned about, naming DAD.
#[test]
fn on_ipv6_alone_the_doctor_checks_the_ipv6_group_and_dad() {
    let (Some(one), Some(two)) = (Netns::create("doc6"), Netns::create("doc6")) else {
        return;
    };
    one.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &two.name,
    ]);
    for (host, address) in [(&one, "fe80::a/64"), (&two, "fe80::b/64")] {
        host.ip(&["link", "set", "eth0", "addrgenmode", "none"]);
        host.ip(&["addr", "add", address, "dev", "eth0", "nodad"]);
        host.ip(&["link", "set", "eth0", "up"]);
    }
    // Carrier comes a moment after both ends are up (the kernel's link watch): until then
    // neither the agent nor the doctor has an interface to pick.
    let carrier = wait_for(POLL_SLACK, || {
        [&one, &two]
            .iter()
            .all(|host| {
                let out = host.command("ip").args(["link", "show", "eth0"]).output();
                out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("LOWER_UP"))
            })
            .then_some(())
    });
    assert!(carrier.is_some(), "the veth pair never had carrier");
    let agent = Agent::launch(&one, "six", &api_addr(1), None, Timings::FAST, &[]);
    agent.wait_ready();
    let joined = wait_for(POLL_SLACK, || {
        agent.status().filter(|s| !s.interfaces.is_empty())
    });
    assert!(joined.is_some(), "{}", agent.log());
    let (code, checks) = doctor(two.command(PEERD), &["--listen", "1s"]);
    assert_eq!(code, 0, "{checks:#?}");
    for name in ["interface", "dad", "loopback6", "mld", "peers6"] {
        assert_eq!(status(&checks, name), "ok", "{name}: {checks:#?}");
    }
    assert!(
        check(&checks, "peers6")["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 other node heard over IPv6")),
        "{checks:#?}"
    );
    assert!(
        checks.iter().all(|c| c["check"] != "loopback"),
        "{checks:#?}"
    );

    // A second interface whose one address still waits for DAD: nothing can go out from it.
    two.ip(&[
        "link", "add", "tent0", "type", "veth", "peer", "name", "tent1",
    ]);
    two.ip(&["link", "set", "tent0", "addrgenmode", "none"]);
    two.ip(&["link", "set", "tent1", "up"]);
    // DAD waits a retransmission time: a minute here, so the address is still tentative
    // however long the doctor takes to start.
    let retrans = two
        .command("sysctl")
        .args(["-w", "net.ipv6.neigh.tent0.retrans_time_ms=60000"])
        .output();
    assert!(retrans.is_ok_and(|o| o.status.success()), "sysctl");
    two.ip(&["link", "set", "tent0", "up"]);
    two.ip(&["addr", "add", "fd00::b/64", "dev", "tent0"]);
    let (_, checks) = doctor(
        two.command(PEERD),
        &["--interface", "tent0", "--listen", "200ms"],
    );
    let dad = check(&checks, "dad");
    assert_eq!(dad["status"], "warn", "{checks:#?}");
    assert!(
        dad["detail"]
            .as_str()
            .is_some_and(|d| d.contains("still tentative")),
        "{checks:#?}"
    );
}
