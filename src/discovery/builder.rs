//! Settings of a [`Discovery`] instance and starting it: every setting the agent has, each
//! checked at the start, whose mistakes come back as one typed [`Error`].

use std::net::IpAddr;
use std::time::Duration;

use tracing::{info, warn};

use super::Discovery;
use super::error::Error;
use crate::config::{self, Config, InterfaceSpec, Target};
use crate::engine::{self, Opening};
use crate::wire::{auth, tags};

/// The settings of a [`Discovery`] instance: start from [`Discovery::builder`], change what
/// you need, then [`start`](Builder::start). Every setting has the agent's default.
///
/// A mistake in a setting is kept and reported by [`check`](Builder::check) and the start,
/// so the calls chain:
///
/// ```
/// use std::time::Duration;
/// use peerd::{ConfigError, Discovery, Error};
///
/// let cache = Discovery::builder()
///     .hostname("cache-1")
///     .tag("role", "cache")
///     .interval(Duration::from_secs(5))
///     .ttl(Duration::from_secs(12));
/// assert_eq!(cache.check(), Ok(()));
///
/// let too_short = cache.clone().ttl(Duration::from_secs(4));
/// assert!(matches!(
///     too_short.check(),
///     Err(Error::Config(ConfigError::TtlNotAboveInterval { .. }))
/// ));
/// let bad_tag = cache.tag("role", "two words");
/// assert!(matches!(bad_tag.check(), Err(Error::Setting { setting: "tag", .. })));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until it is started"]
pub struct Builder {
    config: Config,
    hostname: Option<String>,
    secrets: Vec<Vec<u8>>,
    /// The first setting that could not be read, reported by the start.
    invalid: Option<Error>,
}

impl Default for Builder {
    fn default() -> Self {
        let mut config = Config::new(String::new(), IpAddr::from([127, 0, 0, 1]));
        config.interfaces.clear();
        Builder {
            config,
            hostname: None,
            secrets: Vec::new(),
            invalid: None,
        }
    }
}

impl Builder {
    fn invalid(mut self, setting: &'static str, reason: impl ToString) -> Self {
        self.invalid.get_or_insert(Error::Setting {
            setting,
            reason: reason.to_string(),
        });
        self
    }

