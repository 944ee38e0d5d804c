//! What passes between the agent's two tasks, and nothing else does: they share no state.
//! - the sockets, receiver to announcer, on a `watch`: the receiver keeps them open, and the
//!   announcer sends on whatever it holds now (and announces at once on new ones);
//! - the interfaces joined, receiver to announcer, on a `watch`: the receiver follows the
//!   host's, and the announcer sends to the groups on each (and announces at once on new ones);
//! - the unicast targets, receiver to announcer, on a `watch`: the receiver owns them; and
//!   which of their addresses were heard from lately, to confirm them to the kernel;
//! - cues, receiver to announcer: a newcomer heard (answer it), or a stall (announce now);
//! - what was announced, announcer to receiver: the receiver counts it, and its socket keeper
//!   needs it to tell a deaf socket from a link that is down, and to say why none goes out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::net::selection::Joined;

/// Cues waiting for the announcer: a crowd of newcomers heard in one burst each asks for an
/// answer. Past this many the rest are dropped: the cues queued are far more than a crowd
/// (`node::announcer::CROWD_NEWCOMERS`), so the announcer answers on the group, which every
/// newcomer hears, those dropped too.
pub const CUES: usize = 1024;

/// The sockets as the receiver last opened them; `None` while they are being opened again.
pub type Socket = Option<Arc<Sockets>>;

/// The agent's sockets (see `net::socket`), per family.
#[derive(Debug)]
pub struct Sockets {
    /// Hears the IPv4 group on every interface joined; `None` with `--no-multicast`.
    pub group4: Option<UdpSocket>,
    /// Hears the IPv6 group on every interface joined, and unicast to `--port`; `None` with
    /// `--no-multicast`, or where the IPv6 sockets could not be opened.
    pub group6: Option<UdpSocket>,
    /// Every IPv4 beacon goes out from it; it hears what is sent to this node over IPv4.
    pub unicast4: UdpSocket,
    /// The same for IPv6; `None` on a host without IPv6, and where nodes target `--port`,
    /// which the IPv6 group socket holds (see [`Sockets::unicast_for`]).
    pub unicast6: Option<UdpSocket>,
}

impl Sockets {
    /// The sockets in the receiver's order: the groups, then the unicast ones, IPv4 first.
    pub fn all(&self) -> [Option<&UdpSocket>; 4] {
        [
            self.group4.as_ref(),
            self.group6.as_ref(),
            Some(&self.unicast4),
            self.unicast6.as_ref(),
        ]
    }

    /// The socket that sends to and hears from `address`'s family: for IPv6 where nodes
    /// target `--port`, the group's, which holds that port.
    pub fn unicast_for(&self, address: IpAddr) -> Option<&UdpSocket> {
        match address {
            IpAddr::V4(_) => Some(&self.unicast4),
            IpAddr::V6(_) => self.unicast6.as_ref().or(self.group6.as_ref()),
        }
    }
}

/// From the receiver to the announcer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cue {
    /// A join or a restart was heard at this instant: answer it by unicast.
    Answer(Instant, crate::node::AnswerRequest),
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
    /// It went to one node, not the group.
    pub unicast: bool,
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
    pub interfaces: watch::Sender<Vec<Joined>>,
    pub targets: watch::Sender<Vec<SocketAddr>>,
    /// Sorted (see `node::Targets::heard_within_ttl`).
    pub heard: watch::Sender<Vec<IpAddr>>,
    pub cues: mpsc::Sender<Cue>,
    pub announced: mpsc::UnboundedReceiver<Announced>,
}

/// The announcer's ends of the link.
pub struct AnnouncerSide {
    pub sockets: watch::Receiver<Socket>,
    pub interfaces: watch::Receiver<Vec<Joined>>,
    pub targets: watch::Receiver<Vec<SocketAddr>>,
    pub heard: watch::Receiver<Vec<IpAddr>>,
    pub cues: mpsc::Receiver<Cue>,
    pub announced: mpsc::UnboundedSender<Announced>,
}

/// Both sides of every link between the two tasks. The announced beacons go unbounded: at most
/// a few a second, each read at once.
pub fn link() -> (ReceiverSide, AnnouncerSide) {
    let (sockets_tx, sockets_rx) = watch::channel(None);
    let (interfaces_tx, interfaces_rx) = watch::channel(Vec::new());
    let (targets_tx, targets_rx) = watch::channel(Vec::new());
    let (heard_tx, heard_rx) = watch::channel(Vec::new());
    let (cues_tx, cues_rx) = mpsc::channel(CUES);
    let (announced_tx, announced_rx) = mpsc::unbounded_channel();
    (
        ReceiverSide {
            sockets: sockets_tx,
            interfaces: interfaces_tx,
            targets: targets_tx,
            heard: heard_tx,
            cues: cues_tx,
            announced: announced_rx,
        },
        AnnouncerSide {
            sockets: sockets_rx,
            interfaces: interfaces_rx,
            targets: targets_rx,
            heard: heard_rx,
            cues: cues_rx,
            announced: announced_tx,
        },
    )
}
