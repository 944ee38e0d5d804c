//! What can go wrong in starting or asking a [`Discovery`](crate::Discovery) instance.

use std::fmt;

use crate::config::ConfigError;

/// Why an instance did not start, or could not answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A setting could not be read: which, and why.
    Setting {
        /// The builder method's name: `tag`, `interface`, `peer`, `peers_dns`, `secret`.
        setting: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The settings break a rule (a group that is no multicast address, a ttl not above the
    /// interval, ...).
    Config(ConfigError),
    /// No hostname was given and the machine's could not be read.
    Hostname(String),
    /// The sockets could not be opened or the groups joined ([`Builder::start`] only).
    ///
    /// [`Builder::start`]: crate::Builder::start
    Network(String),
    /// The instance was shut down.
    Stopped,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setting { setting, reason } => write!(f, "{setting}: {reason}"),
            Error::Config(err) => write!(f, "{err}"),
            Error::Hostname(err) => write!(f, "cannot read this machine's hostname: {err}"),
            Error::Network(err) => write!(f, "cannot open the discovery sockets: {err}"),
            Error::Stopped => write!(f, "the discovery instance was shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(err) => Some(err),
            _ => None,
        }
    }
}