    /// The name announced in every beacon, the key peers list this node by: 1 to 253 ASCII
    /// letters, digits, `-` and `.`. Default: the machine's hostname.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// A `key=value` label announced in every beacon, which peers see in [`Peer::tags`]
    /// (`role=worker`, `zone=b`). Keys: 1 to 32 of `A-Z a-z 0-9 _ . -`; values: up to 64 of
    /// those and `: / @ +`. Each key at most once.
    ///
    /// [`Peer::tags`]: crate::Peer::tags
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        if let Err(err) = tags::parse(&format!("{key}={value}")) {
            return self.invalid("tag", err);
        }
        if self.config.tags.insert(key, value).is_some() {
            return self.invalid("tag", "each key at most once");
        }
        self
    }

    /// The UDP port of the groups, and of the unicast targets given without one. Default 24901.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// The multicast group of its family: an IPv4 one (default `239.255.49.1`) or an IPv6 one
    /// (default `ff12::2490`, link-local scope).
    pub fn group(mut self, group: IpAddr) -> Self {
        match group {
            IpAddr::V4(v4) => self.config.group = v4,
            IpAddr::V6(v6) => self.config.group6 = v6,
        }
        self
    }

    /// An interface to join the groups on and send from: a name (`eth0`), an address of it, a
    /// network (`10.0.0.0/8`, `fd00::/64`) or `all`. Repeat for several. Default: the one
    /// interface the routing table prefers, in both families. One that is not there yet fails
    /// [`start`](Builder::start); after [`spawn`](Builder::spawn), it is waited for, and
    /// interfaces that come and go later are followed either way.
    pub fn interface(mut self, interface: &str) -> Self {
        match interface.parse::<InterfaceSpec>() {
            Ok(spec) => self.config.interfaces.push(spec),
            Err(err) => return self.invalid("interface", err),
        }
        self
    }

    /// The mean time between beacons (each is jittered by up to a tenth). Default 15 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// How long this node stays listed at its peers after each beacon, and a silent peer here
    /// if its beacons do not say. Above the interval; default 35 s.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// The IP TTL (IPv6 hop limit) of the beacons. Default 1: they stay on the link.
    pub fn multicast_ttl(mut self, hops: u32) -> Self {
        self.config.multicast_ttl = hops;
        self
    }

    /// A shared secret: beacons are signed (HMAC-SHA256) with the first one given, and only
    /// signed beacons are accepted, verified with any one given (give the new one first, then
    /// the old, to roll a secret over). At least 16 bytes of randomness.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        if secret.len() < auth::MIN_SECRET_LEN {
            let reason = format!(
                "{} bytes, under the {} a secret needs",
                secret.len(),
                auth::MIN_SECRET_LEN
            );
            return self.invalid("secret", reason);
        }
        self.secrets.push(secret.to_vec());
        self
    }

    /// With a secret: accept unsigned beacons too, to turn signing on in a running cluster.
    pub fn accept_unauthenticated(mut self, accept: bool) -> Self {
        self.config.accept_unauthenticated = accept;
        self
    }

    /// The most peers listed at once: further hostnames are refused, and a peer heard only
    /// once makes room for a newcomer. Default 4096.
    pub fn max_peers(mut self, max: usize) -> Self {
        self.config.max_peers = max;
        self
    }

    /// A unicast target, `HOST[:PORT]` (`10.0.0.7`, `node-2:24901`, `[fd00::7]:24901`):
    /// beacons go to it too, for networks without multicast. A name is resolved again every
    /// [`resolve_interval`](Builder::resolve_interval).
    pub fn peer(mut self, target: &str) -> Self {
        match Target::parse(target, 0) {
            Ok(target) => self.config.peers.push(target),
            Err(err) => return self.invalid("peer", err),
        }
        self
    }

    /// A name whose every address is a unicast target (a headless Service, a Compose or Swarm
    /// service name), or `_service._proto.NAME` for its SRV records.
    pub fn peers_dns(mut self, name: &str) -> Self {
        match Target::parse(name, 0) {
            Ok(target) => self.config.peers_dns.push(target),
            Err(err) => return self.invalid("peers_dns", err),
        }
        self
    }

    /// Whether to join the groups and beacon to them. Default true; off, the node hears and is
    /// heard only by its unicast targets, so it needs some.
    pub fn multicast(mut self, multicast: bool) -> Self {
        self.config.multicast = multicast;
        self
    }

    /// How often the names among the targets are resolved again. Default 30 s.
    pub fn resolve_interval(mut self, every: Duration) -> Self {
        self.config.resolve_interval = every;
        self
    }

    /// The settings, checked: every mistake a start would report, without touching the
    /// network.
    pub fn check(&self) -> Result<(), Error> {
        self.config().map(drop)
    }

    fn config(&self) -> Result<Config, Error> {
        if let Some(invalid) = &self.invalid {
            return Err(invalid.clone());
        }
        let mut config = self.config.clone();
        config.name = match &self.hostname {
            Some(name) => name.clone(),
            None => hostname::get()
                .map_err(|err| Error::Hostname(err.to_string()))?
                .to_string_lossy()
                .into_owned(),
        };
        // Targets given before the port were given the default one.
        for target in config.peers.iter_mut().chain(config.peers_dns.iter_mut()) {
            if target.port == 0 {
                target.port = config.port;
            }
        }
        config.keys = auth::Keyring::new(&self.secrets);
        config.validate().map_err(Error::Config)?;
        Ok(config)
    }

    /// Starts the instance on the current tokio runtime and returns once its sockets are open
    /// and the groups joined: the first beacon is on its way. Fails with the settings' first
    /// mistake, or with [`Error::Network`] when the sockets cannot be opened (the port taken,
    /// no interface to join the groups on); nothing keeps running then.
    ///
    /// # Panics
    /// Outside a tokio runtime (as [`tokio::spawn`] does).
    pub async fn start(self) -> Result<Discovery, Error> {
        let discovery = self.spawn()?;
        let mut opening = discovery.engine.opening.clone();
        let opened = opening
            .wait_for(|opening| *opening != Opening::NotYet)
            .await;
        let failed = match opened.as_deref() {
            Ok(Opening::Failed(reason)) => Some(reason.clone()),
            Ok(_) => None,
            Err(_) => Some("the instance stopped".to_owned()),
        };
        match failed {
            Some(reason) => Err(Error::Network(reason)), // dropped: the tasks stop
            None => Ok(discovery),
        }
    }

    /// Starts the instance on the current tokio runtime and returns at once, whether or not
    /// the sockets opened: they are tried again (after 1 s, then backing off), as an agent
    /// that starts before its network does. [`Status::is_sending`] tells when beacons go out.
    /// Fails only with the settings' first mistake.
    ///
    /// [`Status::is_sending`]: crate::Status::is_sending
    ///
    /// # Panics
    /// Outside a tokio runtime (as [`tokio::spawn`] does).
    pub fn spawn(self) -> Result<Discovery, Error> {
        let config = self.config()?;
        warn_about(&config);
        Ok(Discovery::new(engine::spawn(config)))
    }
}

