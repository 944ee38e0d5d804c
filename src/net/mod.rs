//! The network below the agent: the sockets and their options (`socket`), this host's
//! interfaces of both families (`host`) and the kernel's word that they changed (`changes`),
//! which of them the agent joins (`selection`, with the default rule and the doctor's IPv4 view
//! in `interface`), and keeping the sockets working (`keeper`, without I/O). Imports `wire` (a datagram's size), `config` (the settings and
//! their rules) and `throttle` only.

pub mod changes;
pub mod host;
pub mod interface;
pub mod keeper;
pub mod selection;
pub mod socket;
