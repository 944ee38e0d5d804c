//! A flood at one agent (root only): bin/flood.c sends beacons from made-up hostnames and
//! garbage to the group, inside a namespace of the test's own, while three real peers keep
//! announcing. The victim must stay small and quiet, answer its API promptly, and never lose
//! a real peer. bin/flood-test runs the same check for longer and prints the figures.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::agent::Agent;
use crate::support::netns::Netns;
use crate::support::timings::{POLL_SLACK, SCHEDULING_SLACK, Timings};
use crate::support::{PEERD, unique, wait_for};

/// Short enough for the suite; long enough for made-up peers to expire while more arrive.
const FLOOD: Duration = Duration::from_secs(5);
/// Datagrams per second. A debug-build agent alone takes in about 140,000 garbage datagrams a
/// second here, or 36,000 when each is a join it logs (docs/testing.md): an agent that rejects
/// what it cannot keep can absorb this on a shared 2-core machine, next to three peers.
const RATE: u64 = 20_000;
/// A ttl three intervals long, short enough that made-up peers expire during the flood.
const TIMINGS: Timings = Timings {
    interval: Duration::from_secs(1),
    ttl: Duration::from_secs(3),
};
/// An agent at rest takes a few MiB; a flood may cost it a bounded registry, not more.
const MAX_RSS_KIB: u64 = 32 * 1024;
/// What the victim may log during the flood: a summary now and then, not a line per datagram.
const MAX_LOG_GROWTH: u64 = 1024 * 1024;
/// Per API call, request to reply: the 100 ms the agent promises, plus the harness's slack for
/// a busy machine. The promise is the release build's, and `bin/flood-test` holds it to
/// 100 ms exactly (14 ms measured at 50,000 datagrams/s); this debug build, listing 1,024 peers
/// while `bin/stress-test` kept both cores busy, once took 101 ms (median 62).
const MAX_LATENCY: Duration = Duration::from_millis(100).saturating_add(SCHEDULING_SLACK);
/// What an API call that failed counts as (curl gives up then too).
const FAILED_CALL: Duration = Duration::from_secs(10);
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const GROUP: &str = "239.255.49.1";
const PORT: &str = "24901";
const LEGIT: [&str; 3] = ["node1", "node2", "node3"];

/// One `peerd agent` in the namespace at [`TIMINGS`] on loopback, logging at the default level
/// (info) as deployed: the harness's debug level logs a line per beacon, and under a flood that
/// is the log this test bounds.
fn start_agent(netns: &Netns, name: &str, api: &str) -> Agent {
    let info = [("RUST_LOG", "info")];
    Agent::launch_with_env(netns, name, api, Some("127.0.0.1"), TIMINGS, &[], &info)
}

/// The hostnames `agent` lists, sorted; `None` while its API does not answer.
fn hostnames(agent: &Agent) -> Option<Vec<String>> {
    let mut names: Vec<String> = agent.peers()?.into_iter().map(|p| p.hostname).collect();
    names.sort();
    Some(names)
}

