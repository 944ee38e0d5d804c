//! The doctor's IPv6 checks of the interface it checks: its addresses past duplicate-address
//! detection (`dad`), the probe's return on the IPv6 group (`loopback6`, in `host`), the
//! membership the kernel lists (`mld`, in `host`) and who was heard over IPv6 (`peers6`), naming
//! MLD snooping when IPv4 carries what IPv6 does not. Pure functions of what was read or heard.

use std::net::Ipv6Addr;

use super::check::{Check, Status, count};
use super::hearing::{NO_MULTICAST, is_other_node};
use super::probe::Heard;
use crate::net::host::HostInterface;

/// The DAD check: `None` when the interface has no IPv6 address at all (nothing to say).
pub fn check_dad(interface: &HostInterface) -> Option<Check> {
    const NAME: &str = "dad";
    let name = &interface.name;
    if interface.v6.is_empty() {
        return None;
    }
    let failed: Vec<String> = interface
        .v6
        .iter()
        .filter(|a| a.dad_failed())
        .map(|a| a.address.to_string())
        .collect();
    let tentative: Vec<String> = interface
        .v6
        .iter()
        .filter(|a| a.tentative())
        .map(|a| a.address.to_string())
        .collect();
    if !failed.is_empty() {
        return Some(Check::not_ok(
            NAME,
            Status::Warn,
            format!(
                "{} on {name} failed duplicate-address detection: another host on the link has it, and it is never used",
                failed.join(", ")
            ),
            format!("give this host another address (`ip -6 addr show dev {name}`)"),
        ));
    }
    if !tentative.is_empty() {
        let tentative = format!(
            "{} on {name} still tentative (duplicate-address detection, about a second)",
            tentative.join(", ")
        );
        return Some(match interface.usable_v6() {
            Some(address) => Check::ok(
                NAME,
                format!("{tentative}; beacons go out from {address} meanwhile"),
            ),
            None => Check::not_ok(
                NAME,
                Status::Warn,
                format!("{tentative}; until one passes, no IPv6 beacon can go out"),
                format!("wait a second and look again (`ip -6 addr show dev {name}`)"),
            ),
        });
    }
    let usable = interface.usable_v6()?;
    Some(Check::ok(
        NAME,
        format!("{usable} on {name} is past duplicate-address detection"),
    ))
}

/// Who was heard over IPv6, besides the probe and the local agent (`local_agent`). Nobody over
/// IPv6 while others were heard over IPv4 (`others_v4`) is the mark of MLD snooping: a switch
/// or bridge that forwards IPv6 multicast only to ports that reported a membership, which it
/// learns only when an MLD querier asks. `None` when nobody was heard in either family: the
/// IPv4 peers line already says what to do; on an interface with IPv6 alone (`others_v4` is
/// `None`: IPv4 was not checked), this line says it.
pub fn check_peers6(
    heard: &[Heard],
    probe: u64,
    local_agent: Option<u64>,
    others_v4: Option<bool>,
    device: &str,
) -> Option<Check> {
    const NAME: &str = "peers6";
    let others: std::collections::BTreeSet<&str> = heard
        .iter()
        .filter_map(|h| h.beacon.as_ref().ok())
        .filter(|b| is_other_node(b, probe, local_agent))
        .map(|b| b.hostname.as_str())
        .collect();
    if !others.is_empty() {
        return Some(Check::ok(
            NAME,
            format!(
                "{} heard over IPv6 on {device}",
                count(others.len(), "other node")
            ),
        ));
    }
    match others_v4 {
        Some(false) => return None,
        None => {
            return Some(Check::not_ok(
                NAME,
                Status::Warn,
                format!("no other node heard over IPv6 on {device}"),
                format!(
                    "if peers run on this link, MLD snooping without a querier may drop IPv6 multicast (on a Linux bridge: `ip link set BRIDGE type bridge mcast_querier 1`); {NO_MULTICAST}"
                ),
            ));
        }
        Some(true) => {}
    }
    Some(Check::not_ok(
        NAME,
        Status::Warn,
        format!(
            "other nodes were heard over IPv4 on {device}, none over IPv6 (their IPv4 beacons still list them): either they have no IPv6 on this link or run a peerd older than IPv6, or a switch or bridge with MLD snooping and no MLD querier forwards IPv6 multicast to no port"
        ),
        "on a Linux bridge: `ip link set BRIDGE type bridge mcast_querier 1` (or `mcast_snooping 0`); on a switch, enable an MLD querier or turn MLD snooping off".into(),
    ))
}

/// What the IPv6 probe gathered: the datagrams heard and `/proc/net/igmp6` as it read while
/// joined, or why the probe socket could not be opened.
pub type Listened = Result<(Vec<Heard>, Option<String>), String>;

/// The interface check of an interface with IPv6 alone (the IPv4 one needs an IPv4 address).
pub fn check_interface6(interface: &HostInterface, why: &str) -> Check {
    const NAME: &str = "interface";
    let name = &interface.name;
    let address = interface
        .usable_v6()
        .map_or_else(|| "no address past DAD".to_owned(), |a| a.to_string());
    let shown = format!("{name} ({address}), IPv6 only");
    if !interface.up {
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!("{shown} is down"),
            format!("ip link set {name} up"),
        );
    }
    if !interface.running {
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!("{shown} is up without carrier: it sends nowhere"),
            "connect its link (cable, Wi-Fi, the other end of a veth), or pass --interface with another".into(),
        );
    }
    if !interface.multicast {
        return Check::not_ok(
            NAME,
            Status::Fail,
            format!("{shown} does not do multicast"),
            format!("ip link set {name} multicast on"),
        );
    }
    Check::ok(NAME, format!("{shown}: up, carrier, multicast; {why}"))
}

