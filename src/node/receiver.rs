//! What the datagrams heard do to this node: admission (signatures, the replay window), its own
//! beacons looped back, its own hostname from another instance, and the registry; every refusal
//! counted by reason, and logged at a bounded rate. Driven by explicit instants; the agent's
//! receiver task reads the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, warn};

use super::admission;
use super::stats::{Impostor, NodeStats};
use super::targets::Targets;
use crate::config::Config;
use crate::config::Network;
use crate::registry::{Peer, PeerEvent, Refusal, Registry, Via};
use crate::throttle::Throttle;
use crate::wire::auth::Keyring;
use crate::wire::beacon::{Beacon, DecodeError, format_instance};

/// At most one debug line per this period about malformed datagrams, so a flood cannot flood
/// logs.
const IGNORED_LOG_PERIOD: Duration = Duration::from_secs(1);
/// At most one warning per this period about refused signatures and replays: each is a
/// misconfiguration or an attack worth a line, never a line per datagram.
const REFUSED_LOG_PERIOD: Duration = Duration::from_secs(10);

/// A newcomer to answer by unicast, as [`Receiver::take_answer`] tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRequest {
    /// Where its beacon came from: its agent's socket.
    pub to: SocketAddr,
    /// Addresses of the peers this node lists, for a newcomer that reached it by unicast (the
    /// answer tells them only when it is signed).
    pub peers: Vec<SocketAddr>,
    /// How many peers this node lists: the more there are, the wider the answers of all of
    /// them are spread.
    pub listed: usize,
    /// It was first heard from an early beacon to the group, which answers newcomers: it is
    /// no newcomer itself, only new to this node. Answered by unicast while answers are cheap,
    /// never by another group beacon in a crowd (see [`Announcer::answer`]).
    ///
    /// [`Announcer::answer`]: super::Announcer::answer
    pub unicast_only: bool,
}

/// At most this many peers are told to one newcomer (in three or four datagrams): it greets
/// them, and their answers tell it of others, so a thousand are found in a few round trips,
/// while a crowd of newcomers asking one seed holds a bounded list each.
pub const PEERS_TOLD: usize = 64;

/// What one datagram did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Another node's beacon changed what is listed, as the event says. Boxed: most datagrams
    /// are renewals, and moving a whole event through every one of them cost more (about 80
    /// instructions, by callgrind) than allocating the few that happen.
    Changed(Box<PeerEvent>),
    /// A newcomer took the place of a peer heard only once, while the most peers were listed:
    /// the eviction, then the newcomer's own change.
    Replaced(Box<[PeerEvent; 2]>),
    /// Another node's beacon, taken in, that changed nothing anyone is told about: a renewal.
    Renewed,
    /// Our own beacon, looped back by the kernel: the socket hears the group.
    Own,
    /// Not a beacon, or refused: counted by reason, nothing else changed.
    Refused,
}

/// The receiving half of one node: its registry and what it counts.
#[derive(Debug)]
pub struct Receiver {
    instance: u64,
    name: String,
    ttl: Duration,
    keys: Keyring,
    accept_unauthenticated: bool,
    registry: Registry,
    stats: NodeStats,
    malformed_log: Throttle,
    auth_log: Throttle,
    replay_log: Throttle,
    impostor_log: Throttle,
    /// The latest other instance heard announcing our hostname.
    impostor: Option<Impostor>,
    targets: Targets,
    /// The link of the group, when the node joins it: unsigned unicast from there is taken.
    /// The networks of the interfaces the node joins the groups on: an address in one is on a
    /// link, where anyone could send to the group anyway (RFC 6762 section 11's check).
    on_link: Vec<Network>,
    /// Their indexes: an IPv6 link-local sender is on one of those links when its scope says.
    on_link_indexes: Vec<u32>,
    /// The newcomer the latest datagram asks to answer, if it does.
    answer: Option<AnswerRequest>,
    /// Where the next list of peers told to a newcomer starts: each tells others, so that
    /// newcomers greeting the peers they were told of learn the rest from their answers.
    told_from: usize,
}

