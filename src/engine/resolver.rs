//! The resolver task: asks the stub resolver (`dns`: /etc/hosts, then the nameservers of
//! /etc/resolv.conf with its search domains, so Docker's embedded DNS, a Kubernetes cluster's
//! and Compose names all work) for every `--peers-dns` name and every name in `--peer`, at
//! start and then every `--resolve-interval`, and hands each answer to the receiver, which owns
//! the targets.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use super::stop::Stop;
use tracing::debug;

use super::dns;
use crate::config::Target;

/// One name's answer.
#[derive(Debug)]
pub struct Resolved {
    /// The name's place among the targets' names.
    pub index: usize,
    /// The addresses it resolved to (A and AAAA, with the name's port or an SRV record's), or
    /// why it did not.
    pub result: Result<Vec<SocketAddr>, String>,
    /// The first failure after an answer (or the first attempt): worth one warning.
    pub first_failure: bool,
}

/// Resolves `names` every `interval` until `shutdown`, one name at a time: a resolver that
/// hangs holds up only the next round, never the agent, and is never asked twice at once.
pub async fn run(
    names: Vec<Target>,
    interval: Duration,
    answers: mpsc::Sender<Resolved>,
    shutdown: Stop,
) {
    if names.is_empty() {
        return;
    }
    let mut failing = vec![false; names.len()];
    loop {
        let round = tokio::time::Instant::now();
        for (index, name) in names.iter().enumerate() {
            let result = tokio::select! {
                () = shutdown.requested() => return,
                result = resolve(name) => result,
            };
            debug!(name = %name, answer = ?result, "resolved");
            let first_failure = result.is_err() && !failing[index];
            failing[index] = result.is_err();
            let answer = Resolved {
                index,
                result,
                first_failure,
            };
            if answers.send(answer).await.is_err() {
                return; // the receiver is gone: the agent is stopping
            }
        }
        tokio::select! {
            () = shutdown.requested() => return,
            _ = tokio::time::sleep_until(round + interval) => {}
        }
    }
}

/// Every address `target`'s host resolves to, on its port; an empty answer is an `Ok` with
/// none. A name that starts with `_` is an SRV name: each record's target, on its port.
async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, String> {
    if !target.host.starts_with('_') {
        return addresses(&target.host, target.port).await;
    }
    let records = dns::lookup_srv(&target.host).await?;
    let mut found = Vec::new();
    let mut failed = None;
    for (host, port) in records {
        match addresses(&host, port).await {
            Ok(addresses) => found.extend(addresses),
            Err(err) => failed = Some(format!("{host}: {err}")),
        }
    }
    match failed {
        // Not one record's target resolved: say why, and keep the last good set.
        Some(err) if found.is_empty() => Err(err),
        _ => Ok(found),
    }
}

/// The addresses `host` resolves to (A and AAAA), on `port`.
async fn addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let ips = dns::lookup_ip(host).await?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}
