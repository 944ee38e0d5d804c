//! One node's protocol without I/O: its registry, its announce schedule (first beacon, jitter,
//! early answers, goodbye) and its counters, driven by explicit instants. It says what to send
//! and what changed; moving bytes through sockets is `agent`'s job.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tracing::debug;

use crate::api::{AgentStatus, EventCounts, HookCounts, PeerInfo, format_instance, millis};
use crate::beacon::Beacon;
use crate::config::{CROWD_QUIET, Config, EARLY_ANSWER_DELAY, EARLY_ANSWER_WINDOW, JITTER};
use crate::registry::{PeerEvent, Registry};

/// At most one debug line per this period about ignored datagrams, so a flood cannot flood logs.
const IGNORED_LOG_PERIOD: Duration = Duration::from_secs(1);

/// What the node has done since it started; `/v1/status` shows them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    beacons_sent: u64,
    /// Beacons brought forward to answer a newcomer (sent or not).
    early_answers: u64,
    /// Valid beacons from other agents.
    beacons_received: u64,
    /// Our own beacons looped back by the kernel: proof the socket hears the group.
    own_beacons_received: u64,
    /// Datagrams on the port that were not valid beacons.
    datagrams_ignored: u64,
}

pub struct Node {
    config: Config,
    instance: u64,
    registry: Registry,
    started: Instant,
    /// The sequence number of the next beacon.
    sequence: u64,
    /// When the next regular beacon is due.
    next_regular: Instant,
    /// When an early answer to a newcomer is due, if one is.
    next_early: Option<Instant>,
    /// When the latest early answers went, the latest first: they pace the next one.
    early_sent: [Option<Instant>; 2],
    counters: Counters,
    /// Draws the jitter; seeded by the caller so tests can replay a schedule.
    rng: fastrand::Rng,
    ignored_unlogged: u64,
    last_ignored_log: Option<Instant>,
}

impl Node {
    /// A node announcing `config.name` as `instance`, started at `now`: its first beacon is due
    /// at once. `seed` drives the jitter.
    pub fn new(config: Config, instance: u64, seed: u64, now: Instant) -> Node {
        Node {
            registry: Registry::new(instance, config.ttl, now),
            config,
            instance,
            started: now,
            sequence: 0,
            next_regular: now,
            next_early: None,
            early_sent: [None, None],
            counters: Counters::default(),
            rng: fastrand::Rng::with_seed(seed),
            ignored_unlogged: 0,
            last_ignored_log: None,
        }
    }

    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The beacon to send at `now`, if one is due; the next is then scheduled one jittered
    /// interval later. Call it after every input and at every wake-up.
    pub fn poll_beacon(&mut self, now: Instant) -> Option<Vec<u8>> {
        if now < self.next_beacon() {
            return None;
        }
        let beacon = self.beacon(false);
        if self.next_early.take().is_some_and(|early| early <= now) {
            self.early_sent = [Some(now), self.early_sent[0]];
            self.counters.early_answers += 1;
        }
        // Any beacon, early or not, renews this node everywhere: the next is an interval away.
        let factor = 1.0 + JITTER * (2.0 * self.rng.f64() - 1.0);
        self.next_regular = now + self.config.interval.mul_f64(factor);
        Some(beacon)
    }

    fn next_beacon(&self) -> Instant {
        self.next_early
            .map_or(self.next_regular, |early| early.min(self.next_regular))
    }

    /// The goodbye, to send once on shutdown.
    pub fn goodbye(&mut self) -> Vec<u8> {
        self.beacon(true)
    }

    fn beacon(&mut self, goodbye: bool) -> Vec<u8> {
        let beacon = Beacon {
            instance: self.instance,
            sequence: self.sequence,
            goodbye,
            hostname: self.config.name.clone(),
        };
        self.sequence += 1;
        beacon.encode()
    }

    /// Counts a beacon that went out (the agent knows; sending may fail while a link is down).
    pub fn beacon_sent(&mut self) {
        self.counters.beacons_sent += 1;
    }

