//! The integration tests, in one binary: one link step instead of one per file, and a harness
//! whose unused code the compiler reports, since every test shares it.
//!
//! - `api_limits`: the API under a flood of slow clients; the signals that stop the agent.
//! - `cli`: usage errors and the unreachable-agent message.
//! - `doctor`: `peerd doctor` against a healthy LAN, a firewall, a lone node, no carrier.
//! - `loopback`: agents on the loopback of one private namespace.
//! - `bridged`: one namespace per host, joined by veth pairs and a bridge.
//! - `conflict`: two live agents announcing one hostname.
//! - `events`: the event stream through `peerd watch` and `peerd wait`.
//! - `hooks`: the `--on-event` programs.
//! - `trust`: signed clusters, migrations, forged, replayed and own-hostname beacons.
//! - `tags`: `--tag`, the TAGS column, filters, and changes reported as `updated`.
//! - `interface`: which interface an agent picks when none is given.
//! - `ipv6`: the scenarios over IPv6 alone, dual-stack hosts, a host on two bridges.
//! - `library`: `Discovery` instances in the test process, in a namespace's loopback.
//! - `faults`: a stopped agent, an address that appears late, peers at other timings.
//! - `unicast`: hosts on a bridge that drops multicast, found through `--peers-dns` (a DNS
//!   server the test runs and breaks) or one `--peer` seed; unicast from strangers refused.
//! - `docker`: containers of the peerd image on a Docker network the test creates.
//! - `flood`: one agent flooded with made-up peers and garbage keeps its memory, log, API
//!   latency and real peers within bounds.
//! - `metrics`: `GET /metrics` checked by promtool, and the `--metrics` listener.
//! - `page`: the live web page in a headless Chromium.
//! - `systemd`: the notify protocol (ready, watchdog, stopping); the unit file verifies.
//! - `completions`: shell completions and the man page, from the clap definitions.
//! - `soak`: scenario 6, ten minutes at the default timings (ignored unless asked for).

mod support;

// Counts what each thread holds, for the library's bound on a subscriber that never reads.
#[global_allocator]
static ALLOCATOR: support::alloc::Counting = support::alloc::Counting;

mod api_limits;
mod bridged;
mod cli;
mod completions;
mod conflict;
mod docker;
mod doctor;
mod events;
mod faults;
mod flood;
mod hooks;
mod interface;
mod ipv6;
mod library;
mod loopback;
mod metrics;
mod page;
mod soak;
mod systemd;
mod tags;
mod trust;
mod unicast;
