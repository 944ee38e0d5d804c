//! One node's protocol without I/O: its registry, its announce schedule (first beacon, jitter,
//! early answers, goodbye) and its counters, driven by explicit instants. It says what to send
//! and what changed; moving bytes through sockets is `agent`'s job.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, warn};

use crate::api::{
    AgentStatus, ConflictInfo, EventCounts, HookCounts, PeerInfo, RefusedCounts, format_instance,
    millis,
};
use crate::config::{CROWD_QUIET, Config, EARLY_ANSWER_DELAY, EARLY_ANSWER_WINDOW, JITTER};
use crate::node::admission::{self, unix_millis};
use crate::registry::{PeerEvent, Refusal, Registry};
use crate::throttle::Throttle;
use crate::wire::beacon::{Beacon, DecodeError};

/// At most one debug line per this period about malformed datagrams, so a flood cannot flood
/// logs.
const IGNORED_LOG_PERIOD: Duration = Duration::from_secs(1);
/// At most one warning per this period about refused signatures and replays: each is a
/// misconfiguration or an attack worth a line, never a line per datagram.
const REFUSED_LOG_PERIOD: Duration = Duration::from_secs(10);

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
    /// Refused, here or by the registry, by reason.
    refused: RefusedCounts,
    stalls: u64,
}

/// What the agent knows of its socket, for `/v1/status`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SocketStats {
    pub receive_queue_drops: Option<u64>,
    pub receive_buffer_bytes: Option<usize>,
    pub reopens: u64,
}

/// Another instance announcing this node's own hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Impostor {
    instance: u64,
    address: SocketAddr,
    last_seen: Instant,
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
    malformed_log: Throttle,
    auth_log: Throttle,
    replay_log: Throttle,
    /// When our own beacon last came back over the loop (or the node started, or its socket
    /// was reopened): the silence watchdog's reference.
    heard_self: Instant,
    /// Beacons that went out since our own last came back: the watchdog's evidence. A link
    /// that is down fails the sends, so its silence is no sign of a broken socket.
    sent_unheard: u32,
    impostor: Option<Impostor>,
}

