//! The human view of `peerd peers`: an aligned table with humantime durations, or what an
//! empty one means. Pure formatting; fetching and JSON output live elsewhere.

use std::fmt::Write;
use std::time::Duration;

use crate::api::{AgentStatus, PeerChange, PeerInfo};
use crate::wire::tags;

/// KNOWN FOR: how long this agent has listed the peer's instance (`up_for_ms`); no beacon says
/// how long the peer itself has been up.
const HEADERS: [&str; 5] = [
    "HOSTNAME",
    "ADDRESS",
    "LAST SEEN",
    "EXPIRES IN",
    "KNOWN FOR",
];

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

/// Renders `peers` as a table in the order given (the API sorts by hostname). An ALSO AT column
/// appears beside ADDRESS when the beacons of any peer reach this agent from several addresses
/// (its IPv6 address, a second link), a VIA column (group, unicast or both) when any peer was
/// heard by unicast, a TAGS column when any peer has tags, and a CONFLICT column when two live
/// instances announce one of the hostnames.
pub fn render(peers: &[PeerInfo]) -> String {
    let several = peers.iter().any(|p| p.addresses.len() > 1);
    let tagged = peers.iter().any(|p| !p.tags.is_empty());
    let conflicts = peers.iter().any(|p| p.conflict.is_some());
    let unicast = peers
        .iter()
        .any(|p| matches!(p.heard_via.as_str(), "unicast" | "both"));
    let mut header: Vec<String> = HEADERS.map(String::from).to_vec();
    if several {
        header.insert(2, "ALSO AT".into());
    }
    if unicast {
        header.push("VIA".into());
    }
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
            if several {
                // `addresses` starts with the one in ADDRESS.
                let others = p.addresses.get(1..).unwrap_or_default();
                row.insert(2, others.join(", "));
            }
            if unicast {
                row.push(p.heard_via.clone());
            }
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

/// What `peerd peers` and `watch` print instead of an empty table: why nothing is shown, and
/// the fix when there is one. `listed` is how many peers the agent lists before the `--tag`
/// `filter`; `status`, the agent's, asked for only when it lists none, tells what it refused.
pub fn nothing_shown(
    listed: usize,
    filter: &[(String, String)],
    status: Option<&AgentStatus>,
) -> String {
    if listed > 0 {
        let wanted: Vec<String> = filter.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (lists, lacking) = match listed {
            1 => ("1 live peer".to_owned(), "it lacks"),
            n => (format!("{n} live peers"), "none has"),
        };
        return format!(
            "no live peers with {}: the agent lists {lists}, but {lacking} {}; `peerd peers` without --tag shows them\n",
            wanted.join(" and "),
            if filter.len() == 1 {
                "that tag"
            } else {
                "all of those tags"
            }
        );
    }
    let refusals = status.map(refusals).unwrap_or_default();
    if refusals.is_empty() {
        return "no live peers yet\n".to_owned();
    }
    let mut out = "no live peers yet, but since it started the agent refused:\n".to_owned();
    for refusal in refusals {
        let _ = writeln!(out, "  {refusal}");
    }
    out
}

/// The datagrams an agent refused that explain why it lists nobody, each with its fix. Replays
/// and stale ones are ordinary, and capacity cannot be why nobody is listed.
fn refusals(status: &AgentStatus) -> Vec<String> {
    let refused = &status.refused;
    let mut found = Vec::new();
    if refused.authentication > 0 {
        let n = refused.authentication;
        found.push(if status.key_ids.is_empty() {
            format!(
                "{n} signed beacons: this agent has no secret; start it with the same --secret-file as the nodes that sign"
            )
        } else if status.accept_unauthenticated {
            format!(
                "{n} beacons signed with another key, or whose signature does not verify: give every node the same --secret-file"
            )
        } else {
            format!(
                "{n} beacons unsigned or signed with another key: give every node the same --secret-file, or --accept-unauthenticated to this one while the others are migrated"
            )
        });
    }
    if refused.own_hostname > 0 {
        found.push(format!(
            "{} beacons from another node announcing this agent's own hostname, {}: give each node its own --name",
            refused.own_hostname, status.hostname
        ));
    }
    let unreadable: Vec<String> = [
        ("malformed", refused.malformed),
        ("oversized", refused.oversized),
        ("of another version", refused.version),
        ("with an invalid hostname", refused.hostname),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(why, n)| format!("{n} {why}"))
    .collect();
    if !unreadable.is_empty() {
        let total = refused.malformed + refused.oversized + refused.version + refused.hostname;
        found.push(format!(
            "{total} datagrams on the port that are no beacons it can read ({}): `peerd doctor` shows what is sent to the group",
            unreadable.join(", ")
        ));
    }
    // An older agent counts no reasons: the total is all it says.
    if refused.total() == 0 && status.datagrams_ignored > 0 {
        found.push(format!(
            "{} datagrams on the port: `peerd health --json` says why",
            status.datagrams_ignored
        ));
    }
    found
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
            addresses: vec!["172.18.0.3".into()],
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
            heard_via: "group".into(),
        }
    }

    #[test]
    fn says_how_each_peer_was_heard_once_any_came_by_unicast() {
        let plain = render(&[peer("a", 0, 0, 0), peer("b", 0, 0, 0)]);
        assert!(!plain.contains("VIA"), "multicast alone: no column");
        let mut seed = peer("b", 0, 0, 0);
        seed.heard_via = "both".into();
        let mut far = peer("c", 0, 0, 0);
        far.heard_via = "unicast".into();
        let table = render(&[peer("a", 0, 0, 0), seed, far]);
        let rows: Vec<&str> = table.lines().collect();
        assert!(rows[0].ends_with("VIA"), "{table}");
        assert!(rows[1].ends_with("group"), "{table}");
        assert!(rows[2].ends_with("both"), "{table}");
        assert!(rows[3].ends_with("unicast"), "{table}");
    }

    #[test]
    fn lists_the_other_addresses_of_a_peer_beside_its_address() {
        let plain = render(&[peer("a", 0, 0, 0)]);
        assert!(!plain.contains("ALSO AT"), "one address each: no column");
        let mut two_paths = peer("b", 0, 0, 0);
        two_paths.addresses = vec!["172.18.0.3".into(), "fe80::1%eth0".into(), "fd00::3".into()];
        let mut older = peer("c", 0, 0, 0);
        older.addresses = Vec::new(); // from an agent without the list
        let table = render(&[peer("a", 0, 0, 0), two_paths, older]);
        let rows: Vec<&str> = table.lines().collect();
        assert!(
            rows[0].starts_with("HOSTNAME   ADDRESS      ALSO AT                 LAST SEEN"),
            "{table}"
        );
        assert!(
            rows[2].starts_with("b          172.18.0.3   fe80::1%eth0, fd00::3   0s ago"),
            "{table}"
        );
        assert!(rows[3].starts_with("c          172.18.0.3                           0s ago"));
    }

    #[test]
    fn marks_a_conflict_in_a_column_of_its_own() {
        let plain = render(&[peer("a", 0, 0, 0)]);
        assert!(!plain.contains("CONFLICT"));
        let mut twice = peer("b", 0, 0, 0);
        twice.conflict = Some(crate::api::ConflictInfo {
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

    fn filter(tags: &[(&str, &str)]) -> Vec<(String, String)> {
        tags.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_empty_table_says_what_the_tags_left_out() {
        assert_eq!(
            nothing_shown(3, &filter(&[("role", "db")]), None),
            "no live peers with role=db: the agent lists 3 live peers, but none has that tag; `peerd peers` without --tag shows them\n"
        );
        let one = nothing_shown(1, &filter(&[("role", "db"), ("zone", "eu")]), None);
        assert!(
            one.starts_with("no live peers with role=db and zone=eu: the agent lists 1 live peer, but it lacks all of those tags;"),
            "{one}"
        );
    }

    #[test]
    fn an_empty_table_says_what_the_agent_refused_and_the_fix() {
        let mut status = AgentStatus {
            hostname: "node1".into(),
            ..AgentStatus::default()
        };
        assert_eq!(nothing_shown(0, &[], Some(&status)), "no live peers yet\n");
        assert_eq!(nothing_shown(0, &[], None), "no live peers yet\n");
        // Replays are ordinary: no reason to explain an empty list.
        status.refused.replay = 4;
        assert_eq!(nothing_shown(0, &[], Some(&status)), "no live peers yet\n");

        status.refused.authentication = 12;
        let no_secret = nothing_shown(0, &[], Some(&status));
        assert_eq!(
            no_secret,
            "no live peers yet, but since it started the agent refused:\n  12 signed beacons: this agent has no secret; start it with the same --secret-file as the nodes that sign\n"
        );
        status.key_ids = vec!["d5bcbea8".into()];
        let signing = nothing_shown(0, &[], Some(&status));
        assert!(
            signing.contains("12 beacons unsigned or signed with another key: give every node the same --secret-file, or --accept-unauthenticated"),
            "{signing}"
        );
        status.accept_unauthenticated = true;
        let migrating = nothing_shown(0, &[], Some(&status));
        assert!(
            migrating.contains("signed with another key, or whose signature does not verify"),
            "{migrating}"
        );

        status.refused.authentication = 0;
        status.refused.own_hostname = 2;
        status.refused.malformed = 3;
        status.refused.version = 1;
        let other = nothing_shown(0, &[], Some(&status));
        assert_eq!(
            other.lines().skip(1).collect::<Vec<_>>(),
            [
                "  2 beacons from another node announcing this agent's own hostname, node1: give each node its own --name",
                "  4 datagrams on the port that are no beacons it can read (3 malformed, 1 of another version): `peerd doctor` shows what is sent to the group",
            ]
        );
        // An older agent: a total and no reasons.
        let older = AgentStatus {
            datagrams_ignored: 5,
            ..AgentStatus::default()
        };
        assert!(
            nothing_shown(0, &[], Some(&older))
                .contains("5 datagrams on the port: `peerd health --json` says why"),
        );
    }

    #[test]
    fn renders_aligned_columns_with_human_durations() {
        let table = render(&[
            peer("node-1", 3_400, 31_600, 65_000),
            peer("n2", 250, 34_750, 900),
        ]);
        assert_eq!(
            table,
            "HOSTNAME   ADDRESS      LAST SEEN   EXPIRES IN   KNOWN FOR\n\
             node-1     172.18.0.3   3s ago      31s          1m 5s\n\
             n2         172.18.0.3   250ms ago   34s          900ms\n"
        );
    }
}
