//! The agent's settings as a plain struct, with the defaults every entry point shares.
//! Parsing flags and reading the environment is the binary's job, not this module's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use crate::wire::auth::Keyring;
use crate::wire::beacon::{
    AUTH_VALUE_LEN, Beacon, EXT_HEADER_LEN, InvalidHostname, MAX_BEACON_LEN, validate_hostname,
};
use crate::wire::tags::Tags;

pub mod interface_spec;
mod target;

pub use interface_spec::{InterfaceSpec, Network};
pub use target::Target;

/// How often a node announces itself. 15 s keeps the traffic negligible (one ~30-byte datagram
/// per node per 15 s) while a crashed node is still noticed within a minute.
pub const BEACON_INTERVAL: Duration = Duration::from_secs(15);
/// How long a peer stays listed after its last beacon. 35 s outlasts two intervals plus the
/// maximum jitter (2 x 16.5 s = 33 s), so one lost beacon never drops a live peer, while a
/// crashed one is dropped within 35 s.
pub const PEER_TTL: Duration = Duration::from_secs(35);
/// Each delay between beacons is the interval scaled by a random factor in 1 +/- this, so nodes
/// started together drift apart instead of sending in lockstep.
pub const JITTER: f64 = 0.10;
/// A node answers a newcomer with an early beacon after a random delay of up to this: joins
/// heard together share one answer, and the peers of a newcomer do not all answer in the same
/// instant. Short enough that a new node lists the others in one round trip.
pub const EARLY_ANSWER_DELAY: Duration = Duration::from_millis(20);
/// In a crowd of newcomers (a node that answered one in the last second hears another), the
/// answer waits until no newcomer has been heard for this long, so one answer covers them all.
pub const CROWD_QUIET: Duration = Duration::from_millis(100);
/// At most two early answers in any window this long.
pub const EARLY_ANSWER_WINDOW: Duration = Duration::from_secs(1);

/// Bounds of `--interval` and `--ttl`, and of the ttl a peer's beacon asks for. Below 100 ms a
/// node would send more than ten beacons a second; beyond an hour a dead peer would stay
/// listed for longer than anyone waits for "who is alive right now".
pub const MIN_TIMING: Duration = Duration::from_millis(100);
pub const MAX_TIMING: Duration = Duration::from_secs(3600);
/// An unsigned beacon may ask to stay listed at most this many times the receiver's own ttl
/// (140 s at the defaults). Anyone on the link can send one, so what it asks is a claim: this
/// bounds how long one forged datagram holds a hostname or a place, while peers that run up to
/// four times slower than the receiver stay listed between their beacons. A signed beacon's
/// ttl counts in full, up to [`MAX_TIMING`].
pub const UNSIGNED_TTL_FACTOR: u32 = 4;
/// How many peers an agent lists at most: far more than one LAN segment of peerd nodes (see
/// BENCHMARKS.md), small enough that a flood of made-up hostnames costs a bounded few MiB.
pub const MAX_PEERS: usize = 1024;
/// A signed beacon is accepted only if its timestamp is within this of the receiver's clock.
/// Wide enough for hosts without NTP to drift for days; it bounds how long a captured beacon
/// can be replayed. Agents remember each gone instance at least this long.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(60);

