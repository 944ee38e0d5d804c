//! The registry of live peers: a plain synchronous state machine keyed by hostname.
//! No sockets, no clock, no locks: every input takes `now` and returns what changed.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::peer::{Gone, Paths, Peer, PeerEvent, Refusal, Via};
use super::probation::Probation;
use super::record::{Epoch, Record};
use super::rival::other_instance;
use super::slab::Slab;
use super::wheel::TimerWheel;

mod expiry;
use crate::config::{MAX_TIMING, MIN_TIMING, UNSIGNED_TTL_FACTOR};
use crate::wire::beacon::Beacon;

/// What a beacon did: the change it made (none for a renewal, or a beacon that changes nothing,
/// such as a goodbye of an instance that is not the one listed), or why it was refused.
pub type Observed = Result<Option<PeerEvent>, Refusal>;

/// A wheel entry: the record's place in the slab and the timer id that marks it current.
type Timer = (u32, u32);

/// Live peers keyed by hostname, each listed while `last_seen + ttl > now`.
///
/// Renewal is O(1) and touches no timer: a peer keeps a single wheel entry, and when it comes
/// due the peer's own deadline decides between expiring it and scheduling it again. So the
/// sweep costs in proportion to the entries due, and a renewal racing its deadline can never
/// lose or duplicate the peer.
///
/// Each hostname is stored once, in its packed [`Record`]; the hash index and the wheel hold
/// its 4-byte place in a [`Slab`].
///
/// It lists at most `max_peers`, and a flood of made-up hostnames cannot keep a real one out: a
/// peer heard only once may be evicted to make room for a newcomer (see `make_room`), while a
/// peer heard twice keeps its place. And an unsigned beacon asks for at most
/// [`UNSIGNED_TTL_FACTOR`] times the registry's ttl, so whatever one forged datagram holds, it
/// holds for minutes, not an hour.
#[derive(Debug)]
pub struct Registry {
    ttl: Duration,
    max_peers: usize,
    epoch: Epoch,
    records: Slab<Record>,
    /// Places in `records`, by the hash of their hostname.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    live: usize,
    /// The live peers heard only once, which a newcomer may evict.
    probation: Probation,
    /// The peer the latest [`observe`](Self::observe) evicted, if it did: see
    /// [`take_evicted`](Self::take_evicted).
    evicted: Option<Peer>,
    wheel: TimerWheel<Timer>,
    /// Wraps after 4 billion schedules; a stale entry that then matches by chance only makes
    /// the sweep look at the record's own deadline once more, which decides correctly.
    next_timer: u32,
    /// Reused by [`Registry::expire`] so a sweep does not allocate.
    due: Vec<Timer>,
    /// How the beacon being observed arrived (see [`observe_via`](Self::observe_via)).
    via: Via,
}

impl Registry {
    /// An empty registry listing peers whose beacons do not say otherwise for `ttl`. It takes
    /// any number of peers until [`limit_peers`](Self::limit_peers) says otherwise. The caller
    /// keeps the agent's own beacons out (the node knows its instance).
    pub fn new(ttl: Duration, now: Instant) -> Self {
        Registry {
            ttl,
            max_peers: usize::MAX,
            epoch: Epoch::new(now),
            records: Slab::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            live: 0,
            probation: Probation::new(usize::MAX),
            evicted: None,
            wheel: TimerWheel::new(now),
            next_timer: 0,
            due: Vec::new(),
            via: Via::Group,
        }
    }

    /// Lists at most `max_peers` peers, and remembers at most as many gone ones. A further
    /// hostname takes the place of a peer heard only once, if there is one (see
    /// [`take_evicted`](Self::take_evicted)), and is refused otherwise, while listed peers keep
    /// renewing. So memory stays bounded whatever arrives.
    pub fn limit_peers(mut self, max_peers: usize) -> Self {
        self.max_peers = max_peers;
        self.probation = Probation::new(max_peers);
        self
    }

    /// [`observe`](Self::observe) for a beacon that arrived `via` the group or by unicast: the
    /// peer's [`Paths`] say so.
    pub fn observe_via(
        &mut self,
        beacon: &Beacon,
        from: SocketAddr,
        via: Via,
        now: Instant,
    ) -> Observed {
        self.via = via;
        let observed = self.observe(beacon, from, now);
        self.via = Via::Group;
        observed
    }

    /// Takes in one beacon heard from `from` at `now`.
    ///
    /// A beacon with `auth` is taken as signed and verified: the caller passes `auth` (and
    /// `timestamp`) only for beacons whose tag it checked, and clears them otherwise.
    ///
    /// Changes nothing: goodbyes from an instance that is not the one listed. Refused, with the
    /// reason: beacons not newer than what was heard, unsigned beacons about a signed peer, and
    /// new hostnames beyond the limit.
    pub fn observe(&mut self, beacon: &Beacon, from: SocketAddr, now: Instant) -> Observed {
        let ttl = self.ttl_of(beacon);
        let deadline = now + ttl;
        let hostname = beacon.hostname.as_str();
        let hash = self.hasher.hash_one(hostname);
        let records = &self.records;
        let found = self
            .index
            .find(hash, |&place| {
                records.get(place).is_some_and(|r| r.name() == hostname)
            })
            .copied();
        let Some(place) = found else {
            return self.join(beacon, from, now, ttl, hash);
        };
        let epoch = self.epoch;
        let Some(record) = self.records.get_mut(place) else {
            return Ok(None); // the index names only places that hold a record
        };
        if !record.is_live() {
            return self.return_of_gone(place, beacon, from, now, ttl);
        }
        if record.authenticated() && beacon.auth.is_none() {
            return Err(Refusal::Unsigned);
        }
        if record.instance() != beacon.instance {
            // The rare case: the whole peer, through the logic in `rival`.
            let mut peer = record.peer(&epoch);
            let older = matches!(
                (beacon.timestamp, peer.first_timestamp),
                (Some(sent), Some(first)) if sent <= first
            );
            if older {
                // Sent before the listed instance started: a replay of a process that is
                // gone, never a restart.
                return Err(Refusal::Replay);
            }
            let before = peer.deadline;
            let observed = other_instance(&mut peer, beacon, from, now, ttl)?;
            if peer.instance == beacon.instance {
                peer.paths = peer.paths.with(self.via);
            }
            record.set_peer(&peer, &epoch);
            if peer.deadline < before {
                // A shorter ttl than the one the pending entry was set for.
                let timer = schedule(&mut self.wheel, &mut self.next_timer, place, peer.deadline);
                record.set_timer(timer);
            }
            return Ok(observed);
        }
        if beacon.sequence == record.sequence() {
            record.add_path(self.via);
            // Over another path maybe (IPv6, a second link): one more address, never an event.
            record.copy_heard(from, now, ttl, &epoch);
            return Err(Refusal::Duplicate);
        }
        if beacon.sequence < record.sequence() {
            return Err(Refusal::Replay);
        }
        if beacon.goodbye {
            let peer = record.peer(&epoch);
            let gone = Gone::after_goodbye(&peer, beacon, now, self.ttl);
            self.live -= 1;
            self.retire(place, &gone);
            return Ok(Some(PeerEvent::Left { peer }));
        }
        // The wheel entry stays where it is: when it comes due, the deadline renewed here
        // tells the sweep to reschedule instead of expiring. Unless the beacon asks for a
        // shorter ttl than before, so the deadline moves earlier than the entry: then one at
        // the new deadline takes over (rare: a ttl is set per process).
        if epoch.stamp(deadline) < record.due() {
            let timer = schedule(&mut self.wheel, &mut self.next_timer, place, deadline);
            record.set_timer(timer);
        }
        let old_address = record.renew(beacon, from, now, ttl, &epoch);
        record.add_path(self.via);
        if *record.tags() != beacon.tags {
            let old_tags = record.replace_tags(beacon.tags.clone());
            return Ok(Some(PeerEvent::Updated {
                peer: record.peer(&epoch),
                old_tags,
            }));
        }
        if old_address == record.address() {
            return Ok(None); // the common case: a renewal that changes nothing anyone is told
        }
        Ok(Some(PeerEvent::Moved {
            peer: record.peer(&epoch),
            old_address,
        }))
    }

