//! The API under a flood, on an agent alone in a namespace and limited to few open files: 2,000
//! idle or half-sent connections leave `peerd health` and `peerd peers` answering at once, the
//! limits count what they closed, and SIGTERM still ends the agent with a goodbye within a
//! second; with every connection busy a newcomer is refused at once, not left waiting. And the
//! other signals that stop the agent: SIGHUP and SIGQUIT say goodbye as SIGTERM does.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::netns::Netns;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::{Lines, wait_for};

/// Below the ephemeral range, as every test API is (see `support::API_PORTS`).
const API: &str = "127.0.0.1:25101";

/// How soon `peerd health` or `peerd peers` must answer while the flood is held: the agent
/// answers in microseconds, the rest is `ip netns exec` starting the client.
const ANSWER_BOUND: Duration = Duration::from_secs(1);

/// How soon the agent must be gone after SIGTERM, whatever its clients hold open.
const EXIT_BOUND: Duration = Duration::from_secs(1);

/// An agent alone on the loopback of a namespace of its own, allowed at most `files` open
/// files; `None` when namespaces cannot be made here. The agent comes first, so it is dropped
/// before its namespace.
fn limited_agent(tag: &str, files: u32) -> Option<(Agent, Netns)> {
    let netns = Netns::create(tag)?;
    let mut agent = Agent::launch(&netns, "node1", API, Some("127.0.0.1"), Timings::FAST, &[]);
    agent.wait_ready();
    agent.restart_with_open_files(files);
    Some((agent, netns))
}

/// A bash in the agent's namespace holding connections to its API, opened by `script` (which
/// gets `$host`, `$port` and `$count`), until dropped. Returns once the script printed `ready`.
struct Clients(Child);