impl Node {
    /// A node announcing `config.name` as `instance`, started at `now`: its first beacon is due
    /// at once. `seed` drives the jitter.
    pub fn new(config: Config, instance: u64, seed: u64, now: Instant) -> Node {
        Node {
            registry: Registry::new(config.ttl, now).limit_peers(config.max_peers),
            config,
            instance,
            started: now,
            sequence: 0,
            next_regular: now,
            next_early: None,
            early_sent: [None, None],
            counters: Counters::default(),
            rng: fastrand::Rng::with_seed(seed),
            malformed_log: Throttle::new(IGNORED_LOG_PERIOD),
            auth_log: Throttle::new(REFUSED_LOG_PERIOD),
            replay_log: Throttle::new(REFUSED_LOG_PERIOD),
            heard_self: now,
            sent_unheard: 0,
            impostor: None,
        }
    }

    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The beacon to send at `now` (when the wall clock read `wall_now`), if one is due; the
    /// next is then scheduled one jittered interval later. Call it after every input and at
    /// every wake-up.
    pub fn poll_beacon(&mut self, now: Instant, wall_now: SystemTime) -> Option<Vec<u8>> {
        if now < self.next_beacon() {
            return None;
        }
        let beacon = self.beacon(false, wall_now);
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
    pub fn goodbye(&mut self, wall_now: SystemTime) -> Vec<u8> {
        self.beacon(true, wall_now)
    }

    /// Our beacon, signed when we hold keys. It says our ttl, so peers with other timings
    /// keep us listed as long as we mean to.
    fn beacon(&mut self, goodbye: bool, wall_now: SystemTime) -> Vec<u8> {
        let keys = &self.config.keys;
        let beacon = Beacon {
            instance: self.instance,
            sequence: self.sequence,
            goodbye,
            migrating: !keys.is_empty() && self.config.accept_unauthenticated,
            hostname: self.config.name.clone(),
            ttl: Some(self.config.ttl),
            timestamp: (!keys.is_empty()).then(|| unix_millis(wall_now)),
            tags: self.config.tags.clone(),
            auth: None,
        };
        self.sequence += 1;
        let mut bytes = beacon.encode();
        keys.sign(&mut bytes);
        bytes
    }

    /// Counts a beacon that went out (the agent knows; sending may fail while a link is down).
    pub fn beacon_sent(&mut self) {
        self.counters.beacons_sent += 1;
        self.sent_unheard = self.sent_unheard.saturating_add(1);
    }

    /// Takes in one datagram heard from `from` at `now` (when the wall clock read `wall_now`);
    /// returns what it changed, if anything. A join or a restart also schedules an early
    /// beacon, so the newcomer learns of this node in one round trip instead of an interval.
    ///
    /// With keys, only beacons whose tag verifies and whose timestamp is within the replay
    /// window get through (and, with `accept_unauthenticated`, unsigned ones); without, only
    /// unsigned ones and those of agents migrating to a secret. Everything else is counted by
    /// reason and logged at a bounded rate.
    pub fn handle_datagram(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        now: Instant,
        wall_now: SystemTime,
    ) -> Option<PeerEvent> {
        let mut beacon = match Beacon::decode(bytes) {
            Ok(beacon) => beacon,
            Err(reason) => {
                let refused = &mut self.counters.refused;
                match reason {
                    DecodeError::Oversized => refused.oversized += 1,
                    DecodeError::UnsupportedVersion(_) => refused.version += 1,
                    DecodeError::InvalidHostname => refused.hostname += 1,
                    DecodeError::NotABeacon
                    | DecodeError::Truncated
                    | DecodeError::MalformedExtension => refused.malformed += 1,
                }
                if let Some(suppressed) = self.malformed_log.admit(now) {
                    debug!(%from, %reason, len = bytes.len(), ignored_since_last_log = suppressed, "datagram ignored");
                }
                return None;
            }
        };
        let (keys, accept) = (&self.config.keys, self.config.accept_unauthenticated);
        if let Err(why) = admission::admit(&mut beacon, bytes, keys, accept, wall_now) {
            let (count, log) = if why.is_replay() {
                (&mut self.counters.refused.replay, &mut self.replay_log)
            } else {
                (
                    &mut self.counters.refused.authentication,
                    &mut self.auth_log,
                )
            };
            *count += 1;
            if let Some(suppressed) = log.admit(now) {
                warn!(hostname = %beacon.hostname, %from, refused_since_last_log = suppressed, "beacon refused: {why}");
            }
            return None;
        }
        if beacon.instance == self.instance {
            self.counters.own_beacons_received += 1;
            self.heard_self = now;
            self.sent_unheard = 0;
            return None;
        }
        if beacon.hostname == self.config.name {
            self.impostor_heard(&beacon, from, now);
            return None;
        }
        debug!(hostname = %beacon.hostname, %from, sequence = beacon.sequence, "beacon received");
        let refused = &mut self.counters.refused;
        let event = match self.registry.observe(&beacon, from, now) {
            Ok(event) => event,
            Err(Refusal::Replay) => {
                refused.replay += 1;
                return None;
            }
            Err(Refusal::Capacity) => {
                refused.capacity += 1;
                return None;
            }
            Err(Refusal::Unsigned) => {
                refused.authentication += 1;
                return None;
            }
        };
        self.counters.beacons_received += 1;
        let event = event?;
        if matches!(
            event,
            PeerEvent::Joined { .. } | PeerEvent::Restarted { .. }
        ) {
            self.answer_early(now);
        }
        Some(event)
    }

    /// Another instance announces our hostname: a conflict to report, never a peer to list.
    /// Warned once per instance, and again once it has been silent for a ttl.
    fn impostor_heard(&mut self, beacon: &Beacon, from: SocketAddr, now: Instant) {
        self.counters.refused.own_hostname += 1;
        let known = self.impostor.is_some_and(|known| {
            known.instance == beacon.instance && known.last_seen + self.config.ttl > now
        });
        if !known {
            warn!(hostname = %beacon.hostname, other_address = %from.ip(), other_instance = %format_instance(beacon.instance),
                "hostname conflict: another instance announces this agent's own hostname; give one of them another --name");
        }
        self.impostor = Some(Impostor {
            instance: beacon.instance,
            address: from,
            last_seen: now,
        });
    }

    /// When our own beacon last came back: a node that sends but has not heard itself for a
    /// ttl has a socket that no longer hears the group.
    ///
    /// Only when at least two beacons went out meanwhile: sends that fail (a link down, a
    /// container disconnected from its network) explain the silence, and reopening the socket
    /// then would only put its recovery behind a retry.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let silence = now.saturating_duration_since(self.heard_self);
        (self.sent_unheard >= 2 && silence >= self.config.ttl).then_some(silence)
    }

