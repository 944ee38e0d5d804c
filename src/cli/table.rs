//! The human view of `peerd peers`: an aligned table with humantime durations.
//! Pure formatting; fetching and JSON output live elsewhere.

use std::fmt::Write;
use std::time::Duration;

use peerd::api::{PeerChange, PeerInfo};
use peerd::wire::tags;

const HEADERS: [&str; 5] = ["HOSTNAME", "ADDRESS", "LAST SEEN", "EXPIRES IN", "UP FOR"];

/// One change as `peerd watch` prints it: time, event, hostname, address, then what changed,
/// in columns wide enough for the common case so consecutive lines align.
pub fn change_line(change: &PeerChange) -> String {
    let peer = &change.peer;
    let detail = match (&change.old_address, &change.old_instance, &change.old_tags) {
        (Some(old), _, _) => format!("from {old}"),
        (_, Some(old), _) => format!("instance {} (was {old})", peer.instance),
        (_, _, Some(old)) => format!(
            "tags {} (was {})",
            tags::display(&peer.tags),
            tags::display(old)
        ),
        _ => format!("instance {}", peer.instance),
    };
    format!(
        "{}  {:<9}  {:<20}  {:<15}  {detail}\n",
        change.time,
        change.event.as_str(),
        peer.hostname,
        peer.address
    )
}

/// Renders `peers` as a table in the order given (the API sorts by hostname). A TAGS column
/// appears when any peer has tags, and a CONFLICT column when two live instances announce one
/// of the hostnames.
pub fn render(peers: &[PeerInfo]) -> String {
    let tagged = peers.iter().any(|p| !p.tags.is_empty());
    let conflicts = peers.iter().any(|p| p.conflict.is_some());
    let mut header: Vec<String> = HEADERS.map(String::from).to_vec();
    if tagged {
        header.push("TAGS".into());
    }
    if conflicts {
        header.push("CONFLICT".into());
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            let mut row = vec![
                p.hostname.clone(),
                p.address.clone(),
                format!("{} ago", short(p.last_seen_ms_ago)),
                short(p.expires_in_ms),
                short(p.up_for_ms),
            ];
            if tagged {
                row.push(tags::display(&p.tags));
            }
            if conflicts {
                row.push(p.conflict.as_ref().map_or(String::new(), |c| {
                    format!("also announced from {} ({})", c.address, c.instance)
                }));
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}   ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whole seconds once past a second ("3s", "1m 5s"), milliseconds below ("250ms").
fn short(ms: u64) -> String {
    let d = if ms >= 1000 {
        Duration::from_secs(ms / 1000)
    } else {
        Duration::from_millis(ms)
    };
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A listed peer as the API describes it; the other CLI tests use it too.
    pub(in crate::cli) fn peer(
        hostname: &str,
        last_seen_ms_ago: u64,
        expires_in_ms: u64,
        up_for_ms: u64,
    ) -> PeerInfo {
        PeerInfo {
            hostname: hostname.into(),
            address: "172.18.0.3".into(),
            instance: "0123456789abcdef".into(),
            sequence: 3,
            first_seen: "2026-11-22T10:00:00.000Z".into(),
            last_seen: "2026-11-22T10:00:42.000Z".into(),
            last_seen_ms_ago,
            expires_in_ms,
            up_for_ms,
            ttl_ms: 35_000,
            authenticated: false,
            tags: Default::default(),
            conflict: None,
        }
    }

    #[test]
    fn marks_a_conflict_in_a_column_of_its_own() {
        let plain = render(&[peer("a", 0, 0, 0)]);
        assert!(!plain.contains("CONFLICT"));
        let mut twice = peer("b", 0, 0, 0);
        twice.conflict = Some(peerd::api::ConflictInfo {
            address: "172.18.0.9".into(),
            instance: "fedcba9876543210".into(),
            last_seen_ms_ago: 10,
        });
        let table = render(&[peer("a", 0, 0, 0), twice]);
        assert!(
            table
                .lines()
                .next()
                .is_some_and(|h| h.ends_with("CONFLICT"))
        );
        assert!(table.contains("also announced from 172.18.0.9 (fedcba9876543210)"));
    }

    #[test]
    fn renders_aligned_columns_with_human_durations() {
        let table = render(&[
            peer("node-1", 3_400, 31_600, 65_000),
            peer("n2", 250, 34_750, 900),
        ]);
        assert_eq!(
            table,
            "HOSTNAME   ADDRESS      LAST SEEN   EXPIRES IN   UP FOR\n\
             node-1     172.18.0.3   3s ago      31s          1m 5s\n\
             n2         172.18.0.3   250ms ago   34s          900ms\n"
        );
    }
}
