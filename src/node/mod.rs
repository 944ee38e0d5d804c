//! One node's protocol without I/O, in its two halves: the announcer (what to send and when) and
//! the receiver (what a datagram does), with admission (signatures, the replay window) and the
//! figures they count. Driven by explicit instants; imports `registry`, `wire`, `config` and
//! `throttle` only: no tokio, no clock, no API types.

pub mod admission;
mod announcer;
mod receiver;
mod stats;
pub mod targets;

pub use announcer::{Announcer, Destination, Outgoing, early_answer_at};
pub use receiver::{AnswerRequest, Heard, Receiver};
pub use stats::{Impostor, NodeStats, Refused};
