//! peerd: zero-configuration peer discovery on one LAN or Docker network.
//!
//! The folders are the layers, each importing only those below it:
//! - [`agent`]: the running agent: its tasks, the event funnel, hooks, systemd notify.
//! - [`doctor`]: `peerd doctor`: gathers the facts, runs the checks, renders the report.
//! - [`api`]: the local HTTP API: response types, routes, the server and its limits, the client.
//! - [`node`]: one node's protocol without I/O: admission, the announce schedule, counters.
//! - [`net`]: the sockets of both families, this host's interfaces and which the agent joins.
//! - [`registry`]: live peers keyed by hostname; a synchronous state machine driven by `now`.
//! - [`clock`]: the agent's one clock (tokio's) and the wall clock; the cores never read it.
//! - [`config`]: the agent's settings (what `--interface` names among them), defaults, rules.
//! - [`wire`]: the beacon's bytes, its tags and its signature.
//! - [`throttle`]: at most one log line per period, however fast the input.
//!
//! The command line (`src/cli/`) belongs to the binary, `src/main.rs`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod clock;
pub mod config;
pub mod doctor;
pub mod net;
pub mod node;
pub mod registry;
pub mod throttle;
pub mod wire;
