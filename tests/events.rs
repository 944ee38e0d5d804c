//! The live event stream through its clients, on agents sharing one namespace's loopback:
//! `peerd watch` shows the peers and then each change in order and rides out an agent restart,
//! `peerd wait` returns as soon as enough peers are listed, and an agent with a hundred streams
//! open still says goodbye and exits at once on SIGTERM.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use peerd::api::{EventKind, PeerChange};
use serde_json::Value;

use crate::support::cluster::{self, Cluster};
use crate::support::lan::Lan;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{Lines, wait_for};

/// `peerd watch --json` following `node`, its stdout and stderr read line by line.
struct Watch {
    child: Child,
    out: Lines,
    err: Lines,
}

impl Watch {
    fn start(lan: &Lan, node: &str) -> Watch {
        let mut child = lan
            .agent(node)
            .client("watch", &["--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start peerd watch");
        let out = Lines::new(child.stdout.take().expect("piped"));
        let err = Lines::new(child.stderr.take().expect("piped"));
        Watch { child, out, err }
    }

    fn next_json(&self) -> Value {
        let line = self
            .out
            .next(POLL_SLACK)
            .expect("watch printed a line in time");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    }

    fn next_change(&self) -> PeerChange {
        serde_json::from_value(self.next_json()).expect("a change has the PeerChange shape")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hostnames(snapshot: &Value) -> BTreeSet<String> {
    let peers = snapshot["peers"]
        .as_array()
        .expect("a snapshot lists peers");
    peers
        .iter()
        .map(|p| p["hostname"].as_str().expect("a hostname").to_owned())
        .collect()
}

/// `nodes` agents on one loopback, each listing all the others; `None` when skipped.
fn whole_lan(nodes: usize) -> Option<Lan> {
    let lan = Lan::loopback(nodes, Timings::FAST)?;
    assert!(
        cluster::wait_whole(&lan, POLL_SLACK).is_some(),
        "never whole"
    );
    Some(lan)
}

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn watch_prints_the_peers_then_each_change_in_order() {
    let Some(mut lan) = whole_lan(3) else {
        return;
    };
    let watch = Watch::start(&lan, "node1");
    let snapshot = watch.next_json();
    assert_eq!(snapshot["event"], "snapshot");
    assert_eq!(hostnames(&snapshot), names(&["node2", "node3"]));
    let mut id = snapshot["id"].as_u64().expect("a snapshot has an id");

    assert!(lan.stop("node2"));
    lan.restart("node3");
    let expected = [
        (EventKind::Left, "node2"),
        (EventKind::Left, "node3"),
        (EventKind::Restarted, "node3"),
    ];
    for (kind, hostname) in expected {
        let change = watch.next_change();
        assert_eq!(
            (change.event, change.peer.hostname.as_str()),
            (kind, hostname)
        );
        assert_eq!(change.id, id + 1, "ids count up by one");
        id = change.id;
    }

    // Ctrl-C ends it cleanly.
    let mut watch = watch;
    let pid = watch.child.id().to_string();
    crate::support::must("kill", &["-INT", &pid]);
    let status = wait_for(POLL_SLACK, || watch.child.try_wait().expect("try_wait"));
    assert!(
        status.is_some_and(|s| s.success()),
        "watch did not exit 0 on SIGINT"
    );
}

/// Reads `/v1/events` on `node` for a second, resuming after `last_event_id` if given.
fn read_stream(lan: &Lan, node: &str, last_event_id: Option<&str>) -> String {
    let agent = lan.agent(node);
    let url = format!("http://{}/v1/events", agent.api());
    let mut curl = agent.command("curl");
    curl.args(["-sN", "--max-time", "1"]);
    if let Some(id) = last_event_id {
        curl.args(["-H", &format!("Last-Event-ID: {id}")]);
    }
    // curl exits 28 at --max-time; what it read is the point.
    let out = curl.arg(&url).output().expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fields<'a>(stream: &'a str, field: &str) -> Vec<&'a str> {
    let prefix = format!("{field}: ");
    stream
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn a_client_that_resumes_gets_what_it_missed_not_a_snapshot() {
    let Some(mut lan) = whole_lan(3) else {
        return;
    };
    let first = read_stream(&lan, "node1", None);
    assert_eq!(fields(&first, "event"), ["snapshot"]);
    let last_seen = fields(&first, "id")[0].to_owned();

    assert!(lan.stop("node2"));
    lan.restart("node3");
    let resumed = read_stream(&lan, "node1", Some(&last_seen));
    assert_eq!(
        fields(&resumed, "event"),
        ["left", "left", "restarted"],
        "{resumed}"
    );
    let (instance, id) = last_seen.split_once('-').expect("<instance>-<id>");
    let next: u64 = id.parse().expect("a number");
    let ids: Vec<String> = (next + 1..=next + 3)
        .map(|n| format!("{instance}-{n}"))
        .collect();
    assert_eq!(fields(&resumed, "id"), ids);

    // An id this agent never gave (another agent's, or a guess): a fresh snapshot.
    let stranger = read_stream(&lan, "node1", Some("0123456789abcdef-7"));
    assert_eq!(fields(&stranger, "event"), ["snapshot"]);
}

#[test]
fn watch_rides_out_an_agent_restart() {
    let Some(mut lan) = whole_lan(3) else {
        return;
    };
    let watch = Watch::start(&lan, "node1");
    assert_eq!(watch.next_json()["event"], "snapshot");

    lan.restart("node1");
    let lost = watch
        .err
        .next(POLL_SLACK)
        .expect("watch says the agent went away");
    assert!(lost.contains("lost the agent"), "{lost}");
    let back = watch
        .err
        .next(POLL_SLACK)
        .expect("watch says the agent is back");
    assert!(back.contains("answers again"), "{back}");
    // A new agent instance cannot resume the old one's ids: a fresh snapshot, then any joins.
    let snapshot = watch.next_json();
    assert_eq!(snapshot["event"], "snapshot");
    let mut live = hostnames(&snapshot);
    while live != names(&["node2", "node3"]) {
        let change = watch.next_change();
        assert_eq!(change.event, EventKind::Joined, "{change:?}");
        live.insert(change.peer.hostname);
    }
}

#[test]
fn wait_returns_once_enough_peers_are_listed_and_times_out_otherwise() {
    let Some(lan) = Lan::loopback(3, Timings::FAST) else {
        return;
    };
    let node1 = lan.agent("node1");
    let enough = node1
        .client("wait", &["--count", "2", "--timeout", "5s"])
        .output()
        .expect("run peerd wait");
    assert!(enough.status.success(), "{enough:?}");

    let started = Instant::now();
    let too_many = node1
        .client("wait", &["--count", "3", "--timeout", "300ms"])
        .output()
        .expect("run peerd wait");
    let took = started.elapsed();
    assert_eq!(too_many.status.code(), Some(1));
    let err = String::from_utf8_lossy(&too_many.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("timed out after 300ms") && err.contains("2 live peers"),
        "{err}"
    );
    assert!(took < Duration::from_millis(300) + POLL_SLACK);
}

#[test]
fn a_hundred_open_streams_do_not_delay_the_goodbye() {
    let Some(mut lan) = whole_lan(2) else {
        return;
    };
    let (host, port) = lan.agent("node1").api().split_once(':').expect("host:port");
    // One bash, a hundred connections, each subscribed and answered before "ready".
    let script = format!(
        r#"fds=()
for i in $(seq 100); do
  exec {{fd}}<>/dev/tcp/{host}/{port} || exit 1
  printf 'GET /v1/events HTTP/1.1\r\nHost: peerd\r\n\r\n' >&$fd
  fds+=($fd)
done
for fd in "${{fds[@]}}"; do read -r -t 5 status <&$fd && [[ $status == *200* ]] || exit 1; done
echo ready
sleep 30"#
    );
    let mut streams = lan
        .agent("node1")
        .command("bash")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bash");
    let ready = Lines::new(streams.stdout.take().expect("piped")).next(POLL_SLACK);
    assert_eq!(ready.as_deref(), Some("ready"), "the streams did not open");

    let stopped_at = Instant::now();
    let exited_cleanly = lan.stop("node1");
    let took = stopped_at.elapsed();
    let _ = streams.kill();
    let _ = streams.wait();
    eprintln!("stop with 100 streams open: exited {took:?} after SIGTERM");
    assert!(exited_cleanly, "node1 did not exit 0");
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    assert!(lan.log("node1").contains("goodbye sent"));
    let dropped = wait_for(POLL_SLACK, || lan.peers("node2").filter(|p| p.is_empty()));
    assert!(dropped.is_some(), "node2 still lists node1");
}

#[test]
fn a_stalled_subscriber_gets_a_resync_and_stalls_nothing() {
    let Some(lan) = Lan::loopback(1, Timings::FAST) else {
        return;
    };
    let node1 = lan.agent("node1");
    let (host, port) = node1.api().split_once(':').expect("host:port");
    // Small TCP buffers in this namespace, so the flood below outruns a reader that does not
    // read, whatever the machine's buffer autotuning would allow.
    let sysctl = node1
        .command("sysctl")
        .args([
            "-qw",
            "net.ipv4.tcp_rmem=4096 4096 4096",
            "net.ipv4.tcp_wmem=4096 4096 4096",
        ])
        .status()
        .expect("run sysctl");
    assert!(
        sysctl.success(),
        "cannot shrink the namespace's TCP buffers"
    );
    let go = std::env::temp_dir().join(crate::support::unique("go"));
    // A subscriber that reads nothing until told to, then reads for a second.
    let script = format!(
        r#"exec 3<>/dev/tcp/{host}/{port} || exit 1
printf 'GET /v1/events HTTP/1.1\r\nHost: peerd\r\n\r\n' >&3
echo open
until [ -e {go} ]; do sleep 0.05; done
timeout 2 cat <&3"#,
        go = go.display()
    );
    let mut subscriber = node1
        .command("bash")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bash");
    let mut out = subscriber.stdout.take().expect("piped");
    let mut first = [0u8; 5];
    std::io::Read::read_exact(&mut out, &mut first).expect("the subscriber says open");

    // 1,500 made-up peers join, and a second later expire (or, past the 1,024 places, make
    // room for one another): about 3,000 events.
    lan.announce_made_up_peers(1500);
    // bash's /dev/udp splits a few of them into pieces, which the agent ignores: most join.
    let flooded = wait_for(POLL_SLACK, || {
        let status = lan.status("node1")?;
        let events = status.events;
        let done = events.joined >= 1000
            && events.expired + events.evicted == events.joined
            && status.peers == 0;
        done.then_some(())
    });
    assert!(
        flooded.is_some(),
        "the agent did not keep up: {:?}",
        lan.status("node1")
    );

    std::fs::write(&go, b"").expect("signal the subscriber");
    let mut stream = String::new();
    std::io::Read::read_to_string(&mut out, &mut stream).expect("read the stream");
    let _ = subscriber.wait();
    let _ = std::fs::remove_file(&go);
    let names = fields(&stream, "event");
    let ids: Vec<u64> = fields(&stream, "id")
        .iter()
        .map(|id| {
            id.split_once('-')
                .expect("<instance>-<id>")
                .1
                .parse()
                .expect("a number")
        })
        .collect();
    // Never a silent gap: each id follows the one before, unless a resync starts over.
    for (i, pair) in ids.windows(2).enumerate() {
        assert!(
            pair[1] == pair[0] + 1 || names[i + 1] == "resync",
            "a gap from {} to {} without a resync",
            pair[0],
            pair[1]
        );
    }
    assert!(
        names.contains(&"resync"),
        "the flood did not outrun the subscriber"
    );
}
