//! One hostname's entry in the registry, packed into 96 bytes: a name of up to 23 bytes inline,
//! instants as nanoseconds since the registry's origin, an IPv4 address in 6 bytes, and what
//! few peers need (tags, a rival instance, the first signed timestamp, an IPv6 address, other
//! addresses) behind one pointer. So a peer with a short hostname costs about 120 bytes in all, its index and
//! wheel entry included, and a renewal reads and writes one record, not three allocations.
//!
//! The registry's logic works on [`Peer`] and [`Gone`]; a record converts to and from them,
//! and only a renewal, the common case, changes a record in place.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use smol_str::SmolStr;

use super::addresses::Others;
use super::peer::{Gone, OtherAddress, Paths, Peer, Rival, Via};
use crate::wire::beacon::Beacon;
use crate::wire::tags::Tags;

/// Instants as nanoseconds since an origin: 8 bytes instead of 16, exact for instants at or
/// after it (earlier ones read as the origin), saturating after 584 years.
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    origin: Instant,
}

impl Epoch {
    pub fn new(origin: Instant) -> Self {
        Epoch { origin }
    }

    pub fn stamp(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn instant(&self, stamp: u64) -> Instant {
        self.origin + Duration::from_nanos(stamp)
    }
}

const LIVE: u8 = 1;
const AUTHENTICATED: u8 = 2;
/// `timestamp` holds a value (0 is a value too).
const TIMESTAMPED: u8 = 4;
/// Live: heard again after its first beacon (see `Peer::established`).
const ESTABLISHED: u8 = 8;
/// Live: heard by the group, by unicast (see `Peer::paths`).
const VIA_GROUP: u8 = 16;
const VIA_UNICAST: u8 = 32;

#[derive(Debug)]
pub struct Record {
    name: SmolStr,
    instance: u64,
    sequence: u64,
    /// Live: when its latest beacon was heard. Gone: when it is forgotten.
    last_seen: u64,
    /// Live: listed while `now < deadline`. Gone: a new instance before this is a restart.
    deadline: u64,
    /// Live: when this instance was first heard. Gone: unused.
    first_seen: u64,
    /// The latest signed timestamp, when `TIMESTAMPED`.
    timestamp: u64,
    rare: Option<Box<Rare>>,
    /// The IPv4 address of its latest beacon, unless `rare` holds another address.
    ip: u32,
    /// Live: its ttl in microseconds (the registry's bounds keep it under an hour, well within
    /// the 71 minutes a `u32` holds).
    ttl_micros: u32,
    /// Identifies the record's one current wheel entry; entries with another value are stale.
    timer: u32,
    port: u16,
    flags: u8,
}

/// What most peers do not have. Allocated only when one of them is set.
#[derive(Debug, Default)]
struct Rare {
    tags: Tags,
    rival: Option<Box<Rival>>,
    first_timestamp: Option<u64>,
    /// An address that is not IPv4: a peer heard over IPv6 pays this allocation.
    address: Option<SocketAddr>,
    /// The live instance's other addresses, when its beacons reach this node over several paths.
    others: Others,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.tags.is_empty()
            && self.rival.is_none()
            && self.first_timestamp.is_none()
            && self.address.is_none()
            && self.others.is_empty()
    }
}

static NO_TAGS: Tags = Tags::new();

impl Record {
    /// A live record of `peer`, whose wheel entry is `timer`.
    pub fn live(peer: &Peer, timer: u32, epoch: &Epoch) -> Record {
        let mut record = Record {
            name: SmolStr::new(&peer.hostname),
            instance: 0,
            sequence: 0,
            last_seen: 0,
            deadline: 0,
            first_seen: 0,
            timestamp: 0,
            rare: None,
            ip: 0,
            ttl_micros: 0,
            timer,
            port: 0,
            flags: 0,
        };
        record.set_peer(peer, epoch);
        record
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }

    pub fn authenticated(&self) -> bool {
        self.flags & AUTHENTICATED != 0
    }

    pub fn established(&self) -> bool {
        self.flags & ESTABLISHED != 0
    }

    /// Live: when this instance was first heard, as a stamp; with the place, it names this
    /// listing of the hostname, which a later one in the same place does not share.
    pub fn joined(&self) -> u64 {
        self.first_seen
    }

    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn timer(&self) -> u32 {
        self.timer
    }

    pub fn set_timer(&mut self, timer: u32) {
        self.timer = timer;
    }