    /// The socket was reopened at `now`: the silence watchdog starts again.
    pub fn socket_reopened(&mut self, now: Instant) {
        self.heard_self = now;
        self.sent_unheard = 0;
        self.next_regular = self.next_regular.min(now);
    }

    /// The agent was stopped (SIGSTOP, a stalled host) and runs again at `now`. Time it
    /// could not listen does not count against its peers: each gets a ttl from now. It
    /// announces itself at once: peers that expired it meanwhile answer early, so it re-learns
    /// them in a round trip.
    pub fn handle_stall(&mut self, now: Instant) {
        self.counters.stalls += 1;
        self.registry.give_time(now);
        self.heard_self = now;
        self.sent_unheard = 0;
        self.next_regular = now;
    }

    /// Datagrams that queued up while the agent was stopped, dropped unread.
    pub fn stale_dropped(&mut self, count: u64) {
        self.counters.refused.stale += count;
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

    /// When the node next has work: a beacon due, or a deadline to check, the latter up to
    /// [`sweep_slack`](Self::sweep_slack) late. Most deadlines the registry holds are stale (the
    /// peer beaconed since, and its entry only moves on), and the datagrams that arrive anyway
    /// sweep what is due ([`sweep_due`](Self::sweep_due)); so with peers talking, checking
    /// deadlines costs no wake-up of its own, and a silent peer still expires on time but for
    /// the slack.
    pub fn next_wakeup(&self) -> Instant {
        match self.registry.next_deadline() {
            Some(deadline) => (deadline + self.sweep_slack()).min(self.next_beacon()),
            None => self.next_beacon(),
        }
    }

    /// How late a deadline may be checked when no datagram comes to check it sooner: a 64th of
    /// the ttl (547 ms at the default 35 s, 16 ms at 1 s), at most a second.
    pub fn sweep_slack(&self) -> Duration {
        (self.config.ttl / 64).min(Duration::from_secs(1))
    }

    /// Whether a deadline is due by `now`: the agent sweeps after reading datagrams then.
    pub fn sweep_due(&self, now: Instant) -> bool {
        self.registry
            .next_deadline()
            .is_some_and(|deadline| deadline <= now)
    }

    /// The live peers as of `now` (when the wall clock read `wall_now`), sorted by hostname.
    /// Call [`handle_timeout`](Self::handle_timeout) first, so none past its deadline is listed.
    pub fn peers(&self, now: Instant, wall_now: SystemTime) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self
            .registry
            .peers()
            .map(|peer| PeerInfo::new(&peer, now, wall_now))
            .collect();
        peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        peers
    }

