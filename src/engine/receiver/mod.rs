//! The receiver task: the only owner of the registry and the unicast targets. It drives the
//! node's [`Receiver`] over the sockets (datagrams in, deadlines swept), keeps them working
//! as the [`Keeper`] says, takes in the resolver's answers, publishes every event through the
//! funnel and answers the handles' queries between datagrams (`queries.rs`); `sockets.rs` opens and
//! keeps the sockets.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::warn;

mod interfaces;
mod queries;
mod sockets;

use super::funnel::Funnel;
use super::link::{Announced, Cue, Outcome, ReceiverSide, Sockets};
use super::resolver::Resolved;
use super::query::Query;
use super::opening::Opening;
use super::stop::Stop;
use crate::clock::{now, wall_now};
use crate::config::Config;
use crate::net::changes::InterfaceChanges;
use crate::net::keeper::{Keeper, stalled_for};
use crate::net::selection::Joined;
use crate::net::socket::{self, BATCH, Batch, DatagramBuf};
use crate::node::{Heard, Receiver};
use crate::registry::Via;
use crate::wire::beacon::MAX_BEACON_LEN;

/// Datagrams read in one turn of the loop when they queue up: 64 handled beacons are some
/// 100 µs, a delay the API and the timers do not notice, and enough to spread the cost of a
/// turn thin.
const BURST: usize = 64;

pub(super) struct ReceiverTask {
    core: Receiver,
    keeper: Keeper,
    config: Arc<Config>,
    /// `None` until it opens, and while it is being opened again.
    socket: Option<Open>,
    link: ReceiverSide,
    /// Every event the node reports goes through it.
    funnel: Funnel,
    started: Instant,
    /// Told how the first attempt to open the sockets went, and when they first open.
    opening: tokio::sync::watch::Sender<Opening>,
    /// The port the unicast socket was last bound to, when the kernel chose it: a socket
    /// opened again takes the same, so peers do not see this node move.
    unicast_port: u16,
    /// When the targets are next pruned as beacons go out (resolver answers prune them too).
    prune_at: Instant,
    /// The interfaces the groups are joined on, as the announcer was handed them.
    interfaces: Vec<Joined>,
    /// When the host's interfaces are next read (see `interfaces.rs`).
    interfaces_at: Instant,
    /// What each `--interface` that names nothing yet lacks, as of the last reading.
    missing: Vec<String>,
    /// The kernel's word that the interfaces changed; `None` where netlink is not there.
    changes: Option<InterfaceChanges>,
    /// The interfaces (by index) and groups whose join failed and was warned about: warned
    /// once, then tried again quietly.
    join_failed: Vec<(u32, std::net::IpAddr)>,
}

/// The sockets while they are open, with what the kernel said of them.
struct Open {
    sockets: Arc<Sockets>,
    receive_buffer: Option<usize>,
    /// Datagrams the kernel dropped for each socket (in `Sockets::all`'s order), when it says.
    drops: [Option<u64>; 4],
}

/// What woke the loop.
enum Woke {
    Query(Query),
    Announced(Announced),
    Resolved(Resolved),
    /// The socket at this place in `Sockets::all` has datagrams queued (or an error to report).
    Readable(usize, std::io::Result<()>),
    /// The kernel says the host's interfaces or addresses changed.
    Interfaces,
    Timer,
}

impl ReceiverTask {
    pub(super) fn new(
        core: Receiver,
        config: Arc<Config>,
        link: ReceiverSide,
        funnel: Funnel,
        opening: tokio::sync::watch::Sender<Opening>,
        now: Instant,
    ) -> ReceiverTask {
        ReceiverTask {
            core,
            keeper: Keeper::new(config.interval, config.ttl, now),
            config,
            socket: None,
            link,
            funnel,
            started: now,
            opening,
            unicast_port: 0,
            prune_at: now,
            interfaces: Vec::new(),
            interfaces_at: now,
            missing: Vec::new(),
            join_failed: Vec::new(),
            changes: match InterfaceChanges::subscribe() {
                Ok(changes) => Some(changes),
                Err(err) => {
                    warn!(error = %err, "cannot subscribe to the kernel's interface changes (netlink): reading the interfaces every second instead");
                    None
                }
            },
        }
    }

    /// Opens the socket at `now`, before either task runs: the announcer then finds it open,
    /// and the first beacon goes out on the announcer's first poll, not a scheduling round
    /// later. A failure is retried by the loop, on the keeper's schedule.
    pub(super) fn open_first(&mut self, now: Instant) {
        if self.keeper.open_due(now) {
            self.open(now);
        }
    }

