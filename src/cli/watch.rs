//! `peerd watch` and `peerd wait`: the two subcommands that follow the agent's event stream,
//! one printing each change, one counting live peers until there are enough. Reading the
//! stream is follow.rs; the table is table.rs.

use super::args::{ListArgs, WaitArgs};
use super::follow::{self, Followed, Follower, Message};
use super::peers::nothing_shown;
use super::print;
use super::table;

/// Prints the peers, then each change, until Ctrl-C (exit 0). Rides out the agent going away:
/// says so on stderr and resumes where it left off when the agent answers again.
pub async fn watch(list: ListArgs) -> anyhow::Result<()> {
    let args = list.agent;
    let mut follower = Follower::connect(args.api).await?;
    let follow = async {
        loop {
            let line = match follower.next().await {
                Followed::Message(message) => {
                    let listed = message.snapshot().map(|snapshot| snapshot.peers.len());
                    let Some(message) = message.filtered(&list.tags) else {
                        continue;
                    };
                    let empty = message.snapshot().is_some_and(|s| s.peers.is_empty());
                    match listed {
                        Some(listed) if empty && !args.json => {
                            nothing_shown(args.api, listed, &list.tags).await
                        }
                        _ => watch_line(&message, args.json)?,
                    }
                }
                Followed::Lost(why) => {
                    eprintln!(
                        "peerd: lost the agent at {} ({why}); reconnecting",
                        args.api
                    );
                    continue;
                }
                Followed::Back => {
                    eprintln!("peerd: the agent at {} answers again; resuming", args.api);
                    continue;
                }
            };
            if !print(line.as_bytes())? {
                return Ok(()); // the reader went away: nothing left to do
            }
        }
    };
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// How `peerd watch` shows one message: a table or an aligned line, or one JSON object.
fn watch_line(message: &Message, json: bool) -> anyhow::Result<String> {
    Ok(match (message, json) {
        (Message::Snapshot(snapshot) | Message::Resync(snapshot), true) => {
            let name = if matches!(message, Message::Snapshot(_)) {
                "snapshot"
            } else {
                "resync"
            };
            let mut value = serde_json::to_value(snapshot)?;
            value["event"] = name.into();
            format!("{value}\n")
        }
        (Message::Change(change), true) => format!("{}\n", serde_json::to_string(change)?),
        // An empty one is the caller's to explain: it knows what the filter left out.
        (Message::Snapshot(snapshot) | Message::Resync(snapshot), false) => {
            table::render(&snapshot.peers)
        }
        (Message::Change(change), false) => table::change_line(change),
    })
}

/// Exits 0 as soon as the agent lists `count` live peers, counting them from its event stream;
/// after `timeout`, one line and exit 1.
pub async fn wait_for_peers(args: WaitArgs) -> anyhow::Result<()> {
    let timeout: std::time::Duration = args.timeout.into();
    let mut live = std::collections::HashSet::new();
    let waiting = async {
        let mut stream = follow::Stream::open(args.api, None).await?;
        while (live.len() as u64) < args.count {
            match stream.next().await? {
                None => anyhow::bail!("the agent at {} stopped", args.api),
                Some((_, message)) => message.update(&mut live, &args.tags),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, waiting).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!(
            "timed out after {}: the agent at {} lists {} live peers, not {}",
            args.timeout,
            args.api,
            live.len(),
            args.count
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::api::{EventKind, PeerChange, PeerInfo, Snapshot};

    use super::*;

    fn peer(hostname: &str) -> PeerInfo {
        crate::cli::table::tests::peer(hostname, 0, 35_000, 42_000)
    }

    fn snapshot(peers: Vec<PeerInfo>) -> Snapshot {
        Snapshot {
            id: 7,
            time: "2026-11-22T10:00:42.000Z".into(),
            peers,
        }
    }

    fn json(line: &str) -> serde_json::Value {
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        serde_json::from_str(line).expect("a JSON object")
    }

    #[test]
    fn json_lines_name_the_snapshot_kind_and_end_in_one_newline() -> anyhow::Result<()> {
        let first = watch_line(&Message::Snapshot(snapshot(vec![peer("a")])), true)?;
        assert_eq!(json(&first)["event"], "snapshot");
        assert_eq!(json(&first)["peers"][0]["hostname"], "a");
        let again = watch_line(&Message::Resync(snapshot(Vec::new())), true)?;
        assert_eq!(json(&again)["event"], "resync");
        let change = PeerChange {
            id: 8,
            event: EventKind::Joined,
            time: "2026-11-22T10:00:43.000Z".into(),
            peer: peer("b"),
            old_address: None,
            old_instance: None,
            old_tags: None,
        };
        let joined = watch_line(&Message::Change(Box::new(change)), true)?;
        assert_eq!(json(&joined)["peer"]["hostname"], "b");
        Ok(())
    }

    #[test]
    fn human_snapshots_are_a_table() -> anyhow::Result<()> {
        let listed = watch_line(&Message::Snapshot(snapshot(vec![peer("a")])), false)?;
        assert_eq!(listed, table::render(&[peer("a")]));
        Ok(())
    }
}
