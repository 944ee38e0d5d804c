//! The running agent, `peerd agent`: a [`Discovery`](crate::Discovery) instance, and around it
//! what a daemon adds: the HTTP API (`api`), the hooks, systemd's notifications. It reaches the
//! instance through the library's public API only; below that it imports `api`, `clock`,
//! `throttle` and `wire`'s tag rendering.

pub mod hook_output;
pub mod hooks;
pub mod notify;
mod run;

pub use run::{AgentParts, run};
