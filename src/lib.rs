//! peerd: zero-configuration peer discovery on one LAN or Docker network.
//!
//! Module map:
//! - [`beacon`]: the wire format, pure encode/decode.
//! - [`wheel`]: a hashed timer wheel, the registry's index of deadlines.
//! - [`registry`]: live peers keyed by hostname; a synchronous state machine driven by `now`.
#![forbid(unsafe_code)]

pub mod beacon;
pub mod registry;
pub mod wheel;
