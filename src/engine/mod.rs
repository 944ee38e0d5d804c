//! The discovery engine: the tasks behind a [`Discovery`](crate::Discovery), each the only
//! owner of its state, joined only by `link`. The announcer owns the schedule and sends; the
//! receiver owns the registry and the sockets' keeping, reads, sweeps and answers queries
//! (`query`). Every event goes through the funnel to the subscribers. It may import every layer
//! below it: `node`, `net`, `registry`, `wire`, `config`, `clock`, `throttle`; never `agent`,
//! `api` or `doctor`, which are built on it.

mod announcer;
mod dns;
mod event;
pub mod funnel;
mod link;
mod opening;
mod peer;
pub(crate) mod query;
mod receiver;
mod resolver;
mod spawn;
mod status;
mod stop;

use std::time::Instant;

pub use event::{Event, EventCounts, EventKind};
pub use funnel::{HISTORY, SUBSCRIBER_LAG};
pub use peer::{Conflict, HeardVia, Peer};
pub use peer::shown;
pub(crate) use opening::Opening;
pub(crate) use spawn::{Engine, spawn};
pub use status::Status;

/// Every live peer at one moment, and where the events after it start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The id of the latest event it includes: the next change is `id + 1`.
    pub id: u64,
    /// When it was taken, on tokio's clock.
    pub at: Instant,
    /// The live peers, sorted by hostname.
    pub peers: Vec<Peer>,
}
