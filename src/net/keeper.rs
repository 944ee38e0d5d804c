//! Keeping the multicast socket working, as a state machine without I/O: when to try opening it
//! (backoff), when a run of receive errors means it is broken, when silence means it no longer
//! hears the group (the watchdog), when a late wake-up means the agent was stopped, and whether
//! its beacons go out (the agent's health). The agent's receiver task does what it says;
//! everything here takes `now`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::two_longest_gaps;
use crate::throttle::Throttle;

/// A loop that wakes this much later than it meant to was not running: the process was
/// stopped (SIGSTOP, a debugger) or the host stalled. Well above any scheduling delay.
pub const STALL: Duration = Duration::from_secs(1);
/// A socket that cannot be opened (no interface to announce on yet, above all) is tried again
/// this long after, and warned about after this long at first, doubling up to [`MAX_RETRY`]:
/// an interface that comes up late is used within a second, and a missing one costs a log
/// line every half minute. A try costs binding four sockets and reading the interfaces, some
/// 100 µs.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// This many receive errors in a row mean the socket is broken, not that one ICMP error came
/// back: it is opened again.
pub const ERRORS_BEFORE_REOPEN: u32 = 10;
/// At most one warning per this period about receive errors.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The figures of the socket the agent keeps, for its status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Datagrams the kernel dropped because the socket's receive queue was full, when known.
    pub receive_queue_drops: Option<u64>,
    /// The socket's receive buffer in bytes, as the kernel granted it, when known.
    pub receive_buffer_bytes: Option<usize>,
    /// Times it was opened again after an error or a silence.
    pub reopens: u64,
}

/// Whether the agent's beacons go out, as of an instant: its status says it, and its health
/// check fails on it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sending {
    /// How long ago a beacon last went out; `None` before the first.
    pub last_sent: Option<Duration>,
    /// Set while the beacons do not go out: none for longer than the two longest gaps between
    /// beacons the schedule allows.
    pub not_sending: Option<NotSending>,
}

/// No beacon went out for longer than the two longest gaps between beacons: the agent's peers
/// are about to drop it, or never heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotSending {
    /// How long ago the last beacon went out or, if none did since it started (or was stopped
    /// with nothing failing), since then.
    pub since: Duration,
    /// Why: the last failure to open the socket or to send, as one line.
    pub reason: String,
}

/// Why the last attempt to get a beacon out failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The multicast socket did not open: the error.
    Open(String),
    /// The kernel refused a beacon: the error.
    Send(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Open(err) => write!(f, "cannot open the multicast socket: {err}"),
            Failure::Send(err) => write!(f, "cannot send a beacon: {err}"),
        }
    }
}

/// What the keeper knows of the socket.
#[derive(Debug)]
pub struct Keeper {
    interval: Duration,
    ttl: Duration,
    open: bool,
    /// Whether it was ever open: only the first open tells the service manager it is ready.
    opened_once: bool,
    /// When to try opening it next, while it is closed.
    retry_at: Instant,
    retry_delay: Duration,
    /// Failed attempts to open it since it was last open.
    open_failures: u64,
    /// When a failure to open may be warned about again.
    open_warn_at: Instant,
    /// Times it was opened again after it had been open.
    reopens: u64,
    /// Receive errors in a row.
    receive_errors: u32,
    error_log: Throttle,
    /// When our own beacon last came back over the loop (or the socket opened, or the agent
    /// resumed): the silence watchdog's reference.
    heard_self: Instant,
    /// Beacons that went out since our own last came back: the watchdog's evidence. A link
    /// that is down fails the sends, so its silence is no sign of a broken socket.
    sent_unheard: u32,
    /// Datagrams were still queued when the receiver last stopped reading: our own beacons
    /// may be among them, unread rather than lost.
    backlog: bool,
    /// When a beacon last went out.
    sent_at: Option<Instant>,
    /// What [`Keeper::sending`] measures from: the last beacon that went out, the start, or
    /// the end of a stop that held up the beacons of an agent that was sending.
    silent_since: Instant,
    /// Why the last attempt to open the socket or to send failed, until a beacon goes out.
    failure: Option<Failure>,
}

/// The socket opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The first time: the agent is ready.
    pub first: bool,
    /// After failures that were warned about: worth saying it works now.
    pub after_warnings: bool,
}

/// A failure to open, worth a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenWarning {
    /// Attempts that failed since it was last open.
    pub failures: u64,
    /// When the next warning may come, at the earliest.
    pub next_warning_in: Duration,
}

