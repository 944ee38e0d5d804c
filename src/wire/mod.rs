//! What travels between agents: the beacon's bytes, the tags it carries and its signature.
//! Pure functions over bytes; imports nothing else of the crate.

pub mod auth;
pub mod beacon;
pub mod dns;
pub mod tags;
