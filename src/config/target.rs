//! A unicast target as `--peer` and `--peers-dns` give it: a host and a port, parsed and shown.

use std::fmt;
use std::net::SocketAddr;

use crate::wire::beacon::validate_hostname;

/// A unicast target as given: a host (a name, or an IP address) and the port its agent
/// listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// A DNS name, or an IPv4 or IPv6 address written out.
    pub host: String,
    /// The port its agent listens on.
    pub port: u16,
}

impl Target {
    /// `HOST[:PORT]`, `[IPv6]:PORT` or a bare IPv6 address; `port` when none is given.
    pub fn parse(text: &str, port: u16) -> Result<Target, String> {
        let (host, given) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{text:?}: an IPv6 address in brackets needs its ']'"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("{text:?}: after ']' only ':PORT' may follow")),
                },
            }
        } else if text.matches(':').count() > 1 {
            (text, None) // a bare IPv6 address
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match given {
            None => port,
            Some(given) => match given.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "{text:?}: the port must be a number from 1 to 65535"
                    ));
                }
                Ok(port) => port,
            },
        };
        if host.parse::<std::net::IpAddr>().is_err() {
            // An SRV name's labels start with `_` (`_beacons._udp.peerd`); no other may.
            let labels: Vec<&str> = host
                .split('.')
                .map(|label| label.strip_prefix('_').unwrap_or(label))
                .collect();
            validate_hostname(&labels.join(".")).map_err(|err| format!("{text:?}: {err}"))?;
        }
        Ok(Target {
            host: host.to_owned(),
            port,
        })
    }

    /// The address, when the host is one written out: nothing to resolve.
    pub fn address(&self) -> Option<SocketAddr> {
        let ip: std::net::IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PORT;

    #[test]
    fn targets_parse_with_or_without_a_port() {
        let parse = |text| Target::parse(text, PORT);
        let target = |host: &str, port| Target {
            host: host.into(),
            port,
        };
        assert_eq!(parse("tasks.peerd"), Ok(target("tasks.peerd", PORT)));
        assert_eq!(parse("seed:7000"), Ok(target("seed", 7000)));
        assert_eq!(parse("10.0.0.5"), Ok(target("10.0.0.5", PORT)));
        assert_eq!(parse("[fd00::5]:7000"), Ok(target("fd00::5", 7000)));
        assert_eq!(parse("fd00::5"), Ok(target("fd00::5", PORT)));
        assert_eq!(
            parse("_beacons._udp.peerd"),
            Ok(target("_beacons._udp.peerd", PORT)),
            "an SRV name"
        );
        assert_eq!(
            parse("10.0.0.5:7000").expect("valid").to_string(),
            "10.0.0.5:7000"
        );
        assert_eq!(
            parse("fd00::5").expect("valid").address(),
            Some("[fd00::5]:24901".parse().expect("an address"))
        );
        for bad in [
            "",
            "seed:",
            "seed:0",
            "seed:70000",
            "seed:x",
            "no_underscores",
            "_",
            "[fd00::5",
            "[fd00::5]x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was taken");
        }
        assert!(parse("seed:0").unwrap_err().contains("1 to 65535"));
    }
}
