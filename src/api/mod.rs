//! The local HTTP API: its vocabulary (`types`, `status`), the routes over a
//! [`Discovery`](crate::Discovery) instance, the event stream, the metrics page and the live
//! page, the server that keeps connections within limits, and the client the CLI and the
//! doctor use. It may import the public API, `config`, `net`, `node`, `wire`, `clock` and
//! `throttle`, and the agent's hook counts; the agent serves it.

pub mod client;
mod connections;
pub mod metrics;
mod page;
pub mod routes;
pub mod server;
mod status;
mod stream;
mod types;

pub use routes::{EVENTS_PATH, HEALTH_PATH, PEERS_PATH, STATUS_PATH};
pub use status::{AgentStatus, ApiCounts, NameInfo, NotSendingInfo, RefusedCounts, UnicastInfo};
pub use types::{
    ConflictInfo, EventCounts, EventKind, HookCounters, HookCounts, PeerChange, PeerInfo, Snapshot, millis, shown,
};
