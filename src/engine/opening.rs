//! How an instance's sockets first opened: the receiver says it, the handle waits on it (the
//! start, `Discovery::opened`).

/// How the sockets' first opening went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Not tried yet.
    NotYet,
    /// They opened (maybe after failures): the groups are joined, beacons go out.
    Open,
    /// The first try failed, for this reason; the receiver keeps trying.
    Failed(String),
}
