//! Who an agent believes: signed clusters, agents without the secret, a migration, and forged,
//! replayed and own-hostname beacons, on agents sharing one namespace's loopback.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use peerd::config::{MAX_TIMING, MULTICAST_GROUP, PORT, UNSIGNED_TTL_FACTOR};
use peerd::node::admission::unix_millis;
use peerd::wire::auth::Keyring;
use peerd::wire::beacon::Beacon;

use crate::support::cluster::{self, Cluster};
use crate::support::lan::Lan;
use crate::support::secret::SecretFile;
use crate::support::timings::{POLL_SLACK, SCHEDULING_SLACK, Timings};
use crate::support::wait_for;

const SECRET: &str = "c2hhcmVkIHNlY3JldCBvZiB0aGUgdGVzdCBjbHVzdGVy";

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn only_holders_of_the_secret_hear_each_other_and_a_migration_keeps_everyone_together() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    let secret = SecretFile::new(SECRET);
    let signed = ["--secret-file", secret.path()];
    let migrating = ["--secret-file", secret.path(), "--accept-unauthenticated"];
    lan.add("a", &signed).expect("namespace");
    lan.add("b", &signed).expect("namespace");
    lan.add("plain", &[]).expect("namespace");
    lan.add("m", &migrating).expect("namespace");
    let expected = [
        ("a", names(&["b", "m"])),
        ("b", names(&["a", "m"])),
        ("m", names(&["a", "b", "plain"])),
        ("plain", names(&["m"])),
    ];
    for (node, peers) in &expected {
        let seen = wait_for(POLL_SLACK, || {
            let now = cluster::listed(&lan, node);
            (now == *peers).then_some(now)
        });
        assert!(
            seen.is_some(),
            "{node} lists {:?}, not {peers:?}",
            cluster::listed(&lan, node)
        );
    }
    // Several intervals later, still apart: the refusals are counted and explained.
    let refused = |node| lan.status(node).expect("answers").refused.authentication;
    assert!(wait_for(POLL_SLACK, || (refused("a") >= 3).then_some(())).is_some());
    assert_eq!(cluster::listed(&lan, "a"), names(&["b", "m"]));
    assert_eq!(cluster::listed(&lan, "plain"), names(&["m"]));
    assert!(refused("plain") > 0);
    assert!(
        lan.log("a")
            .contains("it is unsigned and this agent requires a signature")
    );
    assert!(
        lan.log("plain")
            .contains("it is signed and this agent has no --secret-file")
    );
    let status = lan.status("a").expect("answers");
    assert_eq!(status.key_ids.len(), 1);
    let everything = format!("{status:?}{}", lan.log("a"));
    assert!(!everything.contains(SECRET), "the secret leaked");
}

