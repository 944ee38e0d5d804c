//! `GET /metrics`: the agent's status in the Prometheus text format (version 0.0.4). Pure: it
//! renders an [`AgentStatus`] it is given; serving it is `api`'s, counting is everyone else's.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use super::status::AgentStatus;

pub const METRICS_PATH: &str = "/metrics";

/// The text format's media type, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kinds of family this agent exports.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// The page being written; each family is one `# HELP`, one `# TYPE` and its samples.
struct Page(String);

impl Page {
    fn line(&mut self, args: fmt::Arguments) {
        self.0
            .write_fmt(args)
            .expect("writing to a String cannot fail");
        self.0.push('\n');
    }

    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.line(format_args!("# HELP {name} {}", escape_help(help)));
        self.line(format_args!("# TYPE {name} {}", kind.as_str()));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl fmt::Display) {
        if labels.is_empty() {
            self.line(format_args!("{name} {value}"));
            return;
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(label, text)| format!("{label}=\"{}\"", escape_label_value(text)))
            .collect();
        self.line(format_args!("{name}{{{}}} {value}", labels.join(",")));
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family with one sample per value of `label`: a fixed set, so the series are bounded.
    fn by(&mut self, name: &str, kind: Kind, help: &str, label: &str, samples: &[(&str, u64)]) {
        self.family(name, kind, help);
        for (value, count) in samples {
            self.sample(name, &[(label, value)], count);
        }
    }
}

/// The page for `status`, of an agent whose process started at `started` (wall clock).
/// Families in a fixed order, so two scrapes differ only in their values. No per-peer series:
/// a hostname label would grow with the network, and the peer list is the API's.
pub fn render(status: &AgentStatus, started: SystemTime) -> String {
    use Kind::{Counter, Gauge};
    let mut page = Page(String::with_capacity(4096));
    page.single("peerd_peers", Gauge, "Peers listed now.", status.peers);
    page.single(
        "peerd_max_peers",
        Gauge,
        "Most peers listed at once; beacons from further hostnames are refused.",
        status.max_peers,
    );
    page.single(
        "peerd_beacons_sent_total",
        Counter,
        "Beacons this agent sent.",
        status.beacons_sent,
    );
    page.single(
        "peerd_beacons_received_total",
        Counter,
        "Valid beacons from other agents taken in.",
        status.beacons_received,
    );
    page.single(
        "peerd_own_beacons_received_total",
        Counter,
        "This agent's own beacons looped back by the kernel.",
        status.own_beacons_received,
    );
    page.single(
        "peerd_early_answers_total",
        Counter,
        "Beacons brought forward to answer a newcomer.",
        status.early_answers,
    );
    page.single(
        "peerd_unicast_sent_total",
        Counter,
        "Beacons sent by unicast: to targets, and answers to newcomers.",
        status.unicast.sent,
    );
    page.single(
        "peerd_unicast_answers_total",
        Counter,
        "Newcomers answered by unicast, one beacon each.",
        status.unicast.answers,
    );
    page.single(
        "peerd_unicast_received_total",
        Counter,
        "Datagrams that came by unicast, whatever became of them.",
        status.unicast.received,
    );
    page.single(
        "peerd_unicast_targets",
        Gauge,
        "Addresses each beacon goes to besides the group.",
        status.unicast.targets.len(),
    );
    page.by(
        "peerd_datagrams_refused_total",
        Counter,
        "Datagrams on the beacon port that changed nothing, by reason.",
        "reason",
        &status.refused.by_reason(),
    );
    // Absent rather than 0 where the kernel does not say: a made-up 0 would read as healthy.
    if let Some(drops) = status.receive_queue_drops {
        page.single(
            "peerd_receive_queue_drops_total",
            Counter,
            "Datagrams the kernel dropped because the socket's receive queue was full.",
            drops,
        );
    }
    if let Some(bytes) = status.receive_buffer_bytes {
        page.single(
            "peerd_receive_buffer_bytes",
            Gauge,
            "The multicast socket's receive buffer, as the kernel granted it.",
            bytes,
        );
    }
    page.by(
        "peerd_peer_events_total",
        Counter,
        "Peer events since the agent started, by kind.",
        "kind",
        &status.events.by_kind(),
    );
    let hooks = status.hooks;
    page.single(
        "peerd_hook_runs_total",
        Counter,
        "Hook programs started, one per program per event.",
        hooks.runs,
    );
    page.single(
        "peerd_hook_failures_total",
        Counter,
        "Hook runs that could not start or exited non-zero.",
        hooks.failures,
    );
    page.single(
        "peerd_hook_timeouts_total",
        Counter,
        "Hook runs killed at the timeout.",
        hooks.timeouts,
    );
    page.single(
        "peerd_hook_events_dropped_total",
        Counter,
        "Events that never reached the hooks: they fell too far behind.",
        hooks.dropped,
    );
    let api = status.api;
    page.single(
        "peerd_api_connections",
        Gauge,
        "Connections to the HTTP API open now.",
        api.open,
    );
    page.by(
        "peerd_api_connections_closed_total",
        Counter,
        "API connections closed by its limits, by reason.",
        "reason",
        &[
            ("refused", api.refused),
            ("evicted", api.evicted),
            ("timed_out", api.timed_out),
        ],
    );
    page.single(
        "peerd_api_requests_total",
        Counter,
        "HTTP requests the API received.",
        api.requests,
    );
    page.single(
        "peerd_stalls_total",
        Counter,
        "Times the agent found it had been stopped or stalled for more than a second.",
        status.stalls,
    );
    page.single(
        "peerd_socket_reopens_total",
        Counter,
        "Times the multicast socket was opened again after an error or a silence.",
        status.socket_reopens,
    );
    page.family(
        "peerd_build_info",
        Gauge,
        "Always 1; the version of the running agent is in its label.",
    );
    page.sample(
        "peerd_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    page.single(
        "process_start_time_seconds",
        Gauge,
        "Start time of the process since unix epoch in seconds.",
        unix_seconds(started),
    );
    page.0
}