    /// Live: the deadline. Gone: when it is forgotten. As a stamp of the registry's epoch.
    pub fn due(&self) -> u64 {
        if self.is_live() {
            self.deadline
        } else {
            self.last_seen
        }
    }

    /// The peer, as listed. Only for a live record.
    pub fn peer(&self, epoch: &Epoch) -> Peer {
        let rare = self.rare.as_deref();
        let other_addresses = rare.map_or_else(Vec::new, |rare| {
            let heard = rare.others.heard().iter();
            heard
                .map(|heard| OtherAddress {
                    address: heard.address,
                    last_heard: epoch.instant(heard.at),
                })
                .collect()
        });
        Peer {
            hostname: self.name.to_string(),
            address: self.address(),
            other_addresses,
            instance: self.instance,
            sequence: self.sequence,
            first_seen: epoch.instant(self.first_seen),
            last_seen: epoch.instant(self.last_seen),
            deadline: epoch.instant(self.deadline),
            ttl: Duration::from_micros(u64::from(self.ttl_micros)),
            authenticated: self.authenticated(),
            first_timestamp: rare.and_then(|rare| rare.first_timestamp),
            last_timestamp: self.timestamp(),
            tags: self.tags().clone(),
            established: self.established(),
            rival: rare.and_then(|rare| rare.rival.as_deref().cloned()),
            paths: Paths {
                group: self.flags & VIA_GROUP != 0,
                unicast: self.flags & VIA_UNICAST != 0,
            },
        }
    }

    /// Makes this the live record of `peer` (same hostname), keeping its wheel entry. The other
    /// addresses belong to the listed instance: kept while it stays listed, dropped when another
    /// takes its place, never taken from `peer` (whose list says not when each was heard).
    pub fn set_peer(&mut self, peer: &Peer, epoch: &Epoch) {
        debug_assert_eq!(self.name, peer.hostname);
        let same_instance = self.is_live() && self.instance == peer.instance;
        let others = match self.rare.as_deref_mut() {
            Some(rare) if same_instance => std::mem::take(&mut rare.others),
            _ => Others::default(),
        };
        self.instance = peer.instance;
        self.sequence = peer.sequence;
        self.first_seen = epoch.stamp(peer.first_seen);
        self.last_seen = epoch.stamp(peer.last_seen);
        self.deadline = epoch.stamp(peer.deadline);
        self.ttl_micros = micros(peer.ttl);
        self.flags = LIVE;
        if peer.authenticated {
            self.flags |= AUTHENTICATED;
        }
        if peer.established {
            self.flags |= ESTABLISHED;
        }
        if peer.paths.group {
            self.flags |= VIA_GROUP;
        }
        if peer.paths.unicast {
            self.flags |= VIA_UNICAST;
        }
        self.set_timestamp(peer.last_timestamp);
        let mut rare = Rare {
            tags: peer.tags.clone(),
            rival: peer.rival.clone().map(Box::new),
            first_timestamp: peer.first_timestamp,
            address: None,
            others,
        };
        match peer.address {
            SocketAddr::V4(v4) => {
                self.ip = u32::from(*v4.ip());
                self.port = v4.port();
            }
            other => rare.address = Some(other),
        }
        self.rare = (!rare.is_empty()).then(|| Box::new(rare));
    }

    /// What is remembered of a gone peer. Only for a record that is not live.
    pub fn gone(&self, epoch: &Epoch) -> Gone {
        Gone {
            instance: self.instance,
            sequence: self.sequence,
            authenticated: self.authenticated(),
            timestamp: self.timestamp(),
            tags: self.tags().clone(),
            restart_until: epoch.instant(self.deadline),
            forget_at: epoch.instant(self.last_seen),
        }
    }

    /// Makes this the record of a gone peer, keeping its wheel entry and its tags, and dropping
    /// all else.
    pub fn set_gone(&mut self, gone: &Gone, epoch: &Epoch) {
        self.instance = gone.instance;
        self.sequence = gone.sequence;
        self.deadline = epoch.stamp(gone.restart_until);
        self.last_seen = epoch.stamp(gone.forget_at);
        self.first_seen = 0;
        self.ttl_micros = 0;
        self.flags = if gone.authenticated { AUTHENTICATED } else { 0 };
        self.set_timestamp(gone.timestamp);
        self.rare = (!gone.tags.is_empty()).then(|| {
            Box::new(Rare {
                tags: gone.tags.clone(),
                ..Rare::default()
            })
        });
    }

