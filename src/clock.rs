//! The agent's one clock: tokio's, the one its timers wait on, read as a std `Instant` so that
//! a deadline and the sleep towards it come from the same clock; and the wall clock beside it.
//! The protocol core never reads a clock: it is given `now`.

use std::time::{Instant, SystemTime};

/// The current instant. (No test pauses tokio's clock for the agent: timing is tested on the
/// cores with explicit instants, and on real agents in real time.)
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The wall clock: what a beacon's signature timestamp and the API's RFC 3339 times read.
pub fn wall_now() -> SystemTime {
    SystemTime::now()
}