/// One datagram of `hostname`'s, captured from the group inside the LAN's namespace.
fn capture(lan: &Lan, via: &str, hostname: &str) -> Vec<u8> {
    let script = format!(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{MULTICAST_GROUP}", {PORT}))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             socket.inet_aton("{MULTICAST_GROUP}") + socket.inet_aton("127.0.0.1"))
s.settimeout(10)
name = b"{hostname}"
while True:
    d, _ = s.recvfrom(600)
    if len(d) > 23 and d[22] == len(name) and d[23:23 + len(name)] == name and not d[5] & 1:
        print(d.hex())
        sys.exit(0)
"#
    );
    let out = lan
        .agent(via)
        .command("python3")
        .args(["-c", &script])
        .output()
        .expect("run python3 in the namespace");
    assert!(
        out.status.success(),
        "capturing a beacon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn forged_and_replayed_beacons_change_nothing_in_a_signed_cluster() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    let secret = SecretFile::new(SECRET);
    let signed = ["--secret-file", secret.path()];
    lan.add("a", &signed).expect("namespace");
    lan.add("b", &signed).expect("namespace");
    lan.add("c", &signed).expect("namespace");
    let b_at_a = wait_for(POLL_SLACK, || {
        lan.peers("a")?.into_iter().find(|p| p.hostname == "b")
    })
    .expect("a lists b");
    let captured = capture(&lan, "a", "b");

    // Forged without the key: b's own instance with a goodbye, the maximal sequence number,
    // a new instance; and a signed beacon with one bit flipped.
    let instance = u64::from_str_radix(&b_at_a.instance, 16).expect("hex instance");
    let forged = |goodbye, sequence, instance| {
        Beacon {
            instance,
            sequence,
            goodbye,
            hostname: "b".into(),
            ..Beacon::default()
        }
        .encode()
    };
    let mut flipped = captured.clone();
    flipped[14] ^= 0x01; // the sequence number
    let before = lan.status("a").expect("answers").refused;
    lan.send_to_group(&[
        &forged(true, u64::MAX, instance),
        &forged(false, u64::MAX, instance),
        &forged(false, 0, 0xdead_beef),
        &flipped,
    ]);
    let refused = wait_for(POLL_SLACK, || {
        let now = lan.status("a")?.refused;
        (now.authentication >= before.authentication + 4).then_some(now)
    });
    assert!(refused.is_some(), "a did not refuse all four");
    let b_now = lan.peers("a").expect("answers");
    let b_now = b_now
        .iter()
        .find(|p| p.hostname == "b")
        .expect("b still listed");
    assert_eq!(
        (&b_now.instance, &b_now.address),
        (&b_at_a.instance, &b_at_a.address)
    );
    assert!(b_now.authenticated);

    // b leaves; its captured beacon, replayed, does not bring it back.
    assert!(lan.stop("b"));
    wait_for(POLL_SLACK, || {
        (!cluster::listed(&lan, "a").contains("b")).then_some(())
    })
    .expect("b's goodbye reached a");
    let before = lan.status("a").expect("answers").refused.replay;
    lan.send_to_group(&[&captured]);
    wait_for(POLL_SLACK, || {
        (lan.status("a")?.refused.replay > before).then_some(())
    })
    .expect("the replay was refused and counted");
    assert!(!cluster::listed(&lan, "a").contains("b"));
    assert!(!cluster::listed(&lan, "c").contains("b"));

    // A beacon signed with the key but stamped two minutes ago: outside the window.
    let keys = Keyring::new(&[SECRET]);
    let mut stale = Beacon {
        instance: 0x5eed,
        sequence: 0,
        hostname: "late".into(),
        timestamp: Some(unix_millis(SystemTime::now() - Duration::from_secs(120))),
        ..Beacon::default()
    }
    .encode();
    keys.sign(&mut stale);
    lan.send_to_group(&[&stale]);
    wait_for(POLL_SLACK, || {
        (lan.status("a")?.refused.replay > before + 1).then_some(())
    })
    .expect("the stale beacon was refused as a replay");
    assert!(!cluster::listed(&lan, "a").contains("late"));
    assert!(lan.log("a").contains("outside the 1m replay window"));
}

#[test]
fn a_beacon_claiming_our_own_hostname_is_a_conflict_never_a_peer() {
    let Some(lan) = Lan::loopback(2, Timings::FAST) else {
        return;
    };
    let impostor = Beacon {
        instance: 0x1a2b_3c4d,
        sequence: 0,
        hostname: "node1".into(),
        ..Beacon::default()
    }
    .encode();
    lan.send_to_group(&[&impostor]);
    let conflict = wait_for(POLL_SLACK, || lan.status("node1")?.hostname_conflict);
    let conflict = conflict.expect("node1 reports the conflict");
    assert_eq!(conflict.instance, "000000001a2b3c4d");
    assert!(!cluster::listed(&lan, "node1").contains("node1"));
    assert!(
        lan.log("node1")
            .contains("another instance announces this agent's own hostname")
    );
    assert_eq!(
        lan.status("node1").expect("answers").refused.own_hostname,
        1
    );
}

#[test]
fn made_up_instances_of_our_own_hostname_cost_one_warning_not_one_each() {
    let Some(lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    // A new instance per datagram, as a sender flooding the log would make them.
    let impostors: Vec<Vec<u8>> = (1..=2000u64)
        .map(|instance| {
            Beacon {
                instance,
                sequence: 0,
                hostname: "node1".into(),
                ..Beacon::default()
            }
            .encode()
        })
        .collect();
    let datagrams: Vec<&[u8]> = impostors.iter().map(Vec::as_slice).collect();
    lan.send_to_group(&datagrams);
    let counted = wait_for(POLL_SLACK, || {
        lan.status("node1")
            .filter(|s| s.refused.own_hostname == 2000)
    });
    assert!(counted.is_some(), "node1 counted every one");
    let warnings = lan
        .log("node1")
        .matches("another instance announces this agent's own hostname")
        .count();
    // The first at once; any more only once 10 s have passed, and this test takes less.
    assert_eq!(
        warnings, 1,
        "{warnings} warnings for 2,000 made-up instances"
    );
}

/// Made-up hostnames, once each, asking to stay listed for an hour.
fn made_up_for_an_hour(count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            Beacon {
                instance: 0x5000 + i,
                hostname: format!("made-up-{i}"),
                ttl: Some(MAX_TIMING),
                ..Beacon::default()
            }
            .encode()
        })
        .collect()
}

