//! The other addresses of a live peer whose beacons reach this node over several paths (its IPv4
//! and IPv6 addresses, two links): each with when it was last heard, so that such a peer is
//! listed once with each address and never flaps between them. Pure bookkeeping over stamps.

use std::net::SocketAddr;
use std::time::Duration;

/// How many addresses a peer keeps besides its primary one. Four in all covers an IPv4 and an
/// IPv6 address on each of two links, more paths than a host on one LAN has; and since copies of
/// a beacon are not checked for where they come from, the bound is what holds a stream of copies
/// from made-up addresses to 120 bytes per peer. When full, a new one replaces the least recently
/// heard.
pub const MAX_OTHER_ADDRESSES: usize = 3;

/// One other address, and when it was last heard (a stamp of the registry's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub address: SocketAddr,
    pub at: u64,
}

/// A peer's other live addresses. Empty, as most peers have, it holds nothing at all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Others {
    /// When the primary address was last heard, while `heard` is not empty. Before an other
    /// address is heard every beacon taken in came from the primary, so the record's
    /// `last_seen` says when it was heard, and this starts from it.
    primary_at: u64,
    /// Most recently heard first; at most [`MAX_OTHER_ADDRESSES`], each heard within a ttl as of
    /// the latest copy taken in.
    heard: Vec<Heard>,
}

impl Others {
    pub fn is_empty(&self) -> bool {
        self.heard.is_empty()
    }

    /// The other addresses, most recently heard first.
    pub fn heard(&self) -> &[Heard] {
        &self.heard
    }

    /// A copy of the beacon already taken in (a duplicate), heard at `now` from `from`, while
    /// `primary` is the peer's address, last heard at `last_seen` as far as the record says:
    /// `from` is noted (or refreshed) as an address of the peer; the primary stays.
    pub fn copy(
        &mut self,
        primary: SocketAddr,
        from: SocketAddr,
        now: u64,
        ttl: Duration,
        last_seen: u64,
    ) {
        self.prune(now, ttl);
        if from == primary {
            // Refreshed too: when its copies arrive second, the primary is heard by them only.
            self.heard_primary(now);
        } else {
            if self.heard.is_empty() {
                self.primary_at = last_seen;
            }
            self.note(from, now);
        }
    }

    /// A newer beacon heard at `now` from `from`, while `primary` is the peer's address, last
    /// heard at `last_seen` as far as the record says: the peer's address after it.
    ///
    /// From the primary, a renewal. From another address while the primary is still heard (it
    /// was, within half a ttl), a renewal too, with `from` noted as another address: copies
    /// arriving over two paths in either order never make it flap, even when a path's first
    /// copy is a beacon the other path never carried (an answer sent to this node alone, the
    /// announcement an address passing DAD brings). Except from an address of the primary's
    /// family and scope not known here: a node whose address changed, moved at once, its old
    /// address kept as another while it is still heard. From any address once the primary has
    /// not been heard for more than half a ttl, a move: the path the primary came by is gone.
    /// Half a ttl (17.5 s at the defaults) is more than the longest jittered interval (16.5 s),
    /// so only a primary that missed a beacon is stale, and the move comes with the beacon
    /// after (30 s after it was last heard, within the 35 s it would be listed anyway). With a
    /// ttl under two intervals, which the agent warns about, half a ttl can be shorter than an
    /// interval, and such a peer may move each time the other path's copy comes first.
    pub fn renewal(
        &mut self,
        primary: SocketAddr,
        from: SocketAddr,
        now: u64,
        ttl: Duration,
        last_seen: u64,
    ) -> SocketAddr {
        self.prune(now, ttl);
        if from == primary {
            self.heard_primary(now);
            return primary;
        }
        let primary_at = if self.heard.is_empty() {
            last_seen
        } else {
            self.primary_at
        };
        let fresh = now.saturating_sub(primary_at) <= nanos(ttl / 2);
        let known = self.heard.iter().any(|h| h.address == from);
        if fresh && (known || !same_kind(primary, from)) {
            if self.heard.is_empty() {
                self.primary_at = primary_at;
            }
            self.note(from, now);
            return primary;
        }
        // The sender becomes the primary, heard now; a primary still heard stays an address.
        self.heard.retain(|h| h.address != from);
        if fresh {
            self.note(primary, primary_at);
        }
        if self.heard.is_empty() {
            *self = Others::default();
        } else {
            self.primary_at = now;
        }
        from
    }

