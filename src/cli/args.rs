//! The command line as clap sees it: every subcommand, flag, default and help text, from which
//! `--help`, the completions and the man pages are generated. Parsing only; running a
//! subcommand is the job of its own file.

use std::net::{Ipv4Addr, SocketAddr};

use clap::{Args, Parser, Subcommand, ValueEnum};

use peerd::config;
use peerd::wire::{beacon, tags};

/// Zero-configuration peer discovery: who is alive on this network, right now.
#[derive(Debug, Parser)]
#[command(name = "peerd", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground: announce this node and track its peers
    Agent(AgentArgs),
    /// List the live peers the local agent knows, sorted by hostname
    Peers(ListArgs),
    /// Check that the local agent answers (exit 0) and show its counters
    Health(PeersArgs),
    /// Print the live peers, then each change as it happens, until Ctrl-C
    Watch(ListArgs),
    /// Wait until the local agent lists at least N live peers (exit 0), or time out (exit 1)
    Wait(WaitArgs),
    /// Print a completion script for SHELL to stdout, e.g. `source <(peerd completions bash)`
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page of peerd, or of one of its subcommands, as roff to stdout (bin/man)
    #[command(hide = true)]
    Man {
        /// The subcommand whose page to print, e.g. `agent` for peerd-agent(1)
        subcommand: Option<String>,
    },
    /// Check why discovery may not work here: interface, firewall, peers, agent; exit 1 if a
    /// check fails. Sends one probe beacon (hostname peerd-doctor-probe) and its goodbye
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Hostname to announce [default: this machine's hostname]
    #[arg(long, env = "PEERD_NAME", value_parser = parse_name)]
    pub name: Option<String>,
    #[command(flatten)]
    pub beacons: GroupArgs,
    /// IPv4 address of the interface to announce on [default: the default route's interface
    /// when it is up, has carrier and multicast; else the first such interface]
    #[arg(long, env = "PEERD_INTERFACE")]
    pub interface: Option<Ipv4Addr>,
    /// Mean time between beacons (jittered by up to 10 %), 100ms to 1h
    #[arg(long, env = "PEERD_INTERVAL", default_value_t = config::BEACON_INTERVAL.into())]
    pub interval: humantime::Duration,
    /// How long peers keep this node listed after each beacon, and peers whose beacons do not
    /// say stay listed here; 100ms to 1h, above the interval
    #[arg(long, env = "PEERD_TTL", default_value_t = config::PEER_TTL.into())]
    pub ttl: humantime::Duration,
    /// IP TTL of beacons; 1 keeps them on the local link
    #[arg(long, env = "PEERD_MULTICAST_TTL", default_value_t = config::MULTICAST_TTL,
          value_parser = clap::value_parser!(u32).range(1..=255))]
    pub multicast_ttl: u32,
    /// Address of the local HTTP/JSON API (TCP)
    #[arg(long, env = "PEERD_API", default_value_t = config::API_ADDR)]
    pub api: SocketAddr,
    /// Also serve GET /metrics (Prometheus text format) and /healthz, and nothing else, on this
    /// TCP address: for a scraper on another host, without exposing the API
    #[arg(long, env = "PEERD_METRICS", value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Program to run for each peer event, with the event in its environment and as JSON on
    /// its stdin; repeatable, run in the order given (PEERD_ON_EVENT: comma-separated)
    #[arg(
        long = "on-event",
        value_name = "PROGRAM",
        env = "PEERD_ON_EVENT",
        value_delimiter = ','
    )]
    pub on_event: Vec<std::path::PathBuf>,
    /// How long a hook may run before it is killed
    #[arg(long, env = "PEERD_HOOK_TIMEOUT", default_value_t = config::HOOK_TIMEOUT.into())]
    pub hook_timeout: humantime::Duration,
    /// File holding a shared secret (at least 16 bytes): beacons are signed with the first and
    /// verified with any, and unsigned ones are refused; repeatable, to rotate keys
    /// (PEERD_SECRET_FILE: comma-separated)
    #[arg(
        long = "secret-file",
        value_name = "PATH",
        env = "PEERD_SECRET_FILE",
        value_delimiter = ','
    )]
    pub secret_files: Vec<std::path::PathBuf>,
    /// With --secret-file, accept unsigned beacons too: for turning authentication on in a live
    /// cluster without a partition
    #[arg(long, env = "PEERD_ACCEPT_UNAUTHENTICATED", requires = "secret_files")]
    pub accept_unauthenticated: bool,
    /// A label announced with every beacon, for peers to filter on; repeatable
    /// (PEERD_TAGS: comma-separated)
    #[arg(long = "tag", value_name = "KEY=VALUE", env = "PEERD_TAGS", value_delimiter = ',',
          value_parser = tags::parse)]
    pub tags: Vec<(String, String)>,
    /// Most peers listed at once; beacons from further hostnames are dropped and counted
    #[arg(long, env = "PEERD_MAX_PEERS", default_value_t = config::MAX_PEERS as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_peers: u32,
    /// Log line format; the level comes from RUST_LOG (default: info)
    #[arg(long, env = "PEERD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Address of the local agent's API
    #[arg(long, env = "PEERD_API", default_value_t = config::API_ADDR)]
    pub api: SocketAddr,
    /// Print JSON, for scripts, instead of the human-readable form
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub agent: PeersArgs,
    /// Only peers with this tag, exactly; repeatable, all must match
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = tags::parse)]
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Count only peers with this tag, exactly; repeatable, all must match
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = tags::parse)]
    pub tags: Vec<(String, String)>,
    /// How many live peers to wait for
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// How long to wait before giving up
    #[arg(long, default_value = "30s")]
    pub timeout: humantime::Duration,
    /// Address of the local agent's API
    #[arg(long, env = "PEERD_API", default_value_t = config::API_ADDR)]
    pub api: SocketAddr,
}

/// Where the beacons go: the same flags for the agent and for the doctor that checks it.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Multicast group the beacons go to
    #[arg(long, env = "PEERD_GROUP", default_value_t = config::MULTICAST_GROUP)]
    pub group: Ipv4Addr,
    /// UDP port of the group
    #[arg(long, env = "PEERD_PORT", default_value_t = config::PORT)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// How long to listen to the group for the probe and for other nodes
    #[arg(long, default_value = "3s")]
    pub listen: humantime::Duration,
    #[command(flatten)]
    pub beacons: GroupArgs,
    /// IPv4 address of the interface to check [default: the one the agent would pick]
    #[arg(long, env = "PEERD_INTERFACE")]
    pub interface: Option<Ipv4Addr>,
    /// Address of the local agent's API, if one runs
    #[arg(long, env = "PEERD_API", default_value_t = config::API_ADDR)]
    pub api: SocketAddr,
    /// Print a JSON array of {check, status, detail, fix}, for scripts
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--name`: a hostname a beacon can carry.
pub fn parse_name(name: &str) -> Result<String, beacon::InvalidHostname> {
    beacon::validate_hostname(name).map(|()| name.to_owned())
}
