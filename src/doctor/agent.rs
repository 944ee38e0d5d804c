//! The doctor's checks of the local agent, from its status before and after the listening
//! window: whether it sends and hears the group, and what its unicast side does. Pure
//! functions, each returning one line of the report.

use std::net::Ipv4Addr;

use super::check::{Check, Status, count};
use crate::api::AgentStatus;

/// The local agent's unicast side, if it has one (`--peers-dns`, `--peer`, or targets it
/// learned): which names resolve, to how many targets it beacons, and how many peers it lists.
/// `group_heard`: whether the doctor heard another node on the group, so that a silent group
/// reads as "unicast is in use" rather than as nobody there.
pub fn check_unicast(status: &AgentStatus, group_heard: bool) -> Option<Check> {
    const NAME: &str = "unicast";
    let unicast = &status.unicast;
    if unicast.names.is_empty() && unicast.targets.is_empty() {
        return None;
    }
    let names: Vec<String> = unicast
        .names
        .iter()
        .map(|name| match &name.error {
            Some(error) if name.addresses.is_empty() => {
                format!("{} (not resolved: {error})", name.name)
            }
            _ => format!("{} ({} addresses)", name.name, name.addresses.len()),
        })
        .collect();
    let silent = if group_heard {
        ""
    } else {
        "the group is silent here, but "
    };
    let detail = format!(
        "{silent}the agent beacons {} by unicast{}: it lists {} peers, {} unicast beacons sent, {} received",
        count(unicast.targets.len(), "target"),
        if names.is_empty() {
            String::new()
        } else {
            format!(" from {}", names.join(", "))
        },
        status.peers,
        unicast.sent,
        unicast.received
    );
    let unresolved: Vec<&str> = unicast
        .names
        .iter()
        .filter(|name| name.addresses.is_empty())
        .map(|name| name.name.as_str())
        .collect();
    if unicast.targets.is_empty() || !unresolved.is_empty() {
        return Some(Check::not_ok(
            NAME,
            Status::Warn,
            detail,
            format!(
                "check that {} resolve{} here (getent ahosts NAME): a Compose service name, tasks.SERVICE in Swarm (a task is listed once healthy), SERVICE.NAMESPACE in Kubernetes (publishNotReadyAddresses: true)",
                if unresolved.is_empty() {
                    "the names".to_owned()
                } else {
                    unresolved.join(", ")
                },
                if unresolved.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    Some(Check::ok(NAME, detail))
}

/// The local agent, if one answered (`Err`: why not, naming its address), asked before the
/// window and, in `after`, again after it. `probed` is the interface the doctor checked.
pub fn check_agent(
    before: Result<&AgentStatus, &str>,
    after: Option<&AgentStatus>,
    probed: Option<Ipv4Addr>,
) -> Check {
    const NAME: &str = "agent";
    let before = match before {
        Ok(before) => before,
        Err(err) => {
            return Check::not_ok(
                NAME,
                Status::Warn,
                // The client's message ends with the same advice as the fix.
                err.split("; start one").next().unwrap_or(err).to_owned(),
                "start one: peerd agent (or point --api at the one running)".into(),
            );
        }
    };
    let status = after.unwrap_or(before);
    let detail = format!(
        "{} on {} via {}: {} peers, {} beacons sent, {} of its own heard back",
        status.hostname,
        status.group,
        status.interface,
        status.peers,
        status.beacons_sent,
        status.own_beacons_received
    );
    // First: an agent that cannot send is failing whatever else it heard.
    if let Some(not_sending) = &status.not_sending {
        let port = status.group.rsplit(':').next().unwrap_or_default();
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!("{detail}: it is not sending ({not_sending})"),
            format!(
                "it retries on its own once the cause is gone: another program may hold UDP port {port} without SO_REUSEADDR (`ss -ulpn`), or {} may not be an address of this host or its link may be down (`ip -4 addr`, `ip link`)",
                status.interface
            ),
        );
    }
    // Off the group (--no-multicast) nothing of its own comes back, nor should it.
    if !status.unicast.multicast {
        return Check::ok(NAME, format!("{detail}, off the group (--no-multicast)"));
    }
    // Its counters since it started would hide a firewall rule added since: what changed
    // during the window tells, when it sent a beacon then.
    let deaf_now = status.beacons_sent > before.beacons_sent
        && status.own_beacons_received == before.own_beacons_received;
    let deaf_ever = status.beacons_sent > 0 && status.own_beacons_received == 0;
    if deaf_now || deaf_ever {
        let sent = status.beacons_sent - before.beacons_sent;
        let why = if deaf_now {
            format!("{sent} of its beacons during the check, none heard back")
        } else {
            "none of its own beacons ever heard back".to_owned()
        };
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!("{detail}: it does not hear the group ({why})"),
            format!(
                "look for a firewall rule dropping the group's port (`nft list ruleset`), and check `ip route get {}`",
                status.group.split(':').next().unwrap_or_default()
            ),
        );
    }
    // The agent may announce from several addresses (both families, several interfaces).
    let mut addresses = status.interface.split(", ");
    // Named by its interface where the agent says (an IPv6 address would not do as a flag).
    let first = status
        .interfaces
        .first()
        .map(|i| i.name.as_str())
        .unwrap_or_else(|| addresses.clone().next().unwrap_or_default());
    if let Some(probed) = probed.filter(|p| !addresses.any(|a| a == p.to_string())) {
        return Check::not_ok(
            NAME,
            Status::Warn,
            format!("{detail}; the doctor checked {probed}, not the agent's interface"),
            format!("peerd doctor --interface {first}"),
        );
    }
    Check::ok(NAME, detail)
}
