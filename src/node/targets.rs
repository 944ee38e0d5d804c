//! The unicast targets of one node: where its beacons go besides the group, and whose unsigned
//! beacons it takes by unicast. Fed with resolver answers, the beacons heard and the addresses
//! peers tell of, each with `now`; no resolver and no socket here.
//!
//! DNS only ever adds: a listed peer leaves by goodbye or ttl, never because an answer no longer
//! names it. A target that is in no current answer, was not given as an address, and has not
//! been heard for a ttl is dropped, so nobody beacons a dead address forever.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::Target;

/// One name to resolve (`--peers-dns`, or a name in `--peer`), with what it last resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Name {
    /// The name and port, as given.
    pub target: Target,
    /// From `--peers-dns` (else from `--peer`).
    pub dns: bool,
    /// Its latest answer that named any address; kept through errors and empty answers.
    pub addresses: Vec<SocketAddr>,
    /// When an answer last named addresses.
    pub resolved_at: Option<Instant>,
    /// When it was last asked, whatever the answer.
    pub asked_at: Option<Instant>,
    /// The latest attempt's error (or "no address"), until an answer names addresses again.
    pub error: Option<String>,
}

/// Where a target came from, for the trust rule: only configured ones vouch for an unsigned
/// beacon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Written out in `--peer`: a target for good.
    Fixed,
    /// In an answer for a name, now or before.
    Resolved,
    /// The sender of a verified beacon, or told of by one.
    Learned,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    source: Source,
    /// When it was last in an answer, learned, or heard from: a ttl after this, a target in no
    /// current answer is dropped.
    last_sign: Instant,
    /// When a beacon from it was last taken in: proof that it is there, on this link.
    heard: Option<Instant>,
}

/// The targets of one node.
#[derive(Debug)]
pub struct Targets {
    ttl: Duration,
    names: Vec<Name>,
    known: HashMap<SocketAddr, Known>,
    /// The node's own unicast address(es): never a target (a headless Service names the pod
    /// itself, a Compose service the container itself).
    own: Vec<SocketAddr>,
    /// The list handed out last is stale.
    changed: bool,
}

impl Targets {
    /// The targets of `peers_dns` and `peers` as configured, dropped a `ttl` after their last
    /// sign of life; never any of `own`.
    pub fn new(
        peers_dns: &[Target],
        peers: &[Target],
        ttl: Duration,
        own: Vec<SocketAddr>,
        now: Instant,
    ) -> Targets {
        let mut targets = Targets {
            ttl,
            names: Vec::new(),
            known: HashMap::new(),
            own,
            changed: true,
        };
        for target in peers_dns {
            targets.names.push(Name::new(target.clone(), true));
        }
        for target in peers {
            match target.address() {
                Some(address) => {
                    targets.known.insert(
                        address,
                        Known {
                            source: Source::Fixed,
                            last_sign: now,
                            heard: None,
                        },
                    );
                }
                None => targets.names.push(Name::new(target.clone(), false)),
            }
        }
        targets
    }

    /// Never beacons to `own` (this node's own unicast addresses).
    pub fn set_own(&mut self, own: Vec<SocketAddr>) {
        self.own = own;
        self.changed = true;
    }

    /// The names to resolve, in the order [`resolved`](Self::resolved) numbers them.
    pub fn names(&self) -> &[Name] {
        &self.names
    }

    /// Name number `index` was asked at `now`: `Ok` with the addresses it resolved to (with the
    /// name's port, or an SRV record's), or `Err` with why not. An error or an empty answer keeps the last
    /// good addresses: a resolver outage must not look like "no peers".
    pub fn resolved(
        &mut self,
        index: usize,
        answer: Result<Vec<SocketAddr>, String>,
        now: Instant,
    ) -> Option<&Name> {
        let name = self.names.get_mut(index)?;
        name.asked_at = Some(now);
        match answer {
            Ok(mut addresses) if !addresses.is_empty() => {
                addresses.sort();
                addresses.dedup();
                name.resolved_at = Some(now);
                name.error = None;
                for &address in &addresses {
                    let known = self.known.entry(address).or_insert_with(|| {
                        self.changed = true;
                        Known {
                            source: Source::Resolved,
                            last_sign: now,
                            heard: None,
                        }
                    });
                    known.last_sign = now;
                    if known.source == Source::Learned {
                        known.source = Source::Resolved;
                    }
                }
                name.addresses = addresses;
            }
            Ok(_) => name.error = Some("the answer named no address".to_owned()),
            Err(err) => name.error = Some(err),
        }
        self.names.get(index)
    }