    /// The node itself, as of `now`, with what the agent's funnel, hooks and socket counted.
    pub fn status(
        &self,
        now: Instant,
        events: EventCounts,
        hooks: HookCounts,
        socket: SocketStats,
    ) -> AgentStatus {
        let counters = self.counters;
        let refused = counters.refused;
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
            datagrams_ignored: refused.total(),
            refused,
            receive_queue_drops: socket.receive_queue_drops,
            receive_buffer_bytes: socket.receive_buffer_bytes,
            max_peers: self.config.max_peers,
            key_ids: self.config.keys.ids(),
            accept_unauthenticated: self.config.accept_unauthenticated,
            hostname_conflict: self
                .impostor
                .filter(|impostor| impostor.last_seen + self.config.ttl > now)
                .map(|impostor| ConflictInfo {
                    address: impostor.address.ip().to_string(),
                    instance: format_instance(impostor.instance),
                    last_seen_ms_ago: millis(now.saturating_duration_since(impostor.last_seen)),
                }),
            stalls: counters.stalls,
            socket_reopens: socket.reopens,
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
    use crate::config::REPLAY_WINDOW;

    const OWN: u64 = 0xAAAA;
    /// The wall clock of these tests: only signed beacons look at it.
    const WALL: SystemTime = SystemTime::UNIX_EPOCH;

    fn config() -> Config {
        Config::new("self", Ipv4Addr::LOCALHOST)
    }

    fn node(t0: Instant) -> Node {
        Node::new(config(), OWN, 7, t0)
    }

    fn from() -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 2], 24901))
    }

    fn beacon_of(hostname: &str, instance: u64, sequence: u64) -> Vec<u8> {
        Beacon {
            instance,
            sequence,
            goodbye: false,
            hostname: hostname.into(),
            ..Beacon::default()
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
        let first = sent(&node.poll_beacon(t0, WALL).expect("due at start"));
        assert_eq!((first.sequence, first.goodbye), (0, false));
        assert_eq!(first.hostname, "self");
        assert_eq!(node.poll_beacon(t0, WALL), None, "one beacon per due time");
        let interval = config().interval;
        let mut last = t0;
        for sequence in 1..50 {
            let next = node.next_wakeup();
            let gap = next - last;
            assert!(
                gap >= interval.mul_f64(1.0 - JITTER) && gap <= interval.mul_f64(1.0 + JITTER),
                "gap {gap:?}"
            );
            assert_eq!(node.poll_beacon(next - Duration::from_nanos(1), WALL), None);
            let beacon = sent(&node.poll_beacon(next, WALL).expect("due"));
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
            node.poll_beacon(at, WALL);
            gaps.push(node.next_wakeup() - at);
            at = node.next_wakeup();
        }
        gaps.sort();
        assert!(gaps[19] - gaps[0] > config().interval / 20, "{gaps:?}");
    }

    #[test]
    fn a_deadline_waits_a_slack_for_a_datagram_to_check_it_and_still_expires_the_peer() {
        let t0 = Instant::now();
        let config = Config {
            interval: Duration::from_secs(3600),
            ..config()
        };
        let ttl = config.ttl;
        let mut node = Node::new(config, OWN, 7, t0);
        node.handle_datagram(&beacon_of("peer", 9, 0), from(), t0, WALL);
        // Our first beacon and the early answer to the newcomer; the next is an hour away.
        let answered = t0 + EARLY_ANSWER_DELAY;
        while node.poll_beacon(answered, WALL).is_some() {}
        assert_eq!(node.sweep_slack(), ttl / 64);
        assert_eq!(
            node.next_wakeup(),
            t0 + ttl + ttl / 64,
            "the timer waits the slack"
        );
        // A datagram arriving meanwhile finds the deadline due and sweeps it on time.
        assert!(!node.sweep_due(t0 + ttl - Duration::from_nanos(1)));
        assert!(node.sweep_due(t0 + ttl));
        let expired = node.handle_timeout(t0 + ttl);
        assert!(
            matches!(expired.as_slice(), [PeerEvent::Expired { peer }] if peer.hostname == "peer")
        );
    }

    #[test]
    fn a_newcomer_is_answered_within_the_answer_delay_not_the_interval() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0, WALL);
        let joined_at = t0 + Duration::from_secs(5);
        let event = node.handle_datagram(&beacon_of("peer", 1, 0), from(), joined_at, WALL);
        assert!(matches!(event, Some(PeerEvent::Joined { .. })));
        let answer = node.next_wakeup();
        assert!(answer >= joined_at && answer <= joined_at + EARLY_ANSWER_DELAY);
        assert!(node.poll_beacon(answer, WALL).is_some());
    }

    #[test]
    fn a_crowd_of_newcomers_costs_at_most_two_early_beacons_a_second() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0, WALL);
        let start = t0 + Duration::from_secs(3);
        let mut sent = Vec::new();
        let mut send_due = |node: &mut Node, until: Instant| {
            while node.next_wakeup() <= until {
                let at = node.next_wakeup();
                if node.poll_beacon(at, WALL).is_some() {
                    sent.push(at);
                }
            }
        };
        // Forty newcomers over two seconds, one every 50 ms, then quiet.
        let mut last_join = start;
        for i in 0..40u64 {
            last_join = start + Duration::from_millis(50 * i);
            send_due(&mut node, last_join);
            node.handle_datagram(
                &beacon_of(&format!("n{i}"), i + 1, 0),
                from(),
                last_join,
                WALL,
            );
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
        let own = node.poll_beacon(t0, WALL).expect("due at start");
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), t0, WALL);
        let answered = node.next_wakeup();
        node.poll_beacon(answered, WALL).expect("the early answer");
        let regular = node.next_wakeup();
        let later = answered + Duration::from_secs(2);
        assert_eq!(node.handle_datagram(&own, from(), later, WALL), None);
        assert_eq!(
            node.handle_datagram(&beacon_of("peer", 1, 1), from(), later, WALL),
            None
        );
        assert_eq!(node.next_wakeup(), regular);
        assert_eq!(
            node.status(
                later,
                EventCounts::default(),
                HookCounts::default(),
                SocketStats::default(),
            )
            .own_beacons_received,
            1
        );
    }

    #[test]
    fn goodbye_carries_the_next_sequence_and_the_flag() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0, WALL);
        let goodbye = sent(&node.goodbye(WALL));
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
        node.poll_beacon(t0, WALL);
        let later = t0 + Duration::from_secs(5);
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), later, WALL);
        node.poll_beacon(node.next_wakeup(), WALL);
        // The peer's deadline (later + 90 s) comes after the next beacon (about 60 s on).
        assert!(node.next_wakeup() < later + Duration::from_secs(90));
        let expiry = later + Duration::from_secs(90);
        while node.next_wakeup() < expiry {
            let at = node.next_wakeup();
            node.poll_beacon(at, WALL);
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
        node.handle_datagram(b"garbage", from(), t0, WALL);
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), t0, WALL);
        node.beacon_sent();
        let status = node.status(
            t0 + Duration::from_secs(2),
            EventCounts::default(),
            HookCounts::default(),
            SocketStats::default(),
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

    /// A node called `name` holding `secrets` (the first signs).
    fn keyed(name: &str, instance: u64, secrets: &[&[u8]], accept_unauthenticated: bool) -> Node {
        let config = Config {
            keys: crate::wire::auth::Keyring::new(secrets),
            accept_unauthenticated,
            ..Config::new(name, Ipv4Addr::LOCALHOST)
        };
        Node::new(config, instance, 7, Instant::now())
    }

    const KEY: &[u8] = b"a shared secret of 32 bytes, ok!";
    const OTHER_KEY: &[u8] = b"somebody else's secret, 32 bytes";

    fn now_wall() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000)
    }

    /// Whether `receiver` lists `sender` after one beacon of it.
    fn hears(sender: &mut Node, receiver: &mut Node) -> bool {
        let t = Instant::now();
        let bytes = sender
            .poll_beacon(t, now_wall())
            .expect("first beacon is due");
        receiver.handle_datagram(&bytes, from(), t, now_wall());
        receiver.registry.len() == 1
    }

    fn refused(node: &Node) -> RefusedCounts {
        let status = node.status(
            Instant::now(),
            EventCounts::default(),
            HookCounts::default(),
            SocketStats::default(),
        );
        assert_eq!(status.datagrams_ignored, status.refused.total());
        status.refused
    }

    #[test]
    fn signed_nodes_hear_each_other_and_refuse_the_unsigned_and_wrongly_signed() {
        let mut a = keyed("a", 1, &[KEY], false);
        let mut b = keyed("b", 2, &[KEY], false);
        assert!(hears(&mut a, &mut b));
        let mut plain = keyed("plain", 3, &[], false);
        let mut stranger = keyed("stranger", 4, &[OTHER_KEY], false);
        let mut c = keyed("c", 5, &[KEY], false);
        assert!(!hears(&mut plain, &mut c));
        assert!(!hears(&mut stranger, &mut c));
        assert_eq!(refused(&c).authentication, 2);
        // And an agent without a secret ignores signed beacons: a misconfigured node is
        // visible on both sides, not half-listed.
        let mut d = keyed("d", 6, &[KEY], false);
        let mut plain = keyed("plain", 7, &[], false);
        assert!(!hears(&mut d, &mut plain));
        assert_eq!(refused(&plain).authentication, 1);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let mut a = keyed("a", 1, &[KEY], false);
        let bytes = a.poll_beacon(Instant::now(), now_wall()).expect("due");
        let mut b = keyed("b", 2, &[KEY], false);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            b.handle_datagram(&flipped, from(), Instant::now(), now_wall());
            assert_eq!(b.registry.len(), 0, "bit {bit}");
        }
        assert_eq!(refused(&b).total(), (bytes.len() * 8) as u64);
    }

    #[test]
    fn migrating_nodes_hear_and_are_heard_by_everyone() {
        let mut migrating = keyed("m", 1, &[KEY], true);
        let mut plain = keyed("plain", 2, &[], false);
        let mut strict = keyed("strict", 3, &[KEY], false);
        assert!(hears(&mut plain, &mut migrating));
        let mut migrating = keyed("m", 1, &[KEY], true);
        assert!(hears(&mut migrating, &mut plain));
        let mut migrating = keyed("m", 1, &[KEY], true);
        assert!(hears(&mut strict, &mut migrating));
        let mut strict = keyed("strict", 3, &[KEY], false);
        assert!(hears(&mut migrating, &mut strict));
    }

    #[test]
    fn a_rotated_key_keeps_everyone_together() {
        const NEW: &[u8] = b"the new secret, also 32 bytes ok";
        // Step 1: the new key is installed everywhere, second. Step 2: it moves first, node
        // by node. Step 3: the old key goes.
        let mut old_first = keyed("a", 1, &[KEY, NEW], false);
        let mut new_first = keyed("b", 2, &[NEW, KEY], false);
        let mut new_only = keyed("c", 3, &[NEW], false);
        assert!(hears(&mut old_first, &mut new_first));
        let mut new_first = keyed("b", 2, &[NEW, KEY], false);
        assert!(hears(&mut new_first, &mut new_only));
        let mut new_first = keyed("b", 2, &[NEW, KEY], false);
        let mut old_first = keyed("a", 1, &[KEY, NEW], false);
        assert!(hears(&mut new_first, &mut old_first));
    }

    #[test]
    fn signed_beacons_outside_the_replay_window_are_refused() {
        let mut a = keyed("a", 1, &[KEY], false);
        let t = Instant::now();
        let bytes = a.poll_beacon(t, now_wall()).expect("due");
        let mut b = keyed("b", 2, &[KEY], false);
        let late = now_wall() + REPLAY_WINDOW + Duration::from_millis(1);
        b.handle_datagram(&bytes, from(), t, late);
        let early = now_wall() - REPLAY_WINDOW - Duration::from_millis(1);
        b.handle_datagram(&bytes, from(), t, early);
        assert_eq!(b.registry.len(), 0);
        assert_eq!(refused(&b).replay, 2);
        b.handle_datagram(&bytes, from(), t, now_wall() + REPLAY_WINDOW);
        assert_eq!(b.registry.len(), 1, "at the edge of the window");
    }

    #[test]
    fn our_own_hostname_from_another_instance_is_a_conflict_never_a_peer() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.handle_datagram(&beacon_of("self", 99, 0), from(), t0, WALL);
        assert!(node.peers(t0, WALL).is_empty());
        let status = node.status(
            t0,
            EventCounts::default(),
            HookCounts::default(),
            SocketStats::default(),
        );
        assert_eq!(status.refused.own_hostname, 1);
        let conflict = status.hostname_conflict.expect("reported");
        assert_eq!(conflict.instance, format_instance(99));
        let later = t0 + config().ttl;
        let status = node.status(
            later,
            EventCounts::default(),
            HookCounts::default(),
            SocketStats::default(),
        );
        assert_eq!(status.hostname_conflict, None, "silent for a ttl: over");
    }

    #[test]
    fn the_watchdog_fires_after_a_ttl_without_our_own_beacon_only_if_beacons_went_out() {
        let t0 = Instant::now();
        let mut node = node(t0);
        let ttl = config().ttl;
        assert_eq!(node.silent_for(t0 + ttl), None, "nothing sent yet");
        let bytes = node.poll_beacon(t0, WALL).expect("due");
        node.beacon_sent();
        node.handle_datagram(&bytes, from(), t0 + Duration::from_millis(1), WALL);
        let later = t0 + ttl + Duration::from_millis(1);
        node.beacon_sent();
        assert_eq!(
            node.silent_for(later),
            None,
            "one beacon unheard is not yet a pattern"
        );
        node.beacon_sent();
        assert_eq!(node.silent_for(t0 + ttl), None, "heard within the ttl");
        assert!(node.silent_for(later).is_some());
        node.socket_reopened(later);
        assert_eq!(node.silent_for(later + ttl), None, "nothing sent since");
        // A link that is down fails every send: its silence says nothing about the socket.
        let mut down = self::node(t0);
        down.poll_beacon(t0, WALL);
        assert_eq!(down.silent_for(t0 + ttl * 10), None);
    }

    #[test]
    fn after_a_stall_peers_keep_their_time_and_the_node_announces_at_once() {
        let t0 = Instant::now();
        let mut node = node(t0);
        node.poll_beacon(t0, WALL);
        node.handle_datagram(&beacon_of("peer", 1, 0), from(), t0, WALL);
        let resumed = t0 + Duration::from_secs(100);
        node.handle_stall(resumed);
        assert!(node.handle_timeout(resumed).is_empty(), "no expiry storm");
        assert!(
            node.poll_beacon(resumed, WALL).is_some(),
            "announces at once"
        );
        assert_eq!(node.handle_timeout(resumed + config().ttl).len(), 1);
    }
}