/// What a receive error means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveFailure {
    /// `Some(n)`: warn, `n` errors having been held back since the last warning.
    pub warn: Option<u64>,
    /// The socket is broken: open it again (and say so).
    pub reopen: bool,
}

impl Keeper {
    /// A keeper of a socket not yet open, to be opened at once, for an agent beaconing every
    /// `interval` and listed for `ttl` after each beacon.
    pub fn new(interval: Duration, ttl: Duration, now: Instant) -> Keeper {
        Keeper {
            interval,
            ttl,
            open: false,
            opened_once: false,
            retry_at: now,
            retry_delay: FIRST_RETRY,
            open_failures: 0,
            open_warn_at: now,
            reopens: 0,
            receive_errors: 0,
            error_log: Throttle::new(ERROR_LOG_PERIOD),
            heard_self: now,
            sent_unheard: 0,
            backlog: false,
            sent_at: None,
            silent_since: now,
            failure: None,
        }
    }

    /// Whether to try opening the socket at `now`.
    pub fn open_due(&self, now: Instant) -> bool {
        !self.open && now >= self.retry_at
    }

    /// When to try opening it next, while it is closed.
    pub fn next_wakeup(&self) -> Option<Instant> {
        (!self.open).then_some(self.retry_at)
    }

    /// The socket opened at `now`; the watchdog starts again.
    pub fn opened(&mut self, now: Instant) -> Opened {
        let opened = Opened {
            first: !self.opened_once,
            after_warnings: self.retry_delay > FIRST_RETRY,
        };
        self.open = true;
        self.opened_once = true;
        self.retry_delay = FIRST_RETRY;
        self.open_failures = 0;
        self.open_warn_at = now;
        self.receive_errors = 0;
        self.backlog = false; // a new socket, an empty queue
        self.restart_watchdog(now);
        opened
    }

    /// Opening failed at `now` with `error`: tried again a [`FIRST_RETRY`] later, so a link
    /// that comes back is used within a second, and warned about on the backoff's schedule.
    pub fn open_failed(&mut self, now: Instant, error: String) -> Option<OpenWarning> {
        self.failure = Some(Failure::Open(error));
        self.open_failures += 1;
        let mut warning = None;
        if now >= self.open_warn_at {
            warning = Some(OpenWarning {
                failures: self.open_failures,
                next_warning_in: self.retry_delay,
            });
            self.open_warn_at = now + self.retry_delay;
            self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
        }
        self.retry_at = now + FIRST_RETRY;
        warning
    }

    /// The caller dropped the socket at `now` to open it again at once: this leaves and
    /// rejoins the group. Whether or not it opens, the watchdog waits another ttl.
    pub fn reopen(&mut self, now: Instant) {
        self.open = false;
        self.reopens += 1;
        self.retry_delay = FIRST_RETRY;
        self.retry_at = now;
        self.receive_errors = 0;
        self.restart_watchdog(now);
    }

    /// Datagrams were read: any run of errors is over.
    pub fn received(&mut self) {
        self.receive_errors = 0;
    }

    /// Receiving failed at `now`.
    pub fn receive_failed(&mut self, now: Instant) -> ReceiveFailure {
        self.receive_errors += 1;
        ReceiveFailure {
            warn: self.error_log.admit(now),
            reopen: self.receive_errors >= ERRORS_BEFORE_REOPEN,
        }
    }

    /// One of our beacons went out at `now`.
    pub fn beacon_sent(&mut self, now: Instant) {
        self.sent_unheard = self.sent_unheard.saturating_add(1);
        self.unicast_sent(now);
    }

    /// One of our beacons went out at `now` to a unicast target: the agent sends, though nothing
    /// comes back over the loop to prove the group socket still hears.
    pub fn unicast_sent(&mut self, now: Instant) {
        self.sent_at = Some(now);
        self.silent_since = now;
        self.failure = None;
    }

    /// The kernel refused one of our beacons with `error` (a link down, an address gone).
    pub fn send_failed(&mut self, error: String) {
        self.failure = Some(Failure::Send(error));
    }

