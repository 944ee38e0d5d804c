//! What this node sends and when: its first beacon at once, then one every jittered interval,
//! early answers to newcomers paced so that a crowd costs at most two a second, and the goodbye.
//! Driven by explicit instants; the agent's announcer task moves the bytes.

use std::time::{Duration, Instant, SystemTime};

use tracing::debug;

use super::admission::unix_millis;
use crate::config::{CROWD_QUIET, Config, EARLY_ANSWER_DELAY, EARLY_ANSWER_WINDOW, JITTER};
use crate::wire::auth::Keyring;
use crate::wire::beacon::Beacon;
use crate::wire::tags::Tags;

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
    /// The sequence number of the next beacon.
    sequence: u64,
    /// When the next regular beacon is due.
    next_regular: Instant,
    /// When an early answer to a newcomer is due, if one is.
    next_early: Option<Instant>,
    /// When the latest early answers went, the latest first: they pace the next one.
    early_sent: [Option<Instant>; 2],
    /// Draws the jitter; seeded by the caller so tests can replay a schedule.
    rng: fastrand::Rng,
}

/// A beacon that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub bytes: Vec<u8>,
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
            sequence: 0,
            next_regular: now,
            next_early: None,
            early_sent: [None, None],
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The beacon to send at `now` (when the wall clock read `wall_now`), if one is due; the
    /// next is then scheduled one jittered interval later. Call it at every wake-up.
    pub fn poll(&mut self, now: Instant, wall_now: SystemTime) -> Option<Outgoing> {
        if now < self.next_wakeup() {
            return None;
        }
        let bytes = self.beacon(false, wall_now);
        let early = self.next_early.take().is_some_and(|early| early <= now);
        if early {
            self.early_sent = [Some(now), self.early_sent[0]];
        }
        // Any beacon, early or not, renews this node everywhere: the next is an interval away.
        let factor = 1.0 + JITTER * (2.0 * self.rng.f64() - 1.0);
        self.next_regular = now + self.interval.mul_f64(factor);
        Some(Outgoing { bytes, early })
    }

    /// When the next beacon is due: the next regular one, or an early answer before it.
    pub fn next_wakeup(&self) -> Instant {
        self.next_early
            .map_or(self.next_regular, |early| early.min(self.next_regular))
    }

    /// A newcomer (a join or a restart) was heard at `now`: it learns of this node by an early
    /// beacon, in one round trip instead of an interval, paced by [`early_answer_at`].
    pub fn newcomer(&mut self, now: Instant) {
        let delay = EARLY_ANSWER_DELAY.mul_f64(self.rng.f64());
        let early = early_answer_at(now, delay, self.next_early, self.early_sent);
        debug!("newcomer heard: announcing early");
        self.next_early = Some(early);
    }

    /// Announce at `now` at the latest: the socket was opened again (its membership is new), or
    /// the agent was stopped and peers may have expired it meanwhile.
    pub fn announce_now(&mut self, now: Instant) {
        self.next_regular = self.next_regular.min(now);
    }

    /// The goodbye, to send once on shutdown.
    pub fn goodbye(&mut self, wall_now: SystemTime) -> Vec<u8> {
        self.beacon(true, wall_now)
    }

    /// Our beacon, signed when we hold keys. It says our ttl, so peers with other timings
    /// keep us listed as long as we mean to.
    fn beacon(&mut self, goodbye: bool, wall_now: SystemTime) -> Vec<u8> {
        let beacon = Beacon {
            instance: self.instance,
            sequence: self.sequence,
            goodbye,
            migrating: self.migrating,
            hostname: self.name.clone(),
            ttl: Some(self.ttl),
            timestamp: (!self.keys.is_empty()).then(|| unix_millis(wall_now)),
            tags: self.tags.clone(),
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
        let goodbye = Beacon::decode(&announcer.goodbye(WALL)).expect("valid");
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
}