    /// Takes in one datagram heard from `from` at `now`; returns what it changed, if anything.
    /// A join or a restart also schedules an early beacon, so the newcomer learns of this node
    /// in one round trip instead of an interval.
    pub fn handle_datagram(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<PeerEvent> {
        let beacon = match Beacon::decode(bytes) {
            Ok(beacon) => beacon,
            Err(reason) => {
                self.counters.datagrams_ignored += 1;
                self.ignored_unlogged += 1;
                let due = self
                    .last_ignored_log
                    .is_none_or(|at| now.duration_since(at) >= IGNORED_LOG_PERIOD);
                if due {
                    debug!(%from, %reason, len = bytes.len(), ignored_since_last_log = self.ignored_unlogged, "datagram ignored");
                    self.ignored_unlogged = 0;
                    self.last_ignored_log = Some(now);
                }
                return None;
            }
        };
        if beacon.instance == self.instance {
            self.counters.own_beacons_received += 1;
            return None;
        }
        self.counters.beacons_received += 1;
        debug!(hostname = %beacon.hostname, %from, sequence = beacon.sequence, "beacon received");
        let event = self.registry.observe(&beacon, from, now)?;
        if matches!(
            event,
            PeerEvent::Joined { .. } | PeerEvent::Restarted { .. }
        ) {
            self.answer_early(now);
        }
        Some(event)
    }

    /// Schedules an early beacon to answer a newcomer, paced by [`early_answer_at`].
    fn answer_early(&mut self, now: Instant) {
        let delay = EARLY_ANSWER_DELAY.mul_f64(self.rng.f64());
        let early = early_answer_at(now, delay, self.next_early, self.early_sent);
        debug!("newcomer heard: announcing early");
        self.next_early = Some(early);
    }

    /// Drops the peers whose deadline has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<PeerEvent> {
        self.registry.expire(now)
    }

    /// When the node next has work: a beacon due or a deadline to check.
    pub fn next_wakeup(&self) -> Instant {
        match self.registry.next_deadline() {
            Some(deadline) => deadline.min(self.next_beacon()),
            None => self.next_beacon(),
        }
    }

    /// The live peers as of `now` (when the wall clock read `wall_now`), sorted by hostname.
    /// Call [`handle_timeout`](Self::handle_timeout) first, so none past its deadline is listed.
    pub fn peers(&self, now: Instant, wall_now: SystemTime) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self
            .registry
            .peers()
            .map(|peer| PeerInfo::new(peer, now, wall_now))
            .collect();
        peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        peers
    }

    /// The node itself, as of `now`, with what the agent's funnel and hooks counted.
    pub fn status(&self, now: Instant, events: EventCounts, hooks: HookCounts) -> AgentStatus {
        let counters = self.counters;
        AgentStatus {
            hostname: self.config.name.clone(),
            instance: format_instance(self.instance),
            group: self.config.group_addr().to_string(),
            interface: self.config.interface.to_string(),
            interval_ms: millis(self.config.interval),
            ttl_ms: millis(self.config.ttl),
            peers: self.registry.len(),
            uptime_ms: millis(now.duration_since(self.started)),
            beacons_sent: counters.beacons_sent,
            early_answers: counters.early_answers,
            beacons_received: counters.beacons_received,
            own_beacons_received: counters.own_beacons_received,
            datagrams_ignored: counters.datagrams_ignored,
            events,
            hooks,
            // The API server keeps these, not the node: the agent fills them in.
            api: Default::default(),
        }
    }
}