    /// A beacon was taken in from `from`: a target it is stays one for a ttl more.
    pub fn heard(&mut self, from: SocketAddr, now: Instant) {
        if let Some(known) = self.known.get_mut(&from) {
            known.last_sign = now;
            known.heard = Some(now);
        }
    }

    /// The addresses of the targets heard from within a ttl before `now`, sorted: the sender
    /// tells the kernel that each is reachable as it sends to it (`MSG_CONFIRM`), so the
    /// kernel does not ask the link for it again by ARP every half minute or so; a third of the
    /// bytes a node sent to 20 targets by unicast were those ARP exchanges.
    pub fn heard_within_ttl(&self, now: Instant) -> Vec<IpAddr> {
        let mut heard: Vec<IpAddr> = self
            .known
            .iter()
            .filter(|(_, known)| known.heard.is_some_and(|at| now < at + self.ttl))
            .map(|(address, _)| address.ip())
            .collect();
        heard.sort();
        heard.dedup();
        heard
    }

    /// `address` sent a verified beacon, or a verified beacon told of it: a target from now on,
    /// for as long as it shows signs of life. Returns whether it is new.
    pub fn learn(&mut self, address: SocketAddr, now: Instant) -> bool {
        if self.own.contains(&address) || address.ip().is_unspecified() || address.port() == 0 {
            return false;
        }
        match self.known.get_mut(&address) {
            Some(known) => {
                known.last_sign = known.last_sign.max(now);
                false
            }
            None => {
                self.known.insert(
                    address,
                    Known {
                        source: Source::Learned,
                        last_sign: now,
                        heard: None,
                    },
                );
                self.changed = true;
                true
            }
        }
    }

    /// Whether an unsigned beacon from `ip` may be taken by unicast: it is a configured target
    /// (given in `--peer`, or named by a `--peers-dns` or `--peer` answer, now or within a
    /// ttl). Learned targets do not vouch: a signature made them targets.
    pub fn vouches_for(&self, from: SocketAddr) -> bool {
        let vouches = |known: &Known| known.source != Source::Learned;
        // Its own socket's address first, as a target sends from its target port; then any
        // port of its address (a node that sends from an ephemeral port).
        if self.known.get(&from).is_some_and(vouches) {
            return true;
        }
        self.known
            .iter()
            .any(|(address, known)| address.ip() == from.ip() && vouches(known))
    }

    /// Drops the targets that are in no current answer, were not given as addresses, and
    /// showed no sign of life for a ttl by `now`.
    pub fn prune(&mut self, now: Instant) {
        let names = &self.names;
        let ttl = self.ttl;
        let before = self.known.len();
        self.known.retain(|address, known| {
            known.source == Source::Fixed
                || names
                    .iter()
                    .any(|name| name.addresses.binary_search(address).is_ok())
                || now < known.last_sign + ttl
        });
        self.changed |= self.known.len() != before;
    }