    /// Takes in a newer beacon of the listed instance, heard at `now` from `from`: the
    /// renewal, in place. Returns the address it had; which one it has after is for
    /// [`Others::renewal`] to say. A rival silent for a ttl is dropped.
    pub fn renew(
        &mut self,
        beacon: &Beacon,
        from: SocketAddr,
        now: Instant,
        ttl: Duration,
        epoch: &Epoch,
    ) -> SocketAddr {
        let old_address = self.address();
        let (last_seen, stamp) = (self.last_seen, epoch.stamp(now));
        // The common renewal: no list to look at, nothing to allocate.
        let address = if self.rare.is_none() && from == old_address {
            from
        } else {
            let rare = self.rare.get_or_insert_with(Box::default);
            rare.others.renewal(old_address, from, stamp, ttl, last_seen)
        };
        if address != old_address {
            self.set_address(address);
        }
        self.sequence = beacon.sequence;
        self.last_seen = stamp;
        self.deadline = epoch.stamp(now + ttl);
        self.ttl_micros = micros(ttl);
        self.flags |= ESTABLISHED;
        if beacon.timestamp.is_some() {
            self.set_timestamp(beacon.timestamp);
        }
        if let Some(rare) = self.rare.as_deref_mut()
            && rare
                .rival
                .as_ref()
                .is_some_and(|rival| rival.deadline <= now)
        {
            rare.rival = None; // silent for a ttl: no longer a rival
        }
        self.drop_empty_rare();
        old_address
    }

    /// A copy of the beacon last taken in (a duplicate), heard at `now` from `from`: notes the
    /// address it came from, as [`Others::copy`] says. A peer heard from one address stays
    /// without a list.
    pub fn copy_heard(&mut self, from: SocketAddr, now: Instant, ttl: Duration, epoch: &Epoch) {
        let primary = self.address();
        let listed = self
            .rare
            .as_deref()
            .is_some_and(|rare| !rare.others.is_empty());
        if from == primary && !listed {
            return; // the common duplicate: the same address, by the group and by unicast
        }
        let last_seen = self.last_seen;
        let rare = self.rare.get_or_insert_with(Box::default);
        rare.others
            .copy(primary, from, epoch.stamp(now), ttl, last_seen);
        self.drop_empty_rare();
    }

    /// Its beacons reached this node by `via` too.
    pub fn add_path(&mut self, via: Via) {
        self.flags |= match via {
            Via::Group => VIA_GROUP,
            Via::Unicast => VIA_UNICAST,
        };
    }

    pub fn tags(&self) -> &Tags {
        self.rare.as_deref().map_or(&NO_TAGS, |rare| &rare.tags)
    }

    /// Sets the tags and returns the ones it had.
    pub fn replace_tags(&mut self, tags: Tags) -> Tags {
        let rare = self.rare.get_or_insert_with(Box::default);
        let old = std::mem::replace(&mut rare.tags, tags);
        self.drop_empty_rare();
        old
    }

    /// Frees the rare part once it holds nothing.
    fn drop_empty_rare(&mut self) {
        if self.rare.as_deref().is_some_and(Rare::is_empty) {
            self.rare = None;
        }
    }

    /// Gives a live peer at least `ttl` from `now` (its own ttl): see `Registry::give_time`.
    pub fn give_time(&mut self, now: Instant, epoch: &Epoch) {
        let until = now + Duration::from_micros(u64::from(self.ttl_micros));
        self.deadline = self.deadline.max(epoch.stamp(until));
        if let Some(rival) = self
            .rare
            .as_deref_mut()
            .and_then(|rare| rare.rival.as_deref_mut())
        {
            rival.deadline = rival.deadline.max(until);
        }
    }

    pub fn address(&self) -> SocketAddr {
        match self.rare.as_deref().and_then(|rare| rare.address) {
            Some(address) => address,
            None => SocketAddr::from((Ipv4Addr::from(self.ip), self.port)),
        }
    }

    fn set_address(&mut self, address: SocketAddr) {
        match address {
            SocketAddr::V4(v4) => {
                self.ip = u32::from(*v4.ip());
                self.port = v4.port();
                if let Some(rare) = self.rare.as_deref_mut() {
                    rare.address = None;
                }
            }
            other => self.rare.get_or_insert_with(Box::default).address = Some(other),
        }
    }

