//! Which decoded beacons a node takes in: the signing policy and the replay window. Pure
//! functions over a beacon, its bytes, the keys and the wall clock; counting and logging the
//! refusals is the receiver's (`receiver.rs`).

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::config::REPLAY_WINDOW;
use crate::wire::auth::{AuthError, Keyring};
use crate::wire::beacon::Beacon;

/// Why a beacon is refused before it reaches the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its tag does not verify, or names a key this agent does not hold.
    Tag(AuthError),
    /// Signed, but without the timestamp every signed beacon carries.
    NoTimestamp,
    /// Signed, and this agent has no secret to check it with.
    NoSecretHere,
    /// Unsigned, and this agent requires a signature.
    Unsigned,
    /// Signed, with a timestamp this far from the receiver's clock: beyond [`REPLAY_WINDOW`].
    OutsideWindow(Duration),
}

impl Refusal {
    /// A replay (or clocks that disagree), rather than a matter of keys.
    pub fn is_replay(&self) -> bool {
        matches!(self, Refusal::OutsideWindow(_))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Tag(err) => write!(f, "{err}"),
            Refusal::NoTimestamp => write!(f, "signed but without a timestamp"),
            Refusal::NoSecretHere => write!(
                f,
                "it is signed and this agent has no --secret-file (give every node the same secret)"
            ),
            Refusal::Unsigned => write!(
                f,
                "it is unsigned and this agent requires a signature (give the sender the secret, or pass --accept-unauthenticated while migrating)"
            ),
            Refusal::OutsideWindow(skew) => write!(
                f,
                "its timestamp is {} from this host's clock, outside the {} replay window (a replay, or clocks that disagree)",
                humantime::format_duration(*skew),
                humantime::format_duration(REPLAY_WINDOW)
            ),
        }
    }
}

/// Applies the signing policy and the replay window to a decoded `beacon` (`bytes` is the
/// datagram it came from). One that passes keeps `auth` and `timestamp` only if its tag was
/// verified here, so the registry can trust them.
///
/// With keys, only beacons whose tag verifies get through, and with `accept_unauthenticated`
/// unsigned ones too; without keys, unsigned ones and those of agents migrating to a secret.
pub fn admit(
    beacon: &mut Beacon,
    bytes: &[u8],
    keys: &Keyring,
    accept_unauthenticated: bool,
    wall_now: SystemTime,
) -> Result<(), Refusal> {
    match beacon.auth {
        Some(auth) if !keys.is_empty() => {
            keys.verify(bytes, &auth).map_err(Refusal::Tag)?;
            let sent = beacon.timestamp.ok_or(Refusal::NoTimestamp)?;
            let skew = Duration::from_millis(sent.abs_diff(unix_millis(wall_now)));
            if skew > REPLAY_WINDOW {
                return Err(Refusal::OutsideWindow(skew));
            }
            Ok(())
        }
        Some(_) if beacon.migrating => {
            // Its sender is rolling out a secret and still takes unsigned beacons: take its
            // beacons too, as unsigned ones, so the rollout does not partition the cluster.
            beacon.auth = None;
            beacon.timestamp = None;
            Ok(())
        }
        Some(_) => Err(Refusal::NoSecretHere),
        None if keys.is_empty() || accept_unauthenticated => {
            beacon.timestamp = None; // unsigned: a claim, not evidence
            Ok(())
        }
        None => Err(Refusal::Unsigned),
    }
}

/// Milliseconds since the Unix epoch; 0 for a clock set before it.
pub fn unix_millis(wall: SystemTime) -> u64 {
    wall.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