/// Organisation-local scope (RFC 2365), never routed off a site by default.
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 49, 1);
/// The IPv6 group: transient (the 1 in `ff1`) and of link-local scope (the 2), so no router
/// forwards it off the link whatever the hop limit, as IPv4's TTL 1 keeps beacons on it. The
/// group id, 2490, is the port's first four digits.
pub const MULTICAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x2490);
/// Below Linux's ephemeral range (32768-60999): an outgoing connection never holds it, so the
/// agent always gets its port. The API listens on the same number, over TCP.
pub const PORT: u16 = 24901;
/// 1: beacons never cross a router, so discovery stays on one link.
pub const MULTICAST_TTL: u32 = 1;
/// How long an `--on-event` program may run before it is killed: long enough for a script that
/// reloads a service, short enough that one stuck hook does not hold up the events behind it.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `--peers-dns` names (and names in `--peer`) are resolved again: a node that
/// scales in is beaconed within seconds, and a resolver is asked a question a few times a
/// minute, not per beacon.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);
/// Each beacon's unicast copies go out spread over [`UNICAST_SPREAD_PER_TARGET`] per target, at
/// most this long, after its group copy: N nodes started together do not send their N copies in
/// the same instant, and a newcomer with 20 targets has reached them all within 20 ms (a
/// newcomer should be listed by all within 0.1 s).
pub const UNICAST_SPREAD: Duration = Duration::from_millis(100);
pub const UNICAST_SPREAD_PER_TARGET: Duration = Duration::from_millis(1);

/// How long the copies of one beacon to `targets` targets are spread over.
pub fn unicast_spread(targets: usize) -> Duration {
    let targets = u32::try_from(targets).unwrap_or(u32::MAX);
    UNICAST_SPREAD_PER_TARGET
        .saturating_mul(targets)
        .min(UNICAST_SPREAD)
}
/// Loopback only: the API answers local clients (`peerd peers`), nobody on the network.
pub const API_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT));

/// Everything the agent needs to run, already resolved (no "default interface" left to find).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Hostname announced in every beacon: 1..=253 ASCII letters, digits, `-` and `.`.
    pub name: String,
    /// Multicast group beacons go to over IPv4; must be an IPv4 multicast address.
    pub group: Ipv4Addr,
    /// Multicast group beacons go to over IPv6, joined on each interface by its index; must be
    /// in `ff00::/8`. One of wider than link-local scope is allowed, with a warning.
    pub group6: Ipv6Addr,
    /// UDP port of the groups.
    pub port: u16,
    /// The interfaces to join the groups on and send from, as `--interface` names them; each
    /// interface is used in every family it has an address of. Empty: the one interface the
    /// agent picks ([`crate::net::selection`]). Addresses among them must be ones an interface
    /// can have, so not `0.0.0.0`, `::`, a multicast address or 255.255.255.255.
    pub interfaces: Vec<InterfaceSpec>,
    /// Mean delay between beacons, within [`MIN_TIMING`]..=[`MAX_TIMING`].
    pub interval: Duration,
    /// How long this node stays listed at its peers after each beacon (each beacon says so),
    /// and how long a silent peer whose beacons do not say stays listed here; within the same
    /// bounds, and above `interval`.
    pub ttl: Duration,
    /// IP TTL of beacons: 1 keeps them on the local link.
    pub multicast_ttl: u32,
    /// Keys to sign (the first) and verify beacons with; none: beacons go unsigned.
    pub keys: Keyring,
    /// With keys: also accept unsigned beacons, to turn authentication on in a live cluster.
    pub accept_unauthenticated: bool,
    /// Most peers listed at once; beacons from further hostnames are dropped. At least 1.
    pub max_peers: usize,
    /// Labels announced in every beacon; with the hostname they must fit one beacon.
    pub tags: Tags,
    /// Join the group and send every beacon to it. Off (`--no-multicast`), the agent is heard
    /// only by its unicast targets, so it needs some.
    pub multicast: bool,
    /// Names whose every address is a unicast target, resolved again every
    /// `resolve_interval` (`--peers-dns`).
    pub peers_dns: Vec<Target>,
    /// Unicast targets given as a list (`--peer`); names among them are resolved again as
    /// `peers_dns` are.
    pub peers: Vec<Target>,
    /// How often names are resolved again, within [`MIN_TIMING`]..=[`MAX_TIMING`].
    pub resolve_interval: Duration,
}

