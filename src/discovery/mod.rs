//! The public face of the library: [`Discovery`], the handle of one running instance, its
//! [`Builder`], the [`Changes`] a subscriber reads and the [`Error`]s. Everything here is built
//! on the engine's query channel and funnel; the agent (`peerd agent`) uses nothing else.

mod builder;
mod changes;
mod error;
mod settings;

pub use builder::Builder;
pub use changes::{Change, Changes};
pub use error::Error;
pub use settings::Settings;

use crate::engine::query::{Query, ask};
use crate::engine::{Engine, Opening, Peer, Status};

/// One running discovery instance: it announces this node on the network and lists the peers
/// it hears. Each instance has its own registry; two in one process see each other as peers.
///
/// Start one with [`Discovery::builder`]. Its tasks run on the tokio runtime it was started
/// on, and it starts no thread of its own.
///
/// Stop it with [`shutdown`](Discovery::shutdown), which says goodbye: peers list it as
/// [`Left`](crate::EventKind::Left) at once. Dropping the handle without `shutdown` stops the
/// tasks too, but without the goodbye: peers list the node until its ttl runs out, then as
/// [`Expired`](crate::EventKind::Expired), as if it had crashed.
#[derive(Debug)]
pub struct Discovery {
    engine: Engine,
}

impl Discovery {
    /// The settings of a new instance, each at the agent's default.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn new(engine: Engine) -> Discovery {
        Discovery { engine }
    }

    /// This instance's id: random, new at each start, sent in every beacon. Peers see it in
    /// [`Peer::instance`](crate::Peer::instance).
    pub fn instance(&self) -> u64 {
        self.engine.instance
    }

    /// Resolves once the sockets have opened and the groups are joined (at once if they
    /// have): for an instance [spawned](Builder::spawn) before its network is up. Never, if
    /// the instance stops first.
    pub async fn opened(&self) {
        let mut opening = self.engine.opening.clone();
        if opening
            .wait_for(|opening| *opening == Opening::Open)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    /// What the instance was started with, defaults filled in.
    pub fn settings(&self) -> Settings {
        Settings::new(std::sync::Arc::clone(&self.engine.config))
    }

    /// The live peers now, sorted by hostname: those heard within their ttl, deadlines swept
    /// first. This node is never among them.
    pub async fn peers(&self) -> Result<Vec<Peer>, Error> {
        ask(&self.engine.queries, Query::Peers)
            .await
            .map_err(|_| Error::Stopped)
    }

    /// What the instance counted, and whether its beacons go out.
    pub async fn status(&self) -> Result<Status, Error> {
        ask(&self.engine.queries, Query::Status)
            .await
            .map_err(|_| Error::Stopped)
    }

    /// The peers and their changes: first a [`Change::Snapshot`] of every live peer, then
    /// each change as it happens, in order. See [`Changes`] for a subscriber that falls
    /// behind.
    pub fn subscribe(&self) -> Changes {
        Changes::new(self.engine.queries.clone(), None)
    }

    /// The changes after the event numbered `id` (an [`Event::id`](crate::Event::id) or a
    /// [`Snapshot::id`](crate::Snapshot::id) of this instance), for a subscriber that comes
    /// back: the events it missed, while this instance still keeps them (the last
    /// [`HISTORY`](crate::HISTORY)), else a snapshot as [`subscribe`](Discovery::subscribe)
    /// starts with. Then each change as it happens.
    pub fn subscribe_after(&self, id: u64) -> Changes {
        Changes::new(self.engine.queries.clone(), Some(id))
    }

    /// Says goodbye and stops the tasks; returns once they have stopped. Peers list this node
    /// as [`Left`](crate::EventKind::Left) as soon as the goodbye reaches them. Queries after
    /// it fail with [`Error::Stopped`]; subscriptions end.
    pub async fn shutdown(&self) {
        self.engine.shutdown.stop();
        let mut tasks = self.engine.tasks.lock().await;
        // Each popped only once it has ended: a shutdown cancelled midway (a timeout) leaves
        // the rest for the next one to wait for.
        while let Some(task) = tasks.last_mut() {
            // A task that panicked is stopped too; the panic was reported as it happened.
            let _ = task.await;
            tasks.pop();
        }
    }
}

impl Drop for Discovery {
    /// Stops the tasks at once, without a goodbye (a no-op after [`Discovery::shutdown`]).
    fn drop(&mut self) {
        // The announcer first: it is the one that could say goodbye.
        for task in self.engine.aborts.iter().rev() {
            task.abort();
        }
    }
}