    /// Whether the beacons go out as of `now`. The agent is not sending once no beacon went out
    /// for longer than [`two_longest_gaps`] (since the last one, or since it started trying):
    /// a beacon lost to a blip of the link is no failure, but by then its peers are about to
    /// drop it. So a new agent is healthy until it has had that long to send.
    pub fn sending(&self, now: Instant) -> Sending {
        let since = now.saturating_duration_since(self.silent_since);
        let not_sending = (since > two_longest_gaps(self.interval)).then(|| NotSending {
            since,
            reason: self.failure.as_ref().map_or_else(
                || "no attempt was made to send one".to_owned(),
                Failure::to_string,
            ),
        });
        Sending {
            last_sent: self.sent_at.map(|at| now.saturating_duration_since(at)),
            not_sending,
        }
    }

    /// One of our beacons came back over the loop at `now`: the socket hears the group.
    pub fn heard_self(&mut self, now: Instant) {
        self.heard_self = now;
        self.sent_unheard = 0;
    }

    /// The receiver stopped reading with datagrams still queued (`true`), or with the queue
    /// read to its end (`false`).
    pub fn backlog(&mut self, queued: bool) {
        self.backlog = queued;
    }

    /// How long the socket has not heard our own beacons, if that means it no longer hears the
    /// group: for a ttl, while at least two beacons went out, and with nothing left unread.
    /// Sends that fail (a link down, a container disconnected from its network) explain a
    /// silence, and reopening the socket then would only put its recovery behind a retry. So
    /// does a backlog: a flood that holds the receiver behind queues our beacons behind it,
    /// and a new socket would throw away all that is queued, real peers' beacons with it.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let silence = now.saturating_duration_since(self.heard_self);
        let silent = self.open && !self.backlog && self.sent_unheard >= 2;
        (silent && silence >= self.ttl).then_some(silence)
    }

    /// The agent resumed at `now` after a stall: the silence it could not hear proves nothing,
    /// nor do the beacons it could not send, unless the last attempt before it had failed.
    pub fn stalled(&mut self, now: Instant) {
        self.restart_watchdog(now);
        if self.failure.is_none() {
            self.silent_since = now;
        }
    }

    fn restart_watchdog(&mut self, now: Instant) {
        self.heard_self = now;
        self.sent_unheard = 0;
    }

    /// Times the socket was opened again after it had been open.
    pub fn reopens(&self) -> u64 {
        self.reopens
    }
}

/// A wake-up more than [`STALL`] late: the agent did not run for `gap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub gap: Duration,
    /// Late by a ttl or more: the agent was stopped, and what queued meanwhile may be older
    /// than any deadline (a node that joined and died during the stop would be listed), so it
    /// is dropped unread and the agent announces itself, since peers may have expired it.
    /// Late by less, the host was short of CPU (hundreds of agents starting on two cores run
    /// seconds late) or the stop was short: what queued is at most `gap` old, which every
    /// peer's deadline now allows for anyway, and it is news: a goodbye among it must not be
    /// lost, nor a starting crowd's first beacons, whose senders would otherwise be heard as
    /// newcomers later, one by one, and answered again.
    pub stopped: bool,
}

