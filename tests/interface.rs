//! Which interface an agent announces on, in a namespace of its own with several candidates:
//! by default the one /etc/hosts names, else the default route's when it has carrier, never
//! one without carrier; given `--interface`, the address, name or network it names, waited
//! for while it is not there; a value no interface can match is a usage error.

use std::process::Output;
use std::time::Duration;

use crate::support::agent::Agent;
use crate::support::netns::Netns;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{PEERD, wait_for};

/// The address the agent announces on, with `--interface given` if any, and its log.
fn chosen_with(netns: &Netns, given: Option<&str>) -> (String, String) {
    let agent = Agent::launch(
        netns,
        "picker",
        "127.0.0.1:24901",
        given,
        Timings::FAST,
        &[],
    );
    agent.wait_ready();
    let status = wait_for(POLL_SLACK, || agent.status()).expect("the API answers");
    // The IPv4 address first; the interface's IPv6 one follows.
    let first = status.interface.split(", ").next().unwrap_or_default();
    (first.to_owned(), agent.log())
}

fn chosen(netns: &Netns) -> (String, String) {
    chosen_with(netns, None)
}

#[test]
fn the_default_route_wins_unless_it_has_no_carrier() {
    let Some(netns) = Netns::create("pick") else {
        return;
    };
    netns.veth("a0", "10.91.0.1/24", false);
    netns.veth("b0", "10.92.0.1/24", true);
    netns.veth("c0", "10.93.0.1/24", true);
    // The default route goes through a0, which has no carrier: the first with carrier wins.
    netns.ip(&["route", "add", "default", "dev", "a0"]);
    let (interface, log) = chosen(&netns);
    assert_eq!(interface, "10.92.0.1", "{log}");
    assert!(
        log.contains("the first that is up, has carrier and multicast"),
        "{log}"
    );
    assert!(log.contains("a0 (10.91.0.1, no carrier)"), "{log}");

    // Through c0, which has carrier: c0, though b0 comes first.
    netns.ip(&["route", "replace", "default", "dev", "c0"]);
    let (interface, log) = chosen(&netns);
    assert_eq!(interface, "10.93.0.1", "{log}");
    assert!(log.contains("it carries the default route"), "{log}");
    assert!(log.contains("b0 (10.92.0.1)"), "{log}");
}

#[test]
fn the_address_etc_hosts_gives_the_hostname_wins_over_the_default_route() {
    let Some(netns) = Netns::create("hosts") else {
        return;
    };
    // A Swarm task's shape: the overlay without a gateway, the gwbridge with the default route,
    // and the hostname on the overlay's address in /etc/hosts, as Docker writes it.
    netns.veth("eth0", "10.94.1.3/24", true);
    netns.veth("eth1", "172.22.0.3/16", true);
    netns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "172.22.0.1",
        "dev",
        "eth1",
    ]);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the hostname");
    netns.hosts(&format!(
        "127.0.0.1\tlocalhost\n10.94.1.3\t{}\n",
        hostname.trim()
    ));
    let (interface, log) = chosen(&netns);
    assert_eq!(interface, "10.94.1.3", "{log}");
    assert!(log.contains("/etc/hosts gives its address"), "{log}");
}

#[test]
fn a_name_or_a_network_picks_the_interface_that_holds_it() {
    let Some(netns) = Netns::create("given") else {
        return;
    };
    netns.veth("eth0", "10.95.0.1/24", true);
    netns.veth("eth1", "10.96.7.1/24", true);
    netns.ip(&["route", "add", "default", "dev", "eth0"]);
    let (interface, log) = chosen_with(&netns, Some("eth1"));
    assert_eq!(interface, "10.96.7.1", "{log}");
    assert!(log.contains("named by --interface eth1"), "{log}");
    let (interface, log) = chosen_with(&netns, Some("10.96.0.0/16"));
    assert_eq!(interface, "10.96.7.1", "{log}");
    assert!(
        log.contains("the first that is up with an address in 10.96.0.0/16"),
        "{log}"
    );
}

#[test]
fn a_named_interface_that_appears_after_the_start_is_waited_for_and_used() {
    let Some(netns) = Netns::create("late") else {
        return;
    };
    netns.veth("eth0", "10.97.0.1/24", true);
    let agent = Agent::launch(
        &netns,
        "late",
        "127.0.0.1:24901",
        Some("late0"),
        Timings::FAST,
        &[],
    );
    // The first miss is logged at once; the interface comes 1.5 s later, as a container's
    // second network may.
    let missed = wait_for(POLL_SLACK, || {
        let log = agent.log();
        log.contains("no interface named late0 is up with an address")
            .then_some(log)
    });
    assert!(missed.is_some(), "{}", agent.log());
    std::thread::sleep(Duration::from_millis(1500));
    netns.veth("late0", "10.98.0.1/24", true);
    // Tried again every second: within the poll slack.
    let status = wait_for(POLL_SLACK, || {
        agent
            .status()
            .filter(|s| s.interface.split(", ").next() == Some("10.98.0.1"))
    });
    assert!(status.is_some(), "{}", agent.log());
}

/// `peerd args...` in `netns`, where a mistake could reach no network but the namespace's.
fn refused(netns: &Netns, args: &[&str]) -> Output {
    let mut cmd = netns.command(PEERD);
    cmd.args(args);
    crate::cli::refusal(cmd, args)
}

#[test]
fn a_value_no_interface_can_match_exits_2_with_one_error_line() {
    let Some(netns) = Netns::create("badif") else {
        return;
    };
    for (value, expected) in [
        ("10.0.0.0/33", "/33 is not a prefix length"),
        ("", "empty: give an IP address, an interface name"),
        ("a-name-of-16-byt", "an interface name is at most 15 bytes"),
        ("10.0.0.256", "is neither an IP address"),
        ("0.0.0.0", "names no interface (any address)"),
    ] {
        for command in ["agent", "doctor"] {
            let out = refused(
                &netns,
                &[command, "--interface", value, "--api", "127.0.0.1:0"],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {value:?}: {err}");
            let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
            assert_eq!(errors.len(), 1, "{command} {value:?}: {err}");
            assert!(
                errors[0].contains("--interface") && errors[0].contains(expected),
                "{command} {value:?}: {err}"
            );
        }
    }
}
