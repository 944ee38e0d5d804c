//! Which interface an agent picks when none is given, in a namespace of its own with several
//! candidates: the default route's when it has carrier, never one without carrier.

use crate::support::agent::Agent;
use crate::support::netns::Netns;
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

fn chosen(netns: &Netns) -> (String, String) {
    let agent = Agent::launch(netns, "picker", "127.0.0.1:24901", None, Timings::FAST, &[]);
    agent.wait_ready();
    let status = wait_for(POLL_SLACK, || agent.status()).expect("the API answers");
    (status.interface, agent.log())
}

#[test]
fn the_default_route_wins_unless_it_has_no_carrier() {
    let Some(netns) = Netns::create("pick") else {
        return;
    };
    netns.ip(&["link", "set", "lo", "up"]);
    netns.veth("a0", "10.91.0.1/24", false);
    netns.veth("b0", "10.92.0.1/24", true);
    netns.veth("c0", "10.93.0.1/24", true);
    // The default route goes through a0, which has no carrier: the first with carrier wins.
    netns.ip(&["route", "add", "default", "dev", "a0"]);
    let (interface, log) = chosen(&netns);
    assert_eq!(interface, "10.92.0.1", "{log}");
    assert!(
        log.contains("the first that is up, has carrier and multicast"),
        "{log}"
    );
    assert!(log.contains("a0 (10.91.0.1, no carrier)"), "{log}");

    // Through c0, which has carrier: c0, though b0 comes first.
    netns.ip(&["route", "replace", "default", "dev", "c0"]);
    let (interface, log) = chosen(&netns);
    assert_eq!(interface, "10.93.0.1", "{log}");
    assert!(log.contains("it carries the default route"), "{log}");
    assert!(log.contains("b0 (10.92.0.1)"), "{log}");
}
