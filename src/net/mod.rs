//! The network below the agent: the multicast socket and its options, the choice of the
//! interface to announce on (`interface`) and what `--interface` names (`interface_spec`), and
//! keeping the socket working (`keeper`, without I/O). Imports
//! `wire` (a datagram's size), `config` (the timings' rules) and `throttle` only.

pub mod interface;
pub mod interface_spec;
pub mod keeper;
pub mod socket;