impl Config {
    /// The defaults for a node called `name` on the interface with address `interface`.
    pub fn new(name: impl Into<String>, interface: impl Into<IpAddr>) -> Self {
        Config {
            name: name.into(),
            group: MULTICAST_GROUP,
            group6: MULTICAST_GROUP6,
            port: PORT,
            interfaces: vec![InterfaceSpec::Address(interface.into())],
            interval: BEACON_INTERVAL,
            ttl: PEER_TTL,
            multicast_ttl: MULTICAST_TTL,
            keys: Keyring::default(),
            accept_unauthenticated: false,
            max_peers: MAX_PEERS,
            tags: Tags::new(),
            multicast: true,
            peers_dns: Vec::new(),
            peers: Vec::new(),
            resolve_interval: RESOLVE_INTERVAL,
        }
    }

    /// Whether any unicast target is configured.
    pub fn has_targets(&self) -> bool {
        !self.peers_dns.is_empty() || !self.peers.is_empty()
    }

    /// Where beacons go over IPv4: `group:port`.
    pub fn group_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.group, self.port))
    }

    /// Where beacons go over IPv6 on the interface with index `interface`: `[group%index]:port`.
    /// The index is what picks the link for a group of link-local scope.
    pub fn group6_addr(&self, interface: u32) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(self.group6, self.port, 0, interface))
    }

    /// The groups, for logs: `239.255.49.1:24901, [ff12::2490]:24901`.
    pub fn groups(&self) -> String {
        format!("{}, {}", self.group_addr(), self.group6_addr(0))
    }

    /// Checks the constraints documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_hostname(&self.name).map_err(ConfigError::Name)?;
        validate_group(self.group)?;
        validate_group6(self.group6)?;
        validate_port(self.port)?;
        for spec in &self.interfaces {
            if let InterfaceSpec::Address(address) = spec {
                validate_interface(*address)?;
            }
        }
        for (what, value) in [
            ("interval", self.interval),
            ("ttl", self.ttl),
            ("resolve interval", self.resolve_interval),
        ] {
            if !(MIN_TIMING..=MAX_TIMING).contains(&value) {
                return Err(ConfigError::TimingOutOfBounds { what, value });
            }
        }
        if self.max_peers == 0 {
            return Err(ConfigError::ZeroMaxPeers);
        }
        if self.accept_unauthenticated && self.keys.is_empty() {
            return Err(ConfigError::AcceptUnauthenticatedWithoutKeys);
        }
        if !self.multicast && !self.has_targets() {
            return Err(ConfigError::NobodyToHear);
        }
        let bytes = self.largest_beacon();
        if bytes > MAX_BEACON_LEN {
            return Err(ConfigError::TagsTooLong { bytes });
        }
        if self.ttl <= self.interval {
            return Err(ConfigError::TtlNotAboveInterval {
                ttl: self.ttl,
                interval: self.interval,
            });
        }
        Ok(())
    }

    /// The size of this node's largest beacon: every field it may carry, signed. Tags are the
    /// only part of it a user can make long.
    pub fn largest_beacon(&self) -> usize {
        let beacon = Beacon {
            hostname: self.name.clone(),
            ttl: Some(self.ttl),
            timestamp: Some(u64::MAX),
            tags: self.tags.clone(),
            ..Beacon::default()
        };
        beacon.encode().len() + EXT_HEADER_LEN + AUTH_VALUE_LEN
    }

    /// True when one lost beacon can expire this node at its peers: the ttl does not cover two
    /// maximally jittered intervals. Allowed (tests use tight timings) but worth a warning.
    pub fn ttl_is_tight(&self) -> bool {
        self.ttl < two_longest_gaps(self.interval)
    }
}

/// Two of the longest gaps between beacons at `interval`, each the interval plus its
/// [`JITTER`]: what a ttl must outlast so that one lost beacon expires nobody, and so how long
/// an agent may go without sending before its peers are about to drop it.
pub fn two_longest_gaps(interval: Duration) -> Duration {
    interval.mul_f64(2.0 * (1.0 + JITTER))
}

/// The rule for [`Config::group`], on its own for `peerd doctor`, which checks the group the
/// agent would use without building a whole `Config`.
pub fn validate_group(group: Ipv4Addr) -> Result<(), ConfigError> {
    if group.is_multicast() {
        Ok(())
    } else {
        Err(ConfigError::NotMulticast(group))
    }
}

