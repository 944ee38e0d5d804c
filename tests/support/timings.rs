//! The timings the tests run agents at, and every bound they assert, derived from the agent's
//! own constants (`JITTER`, the early-answer pacing, the wheel's tick) so the two cannot drift.

use std::fmt;
use std::time::Duration;

use peerd::config::{
    BEACON_INTERVAL, CROWD_QUIET, EARLY_ANSWER_WINDOW, JITTER, PEER_TTL, UNICAST_SPREAD,
};
use peerd::registry::wheel::TICK;

/// How late a busy 2-core machine may run an agent that has work to do: a timer that is due, a
/// datagram that arrived, a process that was signalled. Bounds judged by the agents' own clocks
/// (their log timestamps, `first_seen`) allow this much on top of what the protocol promises.
/// The most any figure used of it in the last stress run was 8.5 ms (docs/testing.md).
pub const SCHEDULING_SLACK: Duration = Duration::from_millis(100);

/// How long a test waits for a change to show through `peerd peers` before it fails: one poll
/// is a process start (or a `docker exec`, 50 to 500 ms on a loaded machine) per node. This
/// limits the harness, not the agent; the agent's speed is asserted from its own timestamps.
pub const POLL_SLACK: Duration = Duration::from_secs(5);

/// An agent's beacon interval and ttl, as given to `--interval` and `--ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub interval: Duration,
    pub ttl: Duration,
}

impl Timings {
    /// The scenarios': a ttl passes in a second, and the ttl still outlasts two jittered
    /// intervals (2 x 330 ms), so a lost beacon expires nobody.
    pub const FAST: Timings = Timings {
        interval: Duration::from_millis(300),
        ttl: Duration::from_secs(1),
    };
    /// The agent's defaults, for the soak.
    pub const DEFAULT: Timings = Timings {
        interval: BEACON_INTERVAL,
        ttl: PEER_TTL,
    };
    /// An interval longer than any test: only the early answers can explain a quick discovery.
    pub const SLOW: Timings = Timings {
        interval: Duration::from_secs(60),
        ttl: Duration::from_secs(150),
    };

    /// The flags that set these timings.
    pub fn flags(self) -> [String; 4] {
        [
            "--interval".into(),
            humantime::format_duration(self.interval).to_string(),
            "--ttl".into(),
            humantime::format_duration(self.ttl).to_string(),
        ]
    }

    /// The longest gap between two regular beacons: the interval plus its jitter.
    pub fn longest_gap(self) -> Duration {
        self.interval.mul_f64(1.0 + JITTER)
    }

    /// How long after the newest of nodes started in turn every node knows every other: a
    /// peer answers a newcomer within a crowd's quiet time, or, if it has already answered
    /// twice in the last second, a second after the older answer at most; and a regular beacon
    /// comes within the longest gap anyway.
    pub fn discovery_bound(self) -> Duration {
        self.answer_bound() + SCHEDULING_SLACK
    }

    /// How long after the newest of nodes started in turn, each a unicast target of the
    /// others, every node knows every other: the newcomer's first beacon goes out at once, the
    /// others' next regular beacon within the longest gap, and each unicast copy within the
    /// spread after its beacon.
    pub fn unicast_discovery_bound(self) -> Duration {
        self.longest_gap() + UNICAST_SPREAD + SCHEDULING_SLACK
    }

    fn answer_bound(self) -> Duration {
        EARLY_ANSWER_WINDOW.min(self.longest_gap()).max(CROWD_QUIET)
    }

    /// How long after a cut a silent peer is dropped: its deadline is at most a ttl after its
    /// last beacon, and the sweep may run up to one wheel tick after the deadline.
    pub fn expiry_bound(self) -> Duration {
        self.ttl + TICK + SCHEDULING_SLACK
    }

    /// How long after an agent's last beacon (or its start) it reports that it is not sending:
    /// two of the longest gaps, and the time to notice.
    pub fn not_sending_bound(self) -> Duration {
        self.longest_gap() * 2 + SCHEDULING_SLACK
    }

    /// How long after a heal both sides hear each other again: the next regular beacon of
    /// either side, then the other side's answer.
    pub fn reunion_bound(self) -> Duration {
        self.longest_gap() + self.answer_bound() + SCHEDULING_SLACK
    }
}

/// `300ms / 1s`: interval, then ttl.
impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = humantime::format_duration;
        write!(f, "{} / {}", format(self.interval), format(self.ttl))
    }
}