    /// How long `beacon` keeps its sender listed: what it asks, within the bounds, and for an
    /// unsigned beacon at most [`UNSIGNED_TTL_FACTOR`] times the registry's own ttl.
    fn ttl_of(&self, beacon: &Beacon) -> Duration {
        let asked = beacon
            .ttl
            .map_or(self.ttl, |ttl| ttl.clamp(MIN_TIMING, MAX_TIMING));
        if beacon.auth.is_some() {
            asked
        } else {
            asked.min(self.ttl * UNSIGNED_TTL_FACTOR)
        }
    }

    /// The peer the latest [`observe`](Self::observe) evicted to make room for the hostname it
    /// took in, as an `Evicted` event; `None` if it evicted none. Reported apart from the join
    /// because one beacon then changes two listings.
    pub fn take_evicted(&mut self) -> Option<PeerEvent> {
        self.evicted.take().map(|peer| PeerEvent::Evicted { peer })
    }

    /// Makes room at `now` for one more listed peer, if the most are listed: evicts a peer
    /// heard only once, which one and how often as [`Probation::pick`] says. `false` if no
    /// peer may be evicted now: every listed peer was heard twice, or a flood has spent this
    /// second's evictions.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.live < self.max_peers {
            return true;
        }
        let records = &self.records;
        let stands = |place, joined| on_probation(records.get(place), joined);
        let Some(place) = self.probation.pick(self.epoch.stamp(now), stands) else {
            return false;
        };
        if let Some(record) = self.records.get(place) {
            self.evicted = Some(record.peer(&self.epoch));
        }
        // Forgotten at once: remembering a hostname heard once is no use to anyone, and its
        // record makes room for the newcomer's.
        self.forget(place);
        self.live -= 1;
        true
    }

    /// Notes that the peer at `place`, which joined at `joined`, is heard once so far.
    fn on_probation(&mut self, place: u32, joined: u64) {
        let records = &self.records;
        let stands = |place, joined| on_probation(records.get(place), joined);
        self.probation.push(place, joined, self.live, stands);
    }

    /// Remembers the peer at `place` as gone, or forgets it at once when as many gone peers are
    /// remembered as may be listed: so gone peers never take the room of live ones.
    fn retire(&mut self, place: u32, gone: &Gone) {
        if self.records.len() - self.live > self.max_peers {
            self.forget(place);
            return;
        }
        let epoch = self.epoch;
        let Some(record) = self.records.get_mut(place) else {
            return;
        };
        record.set_gone(gone, &epoch);
        let timer = schedule(&mut self.wheel, &mut self.next_timer, place, gone.forget_at);
        record.set_timer(timer);
    }

    /// A hostname not in the registry: listed, if there is room.
    fn join(
        &mut self,
        beacon: &Beacon,
        from: SocketAddr,
        now: Instant,
        ttl: Duration,
        hash: u64,
    ) -> Observed {
        if beacon.goodbye {
            return Ok(None);
        }
        if !self.make_room(now) {
            return Err(Refusal::Capacity);
        }
        let peer = Peer {
            paths: Paths::of(self.via),
            ..Peer::new(beacon, from, now, ttl)
        };
        let Some(place) = self.records.insert(Record::live(&peer, 0, &self.epoch)) else {
            return Err(Refusal::Capacity); // the slab's places are all taken
        };
        let (records, hasher) = (&self.records, &self.hasher);
        self.index.insert_unique(hash, place, |&place| {
            records
                .get(place)
                .map_or(0, |record| hasher.hash_one(record.name()))
        });
        let timer = schedule(&mut self.wheel, &mut self.next_timer, place, peer.deadline);
        if let Some(record) = self.records.get_mut(place) {
            record.set_timer(timer);
        }
        self.live += 1;
        self.on_probation(place, self.epoch.stamp(now));
        Ok(Some(PeerEvent::Joined { peer }))
    }

    /// A beacon about a hostname that is gone and still remembered.
    fn return_of_gone(
        &mut self,
        place: u32,
        beacon: &Beacon,
        from: SocketAddr,
        now: Instant,
        ttl: Duration,
    ) -> Observed {
        let epoch = self.epoch;
        let Some(record) = self.records.get(place) else {
            return Ok(None);
        };
        let gone = record.gone(&epoch);
        if beacon.goodbye {
            return Ok(None); // changes nothing here
        }
        if gone.authenticated && beacon.auth.is_none() {
            return Err(Refusal::Unsigned);
        }
        let same_instance = gone.instance == beacon.instance;
        let stale = matches!(
            (beacon.timestamp, gone.timestamp),
            (Some(sent), Some(latest)) if sent <= latest
        );
        // Nothing older than the last beacon heard from the instance that went.
        if stale || (same_instance && beacon.sequence <= gone.sequence) {
            return Err(Refusal::Replay);
        }
        if !self.make_room(now) {
            return Err(Refusal::Capacity);
        }
        let Some(record) = self.records.get_mut(place) else {
            return Ok(None);
        };
        let (old_instance, restart) = (gone.instance, now < gone.restart_until);
        let peer = Peer {
            paths: Paths::of(self.via),
            ..Peer::new(beacon, from, now, ttl)
        };
        record.set_peer(&peer, &epoch);
        if gone.forget_at > peer.deadline {
            // The pending entry, at `forget_at`, would come due after the deadline (a signed
            // peer is remembered for the replay window, longer than a ttl): one at the
            // deadline takes over. Otherwise the pending one comes due first, finds the peer
            // live and reschedules.
            let timer = schedule(&mut self.wheel, &mut self.next_timer, place, peer.deadline);
            record.set_timer(timer);
        }
        self.live += 1;
        self.on_probation(place, epoch.stamp(now));
        Ok(Some(if same_instance || !restart {
            // Back from a partition (it never left, we lost sight of it), or long gone.
            PeerEvent::Joined { peer }
        } else {
            // A restart, most often after a goodbye (`systemctl restart`, `docker restart`):
            // the tags of the instance that left are kept for this.
            let old_tags = (gone.tags != peer.tags).then_some(gone.tags);
            PeerEvent::Restarted {
                peer,
                old_instance,
                old_tags,
            }
        }))
    }

    /// When [`expire`](Self::expire) next has work to do, if ever. The agent sleeps until then.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// The listed peers, in no particular order. Call [`expire`](Self::expire) first so that none
    /// past its deadline is included.
    pub fn peers(&self) -> impl Iterator<Item = Peer> + '_ {
        self.records
            .iter()
            .filter(|record| record.is_live())
            .map(|record| record.peer(&self.epoch))
    }

    /// The addresses of the listed peers, without building each [`Peer`].
    pub fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.records
            .iter()
            .filter(|record| record.is_live())
            .map(Record::address)
    }

    /// Number of listed peers.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