/// The rule for [`Config::group6`]: an IPv6 multicast address (`ff00::/8`).
pub fn validate_group6(group: Ipv6Addr) -> Result<(), ConfigError> {
    if group.is_multicast() {
        Ok(())
    } else {
        Err(ConfigError::NotMulticast6(group))
    }
}

/// Whether the IPv6 group `group` is of wider scope than the link (RFC 7346: the low four bits
/// of its second byte; 2 is link-local, 1 interface-local). Beacons still go with a hop limit
/// of 1, but a router that forwards by scope could carry them further: the agent warns.
pub fn group6_beyond_link(group: Ipv6Addr) -> bool {
    group.octets()[1] & 0x0f > 2
}

/// The rule for the addresses among [`Config::interfaces`]. An address no interface can have
/// is a mistake to say at once, not one to wait for as for an address that comes up late.
pub fn validate_interface(address: IpAddr) -> Result<(), ConfigError> {
    let what = if address.is_unspecified() {
        "any address"
    } else if address.is_multicast() {
        "a multicast address"
    } else if address == IpAddr::V4(Ipv4Addr::BROADCAST) {
        "the broadcast address"
    } else {
        return Ok(());
    };
    Err(ConfigError::NotAnInterface(address, what))
}

/// The rule for [`Config::port`], on its own for the same reason as [`validate_group`].
pub fn validate_port(port: u16) -> Result<(), ConfigError> {
    if port == 0 {
        Err(ConfigError::ZeroPort)
    } else {
        Ok(())
    }
}

