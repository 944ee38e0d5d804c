//! One node's protocol without I/O: which beacons it takes in, what it sends and when, what it
//! counts. Driven by explicit instants; imports `registry`, `wire` and `config` only.

pub mod admission;
mod receiver;

pub use receiver::*;
