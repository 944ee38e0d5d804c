//! What this node sends and when: its first beacon at once, then one every jittered interval,
//! to the group and to each unicast target (spread over [`unicast_spread`]); answers to
//! newcomers, by unicast to the newcomer or, for a crowd, early group beacons paced so that it
//! costs at most two a second; and the goodbye. Driven by explicit instants; the agent's
//! announcer task moves the bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tracing::debug;

use super::admission::unix_millis;
use super::receiver::AnswerRequest;
use crate::config::{
    CROWD_QUIET, Config, EARLY_ANSWER_DELAY, EARLY_ANSWER_WINDOW, JITTER, unicast_spread,
};
use crate::wire::auth::Keyring;
use crate::wire::beacon::{Beacon, EXT_HEADER_LEN, MAX_BEACON_LEN, PEER_V6_LEN};
use crate::wire::tags::Tags;

/// On the group, up to this many newcomers heard in one [`EARLY_ANSWER_WINDOW`] are answered by
/// unicast, at once, one datagram each: a lone newcomer, a rolling restart (one a second), a
/// few nodes started together. More are a crowd, answered on the group as before (at most two
/// early beacons a second), and the unicast answers still pending go with it. Each answer to an
/// address a node never sent to costs an ARP request that every host on the link receives, so
/// answering a crowd by unicast costs N² as early group beacons do, all at once: with up to 16
/// answers a node, 500 agents started together on one 2-core host answered 8,000 newcomers in
/// their first second, lost datagrams for it, and listed each other after 24 s; with 4, after
/// 1.07 and 0.98 s (`bin/bench-lan 500 5`). Off the group (`--no-multicast`) every newcomer is
/// answered by unicast: there is no cheaper way.
pub const CROWD_NEWCOMERS: usize = 4;
/// A unicast answer waits a random delay of up to this, plus [`ANSWER_SPREAD_PER_PEER`] for
/// each peer listed: the answers of all the peers reach the newcomer spread out, so its receive
/// buffer holds them (2 MiB hold some 2,000; 500 peers spread over 12 ms).
pub const ANSWER_SPREAD: Duration = Duration::from_millis(2);
pub const ANSWER_SPREAD_PER_PEER: Duration = Duration::from_micros(20);

/// The schedule and the contents of this node's beacons.
#[derive(Debug)]
pub struct Announcer {
    instance: u64,
    name: String,
    interval: Duration,
    ttl: Duration,
    keys: Keyring,
    /// Signs, and still takes unsigned beacons: peers without a secret take ours too.
    migrating: bool,
    tags: Tags,
    /// Sends to the group (not `--no-multicast`).
    multicast: bool,
    /// How many peers one answer can tell: what a datagram holds beside this node's largest
    /// beacon, signed (0 unsigned: receivers believe no unsigned list).
    peers_room: usize,
    /// Where each regular beacon goes besides the group.
    targets: Vec<SocketAddr>,
    /// The sequence number of the next beacon.
    sequence: u64,
    /// When the next regular beacon is due.
    next_regular: Instant,
    /// When an early answer to a newcomer is due, if one is.
    next_early: Option<Instant>,
    /// When the latest early answers went, the latest first: they pace the next one.
    early_sent: [Option<Instant>; 2],
    /// Unicast copies of the latest regular beacon, by when each is due.
    copies: VecDeque<(Instant, SocketAddr)>,
    /// The latest regular beacon, which the copies carry.
    latest: Vec<u8>,
    /// Unicast answers to newcomers, by when each is due, and whether each is an answer (a
    /// greeting to a new target is not: the target answers it).
    answers: Vec<(Instant, AnswerRequest, bool)>,
    /// When each newcomer of the last window was heard: more than [`CROWD_NEWCOMERS`] are a
    /// crowd.
    heard: VecDeque<Instant>,
    /// A crowd is on: until then every newcomer is answered on the group. Each newcomer of the
    /// crowd keeps it on for a window more, so a crowd that takes seconds to start (250 agents
    /// on 2 cores) is answered on the group to its end, not a few more by unicast every second.
    crowd_until: Option<Instant>,
    /// Draws the jitter; seeded by the caller so tests can replay a schedule.
    rng: fastrand::Rng,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Group,
    Unicast(SocketAddr),
}