/// How long the loop ran past `expected_by`, the latest it meant to run, if that long means
/// the agent did not run: more than [`STALL`]; `ttl` is this node's.
pub fn stalled_for(expected_by: Instant, now: Instant, ttl: Duration) -> Option<Stall> {
    let gap = now.saturating_duration_since(expected_by);
    (gap > STALL).then_some(Stall {
        gap,
        stopped: gap >= ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(15);
    const TTL: Duration = Duration::from_secs(35);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn in_use() -> String {
        "binding UDP 239.255.49.1:24901: Address already in use (os error 98)".to_owned()
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// 2 x 16.5 s at the 15 s interval.
    const LIMIT: Duration = Duration::from_millis(33_000);

    #[test]
    fn opens_at_once_and_is_ready_only_the_first_time() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        assert!(keeper.open_due(t0));
        assert_eq!(
            keeper.opened(t0),
            Opened {
                first: true,
                after_warnings: false
            }
        );
        assert!(!keeper.open_due(t0 + secs(100)), "open: nothing to retry");
        assert_eq!(keeper.next_wakeup(), None);
        keeper.reopen(t0 + secs(5));
        assert!(keeper.open_due(t0 + secs(5)), "reopened at once");
        assert!(!keeper.opened(t0 + secs(5)).first);
        assert_eq!(keeper.reopens(), 1);
    }

    #[test]
    fn failures_back_off_doubling_and_warn_on_that_schedule_only() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        let mut now = t0;
        let mut warnings = Vec::new();
        for _ in 0..40 {
            assert!(keeper.open_due(now));
            if let Some(warning) = keeper.open_failed(now, in_use()) {
                warnings.push((now - t0, warning.next_warning_in));
            }
            let retry = keeper.next_wakeup().expect("closed: a retry is due");
            // Never later than the next beacon: a link that comes back is used at once.
            assert!(retry - now <= INTERVAL, "{:?}", retry - now);
            now = retry;
        }
        let delays: Vec<Duration> = warnings.iter().map(|(_, next)| *next).collect();
        assert_eq!(delays[..6], [1, 2, 4, 8, 16, 30].map(secs));
        assert!(delays[6..].iter().all(|d| *d == MAX_RETRY), "{delays:?}");
        for pair in warnings.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= pair[0].1, "{warnings:?}");
        }
        let opened = keeper.opened(now);
        assert!(opened.after_warnings && opened.first);
        // A later failure starts the backoff from its first step again.
        keeper.reopen(now);
        assert_eq!(
            keeper.open_failed(now, in_use()).map(|w| w.next_warning_in),
            Some(FIRST_RETRY)
        );
    }

    #[test]
    fn a_run_of_receive_errors_reopens_and_warns_at_a_bounded_rate() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.opened(t0);
        let first = keeper.receive_failed(t0);
        assert_eq!(first.warn, Some(0));
        assert!(!first.reopen);
        keeper.received();
        // A run interrupted by a good read starts again.
        for i in 1..ERRORS_BEFORE_REOPEN {
            let failure = keeper.receive_failed(t0 + Duration::from_millis(u64::from(i)));
            assert!(!failure.reopen, "error {i}");
            assert_eq!(failure.warn, None, "one warning per period");
        }
        let last = keeper.receive_failed(t0 + secs(1));
        assert!(last.reopen, "ten in a row");
        keeper.reopen(t0 + secs(1));
        assert_eq!(
            keeper.receive_failed(t0 + secs(11)).warn,
            Some(ERRORS_BEFORE_REOPEN.into()),
            "the next warning says how many were held back"
        );
    }

    #[test]
    fn the_watchdog_fires_after_a_ttl_without_our_own_beacon_only_if_beacons_went_out() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.opened(t0);
        assert_eq!(keeper.silent_for(t0 + TTL), None, "nothing sent yet");
        keeper.beacon_sent(t0);
        keeper.heard_self(t0 + Duration::from_millis(1));
        let later = t0 + TTL + Duration::from_millis(1);
        keeper.beacon_sent(t0);
        assert_eq!(
            keeper.silent_for(later),
            None,
            "one beacon unheard is not yet a pattern"
        );
        keeper.beacon_sent(t0);
        assert_eq!(keeper.silent_for(t0 + TTL), None, "heard within the ttl");
        assert_eq!(
            keeper.silent_for(later),
            Some(TTL),
            "a ttl since it was heard"
        );
        keeper.reopen(later);
        keeper.opened(later);
        assert_eq!(keeper.silent_for(later + TTL), None, "nothing sent since");
        // A link that is down fails every send: its silence says nothing about the socket.
        let mut down = Keeper::new(INTERVAL, TTL, t0);
        down.opened(t0);
        assert_eq!(down.silent_for(t0 + TTL * 10), None);
    }

    #[test]
    fn a_backlog_is_no_silence_until_it_is_read() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.opened(t0);
        keeper.beacon_sent(t0);
        keeper.beacon_sent(t0 + INTERVAL);
        let later = t0 + TTL * 2;
        // A flood holds the receiver behind: our beacons wait in the queue behind it.
        keeper.backlog(true);
        assert_eq!(keeper.silent_for(later), None, "unread is not lost");
        // Read to its end, and still none of ours: the socket no longer hears the group.
        keeper.backlog(false);
        assert_eq!(keeper.silent_for(later), Some(TTL * 2));
        // A new socket starts with an empty queue.
        keeper.backlog(true);
        keeper.opened(later);
        keeper.beacon_sent(later);
        keeper.beacon_sent(later);
        assert!(keeper.silent_for(later + TTL).is_some());
    }

    #[test]
    fn after_a_stall_the_watchdog_waits_a_ttl_again() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.opened(t0);
        keeper.beacon_sent(t0);
        keeper.beacon_sent(t0);
        let resumed = t0 + TTL * 3;
        assert!(keeper.silent_for(resumed).is_some());
        keeper.stalled(resumed);
        assert_eq!(keeper.silent_for(resumed + TTL / 2), None);
    }

    #[test]
    fn a_new_agent_is_sending_until_it_has_had_two_jittered_intervals_to_send() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        assert_eq!(two_longest_gaps(INTERVAL), LIMIT);
        assert_eq!(
            keeper.sending(t0),
            Sending::default(),
            "nothing sent, nothing wrong"
        );
        keeper.open_failed(t0, in_use());
        assert_eq!(
            keeper.sending(t0 + LIMIT).not_sending,
            None,
            "not yet longer"
        );
        let not_sending = keeper.sending(t0 + LIMIT + ms(1)).not_sending;
        assert_eq!(
            not_sending,
            Some(NotSending {
                since: LIMIT + ms(1),
                reason: format!("cannot open the multicast socket: {}", in_use()),
            })
        );
        assert_eq!(keeper.sending(t0 + LIMIT * 9).last_sent, None);
    }

    #[test]
    fn a_beacon_that_goes_out_makes_it_sending_again_until_two_gaps_pass_without_one() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.open_failed(t0, in_use());
        let opened = t0 + secs(60);
        assert!(keeper.sending(opened).not_sending.is_some());
        keeper.opened(opened);
        assert!(
            keeper.sending(opened).not_sending.is_some(),
            "open is not yet sending"
        );
        keeper.beacon_sent(opened + ms(1));
        let sending = keeper.sending(opened + ms(1));
        assert_eq!(
            (sending.last_sent, sending.not_sending),
            (Some(ms(0)), None)
        );
        let later = opened + ms(1) + LIMIT + ms(1);
        let stopped = keeper.sending(later).not_sending.expect("two gaps without");
        assert_eq!(stopped.since, LIMIT + ms(1));
        assert_eq!(stopped.reason, "no attempt was made to send one");
        assert_eq!(keeper.sending(later).last_sent, Some(LIMIT + ms(1)));
    }

    #[test]
    fn a_link_down_for_less_than_two_gaps_is_no_failure_and_longer_says_why() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.opened(t0);
        keeper.beacon_sent(t0);
        // Every beacon of the schedule fails, from the next one on.
        for gap in 1..=2 {
            keeper.send_failed("Network is unreachable (os error 101)".into());
            assert_eq!(keeper.sending(t0 + INTERVAL * gap).not_sending, None);
        }
        assert_eq!(keeper.sending(t0 + LIMIT).not_sending, None);
        let down = keeper.sending(t0 + LIMIT + ms(1)).not_sending;
        assert_eq!(
            down.map(|d| d.reason).as_deref(),
            Some("cannot send a beacon: Network is unreachable (os error 101)")
        );
        keeper.beacon_sent(t0 + secs(40));
        assert_eq!(keeper.sending(t0 + secs(40)).not_sending, None, "back up");
    }

    #[test]
    fn a_stall_excuses_the_beacons_it_held_up_but_not_a_failure_before_it() {
        let t0 = Instant::now();
        let mut keeper = Keeper::new(INTERVAL, TTL, t0);
        keeper.opened(t0);
        keeper.beacon_sent(t0);
        let resumed = t0 + secs(100);
        keeper.stalled(resumed);
        let sending = keeper.sending(resumed + LIMIT);
        assert_eq!(sending.not_sending, None);
        assert_eq!(
            sending.last_sent,
            Some(secs(100) + LIMIT),
            "the truth all the same"
        );
        let mut failing = Keeper::new(INTERVAL, TTL, t0);
        failing.open_failed(t0, in_use());
        failing.stalled(resumed);
        assert!(failing.sending(resumed).not_sending.is_some());
    }

    #[test]
    fn a_stall_is_a_wake_up_more_than_a_second_late_and_a_stop_one_a_ttl_late() {
        let t0 = Instant::now();
        assert_eq!(stalled_for(t0, t0 + STALL, TTL), None);
        assert_eq!(
            stalled_for(t0 + secs(5), t0, TTL),
            None,
            "early is not late"
        );
        let starved = stalled_for(t0, t0 + secs(3), TTL);
        let starved = starved.expect("three seconds late is a stall");
        assert_eq!((starved.gap, starved.stopped), (secs(3), false));
        let stopped = stalled_for(t0, t0 + TTL, TTL).expect("a stall");
        assert!(stopped.stopped, "a ttl late: the agent was stopped");
        let stopped = stalled_for(t0, t0 + secs(100), TTL).expect("a stall");
        assert_eq!((stopped.gap, stopped.stopped), (secs(100), true));
    }
}