    /// The primary heard at `now`: of note only beside other addresses.
    fn heard_primary(&mut self, now: u64) {
        if !self.heard.is_empty() {
            self.primary_at = now;
        }
    }

    /// Drops the addresses not heard for a ttl as of `now`.
    fn prune(&mut self, now: u64, ttl: Duration) {
        let ttl = nanos(ttl);
        self.heard.retain(|h| h.at.saturating_add(ttl) > now);
        if self.heard.is_empty() {
            *self = Others::default();
        }
    }

    /// `address` heard at `now`: first in the list, in the place of the least recently heard
    /// when full.
    fn note(&mut self, address: SocketAddr, now: u64) {
        if let Some(at) = self.heard.iter().position(|h| h.address == address) {
            self.heard.remove(at);
        } else if self.heard.len() >= MAX_OTHER_ADDRESSES {
            self.heard.pop();
        } else if self.heard.capacity() == 0 {
            // Room for the most at once: a first push would reserve four, a third more.
            self.heard.reserve_exact(MAX_OTHER_ADDRESSES);
        }
        self.heard.insert(0, Heard { address, at: now });
    }
}

/// Both of one family and, for IPv6, of one scope (a link-local address names its link): a
/// change between them is an address that changed, not another path.
fn same_kind(a: SocketAddr, b: SocketAddr) -> bool {
    match (a, b) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => true,
        (SocketAddr::V6(a), SocketAddr::V6(b)) => a.scope_id() == b.scope_id(),
        _ => false,
    }
}

/// A duration as nanoseconds, saturating (the registry's bounds keep a ttl within an hour).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(35);
    const S: u64 = 1_000_000_000;

    fn at(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 24901))
    }

    #[test]
    fn the_primary_is_stale_only_past_half_a_ttl() {
        let mut others = Others::default();
        others.copy(at(1), at(2), 0, TTL, 0);
        // Heard exactly half a ttl ago: still a path.
        assert_eq!(others.renewal(at(1), at(2), 17_500_000_000, TTL, 0), at(1));
        // at(2) was just heard, which is when the primary was compared against: 17.5 s on.
        assert_eq!(others.renewal(at(1), at(2), 35_000_000_001, TTL, 0), at(2));
        assert!(others.is_empty(), "the stale primary is not kept");
        assert_eq!(others, Others::default());
    }

    fn v6(last: u16, scope: u32) -> SocketAddr {
        SocketAddr::V6(std::net::SocketAddrV6::new(
            std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last),
            24901,
            0,
            scope,
        ))
    }

    #[test]
    fn a_new_beacon_first_heard_over_the_other_family_is_no_move() {
        // Listed at its IPv4 address (heard at 0, no other address yet); a newer beacon's
        // IPv6 copy comes first: noted, not a move.
        let mut others = Others::default();
        assert_eq!(others.renewal(at(1), v6(1, 2), S, TTL, 0), at(1));
        assert_eq!(others.heard()[0].address, v6(1, 2));
        assert_eq!(
            others.heard.capacity(),
            MAX_OTHER_ADDRESSES,
            "room for the most, no more"
        );
        // An address of the primary's kind not known here is a node whose address changed:
        // a move at once, the old address kept while it is heard.
        let mut others = Others::default();
        assert_eq!(others.renewal(at(1), at(9), S, TTL, 0), at(9));
        assert_eq!(others.heard()[0].address, at(1));
        // Link-local addresses of two links are two paths, not one changed address.
        let mut others = Others::default();
        assert_eq!(others.renewal(v6(1, 2), v6(1, 3), S, TTL, 0), v6(1, 2));
        // A primary silent for more than half a ttl: any new address takes over.
        let mut others = Others::default();
        assert_eq!(others.renewal(at(1), v6(1, 2), 18 * S, TTL, 0), v6(1, 2));
        assert!(others.is_empty());
    }

    #[test]
    fn once_every_other_address_is_a_ttl_old_nothing_is_left() {
        let mut others = Others::default();
        others.copy(at(1), at(2), 0, TTL, 0);
        others.copy(at(1), at(1), 35 * S, TTL, 0);
        assert_eq!(others, Others::default(), "the rare part may be freed");
    }
}