/// A beacon that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub to: Destination,
    /// It was brought forward to answer a newcomer.
    pub early: bool,
}

impl Announcer {
    /// The announcer of `config.name` as `instance`, started at `now`: its first beacon is due
    /// at once. `seed` drives the jitter.
    pub fn new(config: &Config, instance: u64, seed: u64, now: Instant) -> Announcer {
        Announcer {
            instance,
            name: config.name.clone(),
            interval: config.interval,
            ttl: config.ttl,
            keys: config.keys.clone(),
            migrating: !config.keys.is_empty() && config.accept_unauthenticated,
            tags: config.tags.clone(),
            multicast: config.multicast,
            peers_room: if !config.keys.is_empty() {
                // The peers field's own header, then entries of the largest kind (IPv6).
                MAX_BEACON_LEN.saturating_sub(config.largest_beacon() + EXT_HEADER_LEN)
                    / PEER_V6_LEN
            } else {
                0
            },
            targets: Vec::new(),
            sequence: 0,
            next_regular: now,
            next_early: None,
            early_sent: [None, None],
            copies: VecDeque::new(),
            latest: Vec::new(),
            answers: Vec::new(),
            heard: VecDeque::new(),
            crowd_until: None,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// From the next regular beacon on, each goes to these too; a target that is new gets a
    /// beacon of its own within [`unicast_spread`] of `now`, so that a node learned from a
    /// seed's answer, or a name's new address, hears this one at once, not an interval later
    /// (before the first beacon, which goes to every target anyway, there is none).
    pub fn set_targets(&mut self, mut targets: Vec<SocketAddr>, now: Instant) {
        targets.sort_unstable(); // already, from `Targets::list`: the lookups below rely on it
        let listed = |list: &[SocketAddr], to: &SocketAddr| list.binary_search(to).is_ok();
        if !self.latest.is_empty() {
            let added: Vec<SocketAddr> = targets
                .iter()
                .filter(|t| !listed(&self.targets, t))
                .copied()
                .collect();
            let count = added.len();
            let spread = unicast_spread(count);
            for (i, to) in added.into_iter().enumerate() {
                let share = (i as f64 + self.rng.f64()) / count as f64;
                let request = AnswerRequest {
                    to,
                    peers: Vec::new(),
                    listed: 0,
                    unicast_only: false,
                };
                self.answers
                    .push((now + spread.mul_f64(share), request, false));
            }
        }
        // A target dropped (silent for a ttl, and in no answer) gets nothing more, not even
        // the copy of a beacon still queued for it.
        self.copies.retain(|(_, to)| listed(&targets, to));
        self.answers
            .retain(|(_, request, answer)| *answer || listed(&targets, &request.to));
        self.targets = targets;
    }

    /// A datagram to send at `now` (when the wall clock read `wall_now`), if one is due. Call
    /// it until it says `None`, at every wake-up.
    pub fn poll(&mut self, now: Instant, wall_now: SystemTime) -> Option<Outgoing> {
        if let Some(outgoing) = self.poll_answer(now, wall_now) {
            return Some(outgoing);
        }
        if self.copies.front().is_some_and(|(at, _)| *at <= now) {
            let (_, to) = self.copies.pop_front()?;
            return Some(Outgoing {
                bytes: self.latest.clone(),
                to: Destination::Unicast(to),
                early: false,
            });
        }
        if now < self.group_due() {
            return None;
        }
        let early = self.next_early.take().is_some_and(|early| early <= now);
        // An early beacon answers newcomers, and says so: whoever hears this node first from it
        // answers by unicast if at all, never on the group (see `AnswerRequest::unicast_only`).
        let bytes = self.beacon(false, early, Vec::new(), wall_now);
        if early {
            self.early_sent = [Some(now), self.early_sent[0]];
        }
        // Any beacon, early or not, renews this node everywhere: the next is an interval away.
        let factor = 1.0 + JITTER * (2.0 * self.rng.f64() - 1.0);
        self.next_regular = now + self.interval.mul_f64(factor);
        if !early {
            self.spread_copies(now);
            self.latest.clone_from(&bytes);
        }
        if self.multicast {
            return Some(Outgoing {
                bytes,
                to: Destination::Group,
                early,
            });
        }
        self.poll(now, wall_now)
    }

    /// Schedules this beacon's copy to each target, spread over [`unicast_spread`] from a
    /// random start, so N nodes that beacon together do not send their N copies together.
    /// Copies of the previous beacon still queued are dropped: this one says more.
    fn spread_copies(&mut self, now: Instant) {
        self.copies.clear();
        let count = self.targets.len();
        let phase = self.rng.f64();
        let spread = unicast_spread(count);
        for (i, target) in self.targets.iter().enumerate() {
            let share = (i as f64 + phase) / count as f64;
            self.copies
                .push_back((now + spread.mul_f64(share), *target));
        }
    }

    /// The first unicast answer due by `now`, if any.
    fn poll_answer(&mut self, now: Instant, wall_now: SystemTime) -> Option<Outgoing> {
        let due = self.answers.iter().position(|(at, _, _)| *at <= now)?;
        let (_, mut request, answer) = self.answers.swap_remove(due);
        // The answer is newer than the copy of the latest beacon still queued for the same
        // node: that copy would arrive after it and read as a replay.
        self.copies.retain(|(_, to)| *to != request.to);
        let room = self.peers_room;
        let take = request.peers.len().min(room);
        let told: Vec<SocketAddr> = request.peers.drain(..take).collect();
        if room == 0 {
            // Unsigned, or no room beside the tags: nobody would take them from this answer.
            request.peers.clear();
        }
        if !request.peers.is_empty() {
            // The rest in the next datagram, right after this one.
            let rest = AnswerRequest {
                peers: std::mem::take(&mut request.peers),
                ..request.clone()
            };
            self.answers.push((now, rest, answer));
        }
        let bytes = self.beacon(false, answer, told, wall_now);
        Some(Outgoing {
            bytes,
            to: Destination::Unicast(request.to),
            early: answer,
        })
    }

    /// How many IPv4 peers fit in one signed answer beside everything else it carries; none
    /// when it is not signed, as receivers take them only from signed beacons. (IPv6 entries
    /// take 19 bytes each, so a few fewer of them fit.)
    /// When the next beacon to the group is due: the next regular one, or an early answer.
    fn group_due(&self) -> Instant {
        self.next_early
            .map_or(self.next_regular, |early| early.min(self.next_regular))
    }

    /// When the next datagram is due.
    pub fn next_wakeup(&self) -> Instant {
        let group = self.group_due();
        let copy = self.copies.front().map(|(at, _)| *at);
        let answer = self.answers.iter().map(|(at, _, _)| *at).min();
        [copy, answer]
            .into_iter()
            .flatten()
            .fold(group, Instant::min)
    }

    /// A newcomer (a join or a restart) was heard at `now`: it learns of this node by an early
    /// beacon to the group, in one round trip instead of an interval, paced by
    /// [`early_answer_at`].
    pub fn newcomer(&mut self, now: Instant) {
        if !self.multicast {
            return;
        }
        let delay = EARLY_ANSWER_DELAY.mul_f64(self.rng.f64());
        let early = early_answer_at(now, delay, self.next_early, self.early_sent);
        debug!("newcomer heard: announcing early");
        self.next_early = Some(early);
    }

    /// A newcomer heard at `now` asks for an answer by unicast (see [`AnswerRequest`]). Answered
    /// after a short random delay, unless more than [`CROWD_NEWCOMERS`] were heard this window:
    /// then it is a crowd, answered on the group as [`newcomer`](Self::newcomer) says.
    pub fn answer(&mut self, now: Instant, request: AnswerRequest) {
        while self
            .heard
            .front()
            .is_some_and(|at| *at + EARLY_ANSWER_WINDOW <= now)
        {
            self.heard.pop_front();
        }
        if let Some((_, pending, answer)) = self
            .answers
            .iter_mut()
            .find(|(_, pending, _)| pending.to == request.to)
        {
            // A greeting still pending becomes the answer: one datagram says both.
            *answer = true;
            if pending.peers.is_empty() {
                pending.peers = request.peers;
            }
            return;
        }
        self.heard.push_back(now);
        if self.heard.len() > CROWD_NEWCOMERS + 1 {
            self.heard.pop_front(); // the latest few tell a crowd; a flood holds no more
        }
        // Off the group there is no cheaper way to answer a crowd: each gets its unicast answer,
        // one datagram per newcomer, as many as the copies of one regular beacon.
        let crowd =
            self.crowd_until.is_some_and(|until| now < until) || self.heard.len() > CROWD_NEWCOMERS;
        if self.multicast && crowd {
            self.crowd_until = Some(now + EARLY_ANSWER_WINDOW);
            let newcomers_pending = self.cancel_answers();
            if newcomers_pending || !request.unicast_only {
                self.newcomer(now);
            }
            return;
        }
        let listed = u32::try_from(request.listed).unwrap_or(u32::MAX);
        let spread = ANSWER_SPREAD + ANSWER_SPREAD_PER_PEER * listed;
        let at = now + spread.min(EARLY_ANSWER_DELAY).mul_f64(self.rng.f64());
        self.answers.push((at, request, true));
    }

    /// A crowd is on: the unicast answers not sent yet would cost what its group beacon saves,
    /// so they are dropped (a greeting that became an answer stays a greeting). Whether any
    /// was to a newcomer, which the group beacon now answers.
    fn cancel_answers(&mut self) -> bool {
        let mut newcomers = false;
        let targets = &self.targets;
        self.answers.retain_mut(|(_, request, answer)| {
            if !*answer {
                return true;
            }
            newcomers |= !request.unicast_only;
            *answer = false;
            targets.binary_search(&request.to).is_ok()
        });
        newcomers
    }

    /// Announce at `now` at the latest: the socket was opened again (its membership is new), or
    /// the agent was stopped and peers may have expired it meanwhile.
    pub fn announce_now(&mut self, now: Instant) {
        self.next_regular = self.next_regular.min(now);
    }

    /// The goodbye, to send once on shutdown: to the group and to every target, at once.
    pub fn goodbye(&mut self, wall_now: SystemTime) -> Vec<Outgoing> {
        let bytes = self.beacon(true, false, Vec::new(), wall_now);
        let group = self.multicast.then_some(Destination::Group);
        let targets = self.targets.iter().map(|to| Destination::Unicast(*to));
        group
            .into_iter()
            .chain(targets)
            .map(|to| Outgoing {
                bytes: bytes.clone(),
                to,
                early: false,
            })
            .collect()
    }

    /// Our beacon, signed when we hold keys. It says our ttl, so peers with other timings
    /// keep us listed as long as we mean to.
    fn beacon(
        &mut self,
        goodbye: bool,
        answer: bool,
        peers: Vec<SocketAddr>,
        wall_now: SystemTime,
    ) -> Vec<u8> {
        let beacon = Beacon {
            instance: self.instance,
            sequence: self.sequence,
            goodbye,
            migrating: self.migrating,
            answer,
            hostname: self.name.clone(),
            ttl: Some(self.ttl),
            timestamp: (!self.keys.is_empty()).then(|| unix_millis(wall_now)),
            tags: self.tags.clone(),
            peers,
            auth: None,
        };
        self.sequence += 1;
        let mut bytes = beacon.encode();
        self.keys.sign(&mut bytes);
        bytes
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
    use crate::config::UNICAST_SPREAD;
    use crate::wire::auth::Keyring;

    /// The wall clock of these tests: only signed beacons look at it.
    const WALL: SystemTime = SystemTime::UNIX_EPOCH;

    fn config() -> Config {
        Config::new("self", Ipv4Addr::LOCALHOST)
    }

    fn announcer(t0: Instant) -> Announcer {
        Announcer::new(&config(), 0xAAAA, 7, t0)
    }

    fn sent(outgoing: &Outgoing) -> Beacon {
        Beacon::decode(&outgoing.bytes).expect("the node sends valid beacons")
    }

    #[test]
    fn first_beacon_goes_at_once_then_every_jittered_interval() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        let first = sent(&announcer.poll(t0, WALL).expect("due at start"));
        assert_eq!((first.sequence, first.goodbye), (0, false));
        assert_eq!(first.hostname, "self");
        assert_eq!(first.ttl, Some(config().ttl), "it says its ttl");
        assert_eq!(announcer.poll(t0, WALL), None, "one beacon per due time");
        let interval = config().interval;
        let mut last = t0;
        for sequence in 1..50 {
            let next = announcer.next_wakeup();
            let gap = next - last;
            assert!(
                gap >= interval.mul_f64(1.0 - JITTER) && gap <= interval.mul_f64(1.0 + JITTER),
                "gap {gap:?}"
            );
            assert_eq!(announcer.poll(next - Duration::from_nanos(1), WALL), None);
            let beacon = sent(&announcer.poll(next, WALL).expect("due"));
            assert_eq!(beacon.sequence, sequence);
            last = next;
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        let mut at = t0;
        let mut gaps = Vec::new();
        for _ in 0..20 {
            announcer.poll(at, WALL);
            gaps.push(announcer.next_wakeup() - at);
            at = announcer.next_wakeup();
        }
        gaps.sort();
        assert!(gaps[19] - gaps[0] > config().interval / 20, "{gaps:?}");
    }

    #[test]
    fn a_newcomer_is_answered_within_the_answer_delay_not_the_interval() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        announcer.poll(t0, WALL);
        let joined_at = t0 + Duration::from_secs(5);
        announcer.newcomer(joined_at);
        let answer = announcer.next_wakeup();
        assert!(answer >= joined_at && answer <= joined_at + EARLY_ANSWER_DELAY);
        let early = announcer.poll(answer, WALL).expect("the answer");
        assert!(early.early, "counted as an early answer");
        let regular = announcer.next_wakeup();
        assert!(
            !announcer.poll(regular, WALL).expect("due").early,
            "the next one is a regular beacon again"
        );
    }

    #[test]
    fn a_crowd_of_newcomers_costs_at_most_two_early_beacons_a_second() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        announcer.poll(t0, WALL);
        let start = t0 + Duration::from_secs(3);
        let mut sent = Vec::new();
        let mut send_due = |announcer: &mut Announcer, until: Instant| {
            while announcer.next_wakeup() <= until {
                let at = announcer.next_wakeup();
                if announcer.poll(at, WALL).is_some() {
                    sent.push(at);
                }
            }
        };
        // Forty newcomers over two seconds, one every 50 ms, then quiet.
        let mut last_join = start;
        for i in 0..40u64 {
            last_join = start + Duration::from_millis(50 * i);
            send_due(&mut announcer, last_join);
            announcer.newcomer(last_join);
        }
        send_due(&mut announcer, last_join + Duration::from_secs(2));
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
    fn announcing_now_brings_the_next_beacon_forward_and_never_back() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        announcer.poll(t0, WALL);
        let regular = announcer.next_wakeup();
        let reopened = t0 + Duration::from_secs(2);
        announcer.announce_now(reopened);
        assert_eq!(announcer.next_wakeup(), reopened);
        assert!(announcer.poll(reopened, WALL).is_some());
        announcer.announce_now(announcer.next_wakeup() + Duration::from_secs(60));
        assert!(announcer.next_wakeup() < regular + config().interval);
    }

    #[test]
    fn goodbye_carries_the_next_sequence_and_the_flag() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        announcer.poll(t0, WALL);
        let goodbye = announcer.goodbye(WALL);
        assert_eq!(goodbye.len(), 1, "to the group only: no targets");
        let goodbye = Beacon::decode(&goodbye[0].bytes).expect("valid");
        assert_eq!((goodbye.sequence, goodbye.goodbye), (1, true));
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

    fn at(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 24901))
    }

    /// A newcomer at 10.0.1.`last`, heard by a node that lists 60 peers.
    fn newcomer(last: u8) -> AnswerRequest {
        AnswerRequest {
            to: SocketAddr::from(([10, 0, 1, last], 24901)),
            peers: Vec::new(),
            listed: 60,
            unicast_only: false,
        }
    }

    /// A node at 10.0.1.`last` first heard from its early beacon to the group.
    fn from_early_beacon(last: u8) -> AnswerRequest {
        AnswerRequest {
            unicast_only: true,
            ..newcomer(last)
        }
    }

    /// Every datagram due up to `until`, with when it went.
    fn drain(announcer: &mut Announcer, until: Instant) -> Vec<(Instant, Outgoing)> {
        let mut out = Vec::new();
        while announcer.next_wakeup() <= until {
            let at = announcer.next_wakeup();
            while let Some(outgoing) = announcer.poll(at, WALL) {
                out.push((at, outgoing));
            }
        }
        out
    }

    #[test]
    fn each_beacon_goes_to_the_group_then_to_every_target_spread_over_the_spread() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        let targets: Vec<SocketAddr> = (2..12).map(at).collect();
        announcer.set_targets(targets.clone(), t0);
        let sent = drain(&mut announcer, t0 + UNICAST_SPREAD);
        assert_eq!(sent[0].1.to, Destination::Group);
        assert_eq!(sent[0].0, t0, "the group at once");
        let copies: Vec<_> = sent[1..].iter().map(|(_, o)| o.to).collect();
        let expected: Vec<_> = targets.iter().map(|t| Destination::Unicast(*t)).collect();
        assert_eq!(copies, expected, "one copy each, in order");
        assert!(
            sent.iter().all(|(_, o)| o.bytes == sent[0].1.bytes),
            "the same beacon"
        );
        let times: Vec<Instant> = sent[1..].iter().map(|(at, _)| *at).collect();
        assert!(
            times
                .windows(2)
                .all(|w| w[1] - w[0] >= unicast_spread(10) / 20),
            "{times:?}"
        );
        assert!(*times.last().expect("copies") < t0 + unicast_spread(10));
        assert_eq!(
            unicast_spread(10),
            Duration::from_millis(10),
            "a millisecond a target"
        );
        assert_eq!(unicast_spread(1000), UNICAST_SPREAD, "at most");
        let goodbye = announcer.goodbye(WALL);
        assert_eq!(
            goodbye.len(),
            11,
            "the goodbye goes to the group and every target"
        );
    }

    #[test]
    fn without_the_group_a_beacon_goes_only_to_the_targets() {
        let t0 = Instant::now();
        let config = Config {
            multicast: false,
            ..config()
        };
        let mut announcer = Announcer::new(&config, 0xAAAA, 7, t0);
        announcer.set_targets(vec![at(2), at(3)], t0);
        let sent = drain(&mut announcer, t0 + UNICAST_SPREAD);
        let to: Vec<_> = sent.iter().map(|(_, o)| o.to).collect();
        assert_eq!(
            to,
            [Destination::Unicast(at(2)), Destination::Unicast(at(3))]
        );
        announcer.newcomer(t0);
        assert!(
            drain(&mut announcer, t0 + Duration::from_secs(1)).is_empty(),
            "no group answer"
        );
        assert!(
            announcer
                .goodbye(WALL)
                .iter()
                .all(|o| o.to != Destination::Group)
        );
    }

    #[test]
    fn a_few_newcomers_are_answered_by_unicast_at_once_and_a_crowd_on_the_group() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        drain(&mut announcer, t0);
        let joined = t0 + Duration::from_secs(2);
        let few = u8::try_from(CROWD_NEWCOMERS).expect("small");
        for last in 0..few {
            announcer.answer(joined, newcomer(last));
        }
        let spread = ANSWER_SPREAD + ANSWER_SPREAD_PER_PEER * 60;
        let sent = drain(&mut announcer, joined + spread);
        assert_eq!(sent.len(), CROWD_NEWCOMERS, "one each");
        assert!(sent.iter().all(|(at, o)| *at <= joined + spread
            && o.early
            && matches!(o.to, Destination::Unicast(_))));
        let answers: Vec<Beacon> = sent.iter().map(|(_, o)| sent_beacon(o)).collect();
        assert!(answers.iter().all(|b| b.answer && !b.goodbye));
        // More newcomers in the same window: a crowd, answered on the group.
        let crowd = joined + Duration::from_millis(50);
        for last in few..few + 10 {
            announcer.answer(crowd, newcomer(last));
        }
        let sent = drain(&mut announcer, crowd + CROWD_QUIET + EARLY_ANSWER_DELAY);
        assert_eq!(
            sent.len(),
            1,
            "the rest of the crowd: one early beacon on the group"
        );
        assert_eq!(sent[0].1.to, Destination::Group);
        assert!(
            sent_beacon(&sent[0].1).answer,
            "the group's beacon says it answers: nobody answers it on the group in turn"
        );
    }

    #[test]
    fn a_crowd_heard_in_one_burst_costs_no_unicast_answer() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        drain(&mut announcer, t0);
        let joined = t0 + Duration::from_secs(2);
        for last in 0..20 {
            announcer.answer(joined, newcomer(last));
        }
        let sent = drain(&mut announcer, joined + CROWD_QUIET + EARLY_ANSWER_DELAY);
        let to: Vec<Destination> = sent.into_iter().map(|(_, o)| o.to).collect();
        assert_eq!(
            to,
            [Destination::Group],
            "the pending answers went with the crowd"
        );
    }

    #[test]
    fn a_node_first_heard_from_an_early_beacon_is_answered_by_unicast_never_on_the_group() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        drain(&mut announcer, t0);
        let heard = t0 + Duration::from_secs(5);
        let few = u8::try_from(CROWD_NEWCOMERS).expect("small");
        for last in 0..few {
            announcer.answer(heard, from_early_beacon(last));
        }
        let sent = drain(&mut announcer, heard + EARLY_ANSWER_DELAY);
        assert_eq!(sent.len(), CROWD_NEWCOMERS, "answered by unicast while few");
        let later = heard + EARLY_ANSWER_DELAY;
        for last in few..few + 10 {
            announcer.answer(later, from_early_beacon(last));
        }
        let sent = drain(&mut announcer, later + EARLY_ANSWER_WINDOW);
        assert_eq!(
            sent.len(),
            0,
            "a crowd: no unicast answer, and no early beacon to the group for nodes that are no newcomers"
        );
    }

    #[test]
    fn a_signed_answer_tells_the_peers_in_as_many_datagrams_as_they_need() {
        let t0 = Instant::now();
        let config = Config {
            keys: Keyring::new(&[b"a shared secret of 32 bytes, ok!"]),
            ..config()
        };
        let mut announcer = Announcer::new(&config, 0xAAAA, 7, t0);
        drain(&mut announcer, t0);
        let peers: Vec<SocketAddr> = (0..100)
            .map(|i| SocketAddr::from(([10, 1, 0, i], 24901)))
            .collect();
        announcer.answer(
            t0,
            AnswerRequest {
                to: at(2),
                peers: peers.clone(),
                listed: 60,
                unicast_only: false,
            },
        );
        let sent = drain(&mut announcer, t0 + EARLY_ANSWER_DELAY);
        let told: Vec<SocketAddr> = sent
            .iter()
            .flat_map(|(_, o)| sent_beacon(o).peers)
            .collect();
        assert_eq!(told, peers, "every peer, once, in order");
        assert!(
            sent.len() > 1 && sent.len() <= 6,
            "{} datagrams",
            sent.len()
        );
        assert!(sent.iter().all(|(_, o)| o.bytes.len() <= MAX_BEACON_LEN));
        assert!(
            sent.iter()
                .all(|(_, o)| o.to == Destination::Unicast(at(2)))
        );
    }

    #[test]
    fn a_new_target_is_greeted_at_once_not_an_interval_later() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        announcer.set_targets(vec![at(2)], t0);
        drain(&mut announcer, t0 + UNICAST_SPREAD);
        let told = t0 + Duration::from_secs(3);
        announcer.set_targets(vec![at(2), at(3), at(4)], told);
        let sent = drain(&mut announcer, told + UNICAST_SPREAD);
        let to: Vec<_> = sent.iter().map(|(_, o)| o.to).collect();
        assert_eq!(to.len(), 2, "{to:?}");
        assert!(
            to.contains(&Destination::Unicast(at(3))) && to.contains(&Destination::Unicast(at(4)))
        );
        let greetings: Vec<Beacon> = sent.iter().map(|(_, o)| sent_beacon(o)).collect();
        assert!(
            greetings.iter().all(|b| !b.answer),
            "a greeting asks to be answered"
        );
        assert!(
            sent.iter().all(|(_, o)| !o.early),
            "and is no answer of ours"
        );
        // A greeting still pending when its target turns out a newcomer becomes the answer.
        announcer.set_targets(vec![at(2), at(3), at(4), at(5)], told);
        announcer.answer(
            told,
            AnswerRequest {
                to: at(5),
                peers: Vec::new(),
                listed: 3,
                unicast_only: false,
            },
        );
        let sent = drain(&mut announcer, told + UNICAST_SPREAD);
        assert_eq!(sent.len(), 1);
        assert!(sent_beacon(&sent[0].1).answer);
    }

    #[test]
    fn an_unsigned_answer_is_one_datagram_without_the_peers() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        drain(&mut announcer, t0);
        announcer.answer(
            t0,
            AnswerRequest {
                to: at(2),
                peers: vec![at(3), at(4)],
                listed: 2,
                unicast_only: false,
            },
        );
        let sent = drain(&mut announcer, t0 + EARLY_ANSWER_DELAY);
        assert_eq!(sent.len(), 1, "one answer, and nothing after it");
        assert!(sent_beacon(&sent[0].1).peers.is_empty());
    }

    #[test]
    fn off_the_group_every_newcomer_of_a_crowd_is_answered_by_unicast() {
        let t0 = Instant::now();
        let config = Config {
            multicast: false,
            ..config()
        };
        let mut announcer = Announcer::new(&config, 0xAAAA, 7, t0);
        drain(&mut announcer, t0);
        let crowd = CROWD_NEWCOMERS + 36;
        for i in 0..crowd {
            let to = SocketAddr::from(([10, 0, 1, u8::try_from(i).expect("small")], 24901));
            announcer.answer(
                t0,
                AnswerRequest {
                    to,
                    peers: Vec::new(),
                    listed: crowd,
                    unicast_only: false,
                },
            );
        }
        let sent = drain(&mut announcer, t0 + EARLY_ANSWER_DELAY);
        assert_eq!(sent.len(), crowd, "no group to fall back on");
    }

    #[test]
    fn a_crowd_is_answered_on_the_group_until_a_window_passes_without_a_newcomer() {
        let t0 = Instant::now();
        let mut announcer = announcer(t0);
        drain(&mut announcer, t0);
        let unicast_answers = |announcer: &mut Announcer, until| {
            drain(announcer, until)
                .iter()
                .filter(|(_, o)| matches!(o.to, Destination::Unicast(_)))
                .count()
        };
        let ms = Duration::from_millis;
        let few = u8::try_from(CROWD_NEWCOMERS).expect("small");
        for last in 0..few {
            announcer.answer(t0, newcomer(last));
        }
        assert_eq!(
            unicast_answers(&mut announcer, t0 + ms(50)),
            CROWD_NEWCOMERS
        );
        announcer.answer(t0 + ms(60), newcomer(few));
        assert_eq!(unicast_answers(&mut announcer, t0 + ms(100)), 0, "a crowd");
        // The window of the first answers has passed, but the crowd goes on: the group.
        for step in 1..=4u8 {
            announcer.answer(t0 + ms(400) * u32::from(step), newcomer(100 + step));
        }
        assert_eq!(
            unicast_answers(&mut announcer, t0 + ms(1700)),
            0,
            "still a crowd"
        );
        // A window without a newcomer: a lone one is answered by unicast again.
        announcer.answer(t0 + ms(2700), newcomer(200));
        assert_eq!(unicast_answers(&mut announcer, t0 + ms(2800)), 1);
    }

    fn sent_beacon(outgoing: &Outgoing) -> Beacon {
        Beacon::decode(&outgoing.bytes).expect("the node sends valid beacons")
    }
}