/// When a node that hears a newcomer at `now` answers with an early beacon. `pending` is the
/// answer already scheduled, if any; `sent` the latest two early answers, the latest first;
/// `delay` is random, up to [`EARLY_ANSWER_DELAY`].
///
/// A lone newcomer is answered at once (after the delay). In a crowd, the answer waits until the
/// crowd goes quiet for [`CROWD_QUIET`], but no longer than a window after the previous answer.
/// Either way one join costs each peer at most one extra beacon, and a crowd at most two a
/// window.
pub fn early_answer_at(
    now: Instant,
    delay: Duration,
    pending: Option<Instant>,
    sent: [Option<Instant>; 2],
) -> Instant {
    let [last, previous] = sent;
    match last.filter(|last| now < *last + EARLY_ANSWER_WINDOW) {
        None => {
            let at = now + delay.min(EARLY_ANSWER_DELAY);
            pending.map_or(at, |pending| pending.min(at))
        }
        Some(last) => {
            let mut at = (now + CROWD_QUIET).min(last + EARLY_ANSWER_WINDOW);
            if let Some(previous) = previous {
                at = at.max(previous + EARLY_ANSWER_WINDOW);
            }
            at.max(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const OWN: u64 = 0xAAAA;

    fn config() -> Config {
        Config::new("self", Ipv4Addr::LOCALHOST)
    }

    fn node(t0: Instant) -> Node {
        Node::new(config(), OWN, 7, t0)
    }

    fn from() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 2], 49001))
    }

    fn beacon_of(hostname: &str, instance: u64, sequence: u64) -> Vec<u8> {
        Beacon {
            instance,
            sequence,
            goodbye: false,
            hostname: hostname.into(),
        }
        .encode()
    }

    fn sent(bytes: &[u8]) -> Beacon {
        Beacon::decode(bytes).expect("the node sends valid beacons")
    }

    #[test]
    fn first_beacon_goes_at_once_then_every_jittered_interval() {
        let t0 = Instant::now();
        let mut node = node(t0);
        let first = sent(&node.poll_beacon(t0).expect("due at start"));
        assert_eq!((first.sequence, first.goodbye), (0, false));
        assert_eq!(first.hostname, "self");
        assert_eq!(node.poll_beacon(t0), None, "one beacon per due time");
        let interval = config().interval;
        let mut last = t0;
        for sequence in 1..50 {
            let next = node.next_wakeup();
            let gap = next - last;
            assert!(
                gap >= interval.mul_f64(1.0 - JITTER) && gap <= interval.mul_f64(1.0 + JITTER),
                "gap {gap:?}"
            );
            assert_eq!(node.poll_beacon(next - Duration::from_nanos(1)), None);
            let beacon = sent(&node.poll_beacon(next).expect("due"));
            assert_eq!(beacon.sequence, sequence);
            last = next;
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let t0 = Instant::now();
        let mut node = node(t0);
        let mut at = t0;
        let mut gaps = Vec::new();
        for _ in 0..20 {
            node.poll_beacon(at);
            gaps.push(node.next_wakeup() - at);
            at = node.next_wakeup();
        }
        gaps.sort();
        assert!(gaps[19] - gaps[0] > config().interval / 20, "{gaps:?}");
    }

    #[test]
    fn a_newcomer_is_answered_within_the_answer_delay_not_the_interval() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0);
        let joined_at = t0 + Duration::from_secs(5);
        let event = node.handle_datagram(&beacon_of("peer", 1, 0), from(), joined_at);
        assert!(matches!(event, Some(PeerEvent::Joined { .. })));
        let answer = node.next_wakeup();
        assert!(answer >= joined_at && answer <= joined_at + EARLY_ANSWER_DELAY);
        assert!(node.poll_beacon(answer).is_some());
    }

    #[test]
    fn a_crowd_of_newcomers_costs_at_most_two_early_beacons_a_second() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0);
        let start = t0 + Duration::from_secs(3);
        let mut sent = Vec::new();
        let mut send_due = |node: &mut Node, until: Instant| {
            while node.next_wakeup() <= until {
                let at = node.next_wakeup();
                if node.poll_beacon(at).is_some() {
                    sent.push(at);
                }
            }
        };
        // Forty newcomers over two seconds, one every 50 ms, then quiet.
        let mut last_join = start;
        for i in 0..40u64 {
            last_join = start + Duration::from_millis(50 * i);
            send_due(&mut node, last_join);
            node.handle_datagram(&beacon_of(&format!("n{i}"), i + 1, 0), from(), last_join);
        }
        send_due(&mut node, last_join + Duration::from_secs(2));
        assert!(
            sent.len() <= 4,
            "{} early beacons for two seconds of joins",
            sent.len()
        );
        for window in sent.windows(3) {
            assert!(window[2] - window[0] >= EARLY_ANSWER_WINDOW, "{sent:?}");
        }
        let answered = sent.last().expect("answered");
        assert!(*answered >= last_join, "the last newcomer was answered too");
        assert!(*answered <= last_join + EARLY_ANSWER_WINDOW);
    }

    #[test]
    fn renewals_and_own_beacons_do_not_bring_the_next_beacon_forward() {
        let t0 = Instant::now();
        let mut node = node(t0);
        let own = node.poll_beacon(t0).expect("due at start");
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), t0);
        let answered = node.next_wakeup();
        node.poll_beacon(answered).expect("the early answer");
        let regular = node.next_wakeup();
        let later = answered + Duration::from_secs(2);
        assert_eq!(node.handle_datagram(&own, from(), later), None);
        assert_eq!(
            node.handle_datagram(&beacon_of("peer", 1, 1), from(), later),
            None
        );
        assert_eq!(node.next_wakeup(), regular);
        assert_eq!(
            node.status(later, EventCounts::default(), HookCounts::default())
                .own_beacons_received,
            1
        );
    }

    #[test]
    fn goodbye_carries_the_next_sequence_and_the_flag() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0);
        let goodbye = sent(&node.goodbye());
        assert_eq!((goodbye.sequence, goodbye.goodbye), (1, true));
    }

    #[test]
    fn wakes_for_the_earlier_of_beacon_and_deadline() {
        let t0 = Instant::now();
        let config = Config {
            interval: Duration::from_secs(60),
            ttl: Duration::from_secs(90),
            ..config()
        };
        let mut node = Node::new(config, OWN, 7, t0);
        node.poll_beacon(t0);
        let later = t0 + Duration::from_secs(5);
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), later);
        node.poll_beacon(node.next_wakeup());
        // The peer's deadline (later + 90 s) comes after the next beacon (about 60 s on).
        assert!(node.next_wakeup() < later + Duration::from_secs(90));
        let expiry = later + Duration::from_secs(90);
        while node.next_wakeup() < expiry {
            let at = node.next_wakeup();
            node.poll_beacon(at);
            assert!(
                node.handle_timeout(at).is_empty(),
                "not before its deadline"
            );
        }
        let events = node.handle_timeout(expiry);
        assert!(matches!(events[..], [PeerEvent::Expired { .. }]));
    }

    #[test]
    fn counts_what_it_hears() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.handle_datagram(b"garbage", from(), t0);
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), t0);
        node.beacon_sent();
        let status = node.status(
            t0 + Duration::from_secs(2),
            EventCounts::default(),
            HookCounts::default(),
        );
        assert_eq!(
            (
                status.datagrams_ignored,
                status.beacons_received,
                status.beacons_sent,
                status.peers
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(status.uptime_ms, 2000);
        assert_eq!(node.peers(t0, SystemTime::now())[0].hostname, "peer");
    }

    #[test]
    fn a_lone_newcomer_is_answered_at_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(early_answer_at(t0, ms(7), None, [None, None]), t0 + ms(7));
        assert_eq!(
            early_answer_at(t0, ms(500), None, [None, None]),
            t0 + EARLY_ANSWER_DELAY
        );
        assert_eq!(
            early_answer_at(t0, ms(9), Some(t0 + ms(3)), [None, None]),
            t0 + ms(3)
        );
        let long_ago = Some(t0 - Duration::from_secs(5));
        assert_eq!(
            early_answer_at(t0, ms(4), None, [long_ago, long_ago]),
            t0 + ms(4)
        );
    }

    #[test]
    fn a_crowd_is_answered_once_it_goes_quiet_and_at_most_twice_a_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let first = Some(t0);
        // Each newcomer of a crowd postpones the answer until the crowd goes quiet...
        let joined = t0 + ms(50);
        let pending = early_answer_at(joined, ms(0), None, [first, None]);
        assert_eq!(pending, joined + CROWD_QUIET);
        let later = t0 + ms(120);
        assert_eq!(
            early_answer_at(later, ms(0), Some(pending), [first, None]),
            later + CROWD_QUIET
        );
        // ...but no longer than a window after the previous answer.
        let late = t0 + ms(950);
        assert_eq!(
            early_answer_at(late, ms(0), None, [first, None]),
            t0 + EARLY_ANSWER_WINDOW
        );
        // A third answer waits for a whole window after the first.
        let second = Some(t0 + ms(300));
        let third = early_answer_at(t0 + ms(400), ms(0), None, [second, first]);
        assert_eq!(third, t0 + EARLY_ANSWER_WINDOW);
    }
}
