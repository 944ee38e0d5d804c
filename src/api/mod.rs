//! The local HTTP API: its vocabulary (`types`, `status`), what it asks of the registry's owner
//! (`query`), the routes, the event stream, the metrics page and the live page, the server that
//! keeps connections within limits, and the client the CLI and the doctor use. It may import
//! `node`, `registry`, `net`, `wire`, `config`, `clock` and `throttle`; never `agent`, which
//! serves it.

pub mod client;
mod connections;
pub mod metrics;
mod page;
pub mod query;
pub mod routes;
pub mod server;
mod status;
mod stream;
mod types;

pub use routes::{EVENTS_PATH, HEALTH_PATH, PEERS_PATH, STATUS_PATH};
pub use status::{AgentStatus, ApiCounts, NameInfo, NotSendingInfo, RefusedCounts, UnicastInfo};
pub use types::{
    ConflictInfo, EventCounts, EventKind, HookCounts, PeerChange, PeerInfo, Snapshot, millis, shown,
};
