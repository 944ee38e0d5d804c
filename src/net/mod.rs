//! The network below the agent: the multicast socket and its options, and the choice of the
//! interface to announce on. Imports `wire` only (a datagram's size).

pub mod interface;
pub mod socket;
