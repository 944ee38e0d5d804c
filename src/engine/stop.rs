//! The request to stop an instance's tasks with a goodbye: a flag that every task can wait on,
//! set once by `Discovery::shutdown`. (tokio-util's `CancellationToken` does this too; this
//! keeps tokio-util and the futures crates it brings out of the library alone.)

use tokio::sync::watch;

/// The stopping side, held by the handle.
#[derive(Debug)]
pub(crate) struct StopSender(watch::Sender<bool>);

/// The waiting side, one clone per task.
#[derive(Debug, Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

/// A new request, not made yet.
pub(crate) fn stop() -> (StopSender, Stop) {
    let (sender, receiver) = watch::channel(false);
    (StopSender(sender), Stop(receiver))
}

impl StopSender {
    /// Asks every task to stop; they say goodbye.
    pub(crate) fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    /// Whether the stop was asked for.
    pub(crate) fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is asked for. Never, if the handle is dropped without asking:
    /// the handle aborts the tasks then, and they must not take the drop for a shutdown and
    /// say goodbye.
    pub(crate) async fn requested(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
