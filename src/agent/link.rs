//! What passes between the agent's two tasks, and nothing else does: they share no state.
//! - the socket, receiver to announcer, on a `watch`: the receiver keeps it open, and the
//!   announcer sends on whatever it holds now (and announces at once on a new one);
//! - cues, receiver to announcer: a newcomer heard (answer early), or a stall (announce now);
//! - what was announced, announcer to receiver: the receiver counts it, and its socket keeper
//!   needs it to tell a deaf socket from a link that is down, and to say why none goes out.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// Cues waiting for the announcer. A newcomer's cue may be dropped when they are this many: the
/// answers already scheduled cover it, and pacing allows at most two a second anyway.
pub const CUES: usize = 64;

/// The socket as the receiver last opened it; `None` while it is being opened again.
pub type Socket = Option<Arc<UdpSocket>>;

/// From the receiver to the announcer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// A join or a restart was heard at this instant: answer it with an early beacon.
    Newcomer(Instant),
    /// The agent was stopped until this instant and peers may have expired it: announce now.
    /// (Should the cues be full of newcomers then, their early answers announce it within a
    /// second instead.)
    Now(Instant),
}

/// From the announcer to the receiver: one beacon of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// It answered a newcomer.
    pub early: bool,
    pub outcome: Outcome,
}

/// What became of a beacon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// No socket was open: the receiver, which opens it, knows why.
    NoSocket,
    /// The kernel refused it (a link down, an address gone), with the error: the agent's
    /// health says it once the failures last.
    Failed(String),
}

impl Outcome {
    pub fn is_sent(&self) -> bool {
        matches!(self, Outcome::Sent)
    }
}

/// The receiver's ends of the link.
pub struct ReceiverSide {
    pub sockets: watch::Sender<Socket>,
    pub cues: mpsc::Sender<Cue>,
    pub announced: mpsc::UnboundedReceiver<Announced>,
}

/// The announcer's ends of the link.
pub struct AnnouncerSide {
    pub sockets: watch::Receiver<Socket>,
    pub cues: mpsc::Receiver<Cue>,
    pub announced: mpsc::UnboundedSender<Announced>,
}

/// Both sides of every link between the two tasks. The announced beacons go unbounded: at most
/// a few a second, each read at once.
pub fn link() -> (ReceiverSide, AnnouncerSide) {
    let (sockets_tx, sockets_rx) = watch::channel(None);
    let (cues_tx, cues_rx) = mpsc::channel(CUES);
    let (announced_tx, announced_rx) = mpsc::unbounded_channel();
    (
        ReceiverSide {
            sockets: sockets_tx,
            cues: cues_tx,
            announced: announced_rx,
        },
        AnnouncerSide {
            sockets: sockets_rx,
            cues: cues_rx,
            announced: announced_tx,
        },
    )
}
