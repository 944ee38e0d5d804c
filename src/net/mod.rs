//! The network below the agent: the multicast socket and its options, the choice of the
//! interface to announce on, and keeping the socket working (`keeper`, without I/O). Imports
//! `wire` (a datagram's size), `config` (the timings' rules) and `throttle` only.

pub mod interface;
pub mod keeper;
pub mod socket;