#[test]
fn after_a_flood_of_hostnames_asking_for_an_hour_a_newcomer_is_listed_at_once() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    lan.add("node1", &["--max-peers", "50"]).expect("namespace");
    lan.add("node2", &[]).expect("namespace");
    // node2 is heard more than once before the flood: a listed peer with a place of its own.
    let heard = wait_for(POLL_SLACK, || {
        lan.status("node1").filter(|s| s.beacons_received >= 3)
    });
    assert!(heard.is_some(), "node1 hears node2");
    let flood = made_up_for_an_hour(60);
    let datagrams: Vec<&[u8]> = flood.iter().map(Vec::as_slice).collect();
    lan.send_to_group(&datagrams);
    let full = wait_for(POLL_SLACK, || {
        lan.status("node1").filter(|s| s.events.joined >= 61)
    });
    assert_eq!(full.expect("node1 took in the flood").peers, 50);
    // The flood is over; its hostnames would hold every place for an hour. A real newcomer:
    let started = Instant::now();
    lan.add("node3", &[]).expect("namespace");
    let newcomer = wait_for(Duration::from_secs(3), || {
        cluster::listed(&lan, "node1")
            .contains("node3")
            .then_some(())
    });
    assert!(
        newcomer.is_some(),
        "node1 did not list the newcomer within 3 s of its start"
    );
    eprintln!("newcomer listed {:?} after its start", started.elapsed());
    assert!(
        cluster::listed(&lan, "node1").contains("node2"),
        "node2 was dropped"
    );
    assert_eq!(lan.status("node1").expect("answers").events.expired, 0);
}

#[test]
fn one_forged_beacon_holds_a_hostname_for_at_most_four_ttls_not_an_hour() {
    let Some(lan) = Lan::loopback(2, Timings::FAST) else {
        return;
    };
    let node2 = |lan: &Lan| {
        lan.peers("node1")?
            .into_iter()
            .find(|p| p.hostname == "node2")
    };
    let real = wait_for(POLL_SLACK, || node2(&lan)).expect("node1 lists node2");
    // node2's hostname from another instance, far ahead in sequence, asking for an hour.
    let forged = Beacon {
        instance: 0x0bad,
        sequence: 1 << 40,
        hostname: "node2".into(),
        ttl: Some(MAX_TIMING),
        ..Beacon::default()
    }
    .encode();
    lan.send_to_group(&[&forged]);
    let taken = wait_for(POLL_SLACK, || {
        node2(&lan).filter(|p| p.instance == "0000000000000bad")
    });
    assert!(taken.is_some(), "the forged instance took the hostname");
    let forged_at = Instant::now();
    // node2's own beacons keep the hostname listed, and win it back once the forged ttl, cut
    // to four of node1's, runs out.
    let bound =
        Timings::FAST.ttl * UNSIGNED_TTL_FACTOR + Timings::FAST.longest_gap() + SCHEDULING_SLACK;
    let back = wait_for(bound + POLL_SLACK, || {
        node2(&lan).filter(|p| p.instance == real.instance)
    });
    assert!(back.is_some(), "node2 never got its hostname back");
    let held = forged_at.elapsed();
    assert!(
        held <= bound,
        "the forged beacon held node2 for {held:?}, over {bound:?}"
    );
}

#[test]
fn an_agent_that_refuses_everyone_says_so_and_how_to_fix_it() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    let secret = SecretFile::new(SECRET);
    lan.add("signed", &["--secret-file", secret.path()])
        .expect("namespace");
    lan.add("plain", &[]).expect("namespace");
    let says = |node: &str, expected: &str| {
        let said = wait_for(POLL_SLACK, || {
            let out = lan
                .agent(node)
                .client("peers", &[])
                .output()
                .expect("run peerd peers");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains(expected).then_some(text)
        });
        assert!(
            said.is_some(),
            "{node}'s `peerd peers` never said {expected:?}"
        );
    };
    says(
        "plain",
        "signed beacons: this agent has no secret; start it with the same --secret-file",
    );
    says(
        "signed",
        "beacons unsigned or signed with another key: give every node the same --secret-file, or --accept-unauthenticated",
    );
    // JSON stays what scripts read: an empty array.
    let out = lan
        .agent("plain")
        .client("peers", &["--json"])
        .output()
        .expect("run peerd peers --json");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}
