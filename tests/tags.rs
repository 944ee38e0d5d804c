//! Tags: announced with `--tag`, listed in `peerd peers` (a TAGS column, a `tags` object),
//! filtered by `peers`, `watch` and `wait --tag`, and a change reported as `updated`.

use std::process::Stdio;

use peerd::api::{EventKind, PeerChange};
use peerd::wire::beacon::Beacon;

use crate::support::cluster::Cluster;
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{Lines, wait_for};

fn run(lan: &Lan, node: &str, command: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = lan
        .agent(node)
        .client(command, args)
        .output()
        .expect("run the peerd client");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn tags_are_listed_filtered_and_their_changes_reported() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    lan.add("a", &["--tag", "role=db", "--tag", "zone=eu-1"])
        .expect("namespace");
    lan.add("b", &["--tag", "role=web"]).expect("namespace");
    lan.add("c", &[]).expect("namespace");
    let listed = wait_for(POLL_SLACK, || {
        let peers = lan.peers("c")?;
        (peers.len() == 2).then_some(peers)
    })
    .expect("c lists a and b");
    let a = listed.iter().find(|p| p.hostname == "a").expect("a listed");
    assert_eq!(
        a.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["role=db", "zone=eu-1"]
    );

    let (code, table) = run(&lan, "c", "peers", &[]);
    assert_eq!(code, Some(0));
    assert!(
        table.lines().next().is_some_and(|h| h.contains("TAGS")),
        "{table}"
    );
    assert!(table.contains("role=db,zone=eu-1"), "{table}");
    let (_, only_db) = run(&lan, "c", "peers", &["--tag", "role=db"]);
    assert!(
        only_db.contains("a ") && !only_db.contains("\nb "),
        "{only_db}"
    );
    let (_, both) = run(
        &lan,
        "c",
        "peers",
        &["--tag", "role=db", "--tag", "zone=eu-2"],
    );
    // Not "no live peers yet": there are two, and the tags left both out.
    let left_out = "no live peers with role=db and zone=eu-2: the agent lists 2 live peers, but \
                    none has all of those tags; `peerd peers` without --tag shows them";
    assert_eq!(both.trim(), left_out);
    let mut watch = lan
        .agent("c")
        .client("watch", &["--tag", "role=db", "--tag", "zone=eu-2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerd watch");
    let first = Lines::new(watch.stdout.take().expect("piped")).next(POLL_SLACK);
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(first.as_deref(), Some(left_out), "watch says it too");

    let (code, _) = run(&lan, "c", "wait", &["--count", "1", "--tag", "role=web"]);
    assert_eq!(code, Some(0), "one web peer is listed");
    let (code, _) = run(
        &lan,
        "c",
        "wait",
        &["--count", "2", "--tag", "role=web", "--timeout", "500ms"],
    );
    assert_eq!(code, Some(1), "only one web peer");

    // A made-up peer whose beacons change its tags, watched through a filter on the old ones.
    let mut watch = lan
        .agent("c")
        .client("watch", &["--json", "--tag", "tier=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerd watch");
    let lines = Lines::new(watch.stdout.take().expect("piped"));
    let snapshot = lines.next(POLL_SLACK).expect("the snapshot");
    assert!(
        snapshot.contains("\"peers\":[]"),
        "no peer has tier=1: {snapshot}"
    );
    let made_up = |sequence, tier: &str| {
        Beacon {
            instance: 0x7a95,
            sequence,
            hostname: "x".into(),
            tags: [("tier".to_owned(), tier.to_owned())].into(),
            ..Beacon::default()
        }
        .encode()
    };
    lan.send_to_group(&[&made_up(0, "1"), &made_up(1, "2")]);
    let change = |line: Option<String>| -> PeerChange {
        let line = line.expect("a change in time");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    };
    let joined = change(lines.next(POLL_SLACK));
    assert_eq!(
        (joined.event, joined.peer.hostname.as_str()),
        (EventKind::Joined, "x")
    );
    let updated = change(lines.next(POLL_SLACK));
    assert_eq!(
        updated.event,
        EventKind::Updated,
        "shown: it matched before"
    );
    assert_eq!(updated.peer.tags.get("tier").map(String::as_str), Some("2"));
    let old = updated.old_tags.expect("old tags");
    assert_eq!(old.get("tier").map(String::as_str), Some("1"));
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(lan.status("c").expect("answers").events.updated, 1);
}

#[test]
fn a_restart_after_a_goodbye_says_which_tags_changed() {
    let Some(mut lan) = Lan::loopback(0, Timings::FAST) else {
        return;
    };
    lan.add("c", &[]).expect("namespace");
    let mut watch = lan
        .agent("c")
        .client("watch", &["--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerd watch");
    let lines = Lines::new(watch.stdout.take().expect("piped"));
    lines.next(POLL_SLACK).expect("the snapshot");
    // What `systemctl restart` or `docker restart` puts on the wire: the old instance says
    // goodbye, the new one announces other tags.
    let beacon = |instance, sequence, goodbye, tier: &str| {
        Beacon {
            instance,
            sequence,
            goodbye,
            hostname: "x".into(),
            tags: [("tier".to_owned(), tier.to_owned())].into(),
            ..Beacon::default()
        }
        .encode()
    };
    lan.send_to_group(&[&beacon(1, 0, false, "1"), &beacon(1, 1, true, "1")]);
    lan.send_to_group(&[&beacon(2, 0, false, "2")]);
    let change = |line: Option<String>| -> PeerChange {
        let line = line.expect("a change in time");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    };
    let kinds: Vec<PeerChange> = (0..3).map(|_| change(lines.next(POLL_SLACK))).collect();
    assert_eq!(
        kinds.iter().map(|c| c.event).collect::<Vec<_>>(),
        [EventKind::Joined, EventKind::Left, EventKind::Restarted]
    );
    let old = kinds[2]
        .old_tags
        .as_ref()
        .expect("the tags before the restart");
    assert_eq!(old.get("tier").map(String::as_str), Some("1"));
    let _ = watch.kill();
    let _ = watch.wait();
}
