//! The command line as clap sees it: every subcommand, flag, default and help text, from which
//! `--help`, the completions and the man pages are generated. Parsing only; running a
//! subcommand is the job of its own file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::builder::BoolishValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::config;
use crate::config::InterfaceSpec;
use crate::wire::{beacon, tags};

/// Zero-configuration peer discovery: who is alive on this network, right now.
#[derive(Debug, Parser)]
#[command(name = "peerd", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line, parsed; exits 2 on a usage error. A value refused that came from a
    /// `PEERD_` variable is reported as the variable's: `PEERD_TTL=soon` is no mistake in
    /// `--ttl`, which nobody typed.
    pub fn parse_naming_variables() -> Cli {
        let argv: Vec<_> = std::env::args_os().collect();
        Cli::try_parse_from(&argv)
            .unwrap_or_else(|err| name_the_variable(err, &argv, |var| std::env::var_os(var)).exit())
    }
}

/// `err`, naming the environment variable its refused value came from instead of the flag,
/// when it did: the flag is not in `argv` and `env` gives its variable that value.
fn name_the_variable(
    mut err: clap::Error,
    argv: &[std::ffi::OsString],
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> clap::Error {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return err;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        return err;
    };
    // Shown as `--ttl <TTL>` or `--accept-unauthenticated[=<BOOL>]`.
    let flag = arg.split([' ', '[', '=']).next().unwrap_or_default();
    let typed = argv.iter().any(|word| {
        let word = word.to_string_lossy();
        word == flag || word.starts_with(&format!("{flag}="))
    });
    if typed {
        return err;
    }
    let command = Cli::command();
    let variable = command
        .get_subcommands()
        .flat_map(|sub| sub.get_arguments())
        .filter(|a| a.get_long().is_some_and(|long| flag == format!("--{long}")))
        .filter_map(|a| Some((a.get_env()?.to_string_lossy().into_owned(), a)))
        .find(|(var, a)| {
            let set = env(var).map(|set| set.to_string_lossy().into_owned());
            set.is_some_and(|set| match a.get_value_delimiter() {
                Some(delimiter) => set.split(delimiter).any(|item| item == value),
                None => set == *value,
            })
        })
        .map(|(var, _)| var);
    if let Some(variable) = variable {
        err.insert(ContextKind::InvalidArg, ContextValue::String(variable));
    }
    err
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent in the foreground: announce this node and track its peers
    Agent(Box<AgentArgs>),
    /// List the live peers the local agent knows, sorted by hostname
    Peers(ListArgs),
    /// Check that the local agent answers and its beacons go out (exit 0), and show its counters
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
    /// An interface to announce on, in each family it has an address of: an address of this
    /// host (IPv4 or IPv6), an interface name (eth0), a network (10.0.0.0/8, fd00::/64: the
    /// first interface up with an address in it) or `all` (every interface up with carrier and
    /// multicast, but loopback and container bridges); repeatable (PEERD_INTERFACE:
    /// comma-separated); one not there yet is waited for, and interfaces that come and go
    /// after start are followed [default: among the interfaces up with carrier and multicast,
    /// the one holding the address /etc/hosts gives this host's name, else the default
    /// route's, else the first]
    #[arg(
        long,
        env = "PEERD_INTERFACE",
        value_name = "ADDR|NAME|NETWORK|all",
        value_delimiter = ','
    )]
    pub interface: Vec<InterfaceSpec>,
    /// A DNS name whose every address is a peer to send beacons to by unicast, resolved again
    /// every --resolve-interval: a Compose service, Swarm's tasks.SERVICE, a Kubernetes
    /// headless Service; PORT defaults to --port; repeatable (PEERD_PEERS_DNS: comma-separated)
    #[arg(long = "peers-dns", value_name = "NAME[:PORT]", env = "PEERD_PEERS_DNS",
          value_delimiter = ',', value_parser = parse_target)]
    pub peers_dns: Vec<config::Target>,
    /// A peer to send beacons to by unicast, by address or name (names are resolved again
    /// every --resolve-interval); with --secret-file one known member is enough, as it tells
    /// the others; repeatable (PEERD_PEERS: comma-separated)
    #[arg(long = "peer", value_name = "HOST[:PORT]", env = "PEERD_PEERS",
          value_delimiter = ',', value_parser = parse_target)]
    pub peers: Vec<config::Target>,
    /// How often --peers-dns and --peer names are resolved again, 100ms to 1h
    #[arg(long, env = "PEERD_RESOLVE_INTERVAL", default_value_t = config::RESOLVE_INTERVAL.into())]
    pub resolve_interval: humantime::Duration,
    /// Neither join the multicast group nor send to it: only --peer and --peers-dns targets
    /// (and the peers they tell of) hear this node. BOOL: as for --accept-unauthenticated
    #[arg(long, env = "PEERD_NO_MULTICAST", value_name = "BOOL",
          value_parser = BoolishValueParser::new(), action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_value_t = false,
          default_missing_value = "true", hide_possible_values = true)]
    pub no_multicast: bool,
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
    /// its stdin; a name without a slash is looked up in PATH; repeatable, run in the order
    /// given (PEERD_ON_EVENT: comma-separated)
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
    /// cluster without a partition. BOOL (here or in the variable): true or false, 1 or 0, yes
    /// or no, on or off
    // Set, not SetTrue: a bare flag reads its variable as only `true` or `false`. Its value
    // only after `=`, so the next word is never taken for it.
    #[arg(long, env = "PEERD_ACCEPT_UNAUTHENTICATED", value_name = "BOOL",
          value_parser = BoolishValueParser::new(), action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_value_t = false,
          default_missing_value = "true", hide_possible_values = true)]
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
    /// Multicast group the beacons go to, one per family: an IPv4 one replaces 239.255.49.1,
    /// an IPv6 one (ff00::/8; joined by interface index) replaces ff12::2490; repeatable
    /// (PEERD_GROUP: comma-separated) [default: 239.255.49.1 and ff12::2490]
    #[arg(long, env = "PEERD_GROUP", value_name = "GROUP", value_delimiter = ',')]
    pub group: Vec<IpAddr>,
    /// UDP port of the group
    #[arg(long, env = "PEERD_PORT", default_value_t = config::PORT)]
    pub port: u16,
}