    /// Receives until `shutdown` is cancelled, answering `queries` between datagrams.
    pub(super) async fn run(
        mut self,
        mut queries: mpsc::Receiver<Query>,
        mut resolved: mpsc::Receiver<Resolved>,
        shutdown: Stop,
    ) {
        self.publish_targets(now());
        // Queries asked before the task first ran come before any datagram: a subscription
        // taken at once after the start (the agent's hooks take one) starts from no peer and
        // sees each one join.
        while let Ok(query) = queries.try_recv() {
            self.answer(query);
        }
        let mut bufs: Box<[DatagramBuf; BATCH]> = Box::new([[0; MAX_BEACON_LEN + 1]; BATCH]);
        let mut batch = Batch::default();
        loop {
            let turn = now();
            if self.keeper.open_due(turn) {
                self.open(turn);
            }
            self.check_interfaces(turn);
            if let Some(silence) = self.keeper.silent_for(turn) {
                warn!(silence = %humantime::format_duration(silence),
                    "not even our own beacons came back for a ttl: opening the socket again");
                self.reopen(turn);
            }
            // At least once a ttl, so that a stop is noticed even with nothing else to wait
            // for; the announcer's beacons wake the loop more often than that anyway.
            let wakeup = [
                self.core.next_wakeup(),
                self.funnel.summary_due(),
                self.keeper.next_wakeup(),
                // Where netlink tells of changes, the interfaces are read again at whatever
                // wakes the loop after CHECK_INTERFACES_ANYWAY (a beacon, at the latest): no
                // wake-up of their own for an idle agent.
                self.socket
                    .as_ref()
                    .filter(|_| self.config.multicast && self.changes.is_none())
                    .map(|_| self.interfaces_at),
            ]
            .into_iter()
            .flatten()
            .fold(turn + self.config.ttl, Instant::min);
            // By then at the latest the loop runs again, unless the process is not running.
            let expected_by = wakeup.max(turn);
            let sockets = self.socket.as_ref().map(|open| open.sockets.all());
            let readable = |at: usize| async move {
                match sockets.and_then(|all| all[at]) {
                    Some(socket) => socket.readable().await,
                    None => std::future::pending().await,
                }
            };
            let changes = self.changes.as_ref();
            let changed = async move {
                match changes {
                    Some(changes) => changes.changed().await,
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                () = shutdown.requested() => break,
                () = changed => Woke::Interfaces,
                Some(query) = queries.recv() => Woke::Query(query),
                Some(announced) = self.link.announced.recv() => Woke::Announced(announced),
                Some(answer) = resolved.recv() => Woke::Resolved(answer),
                readable = readable(0) => Woke::Readable(0, readable),
                readable = readable(1) => Woke::Readable(1, readable),
                readable = readable(2) => Woke::Readable(2, readable),
                readable = readable(3) => Woke::Readable(3, readable),
                _ = tokio::time::sleep_until(wakeup.into()) => Woke::Timer,
            };
            // Checked before anything that woke the loop is handled: after a stop, the timer
            // would expire every peer at once and the datagram would be stale news.
            let now = now();
            if let Some(stall) = stalled_for(expected_by, now, self.config.ttl) {
                self.stalled(stall, now);
                if stall.stopped && matches!(woke, Woke::Readable(_, Ok(()))) {
                    continue; // what was readable was stale, and is gone
                }
            }
            match woke {
                Woke::Query(query) => self.answer(query),
                Woke::Announced(announced) => {
                    self.announced(announced, now);
                    // The copies of one beacon to a hundred targets are a hundred reports:
                    // taken in one turn of the loop, not a hundred.
                    while let Ok(announced) = self.link.announced.try_recv() {
                        self.announced(announced, now);
                    }
                }
                Woke::Resolved(answer) => self.resolved(answer, now),
                Woke::Readable(at, Ok(())) => {
                    let more = self.drain(at, &mut bufs, &mut batch, now);
                    // A verified beacon may have taught new targets (its sender, the peers
                    // it told of): they are greeted now, not at the next beacon.
                    self.hand_over_targets();
                    self.keeper.backlog(more);
                    if self.core.sweep_due(now) {
                        self.sweep(now);
                    }
                    if more {
                        // A flood: let the API, the announcer and the hooks run between two
                        // bursts. Tokio's own budget would yield only after 128 turns of the
                        // loop, and at capacity every made-up hostname is two events (its
                        // join and the eviction it causes): 8,192 datagrams were a third of a
                        // second of a debug build, during which `peerd health` waited.
                        tokio::task::yield_now().await;
                    }
                }
                Woke::Readable(_, Err(err)) => self.receive_failed(&err, now),
                Woke::Interfaces => self.interfaces_changed(now),
                Woke::Timer => self.sweep(now),
            }
        }
    }

    /// Reads and takes in what is queued, a batch per system call, up to [`BURST`] datagrams
    /// before going back round the loop: a turn of it (a timer armed and dropped, the
    /// cancellation and query futures polled, the clock read) costs as much as a datagram.
    /// Bounded, so a flood still leaves room for the API's queries, the beacons and the
    /// deadlines. One `now` serves the burst: it lasts some 100 µs, far below a wheel tick.
    ///
    /// Returns whether it read a whole burst: more may be queued.
    fn drain(
        &mut self,
        at: usize,
        bufs: &mut [DatagramBuf; BATCH],
        batch: &mut Batch,
        now: Instant,
    ) -> bool {
        let wall_now = wall_now();
        for _ in 0..BURST / BATCH {
            let Some(open) = &mut self.socket else {
                return false;
            };
            let Some(udp) = open.sockets.all()[at] else {
                return false;
            };
            // The groups' sockets come first; the IPv6 one hears unicast too, and says which.
            let socket_via = if at < 2 { Via::Group } else { Via::Unicast };
            match socket::recv_batch(udp, bufs, batch) {
                Ok(()) => {
                    self.keeper.received();
                    if let Some(drops) = batch.drops {
                        open.drops[at] = Some(u64::from(drops));
                    }
                    for (buf, &(len, from, to_group)) in bufs.iter().zip(batch.got.iter()) {
                        let via = match to_group {
                            Some(true) => Via::Group,
                            Some(false) => Via::Unicast,
                            None => socket_via,
                        };
                        let heard =
                            self.core
                                .handle_datagram_via(&buf[..len], from, via, now, wall_now);
                        if matches!(heard, Heard::Changed(_) | Heard::Replaced(_)) {
                            self.cue_answer(now);
                        }
                        match heard {
                            Heard::Changed(event) => self.funnel.publish(&event, now),
                            Heard::Replaced(events) => {
                                for event in events.iter() {
                                    self.funnel.publish(event, now);
                                }
                            }
                            Heard::Own => self.keeper.heard_self(now),
                            Heard::Renewed | Heard::Refused => {}
                        }
                    }
                    if batch.got.len() < BATCH {
                        return false; // most likely drained; the next turn finds out for sure
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(err) => {
                    self.receive_failed(&err, now);
                    return false;
                }
            }
        }
        true
    }

    /// Counts one beacon the announcer sent, or failed to.
    fn announced(&mut self, announced: Announced, now: Instant) {
        let Announced {
            early,
            unicast,
            outcome,
        } = announced;
        self.core.announced(early, outcome.is_sent(), unicast);
        match outcome {
            Outcome::Sent if unicast => self.keeper.unicast_sent(now),
            Outcome::Sent => self.keeper.beacon_sent(now),
            // One target that cannot be reached says nothing of the others.
            Outcome::Failed(_) if unicast => {}
            Outcome::Failed(err) => self.keeper.send_failed(err),
            Outcome::NoSocket => {} // its failure to open is the reason
        }
        // Once a regular beacon, not once a copy: with a hundred targets, a hundred copies an
        // interval each pruned them all.
        if !early && now >= self.prune_at {
            self.prune_at = now + self.config.interval / 2;
            self.publish_targets(now);
        }
    }

    /// Asks the announcer to answer the newcomer the latest datagram brought, if it did: by
    /// unicast, or on the group in a crowd. Dropped when the cues are full (see `link::CUES`).
    fn cue_answer(&mut self, now: Instant) {
        if let Some(request) = self.core.take_answer() {
            let _ = self.link.cues.try_send(Cue::Answer(now, request));
        }
    }

    /// Takes in the resolver's answer for one name.
    fn resolved(&mut self, answer: Resolved, now: Instant) {
        let targets = self.core.targets_mut();
        if let Some(name) = targets.resolved(answer.index, answer.result, now)
            && let Some(error) = &name.error
        {
            // Once per name and error: the status shows it meanwhile.
            if answer.first_failure {
                warn!(name = %name.target, %error, kept = name.addresses.len(),
                    "cannot resolve a peers name; keeping the addresses it last resolved to");
            }
        }
        self.publish_targets(now);
    }

    /// Drops the targets silent for a ttl and hands the announcer the list, if it changed.
    fn publish_targets(&mut self, now: Instant) {
        self.core.targets_mut().prune(now);
        self.hand_over_targets();
        let heard = self.core.targets().heard_within_ttl(now);
        self.link.heard.send_if_modified(|old| {
            let changed = *old != heard;
            *old = heard;
            changed
        });
    }

    /// Hands the announcer the targets, if they changed since it was last handed them.
    fn hand_over_targets(&mut self) {
        if let Some(list) = self.core.targets_mut().take_changed() {
            self.link.targets.send_replace(list);
        }
    }

    fn sweep(&mut self, now: Instant) {
        for event in &self.core.handle_timeout(now) {
            self.funnel.publish(event, now);
        }
        self.funnel.flush_summary(now);
    }
}