/// Whether `record` is still the live listing, heard once, that joined at `joined`.
fn on_probation(record: Option<&Record>, joined: u64) -> bool {
    record.is_some_and(|record| {
        record.is_live() && !record.established() && record.joined() == joined
    })
}

/// Puts one wheel entry for the record at `place` at `at` and returns the id that marks it
/// current.
fn schedule(wheel: &mut TimerWheel<Timer>, next_timer: &mut u32, place: u32, at: Instant) -> u32 {
    *next_timer = next_timer.wrapping_add(1);
    wheel.insert(at, (place, *next_timer));
    *next_timer
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV6};

    use super::*;
    use crate::config::{REPLAY_WINDOW, UNSIGNED_TTL_FACTOR};
    use crate::registry::MAX_OTHER_ADDRESSES;
    use crate::wire::beacon::AuthTag;
    use proptest::prelude::*;

    const TTL: Duration = Duration::from_secs(35);

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 24901))
    }

    fn beacon(hostname: &str, instance: u64, sequence: u64) -> Beacon {
        Beacon {
            instance,
            sequence,
            goodbye: false,
            hostname: hostname.into(),
            ..Beacon::default()
        }
    }

    fn goodbye(hostname: &str, instance: u64, sequence: u64) -> Beacon {
        Beacon {
            goodbye: true,
            ..beacon(hostname, instance, sequence)
        }
    }

    fn listed(reg: &Registry) -> Vec<String> {
        let mut names: Vec<String> = reg.peers().map(|p| p.hostname.clone()).collect();
        names.sort();
        names
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn first_beacon_joins() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let event = reg.observe(&beacon("a", 1, 0), addr(1), t0);
        let Ok(Some(PeerEvent::Joined { peer })) = event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (peer.hostname.as_str(), peer.address, peer.instance),
            ("a", addr(1), 1)
        );
        assert_eq!(listed(&reg), ["a"]);
        assert_eq!(reg.next_deadline(), Some(t0 + TTL));
    }

    #[test]
    fn expires_exactly_at_the_deadline_and_not_before() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        assert!(reg.expire(t0 + TTL - Duration::from_nanos(1)).is_empty());
        assert_eq!(listed(&reg), ["a"]);
        let events = reg.expire(t0 + TTL);
        assert!(
            matches!(&events[..], [PeerEvent::Expired { peer }] if peer.hostname == "a" && peer.address == addr(1)),
            "{events:?}"
        );
        assert!(listed(&reg).is_empty());
    }

    #[test]
    fn expired_peer_emits_one_event() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.expire(t0 + TTL).len(), 1);
        assert!(reg.expire(t0 + TTL + secs(1)).is_empty());
        assert!(reg.expire(t0 + TTL * 3).is_empty());
    }

    #[test]
    fn renewal_resets_deadline() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        assert_eq!(
            reg.observe(&beacon("a", 1, 1), addr(1), t0 + secs(15)),
            Ok(None)
        );
        assert!(
            reg.expire(t0 + TTL).is_empty(),
            "the old deadline no longer counts"
        );
        assert_eq!(listed(&reg), ["a"]);
        assert!(
            reg.expire(t0 + secs(15) + TTL - Duration::from_nanos(1))
                .is_empty()
        );
        assert_eq!(reg.expire(t0 + secs(15) + TTL).len(), 1);
    }

    #[test]
    fn renewal_racing_expiry_keeps_the_peer_once_with_new_data() {
        let t0 = Instant::now();
        let deadline = t0 + TTL;
        // Renewal first, then the sweep at the same instant.
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 1, 1), addr(2), deadline)
            .expect("taken in");
        assert!(reg.expire(deadline).is_empty());
        let peers: Vec<Peer> = reg.peers().collect();
        assert_eq!(peers.len(), 1);
        assert_eq!((peers[0].sequence, peers[0].address), (1, addr(2)));
        assert_eq!(peers[0].deadline, deadline + TTL);

        // Sweep first, then the renewal at the same instant: expired, then back.
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.expire(deadline).len(), 1);
        assert!(matches!(
            reg.observe(&beacon("a", 1, 1), addr(2), deadline),
            Ok(Some(PeerEvent::Joined { .. }))
        ));
        let peers: Vec<Peer> = reg.peers().collect();
        assert_eq!(peers.len(), 1);
        assert_eq!((peers[0].sequence, peers[0].address), (1, addr(2)));
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn goodbye_drops_the_peer_at_once() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        let left = reg.observe(&goodbye("a", 1, 1), addr(1), t0 + secs(1));
        assert!(
            matches!(&left, Ok(Some(PeerEvent::Left { peer })) if peer.hostname == "a" && peer.first_seen == t0),
            "{left:?}"
        );
        assert!(listed(&reg).is_empty());
        let late = reg.observe(&beacon("a", 1, 0), addr(1), t0 + secs(2));
        assert_eq!(
            late,
            Err(Refusal::Replay),
            "a beacon sent before the goodbye does not bring it back"
        );
        assert!(
            reg.expire(t0 + TTL * 4).is_empty(),
            "a peer that left never expires"
        );
    }

    #[test]
    fn goodbye_from_another_instance_or_unknown_host_is_ignored() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 2, 0), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.observe(&goodbye("a", 1, 9), addr(1), t0), Ok(None));
        assert_eq!(reg.observe(&goodbye("b", 1, 9), addr(1), t0), Ok(None));
        assert_eq!(listed(&reg), ["a"]);
    }

    #[test]
    fn new_instance_is_a_restart_not_a_join() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 7), addr(1), t0)
            .expect("taken in");
        let event = reg.observe(&beacon("a", 2, 0), addr(1), t0 + secs(3));
        assert!(
            matches!(&event, Ok(Some(PeerEvent::Restarted { peer, old_instance: 1, .. })) if peer.instance == 2 && peer.address == addr(1)),
            "{event:?}"
        );
        let peer = reg.peers().next().expect("still listed");
        assert_eq!((peer.instance, peer.first_seen), (2, t0 + secs(3)));
    }

    #[test]
    fn two_live_instances_are_a_conflict_reported_once_not_a_flip_flop() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        // Instance 2 appears: for now, a restart.
        assert!(matches!(
            reg.observe(&beacon("a", 2, 0), addr(2), t0 + secs(1)),
            Ok(Some(PeerEvent::Restarted {
                old_instance: 1,
                ..
            }))
        ));
        // Instance 1 is heard again: two live instances.
        let conflict = reg.observe(&beacon("a", 1, 1), addr(1), t0 + secs(2));
        let Ok(Some(PeerEvent::Conflict { peer })) = conflict else {
            panic!("{conflict:?}")
        };
        assert_eq!(
            peer.instance, 2,
            "the listing stays with the newer instance"
        );
        assert_eq!(peer.conflict(t0 + secs(2)).map(|r| r.instance), Some(1));
        // Both keep announcing: no more events, no flipping.
        for i in 2..10 {
            let at = t0 + secs(2 + i);
            assert_eq!(reg.observe(&beacon("a", 1, i), addr(1), at), Ok(None));
            assert_eq!(reg.observe(&beacon("a", 2, i), addr(2), at), Ok(None));
        }
        let listed = reg.peers().next().expect("listed");
        assert_eq!((listed.instance, listed.address), (2, addr(2)));
        assert!(listed.conflict(t0 + secs(11)).is_some());
    }

    #[test]
    fn a_conflict_clears_when_one_side_goes_silent() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 2, 0), addr(2), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 1, 1), addr(1), t0 + secs(1))
            .expect("taken in");
        // Instance 1 falls silent; instance 2 goes on.
        let later = t0 + secs(1) + TTL;
        assert_eq!(reg.observe(&beacon("a", 2, 1), addr(2), later), Ok(None));
        let listed = reg.peers().next().expect("listed");
        assert!(listed.conflict(later).is_none());
        assert!(listed.rival.is_none());
        // The other way round: the listed instance falls silent, the rival goes on.
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 2, 0), addr(2), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 1, 1), addr(1), t0 + secs(1))
            .expect("taken in");
        let event = reg.observe(&beacon("a", 1, 2), addr(1), t0 + TTL + secs(1));
        assert!(
            matches!(&event, Ok(Some(PeerEvent::Restarted { peer, old_instance: 2, .. })) if peer.instance == 1 && peer.rival.is_none()),
            "{event:?}"
        );
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn a_replaced_instance_keeps_its_own_deadline_not_the_entrys() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 2, 0), addr(2), t0 + secs(1))
            .expect("taken in");
        // Instance 1 is heard again: a conflict, and its beacons renew the entry.
        reg.observe(&beacon("a", 1, 1), addr(1), t0 + secs(2))
            .expect("taken in");
        // Instance 3 replaces instance 2, last heard at t0 + 1 s.
        reg.observe(&beacon("a", 3, 0), addr(3), t0 + secs(3))
            .expect("taken in");
        let listed = reg.peers().next().expect("listed");
        let replaced = listed.rival.as_ref().expect("instance 2 remembered");
        assert_eq!(replaced.instance, 2);
        assert_eq!(replaced.deadline, t0 + secs(1) + TTL);
    }

    #[test]
    fn a_replaced_instance_replayed_or_late_never_flips_the_entry_back() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 5), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("a", 2, 0), addr(2), t0 + secs(1))
            .expect("taken in");
        // A beacon instance 1 sent before it was replaced (reordered, or replayed).
        for sequence in [5, 4, 0] {
            assert_eq!(
                reg.observe(&beacon("a", 1, sequence), addr(9), t0 + secs(2)),
                Err(Refusal::Replay)
            );
        }
        let listed = reg.peers().next().expect("listed");
        assert_eq!((listed.instance, listed.address), (2, addr(2)));
        assert!(listed.conflict(t0 + secs(2)).is_none());
        // Its goodbye only forgets it.
        assert_eq!(
            reg.observe(&goodbye("a", 1, 6), addr(1), t0 + secs(3)),
            Ok(None)
        );
        assert!(reg.peers().next().is_some_and(|p| p.rival.is_none()));
    }

    #[test]
    fn return_after_goodbye_with_new_instance_is_a_restart() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&goodbye("a", 1, 1), addr(1), t0 + secs(1))
            .expect("taken in");
        assert!(matches!(
            reg.observe(&beacon("a", 2, 0), addr(1), t0 + secs(2)),
            Ok(Some(PeerEvent::Restarted { peer, old_instance: 1, .. })) if peer.instance == 2
        ));
        assert_eq!(listed(&reg), ["a"]);
    }

    #[test]
    fn the_memory_of_a_departed_peer_fades_after_one_ttl() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&goodbye("a", 1, 1), addr(1), t0)
            .expect("taken in");
        reg.expire(t0 + TTL);
        assert_eq!(reg.next_deadline(), None, "nothing left to sweep");
        assert!(matches!(
            reg.observe(&beacon("a", 2, 0), addr(1), t0 + TTL),
            Ok(Some(PeerEvent::Joined { .. }))
        ));
    }

    #[test]
    fn address_change_is_an_update() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        let moved = reg.observe(&beacon("a", 1, 1), addr(9), t0 + secs(1));
        assert!(
            matches!(&moved, Ok(Some(PeerEvent::Moved { peer, old_address })) if *old_address == addr(1) && peer.address == addr(9)),
            "{moved:?}"
        );
        assert_eq!(reg.peers().next().map(|p| p.address), Some(addr(9)));
    }

    #[test]
    fn duplicated_or_reordered_beacons_do_not_renew() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 5), addr(1), t0)
            .expect("taken in");
        assert_eq!(
            reg.observe(&beacon("a", 1, 5), addr(2), t0 + secs(1)),
            Err(Refusal::Duplicate),
            "the same beacon twice: to the group and by unicast"
        );
        assert_eq!(
            reg.observe(&beacon("a", 1, 4), addr(2), t0 + secs(1)),
            Err(Refusal::Replay)
        );
        let peer = reg.peers().next().expect("listed");
        assert_eq!((peer.address, peer.last_seen), (addr(1), t0));
    }

    #[test]
    fn back_from_a_partition_the_same_instance_joins_again() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.expire(t0 + TTL).len(), 1);
        assert!(matches!(
            reg.observe(&beacon("a", 1, 9), addr(1), t0 + TTL + secs(5)),
            Ok(Some(PeerEvent::Joined { peer })) if peer.instance == 1
        ));
    }

    /// A beacon as the node's receiver passes it on after verifying its tag: with `auth` and a
    /// timestamp.
    fn signed(hostname: &str, instance: u64, sequence: u64, timestamp: u64) -> Beacon {
        Beacon {
            timestamp: Some(timestamp),
            auth: Some(AuthTag {
                key_id: 1,
                tag: [0; 32],
            }),
            ..beacon(hostname, instance, sequence)
        }
    }

    #[test]
    fn beyond_the_limit_new_hostnames_are_refused_and_listed_ones_renew() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0).limit_peers(2);
        for (name, instance) in [("a", 1), ("b", 2)] {
            reg.observe(&beacon(name, instance, 0), addr(1), t0)
                .expect("joins");
            // Heard twice: a listed peer that keeps its place.
            reg.observe(&beacon(name, instance, 1), addr(1), t0 + secs(1))
                .expect("renews");
        }
        for i in 0..1000 {
            assert_eq!(
                reg.observe(&beacon(&format!("x{i}"), 10 + i, 0), addr(3), t0 + secs(2)),
                Err(Refusal::Capacity)
            );
        }
        assert_eq!(listed(&reg), ["a", "b"]);
        reg.observe(&beacon("a", 1, 2), addr(1), t0 + secs(30))
            .expect("taken in");
        assert_eq!(
            reg.expire(t0 + secs(1) + TTL).len(),
            1,
            "b expires, a was renewed"
        );
        assert_eq!(listed(&reg), ["a"]);
        assert!(
            reg.observe(&beacon("c", 3, 0), addr(3), t0 + secs(1) + TTL)
                .is_ok_and(|e| e.is_some())
        );
    }

    #[test]
    fn a_flood_of_hostnames_heard_once_cannot_keep_a_newcomer_out() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0).limit_peers(4);
        // A real peer, heard twice, and one that has just joined.
        reg.observe(&beacon("real", 1, 0), addr(1), t0)
            .expect("joins");
        reg.observe(&beacon("real", 1, 1), addr(1), t0 + secs(1))
            .expect("renews");
        let flood = t0 + secs(3);
        reg.observe(&beacon("fresh", 2, 0), addr(2), flood - ms(500))
            .expect("joins");
        // 1,100 made-up hostnames, once each, asking for an hour, all at once.
        let mut evicted = Vec::new();
        let mut refused = 0;
        for i in 0..1100u64 {
            let made_up = Beacon {
                ttl: Some(MAX_TIMING),
                ..beacon(&format!("x{i}"), 100 + i, 0)
            };
            match reg.observe(&made_up, addr(9), flood) {
                Ok(Some(PeerEvent::Joined { .. })) => evicted.extend(reg.take_evicted()),
                Err(Refusal::Capacity) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        // Two free places, then a second's budget of evictions (as many as places), then
        // refusals: the flood evicted only its own, the latest first.
        assert_eq!((evicted.len(), refused), (4, 1100 - 6));
        assert!(
            evicted.iter().all(
                |e| matches!(e, PeerEvent::Evicted { peer } if peer.hostname.starts_with('x'))
            )
        );
        assert_eq!(listed(&reg), ["fresh", "real", "x0", "x5"]);
        // A second after it, a real newcomer is listed at once, in the place of the latest
        // made-up one.
        let newcomer = reg.observe(&beacon("newcomer", 3, 0), addr(3), flood + secs(1));
        assert!(matches!(newcomer, Ok(Some(PeerEvent::Joined { .. }))));
        let Some(PeerEvent::Evicted { peer }) = reg.take_evicted() else {
            panic!("room was made");
        };
        assert_eq!(peer.hostname, "x5");
        assert_eq!(listed(&reg), ["fresh", "newcomer", "real", "x0"]);
        // And no memory stays behind the evicted: each was forgotten.
        assert!(reg.records.len() <= 8, "{} records", reg.records.len());
    }

    #[test]
    fn during_a_slow_flood_a_newcomer_keeps_its_place_until_it_is_heard_again() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0).limit_peers(4);
        let mut at = t0;
        let mut name = 0u64;
        let mut made_up = |reg: &mut Registry, at: Instant| {
            name += 1;
            reg.observe(&beacon(&format!("x{name}"), 100 + name, 0), addr(9), at)
                .expect("joins, making room if it must");
            reg.take_evicted();
        };
        // A made-up hostname every 300 ms, against four places: within the budget of evictions.
        for _ in 0..20 {
            at += ms(300);
            made_up(&mut reg, at);
        }
        at += ms(50);
        reg.observe(&beacon("newcomer", 1, 0), addr(1), at)
            .expect("joins");
        for _ in 0..3 {
            at += ms(300);
            made_up(&mut reg, at);
            assert!(
                listed(&reg).contains(&"newcomer".to_owned()),
                "evicted at {:?}",
                at - t0
            );
        }
        // Heard again: from now on no made-up hostname takes its place.
        reg.observe(&beacon("newcomer", 1, 1), addr(1), at)
            .expect("renews");
        for _ in 0..50 {
            at += ms(300);
            made_up(&mut reg, at);
        }
        assert!(listed(&reg).contains(&"newcomer".to_owned()));
    }

    #[test]
    fn gone_peers_never_take_the_room_of_live_ones() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0).limit_peers(2);
        // Hostnames that join and say goodbye at once fill the memory of gone peers...
        for i in 0..100u64 {
            let name = format!("x{i}");
            reg.observe(&beacon(&name, i + 1, 0), addr(1), t0)
                .expect("joins");
            reg.observe(&goodbye(&name, i + 1, 1), addr(1), t0)
                .expect("leaves");
        }
        assert!(reg.records.len() <= 4, "{} records", reg.records.len());
        // ...and a newcomer still finds room.
        assert!(matches!(
            reg.observe(&beacon("newcomer", 500, 0), addr(2), t0),
            Ok(Some(PeerEvent::Joined { .. }))
        ));
    }

    #[test]
    fn a_peer_stays_listed_for_the_ttl_its_beacons_ask_for_within_bounds() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let asks = |ttl| Beacon {
            ttl: Some(ttl),
            ..beacon("slow", 1, 0)
        };
        reg.observe(&asks(secs(120)), addr(1), t0)
            .expect("taken in");
        assert!(reg.expire(t0 + TTL).is_empty(), "not our 35 s");
        assert_eq!(reg.expire(t0 + secs(120)).len(), 1);
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&asks(Duration::from_nanos(1)), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.peers().next().map(|p| p.ttl), Some(MIN_TIMING));
    }

    #[test]
    fn an_unsigned_beacon_asks_for_at_most_four_ttls_a_signed_one_for_up_to_an_hour() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let hour = |beacon: Beacon| Beacon {
            ttl: Some(secs(1_000_000)),
            ..beacon
        };
        reg.observe(&hour(beacon("unsigned", 1, 0)), addr(1), t0)
            .expect("taken in");
        reg.observe(&hour(signed("signed", 2, 0, 1_000)), addr(2), t0)
            .expect("taken in");
        let ttl = |name: &str| reg.peers().find(|p| p.hostname == name).map(|p| p.ttl);
        assert_eq!(ttl("unsigned"), Some(TTL * UNSIGNED_TTL_FACTOR));
        assert_eq!(ttl("signed"), Some(MAX_TIMING));
    }

    #[test]
    fn one_forged_beacon_holds_a_hostname_for_at_most_four_ttls() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("real", 1, 0), addr(1), t0)
            .expect("joins");
        // Another instance, from the attacker's address, asking for an hour: a restart...
        let forged = Beacon {
            ttl: Some(MAX_TIMING),
            ..beacon("real", 666, u64::MAX - 1)
        };
        let took = reg.observe(&forged, addr(9), t0 + secs(1));
        assert!(matches!(took, Ok(Some(PeerEvent::Restarted { .. }))));
        // ...that the real host's beacons keep alive only until the forged ttl runs out.
        let mut at = t0 + secs(1);
        let mut sequence = 1;
        let took_back = loop {
            at += secs(15);
            let heard = reg.observe(&beacon("real", 1, sequence), addr(1), at);
            sequence += 1;
            reg.expire(at);
            if let Ok(Some(PeerEvent::Restarted { peer, .. })) = heard {
                assert_eq!(peer.address, addr(1));
                break at;
            }
            assert!(at < t0 + MAX_TIMING, "held for an hour");
        };
        assert!(
            took_back <= t0 + secs(1) + TTL * UNSIGNED_TTL_FACTOR + secs(15),
            "held for {:?}",
            took_back - t0
        );
    }

    #[test]
    fn a_restart_after_a_goodbye_says_which_tags_changed() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let tagged = |instance, sequence, goodbye, value: &str| Beacon {
            goodbye,
            tags: [("role".to_owned(), value.to_owned())].into(),
            ..beacon("a", instance, sequence)
        };
        reg.observe(&tagged(1, 0, false, "db"), addr(1), t0)
            .expect("joins");
        reg.observe(&tagged(1, 1, true, "db"), addr(1), t0 + secs(1))
            .expect("leaves");
        let back = reg.observe(&tagged(2, 0, false, "web"), addr(1), t0 + secs(2));
        let Ok(Some(PeerEvent::Restarted { old_tags, peer, .. })) = back else {
            panic!("{back:?}");
        };
        assert_eq!(
            old_tags.and_then(|t| t.get("role").cloned()).as_deref(),
            Some("db")
        );
        assert_eq!(peer.tags.get("role").map(String::as_str), Some("web"));
    }

    #[test]
    fn a_replayed_signed_beacon_never_brings_back_a_peer_that_left_or_expired() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let captured = signed("a", 1, 5, 1_000);
        reg.observe(&captured, addr(1), t0).expect("taken in");
        let bye = Beacon {
            goodbye: true,
            ..signed("a", 1, 6, 2_000)
        };
        assert!(matches!(
            reg.observe(&bye, addr(1), t0 + secs(1)),
            Ok(Some(PeerEvent::Left { .. }))
        ));
        // Replayed as is, or claimed by a made-up instance with the same old timestamp.
        assert_eq!(
            reg.observe(&captured, addr(9), t0 + secs(2)),
            Err(Refusal::Replay)
        );
        assert_eq!(
            reg.observe(&signed("a", 77, 0, 2_000), addr(9), t0 + secs(2)),
            Err(Refusal::Replay)
        );
        // Still refused after a ttl: a signed peer is remembered for the replay window.
        assert!(TTL < REPLAY_WINDOW);
        reg.expire(t0 + TTL + secs(2));
        assert_eq!(
            reg.observe(&captured, addr(9), t0 + TTL + secs(3)),
            Err(Refusal::Replay)
        );
        assert!(listed(&reg).is_empty());
        // A real restart sends newer timestamps.
        assert!(matches!(
            reg.observe(&signed("a", 2, 0, 3_000), addr(1), t0 + TTL + secs(3)),
            Ok(Some(PeerEvent::Joined { .. }))
        ));

        let mut reg = Registry::new(TTL, t0);
        reg.observe(&signed("b", 1, 0, 1_000), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.expire(t0 + TTL).len(), 1);
        assert_eq!(
            reg.observe(&signed("b", 1, 0, 1_000), addr(9), t0 + TTL),
            Err(Refusal::Replay)
        );
        assert!(listed(&reg).is_empty());
    }

    #[test]
    fn changed_tags_are_an_update_and_a_restart_says_what_they_were() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let tagged = |instance, sequence, value: &str| Beacon {
            tags: [("role".to_owned(), value.to_owned())].into(),
            ..beacon("a", instance, sequence)
        };
        reg.observe(&tagged(1, 0, "db"), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.observe(&tagged(1, 1, "db"), addr(1), t0), Ok(None));
        let event = reg.observe(&tagged(1, 2, "web"), addr(1), t0);
        let Ok(Some(PeerEvent::Updated { peer, old_tags })) = event else {
            panic!("{event:?}")
        };
        assert_eq!(old_tags.get("role").map(String::as_str), Some("db"));
        assert_eq!(peer.tags.get("role").map(String::as_str), Some("web"));
        let event = reg.observe(&tagged(2, 0, "cache"), addr(1), t0 + secs(1));
        let Ok(Some(PeerEvent::Restarted { old_tags, .. })) = event else {
            panic!("{event:?}")
        };
        assert_eq!(
            old_tags.and_then(|t| t.get("role").cloned()).as_deref(),
            Some("web")
        );
    }

    /// Found by the `datagram` fuzz target: a renewal that asks for a shorter ttl moved the
    /// deadline before the pending wheel entry, and the peer stayed listed until the entry.
    #[test]
    fn a_beacon_that_shortens_the_ttl_expires_the_peer_at_the_new_deadline() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let with_ttl = |sequence, ttl| Beacon {
            ttl: Some(ttl),
            ..beacon("a", 1, sequence)
        };
        reg.observe(&with_ttl(0, secs(35)), addr(1), t0)
            .expect("taken in");
        let renewed = t0 + Duration::from_millis(16);
        reg.observe(&with_ttl(1, Duration::from_millis(200)), addr(1), renewed)
            .expect("taken in");
        let deadline = renewed + Duration::from_millis(200);
        assert!(reg.expire(deadline - Duration::from_nanos(1)).is_empty());
        assert_eq!(
            reg.expire(deadline).len(),
            1,
            "expired at the shorter deadline"
        );
    }

    /// Found by the `datagram` fuzz target: a signed peer is remembered longer than a ttl, so
    /// its pending wheel entry came due after the deadline of its return, and it stayed listed.
    #[test]
    fn a_signed_peer_back_after_expiry_expires_at_its_new_deadline() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&signed("a", 1, 0, 1_000), addr(1), t0)
            .expect("taken in");
        assert_eq!(reg.expire(t0 + TTL).len(), 1);
        let back = t0 + TTL;
        assert!(matches!(
            reg.observe(&signed("a", 1, 1, 2_000), addr(1), back),
            Ok(Some(PeerEvent::Joined { .. }))
        ));
        assert!(reg.expire(back + TTL - Duration::from_nanos(1)).is_empty());
        assert_eq!(reg.expire(back + TTL).len(), 1, "expired on time");
    }

    #[test]
    fn a_replayed_beacon_of_an_older_instance_never_flips_a_listed_peer() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let old = signed("a", 1, 3, 1_000);
        reg.observe(&old, addr(1), t0).expect("taken in");
        // Restarted: the new instance's first beacon is newer.
        reg.observe(&signed("a", 2, 0, 5_000), addr(1), t0 + secs(5))
            .expect("taken in");
        // Long after the old one's rival memory lapsed, the captured beacon comes back.
        reg.observe(&signed("a", 2, 1, 50_000), addr(1), t0 + secs(50))
            .expect("taken in");
        assert_eq!(
            reg.observe(&old, addr(9), t0 + secs(51)),
            Err(Refusal::Replay)
        );
        let peer = reg.peers().next().expect("listed");
        assert_eq!((peer.instance, peer.address), (2, addr(1)));
    }

    #[test]
    fn once_signed_a_peer_ignores_unsigned_beacons() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&signed("a", 1, 0, 1_000), addr(1), t0)
            .expect("taken in");
        // A forged goodbye, a maximal sequence, a new instance: all unsigned.
        assert_eq!(
            reg.observe(&goodbye("a", 1, u64::MAX), addr(9), t0),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            reg.observe(&beacon("a", 1, u64::MAX), addr(9), t0),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            reg.observe(&beacon("a", 66, 0), addr(9), t0),
            Err(Refusal::Unsigned)
        );
        let peer = reg.peers().next().expect("listed");
        assert_eq!(
            (peer.instance, peer.sequence, peer.address),
            (1, 0, addr(1))
        );
    }

    #[test]
    fn after_a_stall_every_peer_gets_a_ttl_to_be_heard_again() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("b", 2, 0), addr(1), t0 + secs(30))
            .expect("taken in");
        let resumed = t0 + secs(100);
        reg.give_time(resumed);
        assert!(
            reg.expire(resumed + TTL - Duration::from_nanos(1))
                .is_empty()
        );
        assert_eq!(reg.expire(resumed + TTL).len(), 2);
    }

    #[test]
    fn sleeps_until_the_next_deadline() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        assert_eq!(reg.next_deadline(), None);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        reg.observe(&beacon("b", 2, 0), addr(2), t0 + secs(10))
            .expect("taken in");
        assert_eq!(reg.next_deadline(), Some(t0 + TTL));
        reg.observe(&beacon("a", 1, 1), addr(1), t0 + secs(20))
            .expect("taken in");
        // The renewal did not touch the wheel: the next wake-up is the stale one, which
        // reschedules `a` and expires nothing.
        assert!(reg.expire(t0 + TTL).is_empty());
        assert_eq!(reg.next_deadline(), Some(t0 + secs(10) + TTL));
    }

    /// The same node as `addr(last)`, reached over IPv6: its link-local address on link 2.
    fn v6(last: u16) -> SocketAddr {
        let ip = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last);
        SocketAddr::V6(SocketAddrV6::new(ip, 24901, 0, 2))
    }

    fn only(reg: &Registry) -> Peer {
        let peers: Vec<Peer> = reg.peers().collect();
        assert_eq!(peers.len(), 1, "{peers:?}");
        peers.into_iter().next().expect("one peer")
    }

    fn others(peer: &Peer) -> Vec<SocketAddr> {
        peer.other_addresses.iter().map(|o| o.address).collect()
    }

    #[test]
    fn a_peer_heard_over_ipv4_and_ipv6_is_one_peer_with_both_addresses_that_never_flaps() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let (v4, v6) = (addr(2), v6(2));
        let (mut events, mut duplicates) = (Vec::new(), 0);
        let mut at = t0;
        for sequence in 0..40u64 {
            // Jittered intervals, 13.5 to 16.5 s; IPv6 first in three beacons of five, so the
            // address listed first is heard by its copies alone for 45 s at a time.
            at += ms(13_500 + (sequence * 7_919) % 3_000);
            let v6_first = matches!(sequence % 5, 1..=3);
            let (first, second) = if v6_first { (v6, v4) } else { (v4, v6) };
            for (from, delay) in [(first, 0), (second, 3 + sequence % 40)] {
                match reg.observe(&beacon("a", 1, sequence), from, at + ms(delay)) {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => {}
                    Err(Refusal::Duplicate) => duplicates += 1,
                    Err(other) => panic!("{other:?}"),
                }
            }
            events.extend(reg.expire(at + ms(100)));
            assert_eq!(reg.len(), 1);
        }
        assert!(
            matches!(&events[..], [PeerEvent::Joined { peer }] if peer.address == v4),
            "{events:?}"
        );
        assert_eq!(duplicates, 40, "each second copy is still a duplicate");
        let peer = only(&reg);
        assert_eq!(peer.address, v4);
        assert_eq!(peer.addresses(at + ms(100)).collect::<Vec<_>>(), [v4, v6]);
        assert_eq!(
            reg.addresses().collect::<Vec<_>>(),
            [v4],
            "answers go to one"
        );
    }

    #[test]
    fn a_peer_whose_listed_path_goes_silent_moves_once_to_the_other_and_stays_listed() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let (v4, v6) = (addr(2), v6(2));
        for sequence in 0..3 {
            let at = t0 + secs(15 * sequence);
            reg.observe(&beacon("a", 1, sequence), v4, at)
                .expect("taken in");
            assert_eq!(
                reg.observe(&beacon("a", 1, sequence), v6, at + ms(2)),
                Err(Refusal::Duplicate)
            );
        }
        // The IPv4 path is gone after t0 + 30 s: only the IPv6 copies arrive.
        let mut moved = Vec::new();
        for sequence in 3..12 {
            let at = t0 + secs(15 * sequence);
            match reg.observe(&beacon("a", 1, sequence), v6, at) {
                Ok(None) => {}
                Ok(Some(PeerEvent::Moved { peer, old_address })) => {
                    moved.push((at - t0, peer.address, old_address));
                }
                other => panic!("{other:?}"),
            }
            assert!(reg.expire(at).is_empty(), "neither expired nor left");
            let listed: Vec<SocketAddr> = only(&reg).addresses(at).collect();
            if sequence == 3 {
                // One beacon missed, 15 s: not yet half a ttl.
                assert_eq!(listed, [v4, v6]);
            } else {
                assert_eq!(listed, [v6], "at {:?}", at - t0);
            }
        }
        assert_eq!(moved, [(secs(60), v6, v4)], "once, after half a ttl");
    }

    #[test]
    fn another_path_that_goes_silent_is_no_longer_listed_after_its_ttl_and_says_nothing() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let (v4, v6) = (addr(2), v6(2));
        for sequence in 0..3 {
            let at = t0 + secs(15 * sequence);
            reg.observe(&beacon("a", 1, sequence), v4, at)
                .expect("taken in");
            reg.observe(&beacon("a", 1, sequence), v6, at + ms(2))
                .expect_err("a duplicate");
        }
        let v6_heard = t0 + secs(30) + ms(2);
        for sequence in 3..5 {
            let at = t0 + secs(15 * sequence);
            assert_eq!(reg.observe(&beacon("a", 1, sequence), v4, at), Ok(None));
            assert!(reg.expire(at).is_empty());
        }
        // Past its ttl and before the next beacon: still kept, no longer listed.
        let peer = only(&reg);
        assert_eq!(others(&peer), [v6]);
        assert_eq!(peer.addresses(v6_heard + TTL).collect::<Vec<_>>(), [v4]);
        assert_eq!(
            peer.addresses(v6_heard + TTL - ms(1)).collect::<Vec<_>>(),
            [v4, v6]
        );
        // The next beacon drops it.
        assert_eq!(reg.observe(&beacon("a", 1, 5), v4, t0 + secs(75)), Ok(None));
        assert!(only(&reg).other_addresses.is_empty());
    }

    #[test]
    fn a_beacon_from_a_new_address_of_its_kind_moves_the_peer_at_once_and_keeps_the_old_one() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let (v4, v6) = (addr(2), v6(2));
        reg.observe(&beacon("a", 1, 0), v4, t0).expect("taken in");
        reg.observe(&beacon("a", 1, 0), v6, t0)
            .expect_err("a duplicate");
        let moved = reg.observe(&beacon("a", 1, 1), addr(9), t0 + secs(15));
        assert!(
            matches!(&moved, Ok(Some(PeerEvent::Moved { peer, old_address })) if *old_address == v4 && peer.address == addr(9) && others(peer) == [v4, v6]),
            "{moved:?}"
        );
        // Heard within half a ttl, the old address is kept; it was a path after all: its copy
        // refreshes it, and it does not take over.
        assert_eq!(
            reg.observe(&beacon("a", 1, 1), v4, t0 + secs(15) + ms(1)),
            Err(Refusal::Duplicate)
        );
        assert_eq!(others(&only(&reg)), [v4, v6]);
        assert_eq!(reg.observe(&beacon("a", 1, 2), v4, t0 + secs(30)), Ok(None));
        assert_eq!(only(&reg).address, addr(9));
    }

    #[test]
    fn a_restart_a_goodbye_or_an_expiry_drops_the_other_addresses_a_rival_does_not() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        let (v4, v6) = (addr(2), v6(2));
        reg.observe(&beacon("a", 1, 0), v4, t0).expect("taken in");
        reg.observe(&beacon("a", 1, 0), v6, t0)
            .expect_err("a duplicate");
        let restart = reg.observe(&beacon("a", 2, 0), v4, t0 + secs(1));
        assert!(
            matches!(&restart, Ok(Some(PeerEvent::Restarted { peer, .. })) if peer.other_addresses.is_empty()),
            "{restart:?}"
        );
        reg.observe(&beacon("a", 2, 0), v6, t0 + secs(1))
            .expect_err("a duplicate");
        // The instance it replaced is heard again: a conflict, and the listed one keeps its own.
        let conflict = reg.observe(&beacon("a", 1, 1), addr(3), t0 + secs(2));
        assert!(
            matches!(&conflict, Ok(Some(PeerEvent::Conflict { peer })) if others(peer) == [v6]),
            "{conflict:?}"
        );
        assert!(matches!(
            reg.observe(&goodbye("a", 2, 1), v4, t0 + secs(3)),
            Ok(Some(PeerEvent::Left { .. }))
        ));
        let back = reg.observe(&beacon("a", 3, 0), v4, t0 + secs(4));
        assert!(
            matches!(&back, Ok(Some(PeerEvent::Restarted { peer, .. })) if peer.other_addresses.is_empty()),
            "{back:?}"
        );
        reg.observe(&beacon("a", 3, 0), v6, t0 + secs(4))
            .expect_err("a duplicate");
        assert_eq!(reg.expire(t0 + secs(4) + TTL).len(), 1);
        let again = reg.observe(&beacon("a", 3, 1), v4, t0 + secs(50));
        assert!(
            matches!(&again, Ok(Some(PeerEvent::Joined { peer })) if peer.other_addresses.is_empty()),
            "{again:?}"
        );
    }

    #[test]
    fn a_peer_keeps_a_few_other_addresses_the_least_recently_heard_making_room() {
        let t0 = Instant::now();
        let mut reg = Registry::new(TTL, t0);
        reg.observe(&beacon("a", 1, 0), addr(1), t0)
            .expect("taken in");
        for n in 2..=6 {
            let copy = reg.observe(&beacon("a", 1, 0), addr(n), t0 + ms(u64::from(n)));
            assert_eq!(copy, Err(Refusal::Duplicate));
        }
        assert_eq!(MAX_OTHER_ADDRESSES, 3);
        assert_eq!(others(&only(&reg)), [addr(6), addr(5), addr(4)]);
        reg.observe(&beacon("a", 1, 0), addr(4), t0 + ms(10))
            .expect_err("a duplicate");
        assert_eq!(others(&only(&reg)), [addr(4), addr(6), addr(5)]);
        reg.observe(&beacon("a", 1, 0), addr(7), t0 + ms(11))
            .expect_err("a duplicate");
        let peer = only(&reg);
        assert_eq!(others(&peer), [addr(7), addr(4), addr(6)]);
        assert_eq!(peer.address, addr(1));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Beacon { host: u8, instance: u8 },
        Goodbye { host: u8 },
        Advance { millis: u16 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..5u8, 0..2u8).prop_map(|(host, instance)| Step::Beacon { host, instance }),
            1 => (0..5u8).prop_map(|host| Step::Goodbye { host }),
            4 => (0..2000u16).prop_map(|millis| Step::Advance { millis }),
        ]
    }

    proptest! {
        /// A peer is listed exactly while `last_heard + ttl > now`, counting beacons from any of
        /// its instances, whatever the sequence of beacons, goodbyes (from the instance listed)
        /// and clock steps (ttl 1 s here so steps cross deadlines often).
        #[test]
        fn listed_exactly_while_last_heard_plus_ttl_is_ahead(steps in proptest::collection::vec(step(), 1..200)) {
            let ttl = Duration::from_secs(1);
            let t0 = Instant::now();
            let mut now = t0;
            let mut reg = Registry::new(ttl, t0);
            // Model: host -> when any instance of it was last heard, cleared by a goodbye.
            let mut model: std::collections::HashMap<String, Instant> = Default::default();
            let mut seq = 0u64;
            for step in steps {
                match step {
                    Step::Beacon { host, instance } => {
                        seq += 1;
                        let name = format!("h{host}");
                        let instance = u64::from(instance) + 1;
                        reg.observe(&beacon(&name, instance, seq), addr(host), now).expect("taken in");
                        model.insert(name, now);
                    }
                    Step::Goodbye { host } => {
                        seq += 1;
                        let name = format!("h{host}");
                        let listed = reg.peers().find(|p| p.hostname == name).map(|p| p.instance);
                        if let Some(instance) = listed {
                            reg.observe(&goodbye(&name, instance, seq), addr(host), now).expect("taken in");
                            model.remove(&name);
                        }
                    }
                    Step::Advance { millis } => now += Duration::from_millis(u64::from(millis)),
                }
                reg.expire(now);
                let mut expected: Vec<String> = model
                    .iter()
                    .filter(|(_, at)| **at + ttl > now)
                    .map(|(name, _)| name.clone())
                    .collect();
                expected.sort();
                prop_assert_eq!(listed(&reg), expected);
                prop_assert_eq!(reg.len(), reg.peers().count());
            }
        }

        /// Whatever the order and the delays of the copies over two paths, and whatever the
        /// second path loses, a peer whose first path delivers every beacon stays listed with
        /// that address among its own; it moves only from an address silent for more than half
        /// a ttl, or to one not heard for a ttl (as a node whose address changed); and while
        /// both paths deliver everything, it never moves.
        #[test]
        fn copies_over_two_paths_never_make_a_peer_flap(
            beacons in proptest::collection::vec(
                (0..3_000u64, any::<bool>(), 0..500u64, any::<bool>()), 1..60)
        ) {
            let t0 = Instant::now();
            let mut reg = Registry::new(TTL, t0);
            let (sure, lossy) = (addr(1), v6(1));
            let mut heard: std::collections::HashMap<SocketAddr, Instant> = Default::default();
            let mut primary = None;
            let (mut moves, mut losses) = (0, 0);
            let mut at = t0;
            for (sequence, (jitter, lossy_first, delay, lost)) in (0u64..).zip(beacons) {
                at += ms(13_500 + jitter);
                losses += usize::from(lost);
                let copies = match (lost, lossy_first) {
                    (true, _) => vec![(sure, at)],
                    (false, true) => vec![(lossy, at), (sure, at + ms(delay))],
                    (false, false) => vec![(sure, at), (lossy, at + ms(delay))],
                };
                for (from, now) in copies {
                    match reg.observe(&beacon("a", 1, sequence), from, now) {
                        Ok(Some(PeerEvent::Joined { peer })) => {
                            prop_assert_eq!(primary, None);
                            primary = Some(peer.address);
                        }
                        Ok(Some(PeerEvent::Moved { peer, old_address })) => {
                            moves += 1;
                            prop_assert_eq!(peer.address, from);
                            prop_assert_eq!(Some(old_address), primary);
                            let silent = |address| heard.get(&address).map(|&last| now - last);
                            let unknown = silent(from).is_none_or(|silent| silent >= TTL);
                            let stale = silent(old_address).is_some_and(|silent| silent > TTL / 2);
                            prop_assert!(unknown || stale, "moved at {:?}", now - t0);
                            primary = Some(from);
                        }
                        Ok(None) => {}
                        Ok(Some(other)) => prop_assert!(false, "{:?}", other),
                        Err(refusal) => prop_assert_eq!(refusal, Refusal::Duplicate),
                    }
                    heard.insert(from, now);
                }
                let settled = at + ms(500);
                prop_assert!(reg.expire(settled).is_empty());
                prop_assert_eq!(reg.len(), 1);
                prop_assert!(only(&reg).addresses(settled).any(|a| a == sure));
            }
            if losses == 0 {
                prop_assert_eq!(moves, 0);
            }
        }
    }
}
