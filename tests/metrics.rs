//! `GET /metrics` on a real agent, next to a peer in a namespace of the test's own: the page
//! passes Prometheus's own checker (`promtool check metrics`), says what the API says, and the
//! `--metrics` listener serves the same families and nothing that lists peers.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::agent::Agent;
use crate::support::netns::Netns;
use crate::support::skip::skip;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

/// Set by `.ci/run` once it has installed Debian's `prometheus`: then a missing promtool is a
/// failure.
const REQUIRE_PROMTOOL: &str = "PEERD_REQUIRE_PROMTOOL";

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What curl got: status code, `Content-Type` and body.
struct Fetched {
    code: u16,
    content_type: String,
    body: String,
}

/// `GET http://<addr><path>` with curl inside `agent`'s namespace; `None` if nothing answered.
fn fetch(agent: &Agent, addr: &str, path: &str) -> Option<Fetched> {
    const MARK: &str = "\n@@peerd-test@@";
    let out = agent
        .command("curl")
        .args(["-s", "--max-time", "5", "-w"])
        .arg(format!("{MARK}%{{http_code}} %{{content_type}}"))
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("run curl in the namespace (the test needs curl)");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).expect("the agent answers UTF-8");
    let (body, trailer) = text.rsplit_once(MARK).expect("curl writes the trailer");
    let (code, content_type) = trailer.split_once(' ').unwrap_or((trailer, ""));
    Some(Fetched {
        code: code.parse().expect("an HTTP status code"),
        content_type: content_type.to_owned(),
        body: body.to_owned(),
    })
}

/// `promtool check metrics` on `page`: its exit status and everything it printed.
fn promtool(page: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(page.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// The value of the unlabelled sample `name` on `page`.
fn value(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// The families a page declares, by their `# TYPE` lines.
fn families(page: &str) -> BTreeSet<&str> {
    page.lines()
        .filter(|line| line.starts_with("# TYPE "))
        .collect()
}

#[test]
fn metrics_pass_promtool_and_the_metrics_listener_serves_only_metrics() {
    let installed = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        skip::<()>("no promtool (apt-get install prometheus)", REQUIRE_PROMTOOL);
        return;
    }
    let Some(netns) = Netns::create("metrics") else {
        return;
    };
    let (api, metrics) = ("127.0.0.1:25101", "127.0.0.1:25201");
    let node1 = Agent::launch(
        &netns,
        "node1",
        api,
        Some("127.0.0.1"),
        Timings::FAST,
        &["--metrics", metrics],
    );
    node1.wait_ready();
    let node2 = Agent::launch(
        &netns,
        "node2",
        "127.0.0.1:25102",
        Some("127.0.0.1"),
        Timings::FAST,
        &[],
    );
    node2.wait_ready();

    // Once node1 lists node2, its metrics say so, on either listener.
    let scraped = wait_for(POLL_SLACK, || {
        let page = fetch(&node1, metrics, "/metrics")?;
        (value(&page.body, "peerd_peers") == Some(1.0)).then_some(page)
    });
    let scraped = scraped.expect("the metrics listener never said peerd_peers 1");
    let from_api = fetch(&node1, api, "/metrics").expect("the API serves /metrics");
    for (page, whose) in [(&scraped, "metrics listener"), (&from_api, "API")] {
        assert_eq!(page.code, 200, "{whose}");
        assert_eq!(page.content_type, CONTENT_TYPE, "{whose}");
        let (passed, said) = promtool(&page.body);
        eprintln!("promtool check metrics on the {whose}'s page: exit ok={passed}, said {said:?}");
        assert!(
            passed && said.trim().is_empty(),
            "promtool on the {whose}'s page:\n{said}\n{}",
            page.body
        );
    }
    let page = &from_api.body;
    assert_eq!(families(&scraped.body), families(page));
    assert_eq!(value(page, "peerd_peers"), Some(1.0), "{page}");
    let build_info = format!(
        "peerd_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(page.contains(&build_info), "{page}");
    assert!(
        page.contains("peerd_peer_events_total{kind=\"joined\"} 1\n"),
        "{page}"
    );
    // At least this request, and the CLI's polls before it.
    assert!(
        value(page, "peerd_api_requests_total") >= Some(1.0),
        "{page}"
    );
    assert!(
        value(page, "peerd_beacons_sent_total") >= Some(1.0),
        "{page}"
    );
    let started = value(page, "process_start_time_seconds").expect("a start time");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let age = now.as_secs_f64() - started;
    assert!(
        (0.0..POLL_SLACK.as_secs_f64() * 4.0).contains(&age),
        "started {age} s ago"
    );

    // The metrics listener lists no peers: that is the API's, which it does not expose.
    let peers = fetch(&node1, metrics, "/v1/peers").expect("the metrics listener answers");
    assert_eq!(peers.code, 404);
    let health = fetch(&node1, metrics, "/healthz").expect("the metrics listener answers");
    assert_eq!((health.code, health.body.as_str()), (200, "ok\n"));

    // It stops with the agent.
    let mut node1 = node1;
    assert!(node1.stop(), "node1 did not exit 0 on SIGTERM");
    let gone = wait_for(Duration::from_secs(1), || {
        fetch(&node2, metrics, "/metrics").is_none().then_some(())
    });
    assert!(gone.is_some(), "the metrics listener outlived its agent");
}