    fn timestamp(&self) -> Option<u64> {
        (self.flags & TIMESTAMPED != 0).then_some(self.timestamp)
    }

    fn set_timestamp(&mut self, timestamp: Option<u64>) {
        match timestamp {
            Some(timestamp) => {
                self.timestamp = timestamp;
                self.flags |= TIMESTAMPED;
            }
            None => {
                self.timestamp = 0;
                self.flags &= !TIMESTAMPED;
            }
        }
    }
}

/// A ttl in microseconds, saturating at 71 minutes (the registry's bounds stop at an hour).
fn micros(ttl: Duration) -> u32 {
    u32::try_from(ttl.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, SocketAddrV6};

    use super::*;

    fn peer(t0: Instant) -> Peer {
        Peer {
            hostname: "node-1".into(),
            address: SocketAddr::from(([10, 0, 0, 1], 24901)),
            other_addresses: Vec::new(),
            instance: 7,
            sequence: 9,
            first_seen: t0 + Duration::from_nanos(1),
            last_seen: t0 + Duration::from_millis(1500),
            deadline: t0 + Duration::from_millis(36_500),
            ttl: Duration::from_secs(35),
            authenticated: false,
            first_timestamp: None,
            last_timestamp: None,
            tags: Tags::new(),
            established: true,
            rival: None,
            paths: Paths::default(),
        }
    }

    #[test]
    fn a_record_is_96_bytes_and_a_vacant_place_costs_nothing_more() {
        assert_eq!(std::mem::size_of::<Record>(), 96);
        assert_eq!(std::mem::size_of::<Option<Record>>(), 96);
    }

    #[test]
    fn a_plain_peer_round_trips_without_an_allocation_beside_the_record() {
        let t0 = Instant::now();
        let epoch = Epoch::new(t0);
        let record = Record::live(&peer(t0), 3, &epoch);
        assert!(record.rare.is_none());
        assert_eq!(record.peer(&epoch), peer(t0));
        assert_eq!(record.timer(), 3);
    }

    #[test]
    fn other_addresses_cost_an_allocation_only_while_a_peer_has_some() {
        let t0 = Instant::now();
        let epoch = Epoch::new(t0);
        let ttl = Duration::from_secs(35);
        let mut record = Record::live(&peer(t0), 0, &epoch);
        let own = record.address();
        // The common duplicate: by the group and by unicast, from the one address.
        record.copy_heard(own, t0 + Duration::from_secs(2), ttl, &epoch);
        assert!(record.rare.is_none());
        let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 24901, 0, 0));
        record.copy_heard(v6, t0 + Duration::from_secs(2), ttl, &epoch);
        let listed = record.peer(&epoch);
        assert_eq!(listed.other_addresses.len(), 1);
        assert_eq!(listed.other_addresses[0].address, v6);
        // The same instance set again (a rival's beacon does that) keeps it...
        record.set_peer(&listed, &epoch);
        assert_eq!(record.peer(&epoch), listed);
        // ...and once it has not been heard for a ttl, the next beacon frees it.
        let later = t0 + Duration::from_secs(2) + ttl;
        let beacon = Beacon {
            instance: 7,
            sequence: 10,
            hostname: "node-1".into(),
            ..Beacon::default()
        };
        assert_eq!(record.renew(&beacon, own, later, ttl, &epoch), own);
        assert!(record.rare.is_none());
        // Another instance set in its place drops them.
        record.copy_heard(v6, later, ttl, &epoch);
        assert!(record.rare.is_some());
        let restarted = Peer {
            instance: 8,
            ..record.peer(&epoch)
        };
        record.set_peer(&restarted, &epoch);
        assert!(record.rare.is_none());
    }

    #[test]
    fn what_few_peers_have_round_trips_too() {
        let t0 = Instant::now();
        let epoch = Epoch::new(t0);
        let mut rare = peer(t0);
        rare.address = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 24901, 0, 0));
        rare.authenticated = true;
        rare.first_timestamp = Some(0);
        rare.last_timestamp = Some(0);
        rare.tags.insert("role".into(), "db".into());
        rare.rival = Some(Rival {
            instance: 8,
            address: SocketAddr::from(([10, 0, 0, 2], 24901)),
            sequence: 1,
            last_seen: t0,
            deadline: t0 + Duration::from_secs(35),
            confirmed: true,
        });
        let record = Record::live(&rare, 0, &epoch);
        assert_eq!(record.peer(&epoch), rare);
    }
}
