//! Zero-configuration peer discovery on one LAN or Docker network, embedded in your program:
//! each node multicasts a small beacon with its hostname, and lists the nodes it hears until
//! they say goodbye or fall silent for a ttl.
//!
//! ```no_run
//! # async fn demo() -> Result<(), peerd::Error> {
//! use peerd::{Change, Discovery};
//! let discovery = Discovery::builder()
//!     .hostname("worker-3")
//!     .tag("role", "worker")
//!     .start() // returns once the sockets are open: the first beacon is on its way
//!     .await?;
//! let mut changes = discovery.subscribe();
//! while let Some(change) = changes.next().await {
//!     match change {
//!         Change::Snapshot(snapshot) => println!("{} peers", snapshot.peers.len()),
//!         Change::Event(event) => println!("{} {}", event.peer.hostname, event.kind.as_str()),
//!         _ => {} // Lagged: a fresh snapshot follows
//!     }
//! }
//! discovery.shutdown().await; // goodbye: peers list this node as left at once
//! # Ok(()) }
//! ```
//!
//! # What a program gets
//! - [`Discovery::builder`] takes every setting the `peerd agent` command has (timings, groups,
//!   interfaces, secrets, tags, unicast targets); [`Builder::start`] checks them (a typed
//!   [`Error`]), opens the sockets on the current tokio runtime and returns once they are open.
//! - [`Discovery::peers`] lists the live peers; [`Discovery::subscribe`] gives a snapshot, then
//!   each change in order, then [`Change::Lagged`] and a fresh snapshot if the subscriber fell
//!   behind; [`Discovery::status`] says what was counted and whether beacons go out.
//! - [`Discovery::shutdown`] says goodbye. Dropping the handle stops the tasks without one.
//!
//! Each instance has its own registry, in memory only. A socket error after the start (an
//! interface gone, a send refused) is logged through `tracing` and the sockets are opened
//! again; [`Status::is_sending`] says whether beacons go out meanwhile.
//!
//! # Features
//! - `agent` (default): the `peerd` command (HTTP API, hooks, systemd notify, doctor). Without
//!   it (`default-features = false`) the crate is the library alone: tokio, socket2, tracing
//!   and the signing crates, without axum, hyper, clap or serde_json.
//! - `serde`: `Serialize`/`Deserialize` for [`EventKind`] and [`EventCounts`] (on with `agent`).
//! - `internals`: exposes the crate's inner modules, unstable, for its own tests, benchmarks
//!   and fuzz targets. Not for use elsewhere.
//!
//! # The crate's layers
//! Each imports only those below it:
//! - `cli`, `agent`, `api`, `doctor` (feature `agent`): the command, the running agent (its
//!   HTTP API, hooks and systemd notify, all on [`Discovery`]) and `peerd doctor`.
//! - `discovery`: this public API, over `engine`: the tasks, the event funnel, the queries.
//! - `node`: one node's protocol without I/O; `net`: sockets and interfaces; `registry`: live
//!   peers keyed by hostname, driven by `now`.
//! - `clock`, `config`, `wire` (the beacon's bytes), `throttle`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The inner modules carry what the agent's API, the doctor and the tests (through
// `internals`) read too: without them, some of it is unused. With `internals` every inner
// item is public, as all were before the public API.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
#![cfg_attr(not(feature = "agent"), allow(dead_code))]

/// Declares the inner modules: private, or public (hidden, unstable) with `internals`.
macro_rules! internal {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        #[allow(missing_docs)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal! {
    #[cfg(feature = "agent")]
    agent;
    #[cfg(feature = "agent")]
    api;
    clock;
    config;
    #[cfg(feature = "agent")]
    doctor;
    engine;
    net;
    node;
    registry;
    throttle;
    wire;
}

#[cfg(feature = "agent")]
pub mod cli;
mod discovery;

pub use config::ConfigError;
pub use discovery::{Builder, Change, Changes, Discovery, Error, Settings};
pub use engine::{
    Conflict, Event, EventCounts, EventKind, HISTORY, HeardVia, Peer, SUBSCRIBER_LAG, Snapshot,
    Status,
};
pub use wire::beacon::InvalidHostname;

pub use wire::tags::Tags;

/// The parts of a [`Status`] (the protocol's counts, the sockets, the sending, the targets and
/// the interfaces) and of [`Settings`] (the interfaces and targets as given).
pub mod status {
    pub use crate::config::{InterfaceSpec, Network, Target};
    pub use crate::net::keeper::{NotSending, Sending, SocketStats};
    pub use crate::net::selection::Joined;
    pub use crate::node::NodeStats;
    pub use crate::node::targets::Name;
    pub use crate::node::{Impostor, Refused};
}