/// A setting that breaks a rule; its message names the setting and the rule.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The hostname is not 1 to 253 ASCII letters, digits, `-` and `.`.
    Name(InvalidHostname),
    /// The IPv4 group is not in 224.0.0.0/4.
    NotMulticast(Ipv4Addr),
    /// The IPv6 group is not in ff00::/8.
    NotMulticast6(Ipv6Addr),
    /// Port 0.
    ZeroPort,
    /// An address no interface has, and what it is instead.
    NotAnInterface(IpAddr, &'static str),
    /// An interval or ttl outside 100 ms ..= 1 h.
    TimingOutOfBounds {
        /// Which: `interval`, `ttl`, `resolve interval`.
        what: &'static str,
        /// The value given.
        value: Duration,
    },
    /// At most zero peers.
    ZeroMaxPeers,
    /// Unsigned beacons accepted, but no secret given: every beacon is unsigned then.
    AcceptUnauthenticatedWithoutKeys,
    /// Neither the group nor a unicast target: nobody would hear this node, nor it anybody.
    NobodyToHear,
    /// The hostname and tags do not fit one beacon.
    TagsTooLong {
        /// How long the beacon would be.
        bytes: usize,
    },
    /// A ttl not above the interval: peers would expire between beacons.
    TtlNotAboveInterval {
        /// The ttl given.
        ttl: Duration,
        /// The interval given.
        interval: Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Name(err) => write!(f, "{err}"),
            ConfigError::NotMulticast(group) => {
                write!(
                    f,
                    "group {group} is not an IPv4 multicast address (224.0.0.0/4)"
                )
            }
            ConfigError::NotMulticast6(group) => {
                write!(
                    f,
                    "group {group} is not an IPv6 multicast address (ff00::/8; peerd's is {MULTICAST_GROUP6})"
                )
            }
            ConfigError::ZeroPort => write!(f, "port 0 is no port to send beacons to"),
            ConfigError::NotAnInterface(address, what) => write!(
                f,
                "interface {address} names no interface ({what}): give the address of one, or leave it out"
            ),
            ConfigError::TimingOutOfBounds { what, value } => write!(
                f,
                "{what} {} is outside {}..={}",
                humantime::format_duration(*value),
                humantime::format_duration(MIN_TIMING),
                humantime::format_duration(MAX_TIMING)
            ),
            ConfigError::ZeroMaxPeers => write!(f, "max-peers must be at least 1"),
            ConfigError::AcceptUnauthenticatedWithoutKeys => write!(
                f,
                "--accept-unauthenticated only makes sense with --secret-file: without a secret every beacon is unauthenticated"
            ),
            ConfigError::NobodyToHear => write!(
                f,
                "--no-multicast needs --peer or --peers-dns: without the group, they are the only nodes this one hears and is heard by"
            ),
            ConfigError::TagsTooLong { bytes } => write!(
                f,
                "the tags make a beacon {bytes} bytes long, over the {MAX_BEACON_LEN} a beacon may have: use fewer or shorter tags (or a shorter --name)"
            ),
            ConfigError::TtlNotAboveInterval { ttl, interval } => write!(
                f,
                "ttl ({}) must exceed the beacon interval ({}), or peers expire between beacons",
                humantime::format_duration(*ttl),
                humantime::format_duration(*interval)
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new("node-1", Ipv4Addr::LOCALHOST)
    }

    #[test]
    fn no_multicast_needs_a_target() {
        let alone = Config {
            multicast: false,
            ..config()
        };
        assert_eq!(alone.validate(), Err(ConfigError::NobodyToHear));
        let seeded = Config {
            peers: vec![Target::parse("seed", PORT).expect("valid")],
            ..alone
        };
        assert_eq!(seeded.validate(), Ok(()));
    }

    #[test]
    fn defaults_are_valid_and_not_tight() {
        assert_eq!(config().validate(), Ok(()));
        assert!(!config().ttl_is_tight());
    }

    #[test]
    fn ttl_must_exceed_interval() {
        let c = Config {
            ttl: BEACON_INTERVAL,
            ..config()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TtlNotAboveInterval { .. })
        ));
        assert!(c.validate().unwrap_err().to_string().contains("ttl (15s)"));
    }

    #[test]
    fn rejects_bad_names_groups_and_intervals() {
        let bad_name = Config {
            name: "no_underscores".into(),
            ..config()
        };
        assert!(matches!(bad_name.validate(), Err(ConfigError::Name(_))));
        let unicast = Config {
            group: Ipv4Addr::new(10, 0, 0, 1),
            ..config()
        };
        assert!(matches!(
            unicast.validate(),
            Err(ConfigError::NotMulticast(_))
        ));
        let zero = Config {
            interval: Duration::ZERO,
            ..config()
        };
        assert!(matches!(
            zero.validate(),
            Err(ConfigError::TimingOutOfBounds {
                what: "interval",
                ..
            })
        ));
    }

    #[test]
    fn group_and_port_rules_stand_alone() {
        assert_eq!(validate_group(MULTICAST_GROUP), Ok(()));
        assert_eq!(validate_group(Ipv4Addr::new(224, 0, 0, 1)), Ok(()));
        assert_eq!(validate_group(Ipv4Addr::new(239, 255, 255, 255)), Ok(()));
        for unicast in [
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(223, 255, 255, 255),
            Ipv4Addr::new(240, 0, 0, 0),
            Ipv4Addr::BROADCAST,
            Ipv4Addr::UNSPECIFIED,
        ] {
            assert_eq!(
                validate_group(unicast),
                Err(ConfigError::NotMulticast(unicast))
            );
        }
        assert_eq!(validate_port(PORT), Ok(()));
        assert_eq!(validate_port(1), Ok(()));
        assert_eq!(validate_port(u16::MAX), Ok(()));
        assert_eq!(validate_port(0), Err(ConfigError::ZeroPort));
        // The messages `peerd agent` and `peerd doctor` both print.
        assert_eq!(
            ConfigError::NotMulticast(Ipv4Addr::new(10, 0, 0, 1)).to_string(),
            "group 10.0.0.1 is not an IPv4 multicast address (224.0.0.0/4)"
        );
        assert!(
            ConfigError::ZeroPort
                .to_string()
                .starts_with("port 0 is no port")
        );
    }

    #[test]
    fn only_an_address_an_interface_can_have_names_one() {
        for address in [
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(192, 168, 1, 255),
        ] {
            assert_eq!(validate_interface(address.into()), Ok(()), "{address}");
        }
        let refused = |address: Ipv4Addr| {
            let config = Config {
                interfaces: vec![InterfaceSpec::Address(address.into())],
                ..config()
            };
            config.validate().map_err(|err| err.to_string())
        };
        assert_eq!(
            refused(Ipv4Addr::UNSPECIFIED),
            Err("interface 0.0.0.0 names no interface (any address): give the address of one, or leave it out".into())
        );
        for (address, what) in [
            (MULTICAST_GROUP, "(a multicast address)"),
            (Ipv4Addr::new(224, 0, 0, 1), "(a multicast address)"),
            (Ipv4Addr::BROADCAST, "(the broadcast address)"),
        ] {
            let message = refused(address).expect_err("refused");
            assert!(
                message.starts_with(&format!("interface {address} names no interface {what}")),
                "{message}"
            );
        }
    }

    #[test]
    fn tags_must_fit_one_signed_beacon() {
        let with_tags = |count: usize| Config {
            tags: (0..count)
                .map(|i| (format!("key-{i:02}"), "v".repeat(20)))
                .collect(),
            ..config()
        };
        assert_eq!(with_tags(0).validate(), Ok(()));
        assert_eq!(with_tags(10).validate(), Ok(()));
        let too_many = with_tags(40);
        assert!(matches!(
            too_many.validate(),
            Err(ConfigError::TagsTooLong { .. })
        ));
        assert!(too_many.largest_beacon() > MAX_BEACON_LEN);
    }

    #[test]
    fn timings_ports_and_interfaces_have_bounds() {
        let out = |c: Config| c.validate().map_err(|e| e.to_string());
        let nanosecond = Config {
            interval: Duration::from_nanos(1),
            ..config()
        };
        assert_eq!(
            out(nanosecond),
            Err("interval 1ns is outside 100ms..=1h".into())
        );
        let forever = Config {
            ttl: Duration::from_secs(300_000_000_000 * 365 * 86_400),
            ..config()
        };
        assert!(matches!(
            forever.validate(),
            Err(ConfigError::TimingOutOfBounds { what: "ttl", .. })
        ));
        let hour = Config {
            interval: MAX_TIMING - Duration::from_secs(1),
            ttl: MAX_TIMING,
            ..config()
        };
        assert_eq!(hour.validate(), Ok(()));
        let port = Config {
            port: 0,
            ..config()
        };
        assert_eq!(port.validate(), Err(ConfigError::ZeroPort));
        let any = Config {
            interfaces: vec![InterfaceSpec::Address(Ipv6Addr::UNSPECIFIED.into())],
            ..config()
        };
        assert!(matches!(
            any.validate(),
            Err(ConfigError::NotAnInterface(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _
            ))
        ));
        let group6 = Config {
            group6: "fd00::1".parse().expect("an address"),
            ..config()
        };
        assert_eq!(
            group6.validate().map_err(|err| err.to_string()),
            Err(
                "group fd00::1 is not an IPv6 multicast address (ff00::/8; peerd's is ff12::2490)"
                    .into()
            )
        );
        assert!(!group6_beyond_link(MULTICAST_GROUP6));
        assert!(!group6_beyond_link("ff02::1".parse().expect("an address")));
        assert!(group6_beyond_link(
            "ff0e::2490".parse().expect("an address")
        ));
        assert!(group6_beyond_link("ff15::1".parse().expect("an address")));
        let no_peers = Config {
            max_peers: 0,
            ..config()
        };
        assert_eq!(no_peers.validate(), Err(ConfigError::ZeroMaxPeers));
        let migrating_without_keys = Config {
            accept_unauthenticated: true,
            ..config()
        };
        assert_eq!(
            migrating_without_keys.validate(),
            Err(ConfigError::AcceptUnauthenticatedWithoutKeys)
        );
    }
}
