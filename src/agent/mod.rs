//! The running agent: two tasks, each the only owner of its state, joined only by `link`. The
//! announcer owns the schedule and sends; the receiver owns the registry and the socket's
//! keeping, reads, sweeps and answers the API. Every event goes through the funnel (`events`)
//! to the API's stream, the hooks and the log. It may import every layer below it: `api`,
//! `node`, `net`, `registry`, `wire`, `config`, `clock`, `throttle`.

mod announcer;
mod dns;
pub mod events;
pub mod hook_output;
pub mod hooks;
mod link;
pub mod notify;
mod receiver;
mod resolver;
mod run;

pub use run::run;