/// A directory for the flood binary and the listings it fetches, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(unique("flood"));
        fs::create_dir(&dir).expect("create the scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Datagrams the kernel dropped at `pid`'s UDP sockets because their receive queue was full:
/// what the agent could not keep up with (the last column of /proc/net/udp, per socket).
fn udp_drops(pid: u32) -> u64 {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
                .filter_map(|link| {
                    let link = link.to_string_lossy().into_owned();
                    Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| {
            fields
                .get(9)
                .is_some_and(|inode| inodes.iter().any(|i| i == inode))
        })
        .filter_map(|fields| fields.last()?.parse::<u64>().ok())
        .sum()
}

/// One look at the victim during or after the flood.
struct Sample {
    rss_kib: u64,
    hwm_kib: u64,
    /// `GET /v1/peers`, request to last byte, as curl times it.
    peers_latency: Duration,
    /// `peerd health` as a user runs it: process start, request, reply (and `ip netns exec`).
    health_latency: Duration,
    /// How many of node1..node3 the listing held.
    legit_listed: usize,
}

fn sample(netns: &Netns, victim: &Agent, body: &Path) -> Sample {
    let (rss_kib, hwm_kib) = memory_kib(victim.pid());
    let url = format!("http://{}/v1/peers", victim.api());
    let curl = netns
        .command("curl")
        .args(["-s", "--max-time", "10", "-w", "%{time_total}", "-o"])
        .arg(body)
        .arg(&url)
        .output()
        .expect("run curl in the namespace (the test needs curl)");
    let peers_latency = String::from_utf8_lossy(&curl.stdout)
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|_| curl.status.success())
        .map_or(FAILED_CALL, Duration::from_secs_f64);
    let listing = fs::read(body).unwrap_or_default();
    let legit_listed = LEGIT
        .iter()
        .filter(|name| contains(&listing, format!("\"hostname\":\"{name}\"").as_bytes()))
        .count();
    let started = Instant::now();
    let health = netns
        .command(PEERD)
        .args(["health", "--json", "--api", victim.api()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run peerd health");
    let health_latency = if health.success() {
        started.elapsed()
    } else {
        FAILED_CALL
    };
    Sample {
        rss_kib,
        hwm_kib,
        peers_latency,
        health_latency,
        legit_listed,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// bin/flood.c, compiled for this test into `dir`.
fn build_flood(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("bin/flood.c");
    let binary = dir.join("flood");
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run cc: a C compiler builds bin/flood.c (Rust needs one to link anyway)");
    assert!(
        out.status.success(),
        "cc {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}

/// The first_seen the victim reports for each legitimate peer: an expiry and a rejoin, even
/// one between two samples, would change it.
fn legit_first_seen(victim: &Agent) -> Vec<(String, String)> {
    let peers = victim.peers().unwrap_or_default();
    let mut seen: Vec<(String, String)> = peers
        .into_iter()
        .filter(|p| LEGIT.contains(&p.hostname.as_str()))
        .map(|p| (p.hostname, p.first_seen))
        .collect();
    seen.sort();
    seen
}

/// The four agents, started together; returns once each lists the other three.
fn start_agents(netns: &Netns) -> (Agent, Vec<Agent>) {
    let victim = start_agent(netns, "victim", "127.0.0.1:25200");
    let legit: Vec<Agent> = LEGIT
        .iter()
        .zip(25201..)
        .map(|(name, port)| start_agent(netns, name, &format!("127.0.0.1:{port}")))
        .collect();
    let everyone: Vec<&Agent> = std::iter::once(&victim).chain(&legit).collect();
    let whole = wait_for(POLL_SLACK + TIMINGS.ttl, || {
        everyone
            .iter()
            .all(|agent| {
                let mut others: Vec<String> = everyone
                    .iter()
                    .filter(|a| a.name != agent.name)
                    .map(|a| a.name.clone())
                    .collect();
                others.sort();
                hostnames(agent) == Some(others)
            })
            .then_some(())
    });
    assert!(
        whole.is_some(),
        "the four agents never all listed each other"
    );
    // Each real peer heard twice by the victim, as a running cluster's are: a peer heard only
    // once may make room for a newcomer at --max-peers, and the flood brings a million. Twice:
    // renewed since it joined, so with a sequence past the one it joined with (which need not
    // be 0: a first beacon can come before the victim's socket opens).
    let joined_with = victim.peers().expect("the victim answers");
    let settled = wait_for(POLL_SLACK + TIMINGS.ttl, || {
        let peers = victim.peers()?;
        let twice = LEGIT.iter().all(|name| {
            let then = joined_with.iter().find(|p| p.hostname == *name);
            peers
                .iter()
                .any(|p| p.hostname == *name && then.is_some_and(|then| p.sequence > then.sequence))
        });
        twice.then_some(())
    });
    assert!(
        settled.is_some(),
        "the victim never heard each real peer twice"
    );
    (victim, legit)
}

/// What the flood did to the victim.
struct Figures {
    /// The flood generator's first line: datagrams sent, rate, hostnames.
    flood_report: String,
    flood_failure: Option<String>,
    /// During the flood, then one taken two ttls after it.
    samples: Vec<Sample>,
    /// Kernel drops at the victim's socket during the flood.
    drops: u64,
    log_growth: u64,
    /// The victim's log lines saying a legitimate peer expired.
    legit_expiries: Vec<String>,
    first_seen_before: Vec<(String, String)>,
    first_seen_after: Vec<(String, String)>,
    alive: bool,
}

impl Figures {
    fn max_hwm_kib(&self) -> u64 {
        self.samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0)
    }

    fn max_peers_latency(&self) -> Duration {
        let latencies = self.samples.iter().map(|s| s.peers_latency);
        latencies.max().unwrap_or_default()
    }

    fn max_health_latency(&self) -> Duration {
        let latencies = self.samples.iter().map(|s| s.health_latency);
        latencies.max().unwrap_or_default()
    }

    fn missing(&self) -> usize {
        let missing = self.samples.iter().filter(|s| s.legit_listed < LEGIT.len());
        missing.count()
    }

    fn report(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let during = &self.samples[..self.samples.len() - 1];
        let after = self.samples.last().expect("a sample after the flood");
        let median = |latency: fn(&Sample) -> Duration| {
            let mut values: Vec<Duration> = during.iter().map(latency).collect();
            values.sort();
            let middle = values.len().saturating_sub(1) / 2;
            values.get(middle).copied().unwrap_or_default().as_millis()
        };
        let max_rss = during.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        let mut report = String::new();
        let _ = writeln!(report, "{}", self.flood_report);
        let _ = writeln!(
            report,
            "max RSS (VmHWM) {:.1} MiB, max VmRSS sampled {:.1} MiB, VmRSS {:?} after the flood {:.1} MiB",
            mib(self.max_hwm_kib()),
            mib(max_rss),
            2 * TIMINGS.ttl,
            mib(after.rss_kib)
        );
        let _ = writeln!(
            report,
            "dropped at the victim's socket (queue full): {}; log growth during the flood: {} bytes",
            self.drops, self.log_growth
        );
        let _ = writeln!(
            report,
            "GET /v1/peers max {} ms, median {} ms; peerd health max {} ms, median {} ms ({} samples)",
            self.max_peers_latency().as_millis(),
            median(|s| s.peers_latency),
            self.max_health_latency().as_millis(),
            median(|s| s.health_latency),
            self.samples.len()
        );
        let _ = writeln!(
            report,
            "legit expiries at the victim: {}; samples missing a legit peer: {}",
            self.legit_expiries.len(),
            self.missing()
        );
        report
    }

    /// Every bound the flood broke.
    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if !self.alive {
            failures.push("the victim died".to_owned());
        }
        if let Some(failure) = &self.flood_failure {
            failures.push(format!("the flood failed: {failure}"));
        }
        if !self.legit_expiries.is_empty() {
            failures.push(format!(
                "legitimate peers expired: {:?}",
                self.legit_expiries
            ));
        }
        if self.missing() > 0 {
            failures.push(format!(
                "a legitimate peer was missing from {} samples",
                self.missing()
            ));
        }
        if self.first_seen_before != self.first_seen_after {
            failures.push(format!(
                "legitimate peers came back new (first_seen {:?} -> {:?})",
                self.first_seen_before, self.first_seen_after
            ));
        }
        let (peers, health) = (self.max_peers_latency(), self.max_health_latency());
        if peers > MAX_LATENCY || health > MAX_LATENCY {
            failures.push(format!(
                "an API call took {} ms (GET /v1/peers) / {} ms (peerd health), over {MAX_LATENCY:?}",
                peers.as_millis(),
                health.as_millis()
            ));
        }
        if self.max_hwm_kib() > MAX_RSS_KIB {
            failures.push(format!(
                "VmHWM reached {} KiB, over {MAX_RSS_KIB} KiB",
                self.max_hwm_kib()
            ));
        }
        if self.log_growth > MAX_LOG_GROWTH {
            failures.push(format!(
                "the log grew {} bytes during the flood, over {MAX_LOG_GROWTH}",
                self.log_growth
            ));
        }
        failures
    }
}

/// Floods the group for [`FLOOD`] while sampling `victim`, then waits two ttls and samples it
/// once more.
fn flood(netns: &Netns, victim: &mut Agent, flood_binary: &Path, body: &Path) -> Figures {
    let first_seen_before = legit_first_seen(victim);
    let log_before = victim.log_bytes();
    let drops_before = udp_drops(victim.pid());
    let flood = netns
        .command(flood_binary.to_str().expect("a UTF-8 temp path"))
        .args(["--interface", "127.0.0.1", "--group", GROUP, "--port", PORT])
        .args(["--seconds", &FLOOD.as_secs().to_string()])
        .args(["--rate", &RATE.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the flood");
    let flood_started = Instant::now();
    let mut samples = Vec::new();
    while flood_started.elapsed() < FLOOD {
        samples.push(sample(netns, victim, body));
        std::thread::sleep(SAMPLE_EVERY);
    }
    let flood = flood.wait_with_output().expect("the flood ends by itself");
    let log_growth = victim.log_bytes().saturating_sub(log_before);
    let drops = udp_drops(victim.pid()).saturating_sub(drops_before);

    // Two ttls: every made-up peer has expired, and what it cost should be given back.
    std::thread::sleep(2 * TIMINGS.ttl);
    let alive = victim.alive();
    samples.push(sample(netns, victim, body));
    let legit_expiries = victim
        .log()
        .lines()
        .filter(|line| {
            LEGIT
                .iter()
                .any(|name| line.contains(&format!("peer expired hostname={name} ")))
        })
        .map(str::to_owned)
        .collect();
    Figures {
        flood_report: String::from_utf8_lossy(&flood.stdout)
            .lines()
            .next()
            .unwrap_or("no report from the flood")
            .to_owned(),
        flood_failure: (!flood.status.success())
            .then(|| String::from_utf8_lossy(&flood.stderr).into_owned()),
        samples,
        drops,
        log_growth,
        legit_expiries,
        first_seen_before,
        first_seen_after: legit_first_seen(victim),
        alive,
    }
}

#[test]
fn a_flood_of_made_up_peers_and_garbage_leaves_the_agent_small_quiet_and_loyal() {
    let Some(netns) = Netns::create("flood") else {
        return;
    };
    let scratch = Scratch::new();
    let flood_binary = build_flood(&scratch.0);
    let (mut victim, _legit) = start_agents(&netns);
    let figures = flood(
        &netns,
        &mut victim,
        &flood_binary,
        &scratch.0.join("peers.json"),
    );
    let failures = figures.failures();
    assert!(
        failures.is_empty(),
        "under the flood:\n- {}\n{}",
        failures.join("\n- "),
        figures.report()
    );
    eprintln!("---- flood figures ----\n{}", figures.report());
}