impl GroupArgs {
    /// The IPv4 and the IPv6 group: each family's given one, else its default. An error if a
    /// family is given twice.
    pub fn groups(&self) -> Result<(Ipv4Addr, Ipv6Addr), String> {
        let mut v4 = None;
        let mut v6 = None;
        for group in &self.group {
            let taken = match group {
                IpAddr::V4(group) => v4.replace(*group).is_some(),
                IpAddr::V6(group) => v6.replace(*group).is_some(),
            };
            if taken {
                return Err(format!(
                    "--group: one group per family (IPv4 and IPv6); {group} is a second"
                ));
            }
        }
        Ok((
            v4.unwrap_or(config::MULTICAST_GROUP),
            v6.unwrap_or(config::MULTICAST_GROUP6),
        ))
    }
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// How long to listen to the group for the probe and for other nodes; judging the spacing
    /// of their beacons takes longer than the ttl (40s at the default timings)
    // 3 s: the probe comes back and peers answer it within a second; a window long enough to
    // judge spacing would make every quick check wait 40 s for the one line that needs it.
    #[arg(long, default_value = "3s")]
    pub listen: humantime::Duration,
    #[command(flatten)]
    pub beacons: GroupArgs,
    /// The interface to check, as the agent's --interface takes it: an address, an interface
    /// name or a network; given several (PEERD_INTERFACE of an agent on several), the first
    /// [default: the one the agent would pick]
    #[arg(
        long,
        env = "PEERD_INTERFACE",
        value_name = "ADDR|NAME|NETWORK",
        value_delimiter = ','
    )]
    pub interface: Vec<InterfaceSpec>,
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

/// `--peer` and `--peers-dns`: `HOST[:PORT]`; port 0 stands for "not given" until `--port`
/// is known.
pub fn parse_target(text: &str) -> Result<config::Target, String> {
    config::Target::parse(text, 0)
}

/// `--name`: a hostname a beacon can carry.
pub fn parse_name(name: &str) -> Result<String, beacon::InvalidHostname> {
    beacon::validate_hostname(name).map(|()| name.to_owned())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    /// The error of `typed`, as [`name_the_variable`] words it when the command line was
    /// `argv` and the environment `env`.
    fn refused(typed: &[&str], argv_: &[&str], env: &[(&str, &str)]) -> String {
        let err = Cli::try_parse_from(argv(typed)).expect_err("refused");
        let lookup = |var: &str| {
            env.iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| OsString::from(value))
        };
        name_the_variable(err, &argv(argv_), lookup).to_string()
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_value_from_a_variable_is_reported_as_the_variables() {
        let from_env = refused(
            &["peerd", "agent", "--ttl", "soon"],
            &["peerd", "agent"],
            &[("PEERD_TTL", "soon")],
        );
        assert!(
            from_env.starts_with("error: invalid value 'soon' for 'PEERD_TTL'"),
            "{from_env}"
        );
        let typed = refused(
            &["peerd", "agent", "--ttl", "soon"],
            &["peerd", "agent", "--ttl", "soon"],
            &[("PEERD_TTL", "soon")],
        );
        assert!(typed.contains("for '--ttl <TTL>'"), "{typed}");
        let listed = refused(
            &["peerd", "agent", "--tag", "bad"],
            &["peerd", "agent"],
            &[("PEERD_TAGS", "a=1,bad")],
        );
        assert!(listed.contains("for 'PEERD_TAGS'"), "{listed}");
        let boolean = refused(
            &["peerd", "agent", "--accept-unauthenticated=maybe"],
            &["peerd", "agent"],
            &[("PEERD_ACCEPT_UNAUTHENTICATED", "maybe")],
        );
        assert!(
            boolean.contains("invalid value 'maybe' for 'PEERD_ACCEPT_UNAUTHENTICATED'"),
            "{boolean}"
        );
    }

    #[test]
    fn accept_unauthenticated_takes_the_usual_spellings_and_stays_a_bare_flag() {
        let value = |words: &[&str]| match Cli::try_parse_from(argv(words)) {
            Ok(Cli {
                command: Command::Agent(args),
            }) => Ok(args.accept_unauthenticated),
            Ok(_) => Err("not the agent".to_owned()),
            Err(err) => Err(err.to_string()),
        };
        assert_eq!(value(&["peerd", "agent"]), Ok(false));
        assert_eq!(
            value(&["peerd", "agent", "--accept-unauthenticated"]),
            Ok(true)
        );
        for (spelling, meaning) in [
            ("true", true),
            ("1", true),
            ("yes", true),
            ("on", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("off", false),
        ] {
            let flag = format!("--accept-unauthenticated={spelling}");
            assert_eq!(value(&["peerd", "agent", &flag]), Ok(meaning), "{spelling}");
        }
        // A bare flag never takes the next word as its value.
        assert!(value(&["peerd", "agent", "--accept-unauthenticated", "--name", "a"]).is_ok());
    }

    #[test]
    fn every_boolean_flag_with_a_variable_takes_the_usual_spellings() {
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments().filter(|a| a.get_env().is_some()) {
                assert!(
                    !matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse),
                    "{} --{:?}: a bare flag reads its variable as true or false only",
                    sub.get_name(),
                    arg.get_long()
                );
            }
        }
    }
}