/// Settings that work, but perhaps not as meant: said once in the log at the start.
fn warn_about(config: &Config) {
    if config.group.octets()[..3] == [224, 0, 0] {
        warn!(group = %config.group, "224.0.0.0/24 is reserved for routing protocols on the local network; prefer 239.255.0.0/16");
    }
    if !config.keys.is_empty() {
        info!(key_ids = ?config.keys.ids(), accept_unauthenticated = config.accept_unauthenticated, "beacons are signed");
    }
    if config::group6_beyond_link(config.group6) {
        warn!(group = %config.group6, "the IPv6 group is of wider scope than the link: beacons still go with a hop limit of the multicast ttl, but prefer a group of link-local scope (ff12::/16)");
    }
    if config.multicast_ttl > 1 {
        warn!(
            multicast_ttl = config.multicast_ttl,
            "beacons may cross routers beyond this link"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    #[test]
    fn each_setting_lands_in_the_config_and_a_target_takes_the_port_given_later() {
        let config = Discovery::builder()
            .hostname("node-1")
            .peer("10.0.0.7")
            .peer("[fd00::7]:9000")
            .peers_dns("tasks.peerd")
            .port(24999)
            .interface("eth0")
            .interface("fd00::/64")
            .tag("role", "db")
            .secret("a secret of sixteen bytes at least")
            .config()
            .expect("valid");
        assert_eq!(config.name, "node-1");
        let targets: Vec<String> = config.peers.iter().map(ToString::to_string).collect();
        assert_eq!(targets, ["10.0.0.7:24999", "[fd00::7]:9000"]);
        assert_eq!(config.peers_dns[0].to_string(), "tasks.peerd:24999");
        let interfaces: Vec<String> = config.interfaces.iter().map(ToString::to_string).collect();
        assert_eq!(interfaces, ["eth0", "fd00::/64"]);
        assert_eq!(config.tags.get("role").map(String::as_str), Some("db"));
        assert!(!config.keys.is_empty());
    }

    #[test]
    fn the_first_setting_that_cannot_be_read_is_the_error() {
        let builder = Discovery::builder()
            .hostname("node-1")
            .interface("eth0/33")
            .tag("role", "a")
            .tag("role", "b");
        match builder.check() {
            Err(Error::Setting { setting, .. }) => assert_eq!(setting, "interface"),
            other => panic!("expected the interface's error, got {other:?}"),
        }
        let twice = Discovery::builder()
            .hostname("node-1")
            .tag("role", "a")
            .tag("role", "b");
        assert_eq!(
            twice.check(),
            Err(Error::Setting {
                setting: "tag",
                reason: "each key at most once".into()
            })
        );
        let short = Discovery::builder().hostname("n").secret("abc");
        assert!(matches!(
            short.check(),
            Err(Error::Setting {
                setting: "secret",
                ..
            })
        ));
        let no_port = Discovery::builder().hostname("n").peer("10.0.0.7:0");
        assert!(matches!(
            no_port.check(),
            Err(Error::Setting {
                setting: "peer",
                ..
            })
        ));
        let nobody = Discovery::builder().hostname("n").multicast(false);
        assert_eq!(
            nobody.check(),
            Err(Error::Config(ConfigError::NobodyToHear))
        );
    }
}
