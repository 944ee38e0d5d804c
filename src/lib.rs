//! peerd: zero-configuration peer discovery on one LAN or Docker network.
//!
//! Module map:
//! - [`beacon`]: the wire format, pure encode/decode.
//! - [`auth`]: secret files, and signing and verifying beacons with HMAC-SHA256.
//! - [`admission`]: which beacons a node takes in: the signing policy, the replay window.
//! - [`wheel`]: a hashed timer wheel, the registry's index of deadlines.
//! - [`registry`]: live peers keyed by hostname; a synchronous state machine driven by `now`.
//! - [`rival`]: the registry's one subtle case: a listed hostname from another instance.
//! - [`config`]: the agent's settings and their defaults.
//! - [`interface`]: picks the default interface to announce on.
//! - [`doctor`]: `peerd doctor`: gathers the facts, runs the checks, renders the report.
//! - [`diagnosis`]: the doctor's checks of this host (interface, probe, rp_filter, route, agent).
//! - [`hearing`]: the doctor's checks of what it heard on the group.
//! - [`socket`]: the multicast socket and its options (the only user of socket2).
//! - [`node`]: one node's protocol without I/O: registry, announce schedule, counters.
//! - [`events`]: the funnel every peer event passes through: logged, counted, published.
//! - [`hooks`]: runs the `--on-event` programs for each event, off the agent's loop.
//! - [`agent`]: drives the node over the multicast socket, beside the API server.
//! - [`notify`]: tells systemd the agent is ready, alive (the watchdog) or stopping.
//! - [`stream`]: `GET /v1/events`, the event stream as Server-Sent Events.
//! - [`page`]: the live web page at `/`, embedded in the binary.
//! - [`api`]: HTTP routes and the response types the CLI shares.
//! - [`metrics`]: the status as a Prometheus text page, pure.
//! - [`server`]: serves the API within limits: header timeout, connection cap, shutdown grace.
//! - `connections`: the API's open connections by age; which one goes at the cap.
//! - [`client`]: the CLI's HTTP client for the local API.
//! - [`follow`]: the CLI's reader of the event stream, resuming after the agent went away.
//! - [`table`]: the human-readable peer table.
//! - [`tags`]: the `KEY=VALUE` labels a node announces: rules, bytes, filters.
//! - [`throttle`]: at most one log line per period, however fast the input.
#![forbid(unsafe_code)]

pub mod admission;
pub mod agent;
pub mod api;
pub mod auth;
pub mod beacon;
pub mod client;
pub mod config;
mod connections;
pub mod diagnosis;
pub mod doctor;
pub mod events;
pub mod follow;
pub mod hearing;
pub mod hooks;
pub mod interface;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod page;
mod record;
pub mod registry;
pub mod rival;
pub mod server;
mod slab;
pub mod socket;
pub mod stream;
pub mod table;
pub mod tags;
pub mod throttle;
pub mod wheel;
