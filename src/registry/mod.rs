//! The registry of live peers: a synchronous state machine keyed by hostname, driven by `now`.
//! Owns the peer types, their packed records, the slab that stores them and the timer wheel
//! that indexes their deadlines. Imports `wire` and `config` only: no I/O, no clock, no tokio.

mod addresses;
mod machine;
mod peer;
mod probation;
mod record;
mod rival;
mod slab;
pub mod wheel;

pub use addresses::MAX_OTHER_ADDRESSES;
pub use machine::{Observed, Registry};
pub use peer::{OtherAddress, Paths, Peer, PeerEvent, Refusal, Rival, Via};
