//! `peerd peers` and `peerd health`: one request each to the local agent's API, printed for a
//! human or as JSON. Following changes as they happen is watch.rs.

use std::net::SocketAddr;

use crate::api::{self, AgentStatus, PeerInfo, client};
use crate::wire::tags;

use super::args::{ListArgs, PeersArgs};
use super::table;

/// Prints the live peers with every tag asked for, as a table or JSON.
pub async fn show_peers(list: ListArgs) -> anyhow::Result<()> {
    let args = list.agent;
    let mut peers: Vec<PeerInfo> = client::get_json(args.api, api::PEERS_PATH).await?;
    let listed = peers.len();
    peers.retain(|peer| tags::matches(&peer.tags, &list.tags));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&peers)?);
    } else if peers.is_empty() {
        print!("{}", nothing_shown(args.api, listed, &list.tags).await);
    } else {
        print!("{}", table::render(&peers));
    }
    Ok(())
}

/// Why nothing is shown ([`table::nothing_shown`]), with the agent's status when it lists
/// nobody: one more request, and only then. A status that does not come is no failure: the
/// list did.
pub async fn nothing_shown(api: SocketAddr, listed: usize, filter: &[(String, String)]) -> String {
    let status = match listed {
        0 => client::get_json::<AgentStatus>(api, api::STATUS_PATH)
            .await
            .ok(),
        _ => None,
    };
    table::nothing_shown(listed, filter, status.as_ref())
}

/// Prints the agent's status; fails (exit 1) if no agent answers, or if it answers but is not
/// sending, saying why (after the status, with `--json`).
pub async fn show_health(args: PeersArgs) -> anyhow::Result<()> {
    let status: AgentStatus = client::get_json(args.api, api::STATUS_PATH).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    }
    if let Some(not_sending) = &status.not_sending {
        anyhow::bail!(
            "{} on {} via {} is not sending: {not_sending}",
            status.hostname,
            status.group,
            status.interface
        );
    }
    if !args.json {
        println!(
            "ok: {} on {} via {}, {} live peers",
            status.hostname, status.group, status.interface, status.peers
        );
    }
    Ok(())
}