/// The facts of the IPv6 probe on `interface`, as the checks read them.
pub struct Probe6<'a> {
    pub interface: &'a HostInterface,
    /// `None` when no probe went out: the interface had no address past DAD, or no multicast.
    pub listened: Option<&'a Listened>,
    pub group: Ipv6Addr,
    pub port: u16,
    pub listen: std::time::Duration,
    pub probe: u64,
    pub local_agent: Option<u64>,
    /// Other nodes were heard over IPv4; `None` where IPv4 was not checked (no IPv4 address).
    pub others_v4: Option<bool>,
    /// The IPv4 probe came back: discovery works over IPv4 whatever IPv6 does.
    pub ipv4_hears: bool,
}

/// Every IPv6 line for the interface checked: `dad`, then, if a probe went out, `loopback6`,
/// `mld` and `peers6`.
pub fn checks6(facts: &Probe6) -> Vec<Check> {
    let device = &facts.interface.name;
    let mut checks: Vec<Check> = check_dad(facts.interface).into_iter().collect();
    let Some(listened) = facts.listened else {
        return checks;
    };
    let heard = listened.as_ref().map(|(heard, _)| heard.as_slice());
    let mut loopback = super::host::check_loopback(
        heard.map_err(String::as_str),
        facts.probe,
        facts.group,
        facts.port,
        facts.listen,
    );
    // Beside an IPv4 that hears, a lost IPv6 probe is a warning, not a failure.
    if facts.ipv4_hears && loopback.status == Status::Fail {
        loopback.status = Status::Warn;
        loopback
            .detail
            .push_str(" (IPv4 carries discovery meanwhile)");
    }
    checks.push(loopback);
    if let Ok((heard, igmp6)) = listened {
        checks.push(super::host::check_igmp(
            igmp6.as_deref(),
            device,
            facts.group,
        ));
        checks.extend(check_peers6(
            heard,
            facts.probe,
            facts.local_agent,
            facts.others_v4,
            device,
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::host::tests::interface;
    use crate::wire::beacon::Beacon;

    #[test]
    fn dad_says_which_addresses_wait_and_whether_beacons_can_go_out_meanwhile() {
        assert_eq!(check_dad(&interface(&[])), None);
        let ok = check_dad(&interface(&[("fe80::1", 0x80)])).expect("a line");
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(
            ok.detail,
            "fe80::1 on eth0 is past duplicate-address detection"
        );
        let waiting = check_dad(&interface(&[("fe80::1", 0xc0)])).expect("a line");
        assert_eq!(waiting.status, Status::Warn);
        assert!(
            waiting
                .detail
                .starts_with("fe80::1 on eth0 still tentative")
                && waiting.detail.ends_with("no IPv6 beacon can go out"),
            "{waiting:?}"
        );
        let meanwhile = check_dad(&interface(&[("fd00::1", 0x40), ("fe80::1", 0x80)]));
        let meanwhile = meanwhile.expect("a line");
        assert_eq!(meanwhile.status, Status::Ok);
        assert!(
            meanwhile
                .detail
                .ends_with("beacons go out from fe80::1 meanwhile")
        );
        // The kernel keeps the tentative flag on an address whose check failed.
        let failed = check_dad(&interface(&[("fe80::1", 0xc8)])).expect("a line");
        assert_eq!(failed.status, Status::Warn);
        assert!(
            failed.detail.contains("failed duplicate-address detection"),
            "{failed:?}"
        );
    }

    #[test]
    fn reads_the_ipv6_memberships_of_one_device() {
        let table = "1    lo              ff020000000000000000000000000001     1 0000000C 0\n\
                     4    eth0            ff120000000000000000000000002490     1 00000004 0\n\
                     5    eth1            ff020000000000000000000000000001     1 0000000C 0\n";
        let group: Ipv6Addr = "ff12::2490".parse().expect("an address");
        assert_eq!(
            crate::doctor::host::check_igmp(Some(table), "eth0", group).status,
            Status::Ok
        );
        assert_eq!(
            crate::doctor::host::check_igmp(Some(table), "eth1", group).status,
            Status::Warn
        );
        assert_eq!(
            crate::doctor::host::check_igmp(None, "eth0", group).status,
            Status::Unknown
        );
    }

    fn heard(hostname: &str, instance: u64) -> Heard {
        Heard {
            at: std::time::Duration::ZERO,
            beacon: Ok(Beacon {
                instance,
                hostname: hostname.into(),
                ..Beacon::default()
            }),
        }
    }

    #[test]
    fn nobody_over_ipv6_while_ipv4_carries_others_names_mld_snooping() {
        const PROBE: u64 = 7;
        let only_probe = [heard("peerd-doctor-probe", PROBE), heard("me", 9)];
        let snooped = check_peers6(&only_probe, PROBE, Some(9), Some(true), "eth0");
        let snooped = snooped.expect("a line");
        assert_eq!(snooped.status, Status::Warn);
        assert!(snooped.detail.contains("MLD snooping"), "{snooped:?}");
        assert!(
            snooped
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("mcast_querier 1"))
        );
        // Nobody in either family: the IPv4 peers line speaks for both.
        assert_eq!(
            check_peers6(&only_probe, PROBE, Some(9), Some(false), "eth0"),
            None
        );
        // IPv6 alone: this line says it.
        let alone = check_peers6(&only_probe, PROBE, Some(9), None, "eth0").expect("a line");
        assert_eq!(alone.status, Status::Warn);
        let two = [heard("a", 1), heard("b", 2), heard("a", 1)];
        let ok = check_peers6(&two, PROBE, None, Some(true), "eth0").expect("a line");
        assert_eq!(
            (ok.status, ok.detail.as_str()),
            (Status::Ok, "2 other nodes heard over IPv6 on eth0")
        );
    }
}