/// Seconds since the Unix epoch, to the millisecond; 0 for a clock set before 1970.
fn unix_seconds(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
pub fn escape_label_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A `# HELP` text: backslash and line feed escaped (a double quote is literal there).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::status::{ApiCounts, RefusedCounts};
    use crate::api::types::{EventCounts, HookCounts};

    fn sample_status() -> AgentStatus {
        AgentStatus {
            hostname: "node-1".into(),
            peers: 2,
            max_peers: 1024,
            beacons_sent: 10,
            beacons_received: 20,
            own_beacons_received: 9,
            early_answers: 1,
            refused: RefusedCounts {
                malformed: 3,
                replay: 4,
                ..RefusedCounts::default()
            },
            receive_queue_drops: Some(5),
            receive_buffer_bytes: Some(425_984),
            stalls: 1,
            socket_reopens: 2,
            events: EventCounts {
                joined: 3,
                left: 1,
                ..EventCounts::default()
            },
            hooks: HookCounts {
                runs: 4,
                failures: 1,
                timeouts: 0,
                dropped: 0,
            },
            api: ApiCounts {
                open: 1,
                refused: 0,
                evicted: 2,
                timed_out: 3,
                requests: 42,
            },
            ..AgentStatus::default()
        }
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let started = UNIX_EPOCH + Duration::from_millis(1_780_000_000_123);
        let expected = format!(
            r#"# HELP peerd_peers Peers listed now.
# TYPE peerd_peers gauge
peerd_peers 2
# HELP peerd_max_peers Most peers listed at once; beacons from further hostnames are refused.
# TYPE peerd_max_peers gauge
peerd_max_peers 1024
# HELP peerd_beacons_sent_total Beacons this agent sent.
# TYPE peerd_beacons_sent_total counter
peerd_beacons_sent_total 10
# HELP peerd_beacons_received_total Valid beacons from other agents taken in.
# TYPE peerd_beacons_received_total counter
peerd_beacons_received_total 20
# HELP peerd_own_beacons_received_total This agent's own beacons looped back by the kernel.
# TYPE peerd_own_beacons_received_total counter
peerd_own_beacons_received_total 9
# HELP peerd_early_answers_total Beacons brought forward to answer a newcomer.
# TYPE peerd_early_answers_total counter
peerd_early_answers_total 1
# HELP peerd_unicast_sent_total Beacons sent by unicast: to targets, and answers to newcomers.
# TYPE peerd_unicast_sent_total counter
peerd_unicast_sent_total 0
# HELP peerd_unicast_answers_total Newcomers answered by unicast, one beacon each.
# TYPE peerd_unicast_answers_total counter
peerd_unicast_answers_total 0
# HELP peerd_unicast_received_total Datagrams that came by unicast, whatever became of them.
# TYPE peerd_unicast_received_total counter
peerd_unicast_received_total 0
# HELP peerd_unicast_targets Addresses each beacon goes to besides the group.
# TYPE peerd_unicast_targets gauge
peerd_unicast_targets 0
# HELP peerd_datagrams_refused_total Datagrams on the beacon port that changed nothing, by reason.
# TYPE peerd_datagrams_refused_total counter
peerd_datagrams_refused_total{{reason="malformed"}} 3
peerd_datagrams_refused_total{{reason="oversized"}} 0
peerd_datagrams_refused_total{{reason="version"}} 0
peerd_datagrams_refused_total{{reason="hostname"}} 0
peerd_datagrams_refused_total{{reason="authentication"}} 0
peerd_datagrams_refused_total{{reason="replay"}} 4
peerd_datagrams_refused_total{{reason="capacity"}} 0
peerd_datagrams_refused_total{{reason="own_hostname"}} 0
peerd_datagrams_refused_total{{reason="stale"}} 0
peerd_datagrams_refused_total{{reason="unicast"}} 0
# HELP peerd_receive_queue_drops_total Datagrams the kernel dropped because the socket's receive queue was full.
# TYPE peerd_receive_queue_drops_total counter
peerd_receive_queue_drops_total 5
# HELP peerd_receive_buffer_bytes The multicast socket's receive buffer, as the kernel granted it.
# TYPE peerd_receive_buffer_bytes gauge
peerd_receive_buffer_bytes 425984
# HELP peerd_peer_events_total Peer events since the agent started, by kind.
# TYPE peerd_peer_events_total counter
peerd_peer_events_total{{kind="joined"}} 3
peerd_peer_events_total{{kind="moved"}} 0
peerd_peer_events_total{{kind="restarted"}} 0
peerd_peer_events_total{{kind="left"}} 1
peerd_peer_events_total{{kind="expired"}} 0
peerd_peer_events_total{{kind="evicted"}} 0
peerd_peer_events_total{{kind="conflict"}} 0
peerd_peer_events_total{{kind="updated"}} 0
# HELP peerd_hook_runs_total Hook programs started, one per program per event.
# TYPE peerd_hook_runs_total counter
peerd_hook_runs_total 4
# HELP peerd_hook_failures_total Hook runs that could not start or exited non-zero.
# TYPE peerd_hook_failures_total counter
peerd_hook_failures_total 1
# HELP peerd_hook_timeouts_total Hook runs killed at the timeout.
# TYPE peerd_hook_timeouts_total counter
peerd_hook_timeouts_total 0
# HELP peerd_hook_events_dropped_total Events that never reached the hooks: they fell too far behind.
# TYPE peerd_hook_events_dropped_total counter
peerd_hook_events_dropped_total 0
# HELP peerd_api_connections Connections to the HTTP API open now.
# TYPE peerd_api_connections gauge
peerd_api_connections 1
# HELP peerd_api_connections_closed_total API connections closed by its limits, by reason.
# TYPE peerd_api_connections_closed_total counter
peerd_api_connections_closed_total{{reason="refused"}} 0
peerd_api_connections_closed_total{{reason="evicted"}} 2
peerd_api_connections_closed_total{{reason="timed_out"}} 3
# HELP peerd_api_requests_total HTTP requests the API received.
# TYPE peerd_api_requests_total counter
peerd_api_requests_total 42
# HELP peerd_stalls_total Times the agent found it had been stopped or stalled for more than a second.
# TYPE peerd_stalls_total counter
peerd_stalls_total 1
# HELP peerd_socket_reopens_total Times the multicast socket was opened again after an error or a silence.
# TYPE peerd_socket_reopens_total counter
peerd_socket_reopens_total 2
# HELP peerd_build_info Always 1; the version of the running agent is in its label.
# TYPE peerd_build_info gauge
peerd_build_info{{version="{version}"}} 1
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1780000000.123
"#,
            version = env!("CARGO_PKG_VERSION")
        );
        assert_eq!(render(&sample_status(), started), expected);
    }

    #[test]
    fn unknown_socket_figures_are_left_out_not_zero() {
        let status = AgentStatus {
            receive_queue_drops: None,
            receive_buffer_bytes: None,
            ..sample_status()
        };
        let page = render(&status, UNIX_EPOCH);
        assert!(!page.contains("peerd_receive_queue_drops_total"), "{page}");
        assert!(!page.contains("peerd_receive_buffer_bytes"), "{page}");
        assert!(
            page.contains("process_start_time_seconds 0.000\n"),
            "{page}"
        );
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label_value("plain 1.0"), "plain 1.0");
        assert_eq!(
            escape_label_value("a\\b\"c\nd"),
            r#"a\\b\"c\nd"#,
            "each of the three is escaped once"
        );
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        assert_eq!(escape_help("say \"hi\"\\\nbye"), r#"say "hi"\\\nbye"#);
    }

    #[test]
    fn every_family_has_one_help_and_one_type_line() {
        let page = render(&sample_status(), UNIX_EPOCH);
        let helps = page.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types = page.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps, types);
        assert_eq!(helps, 25);
    }
}