    /// Every target now, sorted, if the list changed since the last call: the announcer's copy.
    pub fn take_changed(&mut self) -> Option<Vec<SocketAddr>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        Some(self.list())
    }

    /// Every target now, sorted; never one of this node's own addresses.
    pub fn list(&self) -> Vec<SocketAddr> {
        let mut list: Vec<SocketAddr> = self
            .known
            .keys()
            .filter(|address| !self.own.contains(address))
            .copied()
            .collect();
        list.sort();
        list
    }

    /// How many targets there are now.
    pub fn len(&self) -> usize {
        self.known.keys().filter(|a| !self.own.contains(a)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Name {
    fn new(target: Target, dns: bool) -> Name {
        Name {
            target,
            dns,
            addresses: Vec::new(),
            resolved_at: None,
            asked_at: None,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);
    const PORT: u16 = 24901;

    fn target(host: &str) -> Target {
        Target::parse(host, PORT).expect("a valid target")
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::new(ip(last), PORT)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn addresses_written_out_are_targets_for_good_and_names_wait_for_an_answer() {
        let t0 = Instant::now();
        let mut targets = Targets::new(
            &[target("tasks.peerd")],
            &[target("10.0.0.9"), target("seed")],
            TTL,
            Vec::new(),
            t0,
        );
        let names: Vec<String> = targets
            .names()
            .iter()
            .map(|n| n.target.to_string())
            .collect();
        assert_eq!(names, ["tasks.peerd:24901", "seed:24901"]);
        assert_eq!(targets.take_changed(), Some(vec![addr(9)]));
        assert_eq!(targets.take_changed(), None, "unchanged since");
        targets.prune(t0 + secs(3600));
        assert_eq!(targets.list(), [addr(9)], "never dropped");
        assert!(targets.vouches_for(SocketAddr::new(ip(9), 40_000)));
    }

    #[test]
    fn only_targets_heard_within_a_ttl_are_confirmed_to_the_kernel() {
        let t0 = Instant::now();
        let mut targets = Targets::new(
            &[],
            &[target("10.0.0.2"), target("10.0.0.3")],
            TTL,
            Vec::new(),
            t0,
        );
        assert!(
            targets.heard_within_ttl(t0).is_empty(),
            "written out, not heard"
        );
        targets.heard(addr(3), t0 + secs(1));
        targets.heard(addr(7), t0 + secs(1)); // no target: nothing to confirm
        assert_eq!(targets.heard_within_ttl(t0 + secs(1)), [ip(3)]);
        assert_eq!(targets.heard_within_ttl(t0 + secs(3)), [ip(3)]);
        assert!(
            targets.heard_within_ttl(t0 + secs(4)).is_empty(),
            "silent for a ttl: the kernel asks the link again"
        );
    }

    #[test]
    fn an_answer_adds_targets_and_an_error_or_an_empty_answer_keeps_them() {
        let t0 = Instant::now();
        let mut targets = Targets::new(&[target("tasks.peerd")], &[], TTL, vec![addr(1)], t0);
        let name = targets
            .resolved(0, Ok(vec![addr(2), addr(1), addr(3), addr(2)]), t0)
            .expect("name 0")
            .clone();
        assert_eq!(name.addresses, [addr(1), addr(2), addr(3)]);
        assert_eq!((name.resolved_at, name.error), (Some(t0), None));
        assert_eq!(
            targets.take_changed(),
            Some(vec![addr(2), addr(3)]),
            "our own address is no target"
        );
        let t1 = t0 + secs(60);
        let name = targets
            .resolved(0, Err("Temporary failure in name resolution".into()), t1)
            .expect("name 0")
            .clone();
        assert_eq!(name.addresses.len(), 3, "the last good answer holds");
        assert_eq!(
            name.error.as_deref(),
            Some("Temporary failure in name resolution")
        );
        assert_eq!((name.resolved_at, name.asked_at), (Some(t0), Some(t1)));
        targets.resolved(0, Ok(Vec::new()), t1);
        targets.prune(t1);
        assert_eq!(targets.list(), [addr(2), addr(3)], "an outage drops nobody");
        assert_eq!(targets.take_changed(), None);
        assert!(targets.vouches_for(SocketAddr::new(ip(3), 40_000)));
        assert!(!targets.vouches_for(SocketAddr::new(ip(4), 40_000)));
        assert!(
            targets.resolved(1, Ok(vec![addr(4)]), t1).is_none(),
            "no name 1"
        );
    }

    #[test]
    fn a_target_gone_from_the_answer_is_dropped_a_ttl_after_it_was_last_heard() {
        let t0 = Instant::now();
        let mut targets = Targets::new(&[target("peers")], &[], TTL, Vec::new(), t0);
        targets.resolved(0, Ok(vec![addr(2), addr(3)]), t0);
        let t1 = t0 + secs(5);
        targets.heard(addr(3), t1);
        targets.resolved(0, Ok(vec![addr(2), addr(4)]), t1); // 3 moved to 4
        targets.take_changed();
        targets.prune(t1 + secs(2));
        assert_eq!(
            targets.list(),
            [addr(2), addr(3), addr(4)],
            "heard within a ttl"
        );
        targets.prune(t1 + TTL);
        assert_eq!(targets.list(), [addr(2), addr(4)], "silent for a ttl");
        assert_eq!(targets.take_changed(), Some(vec![addr(2), addr(4)]));
        assert!(!targets.vouches_for(SocketAddr::new(ip(3), 40_000)));
    }

    #[test]
    fn learned_targets_live_while_heard_and_never_vouch_for_unsigned_beacons() {
        let t0 = Instant::now();
        let mut targets = Targets::new(&[], &[target("10.0.0.1")], TTL, vec![addr(9)], t0);
        assert!(targets.learn(addr(5), t0));
        assert!(!targets.learn(addr(5), t0), "known already");
        assert!(!targets.learn(addr(9), t0), "our own address");
        assert!(!targets.learn(SocketAddr::new(ip(6), 0), t0), "no port");
        assert_eq!(targets.list(), [addr(1), addr(5)]);
        assert!(!targets.vouches_for(SocketAddr::new(ip(5), 40_000)));
        targets.heard(addr(5), t0 + secs(2));
        targets.prune(t0 + secs(4));
        assert_eq!(targets.list(), [addr(1), addr(5)]);
        targets.prune(t0 + secs(5));
        assert_eq!(targets.list(), [addr(1)]);
    }
}