impl Receiver {
    /// The receiver of a node announcing `config.name` as `instance`, started at `now`.
    pub fn new(config: &Config, instance: u64, now: Instant) -> Receiver {
        Receiver {
            instance,
            name: config.name.clone(),
            ttl: config.ttl,
            keys: config.keys.clone(),
            accept_unauthenticated: config.accept_unauthenticated,
            registry: Registry::new(config.ttl, now).limit_peers(config.max_peers),
            stats: NodeStats::default(),
            malformed_log: Throttle::new(IGNORED_LOG_PERIOD),
            auth_log: Throttle::new(REFUSED_LOG_PERIOD),
            replay_log: Throttle::new(REFUSED_LOG_PERIOD),
            impostor_log: Throttle::new(REFUSED_LOG_PERIOD),
            impostor: None,
            targets: Targets::new(
                &config.peers_dns,
                &config.peers,
                config.ttl,
                Vec::new(),
                now,
            ),
            on_link: Vec::new(),
            on_link_indexes: Vec::new(),
            answer: None,
            told_from: 0,
        }
    }

    /// Never beacons to `own` (this node's own unicast addresses).
    pub fn with_own_addresses(mut self, own: Vec<SocketAddr>) -> Receiver {
        self.targets.set_own(own);
        self
    }

    /// Takes unsigned unicast beacons from `on_link` too: the networks of the interfaces the
    /// groups are joined on (with `indexes`, theirs), which follow the host's.
    pub fn set_on_link(&mut self, on_link: Vec<Network>, indexes: Vec<u32>) {
        self.on_link = on_link;
        self.on_link_indexes = indexes;
    }

