//! Starting an instance's tasks (announcer, receiver, resolver) on the caller's runtime, and
//! what the handle keeps of them: the way to ask the receiver, and the way to stop them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::{info, warn};

use super::announcer::AnnouncerTask;
use super::funnel::Funnel;
use super::link;
use super::opening::Opening;
use super::query::{QUERIES, Query};
use super::receiver::ReceiverTask;
use super::resolver;
use super::stop::{StopSender, stop};
use crate::clock::now;
use crate::config::{Config, Target};
use crate::net::interface;
use crate::node::{Announcer, Receiver};
use crate::wire::beacon::format_instance;

/// Resolver answers waiting for the receiver: one per name, read at once.
const RESOLVED: usize = 4;

/// A running instance's tasks, as its handle holds them.
#[derive(Debug)]
pub(crate) struct Engine {
    pub config: Arc<Config>,
    pub queries: mpsc::Sender<Query>,
    pub instance: u64,
    pub opening: watch::Receiver<Opening>,
    /// Asks the tasks to stop with a goodbye.
    pub shutdown: StopSender,
    /// Awaited, and emptied, by the first shutdown.
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    /// To stop the tasks at once, without a goodbye, when the handle is dropped: in the
    /// order resolver, receiver, announcer.
    pub aborts: Vec<AbortHandle>,
}

/// This node's own unicast addresses, which are never its targets: every address of the host
/// on the port the others target. (A headless Service or a Compose service names this node
/// too.)
fn own_addresses(config: &Config) -> Vec<SocketAddr> {
    interface::local_addresses()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, config.port))
        .collect()
}

/// What the interfaces are, for the log: `eth0, fd00::/64`, or how one is picked.
fn interfaces_given(config: &Config) -> String {
    let given: Vec<String> = config.interfaces.iter().map(ToString::to_string).collect();
    match given.is_empty() {
        true => "the one picked (see the next line)".to_owned(),
        false => given.join(", "),
    }
}

/// Spawns the tasks of an instance with `config` (validated already) on the current runtime.
/// The sockets are opened once before either task runs, so that the announcer finds them open
/// and the first beacon goes out on its first poll; a failure is retried by the receiver.
pub(crate) fn spawn(config: Config) -> Engine {
    let config = Arc::new(config);
    let started = now();
    let instance = fastrand::u64(..);
    info!(
        hostname = %config.name,
        instance = %format_instance(instance),
        groups = %config.groups(),
        interfaces = %interfaces_given(&config),
        interval = %humantime::format_duration(config.interval),
        ttl = %humantime::format_duration(config.ttl),
        "discovery started"
    );
    if config.ttl_is_tight() {
        warn!(
            "ttl is under twice the jittered interval: one lost beacon will expire this node at its peers"
        );
    }
    let (shutdown, stopping) = stop();
    let (receiver_side, announcer_side) = link::link();
    let (queries, query_rx) = mpsc::channel(QUERIES);
    let (resolved, resolved_rx) = mpsc::channel(RESOLVED);
    let (opening_tx, opening) = watch::channel(Opening::NotYet);
    let core = Receiver::new(&config, instance, started).with_own_addresses(own_addresses(&config));
    let names: Vec<Target> = core
        .targets()
        .names()
        .iter()
        .map(|name| name.target.clone())
        .collect();
    if config.has_targets() {
        info!(peers_dns = ?config.peers_dns.iter().map(ToString::to_string).collect::<Vec<_>>(),
            peers = ?config.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            multicast = config.multicast,
            resolve_interval = %humantime::format_duration(config.resolve_interval),
            "beaconing to unicast targets too");
    }
    let mut receiver = ReceiverTask::new(
        core,
        Arc::clone(&config),
        receiver_side,
        Funnel::default(),
        opening_tx,
        started,
    );
    receiver.open_first(started);
    let announcer = AnnouncerTask::new(
        Announcer::new(&config, instance, fastrand::u64(..), started),
        Arc::clone(&config),
        announcer_side,
    );
    // Not in spans: the receiver is polled for every datagram and timer, and entering and
    // leaving a span on each poll was a seventh of an idle agent's CPU (bin/bench-lan's
    // profile). Their lines name their modules instead.
    let tasks = vec![
        tokio::spawn(resolver::run(
            names,
            config.resolve_interval,
            resolved,
            stopping.clone(),
        )),
        tokio::spawn(receiver.run(query_rx, resolved_rx, stopping.clone())),
        tokio::spawn(announcer.run(stopping)),
    ];
    Engine {
        config,
        queries,
        instance,
        opening,
        shutdown,
        aborts: tasks.iter().map(JoinHandle::abort_handle).collect(),
        tasks: Mutex::new(tasks),
    }
}