impl Clients {
    fn open(agent: &Agent, count: usize, script: &str) -> Clients {
        let (host, port) = agent.api().split_once(':').expect("host:port");
        // A write to a connection the agent already closed must not kill the script.
        let script = format!(
            "trap '' PIPE\nulimit -n {fds} || exit 1\nhost={host} port={port} count={count}\n{script}\necho ready\nsleep 60",
            fds = count + 100,
        );
        let mut child = agent
            .command("bash")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start bash");
        let ready = Lines::new(child.stdout.take().expect("piped")).next(POLL_SLACK * 2);
        let mut clients = Clients(child);
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the clients did not connect: {:?}",
            clients.0.try_wait()
        );
        clients.assert_holding();
        clients
    }

    fn assert_holding(&mut self) {
        let exited = self.0.try_wait().expect("try_wait");
        assert!(exited.is_none(), "the clients let go: {exited:?}");
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Half of `$count` connections idle, half having sent part of a request head, alternately.
const SLOW_CLIENTS: &str = r#"fds=()
for i in $(seq $((count / 2))); do
  exec {fd}<>/dev/tcp/$host/$port || exit 1
  fds+=($fd)
  exec {fd}<>/dev/tcp/$host/$port || exit 1
  printf 'GET /v1/peers HTTP/1.1\r\nHost: peerd\r\n' >&$fd
  fds+=($fd)
done"#;

/// `$count` event streams, each answered before the next opens: requests in flight for as long
/// as they are held.
const STREAMS: &str = r#"fds=()
for i in $(seq $count); do
  exec {fd}<>/dev/tcp/$host/$port || exit 1
  printf 'GET /v1/events HTTP/1.1\r\nHost: peerd\r\n\r\n' >&$fd
  read -r -t 5 status <&$fd && [[ $status == *200* ]] || exit 1
  fds+=($fd)
done"#;

fn timed(command: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let out = command.output().expect("run the peerd client");
    (out, started.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn two_thousand_slow_clients_neither_block_the_api_nor_hold_up_the_exit() {
    // 1,024 files, as many a service manager allows: 2,000 connections would take them all.
    let Some((mut agent, _netns)) = limited_agent("flood", 1024) else {
        return;
    };
    let started = Instant::now();
    let mut flood = Clients::open(&agent, 2000, SLOW_CLIENTS);
    let opened_in = started.elapsed();

    let (health, health_took) = timed(&mut agent.client("health", &[]));
    let (peers, peers_took) = timed(&mut agent.client("peers", &[]));
    let status = agent.status();
    flood.assert_holding();
    let log_before_stop = agent.log().len();
    let stopped_at = Instant::now();
    let exited_cleanly = agent.stop();
    let exit_took = stopped_at.elapsed();
    drop(flood);

    eprintln!(
        "2,000 slow clients opened in {opened_in:?}; with them held, peerd health answered in \
         {health_took:?} and peerd peers in {peers_took:?}; api counts {:?}; exited \
         {exit_took:?} after SIGTERM",
        status.as_ref().map(|s| s.api)
    );
    assert!(health.status.success(), "health: {}", stderr(&health));
    assert!(peers.status.success(), "peers: {}", stderr(&peers));
    let api = status.expect("the status answers with the flood held").api;
    assert!(health_took < ANSWER_BOUND, "health took {health_took:?}");
    assert!(peers_took < ANSWER_BOUND, "peers took {peers_took:?}");
    // At most 512 open (half the files), so each of the others was closed by a limit: mostly
    // evicted, the oldest idle making room for the newest, or timed out if the flood was slow.
    assert!(api.open <= 512, "{api:?}");
    assert!(api.evicted > 0, "{api:?}");
    assert!(
        api.refused + api.evicted + api.timed_out >= 2000 - 512,
        "{api:?}"
    );
    // Still held when SIGTERM came: the last connections opened are the ones kept.
    assert!(api.open > 256, "the flood was not held: {api:?}");
    assert!(exited_cleanly, "the agent did not exit 0 on SIGTERM");
    assert!(exit_took < EXIT_BOUND, "exit took {exit_took:?}");
    assert!(agent.log()[log_before_stop..].contains("goodbye sent"));
}

#[test]
fn with_every_connection_busy_a_newcomer_is_refused_at_once() {
    // 64 files: 32 connections at most, so few streams fill them.
    let Some((agent, _netns)) = limited_agent("busy", 64) else {
        return;
    };
    assert!(
        agent.log().contains("max_connections=32"),
        "the cap is not half of 64 files:\n{}",
        agent.log()
    );
    let streams = Clients::open(&agent, 32, STREAMS);

    let (refused, took) = timed(&mut agent.client("health", &[]));
    eprintln!("with 32 streams open, a 33rd connection was refused after {took:?}");
    assert!(
        !refused.status.success(),
        "health answered with every connection busy"
    );
    // Closed at once: the client's own 3 s timeout would mean it was left waiting.
    assert!(took < ANSWER_BOUND, "the refusal took {took:?}");

    drop(streams);
    let status = wait_for(POLL_SLACK, || agent.status());
    let api = status
        .expect("the API answers again once the streams close")
        .api;
    assert!(api.refused >= 1, "{api:?}");
}

/// `signal` stops an agent as SIGTERM does: exit 0, and a goodbye its peer hears at once.
fn stops_with_a_goodbye(signal: &str) {
    let Some(netns) = Netns::create("signal") else {
        return;
    };
    let launch = |name: &str, api: &str| {
        let agent = Agent::launch(&netns, name, api, Some("127.0.0.1"), Timings::FAST, &[]);
        agent.wait_ready();
        agent
    };
    let mut node1 = launch("node1", "127.0.0.1:25101");
    let node2 = launch("node2", "127.0.0.1:25102");
    let listed = wait_for(POLL_SLACK, || {
        let peers = node2.peers()?;
        peers.iter().any(|p| p.hostname == "node1").then_some(())
    });
    assert!(listed.is_some(), "node2 never listed node1");

    let ignored = format!("SIG{signal} was ignored when the agent started");
    assert!(
        !node1.log().contains(&ignored),
        "the tests run with SIG{signal} ignored (under nohup?), and the agent inherits that"
    );
    assert!(
        node1.stop_with(signal),
        "node1 did not exit 0 on SIG{signal}"
    );
    let log = node1.log();
    assert!(log.contains(&format!("signal=\"SIG{signal}\"")), "{log}");
    assert!(log.contains("goodbye sent"), "{log}");
    // Its ttl is a second: only the goodbye explains `left` rather than `expired`.
    let left = wait_for(POLL_SLACK, || {
        node2
            .log()
            .contains("peer left hostname=node1 ")
            .then_some(())
    });
    assert!(left.is_some(), "node2 did not hear node1's goodbye");
}

#[test]
fn sighup_stops_the_agent_with_a_goodbye() {
    stops_with_a_goodbye("HUP");
}

#[test]
fn sigquit_stops_the_agent_with_a_goodbye() {
    stops_with_a_goodbye("QUIT");
}