    /// The unicast targets, to feed with resolver answers and read.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    pub fn targets_mut(&mut self) -> &mut Targets {
        &mut self.targets
    }

    /// The newcomer the latest datagram asks to answer by unicast, if any: a join or a restart
    /// heard from a beacon that is not itself an answer.
    pub fn take_answer(&mut self) -> Option<AnswerRequest> {
        self.answer.take()
    }

    /// Takes in one datagram heard from `from` at `now` (when the wall clock read `wall_now`).
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
    ) -> Heard {
        self.handle_datagram_via(bytes, from, Via::Group, now, wall_now)
    }

    /// [`handle_datagram`](Self::handle_datagram) for a datagram that came `via` the group or
    /// by unicast. By unicast, an unsigned beacon is taken only from a configured target or
    /// from the group's link; a verified one from anywhere, and its sender becomes a target,
    /// as do the peers it tells of.
    pub fn handle_datagram_via(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        via: Via,
        now: Instant,
        wall_now: SystemTime,
    ) -> Heard {
        self.answer = None;
        if via == Via::Unicast {
            self.stats.unicast_received += 1;
        }
        let refused = &mut self.stats.refused;
        let mut beacon = match Beacon::decode(bytes) {
            Ok(beacon) => beacon,
            Err(reason) => {
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
                return Heard::Refused;
            }
        };
        let (keys, accept) = (&self.keys, self.accept_unauthenticated);
        if let Err(why) = admission::admit(&mut beacon, bytes, keys, accept, wall_now) {
            let (count, log) = if why.is_replay() {
                (&mut refused.replay, &mut self.replay_log)
            } else {
                (&mut refused.authentication, &mut self.auth_log)
            };
            *count += 1;
            if let Some(suppressed) = log.admit(now) {
                warn!(hostname = %beacon.hostname, %from, refused_since_last_log = suppressed, "beacon refused: {why}");
            }
            return Heard::Refused;
        }
        if via == Via::Unicast && !self.unicast_admitted(&beacon, from, now) {
            return Heard::Refused;
        }
        // The one check for our own instance: the registry never sees our beacons.
        if beacon.instance == self.instance {
            self.stats.own_beacons_received += 1;
            return Heard::Own;
        }
        if beacon.hostname == self.name {
            self.impostor_heard(&beacon, from, now);
            return Heard::Refused;
        }
        debug!(hostname = %beacon.hostname, %from, sequence = beacon.sequence, "beacon received");
        match self.registry.observe_via(&beacon, from, via, now) {
            Ok(event) => {
                self.stats.beacons_received += 1;
                self.targets.heard(from, now);
                // A unicast answer is never answered in turn: the newcomer it answers asked.
                if let Some(event) = &event
                    && event.is_newcomer()
                    && !(beacon.answer && via == Via::Unicast)
                {
                    let mut request = self.answer_request(from, via);
                    request.unicast_only = beacon.answer;
                    self.answer = Some(request);
                }
                match (self.registry.take_evicted(), event) {
                    (Some(evicted), Some(event)) => Heard::Replaced(Box::new([evicted, event])),
                    (None, Some(event)) => Heard::Changed(Box::new(event)),
                    (_, None) => Heard::Renewed,
                }
            }
            Err(why) => {
                let refused = &mut self.stats.refused;
                match why {
                    Refusal::Duplicate => {
                        self.stats.duplicates += 1;
                        self.targets.heard(from, now);
                        return Heard::Renewed;
                    }
                    Refusal::Replay => refused.replay += 1,
                    Refusal::Capacity => refused.capacity += 1,
                    Refusal::Unsigned => refused.authentication += 1,
                }
                Heard::Refused
            }
        }
    }

    /// Whether `beacon`, which came by unicast from `from`, may go on: verified, or unsigned from
    /// a configured target or the group's link. A verified sender becomes a target, and so do
    /// the peers a verified beacon tells of.
    fn unicast_admitted(&mut self, beacon: &Beacon, from: SocketAddr, now: Instant) -> bool {
        if beacon.auth.is_some() {
            if beacon.instance != self.instance {
                self.targets.learn(from, now);
                for &peer in &beacon.peers {
                    self.targets.learn(peer, now);
                }
            }
            return true;
        }
        // A link-local address is on the link its scope names: one of the groups' only if
        // the agent joined them there (not a container bridge `all` leaves out, say).
        let on_link = match from {
            SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => {
                self.on_link_indexes.contains(&v6.scope_id())
            }
            from => self.on_link.iter().any(|link| link.contains(from.ip())),
        };
        if on_link || self.targets.vouches_for(from) {
            return true;
        }
        self.stats.refused.unicast += 1;
        if let Some(suppressed) = self.auth_log.admit(now) {
            warn!(hostname = %beacon.hostname, %from, refused_since_last_log = suppressed,
                "unsigned beacon refused: it came by unicast from an address that is no --peer or --peers-dns target");
        }
        false
    }

    /// What to tell a newcomer heard from `from`: up to [`PEERS_TOLD`] of the peers listed, if
    /// it reached us by unicast (it may know nobody else).
    fn answer_request(&mut self, from: SocketAddr, via: Via) -> AnswerRequest {
        // Only a signed answer may tell them: receivers believe no other.
        let peers = match via {
            Via::Unicast if !self.keys.is_empty() => {
                let mut peers: Vec<SocketAddr> = self.registry.addresses().collect();
                let start = self.told_from % peers.len().max(1);
                peers.rotate_left(start);
                self.told_from = self.told_from.wrapping_add(PEERS_TOLD);
                peers.retain(|address| *address != from);
                peers.truncate(PEERS_TOLD);
                peers
            }
            _ => Vec::new(),
        };
        AnswerRequest {
            to: from,
            peers,
            listed: self.registry.len(),
            unicast_only: false,
        }
    }

    /// Another instance announces our hostname: a conflict to report, never a peer to list.
    /// Warned once per instance, and again once it has been silent for a ttl; and never more
    /// than once a [`REFUSED_LOG_PERIOD`], however many instances a sender makes up.
    fn impostor_heard(&mut self, beacon: &Beacon, from: SocketAddr, now: Instant) {
        self.stats.refused.own_hostname += 1;
        let known = self.impostor.is_some_and(|known| {
            known.instance == beacon.instance && known.last_seen + self.ttl > now
        });
        if let Some(held_back) = (!known).then(|| self.impostor_log.admit(now)).flatten() {
            warn!(hostname = %beacon.hostname, other_address = %from.ip(), other_instance = %format_instance(beacon.instance),
                other_instances_since_last_log = held_back,
                "hostname conflict: another instance announces this agent's own hostname; give one of them another --name");
        }
        self.impostor = Some(Impostor {
            instance: beacon.instance,
            address: from,
            last_seen: now,
        });
    }

    /// Counts one beacon of this node's announcer: `early` if it answered a newcomer, `sent` if
    /// it went out (sending fails while a link is down), `unicast` if it went to one node.
    pub fn announced(&mut self, early: bool, sent: bool, unicast: bool) {
        self.stats.early_answers += u64::from(early && !unicast);
        self.stats.unicast_answers += u64::from(early && unicast);
        self.stats.beacons_sent += u64::from(sent);
        self.stats.unicast_sent += u64::from(sent && unicast);
    }

    /// The agent was stopped (SIGSTOP, a stalled host) and runs again at `now`. Time it
    /// could not listen does not count against its peers: each gets a ttl from now.
    pub fn handle_stall(&mut self, now: Instant) {
        self.stats.stalls += 1;
        self.registry.give_time(now);
    }

    /// Datagrams that queued up while the agent was stopped, dropped unread.
    pub fn stale_dropped(&mut self, count: u64) {
        self.stats.refused.stale += count;
    }

    /// Drops the peers whose deadline has passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<PeerEvent> {
        self.registry.expire(now)
    }

    /// When a deadline is next to be checked, up to [`sweep_slack`](Self::sweep_slack) late.
    /// Most deadlines the registry holds are stale (the peer beaconed since, and its entry only
    /// moves on), and the datagrams that arrive anyway sweep what is due
    /// ([`sweep_due`](Self::sweep_due)); so with peers talking, checking deadlines costs no
    /// wake-up of its own, and a silent peer still expires on time but for the slack.
    pub fn next_wakeup(&self) -> Option<Instant> {
        Some(self.registry.next_deadline()? + self.sweep_slack())
    }

    /// How late a deadline may be checked when no datagram comes to check it sooner: a 64th of
    /// the ttl (547 ms at the default 35 s, 16 ms at 1 s), at most a second.
    pub fn sweep_slack(&self) -> Duration {
        (self.ttl / 64).min(Duration::from_secs(1))
    }

    /// Whether a deadline is due by `now`: the agent sweeps after reading datagrams then.
    pub fn sweep_due(&self, now: Instant) -> bool {
        self.registry
            .next_deadline()
            .is_some_and(|deadline| deadline <= now)
    }

    /// The listed peers, in no particular order. Call [`handle_timeout`](Self::handle_timeout)
    /// first, so none past its deadline is listed.
    pub fn peers(&self) -> impl Iterator<Item = Peer> + '_ {
        self.registry.peers()
    }

    /// The node's figures as of `now`.
    pub fn stats(&self, now: Instant) -> NodeStats {
        NodeStats {
            peers: self.registry.len(),
            impostor: self
                .impostor
                .filter(|impostor| impostor.last_seen + self.ttl > now),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::config::REPLAY_WINDOW;
    use crate::node::announcer::Announcer;
    use crate::node::stats::Refused;
    use crate::registry::Paths;

    const OWN: u64 = 0xAAAA;
    /// The wall clock of these tests: only signed beacons look at it.
    const WALL: SystemTime = SystemTime::UNIX_EPOCH;

    fn config() -> Config {
        Config::new("self", Ipv4Addr::LOCALHOST)
    }

    fn receiver(t0: Instant) -> Receiver {
        Receiver::new(&config(), OWN, t0)
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

    fn joined(heard: &Heard) -> bool {
        matches!(heard, Heard::Changed(event) if matches!(**event, PeerEvent::Joined { .. }))
    }

    #[test]
    fn a_deadline_waits_a_slack_for_a_datagram_to_check_it_and_still_expires_the_peer() {
        let t0 = Instant::now();
        let mut receiver = receiver(t0);
        let ttl = config().ttl;
        assert_eq!(receiver.next_wakeup(), None, "no peer, no deadline");
        receiver.handle_datagram(&beacon_of("peer", 9, 0), from(), t0, WALL);
        assert_eq!(receiver.sweep_slack(), ttl / 64);
        assert_eq!(
            receiver.next_wakeup(),
            Some(t0 + ttl + ttl / 64),
            "the timer waits the slack"
        );
        // A datagram arriving meanwhile finds the deadline due and sweeps it on time.
        assert!(!receiver.sweep_due(t0 + ttl - Duration::from_nanos(1)));
        assert!(receiver.sweep_due(t0 + ttl));
        let expired = receiver.handle_timeout(t0 + ttl);
        assert!(
            matches!(expired.as_slice(), [PeerEvent::Expired { peer }] if peer.hostname == "peer")
        );
    }

    #[test]
    fn a_silent_peer_expires_at_its_own_ttl_and_not_before() {
        let t0 = Instant::now();
        let mut receiver = receiver(t0);
        let asks = Beacon {
            instance: 1,
            hostname: "slow".into(),
            ttl: Some(Duration::from_secs(90)),
            ..Beacon::default()
        };
        receiver.handle_datagram(&asks.encode(), from(), t0, WALL);
        let expiry = t0 + Duration::from_secs(90);
        while let Some(at) = receiver.next_wakeup().filter(|at| *at < expiry) {
            assert!(
                receiver.handle_timeout(at).is_empty(),
                "not before its deadline"
            );
        }
        let events = receiver.handle_timeout(expiry);
        assert!(matches!(events[..], [PeerEvent::Expired { .. }]));
    }

    #[test]
    fn counts_what_it_hears_and_what_its_announcer_sent() {
        let t0 = Instant::now();
        let mut receiver = receiver(t0);
        assert_eq!(
            receiver.handle_datagram(b"garbage", from(), t0, WALL),
            Heard::Refused
        );
        let heard = receiver.handle_datagram(&beacon_of("peer", 1, 0), from(), t0, WALL);
        assert!(joined(&heard), "{heard:?}");
        assert_eq!(
            receiver.handle_datagram(&beacon_of("peer", 1, 1), from(), t0, WALL),
            Heard::Renewed,
            "a renewal changes nothing anyone is told"
        );
        assert_eq!(
            receiver.handle_datagram(&beacon_of("self", OWN, 0), from(), t0, WALL),
            Heard::Own
        );
        receiver.announced(false, true, false);
        receiver.announced(true, false, true);
        let stats = receiver.stats(t0);
        assert_eq!(
            (
                stats.refused.total(),
                stats.beacons_received,
                stats.own_beacons_received,
                stats.peers
            ),
            (1, 2, 1, 1)
        );
        assert_eq!(
            (
                stats.beacons_sent,
                stats.early_answers,
                stats.unicast_answers
            ),
            (1, 0, 1),
            "the early one went to one node"
        );
        let peers: Vec<Peer> = receiver.peers().collect();
        assert_eq!(peers[0].hostname, "peer");
    }

    #[test]
    fn every_refusal_is_counted_once_with_its_reason() {
        let t0 = Instant::now();
        let config = Config {
            max_peers: 1,
            ..config()
        };
        let mut receiver = Receiver::new(&config, OWN, t0);
        receiver.handle_datagram(&beacon_of("peer", 1, 5), from(), t0, WALL);
        receiver.handle_datagram(&beacon_of("peer", 1, 5), from(), t0, WALL);
        receiver.handle_datagram(&beacon_of("peer", 1, 4), from(), t0, WALL);
        // Heard twice, so it keeps its place.
        receiver.handle_datagram(&beacon_of("peer", 1, 6), from(), t0, WALL);
        receiver.handle_datagram(&beacon_of("other", 2, 0), from(), t0, WALL);
        let stats = receiver.stats(t0);
        assert_eq!((stats.refused.replay, stats.refused.capacity), (1, 1));
        assert_eq!(stats.duplicates, 1, "no refusal: it came two ways");
        assert_eq!(stats.refused.total(), 2);
        assert_eq!(stats.beacons_received, 2, "only the ones taken in");
    }

    #[test]
    fn a_newcomer_that_makes_room_reports_the_eviction_first() {
        let t0 = Instant::now();
        let config = Config {
            max_peers: 1,
            ..config()
        };
        let mut receiver = Receiver::new(&config, OWN, t0);
        receiver.handle_datagram(&beacon_of("once", 1, 0), from(), t0, WALL);
        let heard = receiver.handle_datagram(&beacon_of("newcomer", 2, 0), from(), t0, WALL);
        let Heard::Replaced(events) = heard else {
            panic!("{heard:?}");
        };
        assert!(matches!(&events[0], PeerEvent::Evicted { peer } if peer.hostname == "once"));
        assert!(matches!(&events[1], PeerEvent::Joined { peer } if peer.hostname == "newcomer"));
        assert_eq!(receiver.stats(t0).peers, 1);
    }

    /// A sender and a receiver called `name` holding `secrets` (the first signs).
    fn keyed(
        name: &str,
        instance: u64,
        secrets: &[&[u8]],
        accept_unauthenticated: bool,
    ) -> (Announcer, Receiver) {
        let config = Config {
            keys: Keyring::new(secrets),
            accept_unauthenticated,
            ..Config::new(name, Ipv4Addr::LOCALHOST)
        };
        let now = Instant::now();
        (
            Announcer::new(&config, instance, 7, now),
            Receiver::new(&config, instance, now),
        )
    }

    const KEY: &[u8] = b"a shared secret of 32 bytes, ok!";
    const OTHER_KEY: &[u8] = b"somebody else's secret, 32 bytes";

    fn now_wall() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000)
    }

    /// Whether `receiver` lists `sender` after one beacon of it.
    fn hears(sender: &mut Announcer, receiver: &mut Receiver) -> bool {
        let t = Instant::now();
        let beacon = sender.poll(t, now_wall()).expect("first beacon is due");
        receiver.handle_datagram(&beacon.bytes, from(), t, now_wall());
        receiver.registry.len() == 1
    }

    fn refused(receiver: &Receiver) -> Refused {
        receiver.stats(Instant::now()).refused
    }

    #[test]
    fn signed_nodes_hear_each_other_and_refuse_the_unsigned_and_wrongly_signed() {
        let (mut a, _) = keyed("a", 1, &[KEY], false);
        let (_, mut b) = keyed("b", 2, &[KEY], false);
        assert!(hears(&mut a, &mut b));
        let (mut plain, _) = keyed("plain", 3, &[], false);
        let (mut stranger, _) = keyed("stranger", 4, &[OTHER_KEY], false);
        let (_, mut c) = keyed("c", 5, &[KEY], false);
        assert!(!hears(&mut plain, &mut c));
        assert!(!hears(&mut stranger, &mut c));
        assert_eq!(refused(&c).authentication, 2);
        // And an agent without a secret ignores signed beacons: a misconfigured node is
        // visible on both sides, not half-listed.
        let (mut d, _) = keyed("d", 6, &[KEY], false);
        let (_, mut plain) = keyed("plain", 7, &[], false);
        assert!(!hears(&mut d, &mut plain));
        assert_eq!(refused(&plain).authentication, 1);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let (mut a, _) = keyed("a", 1, &[KEY], false);
        let bytes = a.poll(Instant::now(), now_wall()).expect("due").bytes;
        let (_, mut b) = keyed("b", 2, &[KEY], false);
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
        let (_, mut migrating) = keyed("m", 1, &[KEY], true);
        let (mut plain, _) = keyed("plain", 2, &[], false);
        assert!(hears(&mut plain, &mut migrating));
        let (mut migrating, _) = keyed("m", 1, &[KEY], true);
        let (_, mut plain) = keyed("plain", 2, &[], false);
        assert!(hears(&mut migrating, &mut plain));
        let (_, mut migrating) = keyed("m", 1, &[KEY], true);
        let (mut strict, _) = keyed("strict", 3, &[KEY], false);
        assert!(hears(&mut strict, &mut migrating));
        let (mut migrating, _) = keyed("m", 1, &[KEY], true);
        let (_, mut strict) = keyed("strict", 3, &[KEY], false);
        assert!(hears(&mut migrating, &mut strict));
    }

    #[test]
    fn a_rotated_key_keeps_everyone_together() {
        const NEW: &[u8] = b"the new secret, also 32 bytes ok";
        // Step 1: the new key is installed everywhere, second. Step 2: it moves first, node
        // by node. Step 3: the old key goes.
        let (mut old_first, _) = keyed("a", 1, &[KEY, NEW], false);
        let (_, mut new_first) = keyed("b", 2, &[NEW, KEY], false);
        assert!(hears(&mut old_first, &mut new_first));
        let (mut new_first, _) = keyed("b", 2, &[NEW, KEY], false);
        let (_, mut new_only) = keyed("c", 3, &[NEW], false);
        assert!(hears(&mut new_first, &mut new_only));
        let (mut new_first, _) = keyed("b", 2, &[NEW, KEY], false);
        let (_, mut old_first) = keyed("a", 1, &[KEY, NEW], false);
        assert!(hears(&mut new_first, &mut old_first));
    }

    #[test]
    fn signed_beacons_outside_the_replay_window_are_refused() {
        let (mut a, _) = keyed("a", 1, &[KEY], false);
        let t = Instant::now();
        let bytes = a.poll(t, now_wall()).expect("due").bytes;
        let (_, mut b) = keyed("b", 2, &[KEY], false);
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
        let mut receiver = receiver(t0);
        let heard = receiver.handle_datagram(&beacon_of("self", 99, 0), from(), t0, WALL);
        assert_eq!(heard, Heard::Refused);
        assert_eq!(receiver.peers().count(), 0);
        let stats = receiver.stats(t0);
        assert_eq!(stats.refused.own_hostname, 1);
        let impostor = stats.impostor.expect("reported");
        assert_eq!((impostor.instance, impostor.address), (99, from()));
        let later = t0 + config().ttl;
        assert_eq!(
            receiver.stats(later).impostor,
            None,
            "silent for a ttl: over"
        );
    }

    #[test]
    fn after_a_stall_peers_keep_their_time() {
        let t0 = Instant::now();
        let mut receiver = receiver(t0);
        receiver.handle_datagram(&beacon_of("peer", 1, 0), from(), t0, WALL);
        let resumed = t0 + Duration::from_secs(100);
        receiver.handle_stall(resumed);
        receiver.stale_dropped(3);
        assert!(
            receiver.handle_timeout(resumed).is_empty(),
            "no expiry storm"
        );
        assert_eq!(receiver.handle_timeout(resumed + config().ttl).len(), 1);
        let stats = receiver.stats(resumed);
        assert_eq!((stats.stalls, stats.refused.stale), (1, 3));
    }

    fn at(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 24901))
    }

    /// A node with `--peer 10.0.0.2` on the link 10.0.0.0/24, or without the group.
    fn unicast_node(multicast: bool, secrets: &[&[u8]]) -> Receiver {
        unicast_node_migrating(multicast, secrets, false)
    }

    /// [`unicast_node`], taking unsigned beacons too when `migrating` (its secrets sign).
    fn unicast_node_migrating(multicast: bool, secrets: &[&[u8]], migrating: bool) -> Receiver {
        let config = Config {
            multicast,
            keys: Keyring::new(secrets),
            accept_unauthenticated: migrating,
            peers: vec![crate::config::Target::parse("10.0.0.2", 24901).expect("valid")],
            ..config()
        };
        let t0 = Instant::now();
        let link = Network::new(Ipv4Addr::new(10, 0, 0, 0), 24).expect("a prefix up to 32");
        let mut receiver = Receiver::new(&config, OWN, t0).with_own_addresses(vec![at(1)]);
        // The agent joins no interface off the group, so it knows no link.
        if config.multicast {
            receiver.set_on_link(vec![link], vec![2]);
        }
        receiver
    }

    #[test]
    fn unsigned_unicast_is_taken_from_targets_and_the_link_only() {
        let t0 = Instant::now();
        let stranger = SocketAddr::from(([192, 168, 7, 7], 24901));
        let mut alone = unicast_node(false, &[]);
        let by_unicast = |node: &mut Receiver, name, from| {
            node.handle_datagram_via(&beacon_of(name, 9, 0), from, Via::Unicast, t0, WALL)
        };
        assert!(matches!(
            by_unicast(&mut alone, "seed", at(2)),
            Heard::Changed(_)
        ));
        assert_eq!(
            by_unicast(&mut alone, "on-link", at(3)),
            Heard::Refused,
            "no group: no link"
        );
        assert_eq!(by_unicast(&mut alone, "far", stranger), Heard::Refused);
        let stats = alone.stats(t0);
        assert_eq!((stats.refused.unicast, stats.unicast_received), (2, 3));
        let mut grouped = unicast_node(true, &[]);
        assert!(matches!(
            by_unicast(&mut grouped, "on-link", at(3)),
            Heard::Changed(_)
        ));
        assert_eq!(by_unicast(&mut grouped, "far", stranger), Heard::Refused);
        assert_eq!(
            grouped.targets().list(),
            [at(2)],
            "an unsigned sender is no target"
        );
    }

    #[test]
    fn a_verified_unicast_beacon_makes_its_sender_and_the_peers_it_tells_of_targets() {
        let (mut seed, _) = keyed("seed", 2, &[KEY], false);
        let mut node = unicast_node(false, &[KEY]);
        let t0 = Instant::now();
        seed.poll(t0, now_wall()).expect("its first beacon");
        let stranger = SocketAddr::from(([192, 168, 7, 7], 24901));
        seed.answer(
            t0,
            AnswerRequest {
                to: at(1),
                peers: vec![at(4), at(5)],
                listed: 2,
                unicast_only: false,
            },
        );
        let answer = seed
            .poll(t0 + Duration::from_millis(50), now_wall())
            .expect("the answer is due");
        assert_eq!(answer.to, crate::node::Destination::Unicast(at(1)));
        let heard = node.handle_datagram_via(&answer.bytes, stranger, Via::Unicast, t0, now_wall());
        assert!(matches!(heard, Heard::Changed(_)));
        assert_eq!(node.take_answer(), None, "an answer is never answered");
        assert_eq!(node.targets().list(), [at(2), at(4), at(5), stranger]);
        // Unsigned, the same sender is refused: the signature made it a target, not a voucher.
        let unsigned = beacon_of("other", 7, 0);
        assert_eq!(
            node.handle_datagram_via(&unsigned, stranger, Via::Unicast, t0, now_wall()),
            Heard::Refused
        );
    }

    #[test]
    fn a_newcomer_by_unicast_is_told_the_peers_and_one_on_the_group_is_only_answered() {
        let t0 = Instant::now();
        // Signs (so its answers may tell the peers), and takes these unsigned beacons.
        let mut node = unicast_node_migrating(true, &[KEY], true);
        node.handle_datagram_via(&beacon_of("old", 5, 3), at(5), Via::Group, t0, WALL);
        let request = node.take_answer().expect("a join asks for an answer");
        assert_eq!((request.to, request.peers.len()), (at(5), 0));
        node.handle_datagram_via(&beacon_of("new", 6, 0), at(2), Via::Unicast, t0, WALL);
        let request = node.take_answer().expect("a join asks for an answer");
        assert_eq!(
            (request.to, request.peers, request.listed),
            (at(2), vec![at(5)], 2)
        );
        node.handle_datagram_via(&beacon_of("new", 6, 1), at(2), Via::Unicast, t0, WALL);
        assert_eq!(node.take_answer(), None, "a renewal asks for nothing");
        // The same beacon on both paths: one listing, heard both ways, and no replay.
        node.handle_datagram_via(&beacon_of("new", 6, 1), at(2), Via::Group, t0, WALL);
        let stats = node.stats(t0);
        assert_eq!((stats.duplicates, stats.refused.replay), (1, 0));
        let new = node.peers().find(|p| p.hostname == "new").expect("listed");
        let both = Paths {
            group: true,
            unicast: true,
        };
        assert_eq!(new.paths, both);
    }

    #[test]
    fn a_node_first_heard_from_an_early_group_beacon_is_answered_by_unicast_only() {
        let t0 = Instant::now();
        let mut node = unicast_node(true, &[]);
        let early = |hostname: &str, instance| {
            Beacon {
                instance,
                sequence: 2,
                answer: true,
                hostname: hostname.into(),
                ..Beacon::default()
            }
            .encode()
        };
        node.handle_datagram_via(&early("crowd", 5), at(5), Via::Group, t0, WALL);
        let request = node.take_answer().expect("new to this node: answered");
        assert!(request.unicast_only, "but no newcomer: never on the group");
        node.handle_datagram_via(&early("seed", 6), at(6), Via::Unicast, t0, WALL);
        assert_eq!(
            node.take_answer(),
            None,
            "a unicast answer is never answered"
        );
        node.handle_datagram_via(&beacon_of("new", 7, 0), at(7), Via::Group, t0, WALL);
        let request = node.take_answer().expect("a join asks for an answer");
        assert!(
            !request.unicast_only,
            "a newcomer's own beacon: on the group in a crowd"
        );
    }

    #[test]
    fn an_unsigned_node_tells_no_newcomer_of_its_peers() {
        let t0 = Instant::now();
        let mut node = unicast_node(true, &[]);
        node.handle_datagram_via(&beacon_of("old", 5, 3), at(5), Via::Group, t0, WALL);
        node.handle_datagram_via(&beacon_of("new", 6, 0), at(2), Via::Unicast, t0, WALL);
        let request = node.take_answer().expect("a join asks for an answer");
        assert!(
            request.peers.is_empty(),
            "nobody would believe an unsigned list"
        );
    }

    #[test]
    fn a_newcomer_is_told_at_most_so_many_peers_and_the_next_one_others() {
        let t0 = Instant::now();
        let mut node = unicast_node_migrating(true, &[KEY], true);
        for i in 0..100u64 {
            let from = SocketAddr::from(([10, 0, 1, u8::try_from(i).expect("small")], 24901));
            node.handle_datagram_via(
                &beacon_of(&format!("p{i}"), 100 + i, 3),
                from,
                Via::Group,
                t0,
                WALL,
            );
        }
        node.handle_datagram_via(&beacon_of("new1", 7, 0), at(2), Via::Unicast, t0, WALL);
        let first = node.take_answer().expect("an answer").peers;
        node.handle_datagram_via(&beacon_of("new2", 8, 0), at(3), Via::Unicast, t0, WALL);
        let second = node.take_answer().expect("an answer").peers;
        assert_eq!((first.len(), second.len()), (PEERS_TOLD, PEERS_TOLD));
        let both: std::collections::BTreeSet<_> = first.iter().chain(&second).collect();
        assert!(
            both.len() > PEERS_TOLD,
            "the second newcomer is told of others too"
        );
    }
}
