//! The `peerd` binary: parses the command line, sets up logging and signals, binds sockets,
//! and hands over to the library. No domain logic lives here.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use cli::follow::{Followed, Follower, Message};
use peerd::agent;
use peerd::agent::notify::{self, Notifier};
use peerd::api::{self, AgentStatus, PeerInfo};
use peerd::api::{client, server};
use peerd::config::{self, Config};
use peerd::net::interface;
use peerd::wire::{auth, tags};

mod cli;
use cli::args::{AgentArgs, Cli, Command, DoctorArgs, ListArgs, PeersArgs, WaitArgs, parse_name};
use cli::logging::init_tracing;
use cli::signals::cancel_on_signal;
use cli::{follow, table};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Neither needs the runtime: they print what clap knows about the command line.
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "peerd", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man { subcommand } => {
            return match print_man(subcommand.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(err),
            };
        }
        _ => {}
    }
    // One thread is plenty for one socket and a local API, and keeps the footprint small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(anyhow::Error::new(err).context("starting the async runtime")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Agent(args) => run_agent(args).await,
            Command::Peers(args) => show_peers(args).await,
            Command::Health(args) => show_health(args).await,
            Command::Watch(args) => watch(args).await,
            Command::Wait(args) => wait_for_peers(args).await,
            Command::Completions { .. } | Command::Man { .. } => Ok(()), // handled above
            Command::Doctor(args) => run_doctor(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

fn fail(err: anyhow::Error) -> ExitCode {
    eprintln!("peerd: {err:#}");
    ExitCode::FAILURE
}

async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let Some(config) = agent_config(&args, &shutdown).await? else {
        return Ok(()); // stopped while waiting for an interface
    };
    if !args.api.ip().is_loopback() {
        warn!(api = %args.api, "the API listens beyond loopback and has no authentication: anyone who can reach it can read the peer list");
    }
    let api = server::bind(args.api).with_context(|| {
        format!(
            "binding the API on {} (another agent there? pick one with --api)",
            args.api
        )
    })?;
    let metrics = args
        .metrics
        .map(|addr| {
            server::bind(addr).with_context(|| format!("binding the metrics listener on {addr}"))
        })
        .transpose()?;
    agent::run(config, api, metrics, notifier(), shutdown).await
}

/// A notifier for systemd, when it started the agent as a `Type=notify` service: it says so in
/// `NOTIFY_SOCKET`, and asks for watchdog pings in `WATCHDOG_USEC` (`WATCHDOG_PID`: for whom).
fn notifier() -> Option<Notifier> {
    let address = std::env::var_os("NOTIFY_SOCKET")?;
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    let watchdog = notify::watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id())
        .unwrap_or_else(|err| {
            warn!(error = %err, "ignoring the watchdog settings: no watchdog pings");
            None
        });
    let socket = address.to_string_lossy();
    match Notifier::connect(&address, watchdog) {
        Ok(notifier) => {
            let ping_every = watchdog.map(|every| humantime::format_duration(every).to_string());
            info!(%socket, ping_every, "notifying the service manager");
            Some(notifier)
        }
        // As sd_notify(3) callers do: the agent works without it, and the manager will say
        // that it heard nothing.
        Err(err) => {
            warn!(error = %format!("{err:#}"), "cannot notify the service manager");
            None
        }
    }
}

/// The man page of `peerd`, or of `peerd <subcommand>`, from the same clap definitions.
fn print_man(subcommand: Option<&str>) -> anyhow::Result<()> {
    let mut command = Cli::command().disable_help_subcommand(true);
    // Built, so each subcommand carries its full name (`peerd-agent`) into its page.
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => command
            .find_subcommand(name)
            .with_context(|| format!("no subcommand {name}"))?
            .clone(),
    };
    clap_mangen::Man::new(page)
        .render(&mut std::io::stdout())
        .context("writing the man page to stdout")
}

/// Resolves defaults that depend on the machine and validates the result; a bad combination of
/// flags exits 2 through clap, like any other usage error. `None` if `shutdown` came while it
/// waited for an interface.
async fn agent_config(
    args: &AgentArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Config>> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => {
            let os = hostname::get().context("reading this machine's hostname")?;
            let os = os.to_string_lossy().into_owned();
            parse_name(&os).unwrap_or_else(|err| usage_error(format!("{err}; pass --name")))
        }
    };
    let mut secrets = Vec::new();
    for path in &args.secret_files {
        match auth::read_secret(path) {
            Ok(secret) => {
                if secret.readable_by_others {
                    warn!(file = %path.display(), "the secret file is readable by others: chmod 600 it");
                }
                secrets.push(secret.bytes);
            }
            Err(err) => usage_error(format!("--secret-file: {err}")),
        }
    }
    let mut config = Config {
        name,
        group: args.beacons.group,
        port: args.beacons.port,
        // Checked below; a placeholder until the interface is known.
        interface: args.interface.unwrap_or(Ipv4Addr::LOCALHOST),
        interval: args.interval.into(),
        ttl: args.ttl.into(),
        multicast_ttl: args.multicast_ttl,
        hooks: args.on_event.clone(),
        hook_timeout: args.hook_timeout.into(),
        keys: auth::Keyring::new(&secrets),
        accept_unauthenticated: args.accept_unauthenticated,
        // Lossless: usize is at least 32 bits on every target peerd builds for.
        max_peers: args.max_peers as usize,
        tags: args.tags.iter().cloned().collect(),
    };
    if config.tags.len() < args.tags.len() {
        usage_error("--tag: each key at most once".to_owned());
    }
    // Before looking at interfaces, so a usage error never gets as far as the network.
    if let Err(err) = config.validate() {
        usage_error(err.to_string());
    }
    if config.group.octets()[..3] == [224, 0, 0] {
        warn!(group = %config.group, "224.0.0.0/24 is reserved for routing protocols on the local network; prefer 239.255.0.0/16");
    }
    if !config.keys.is_empty() {
        info!(key_ids = ?config.keys.ids(), accept_unauthenticated = config.accept_unauthenticated, "beacons are signed");
    }
    for hook in &config.hooks {
        if !is_executable(hook) {
            usage_error(format!(
                "--on-event {}: no executable file there",
                hook.display()
            ));
        }
    }
    config.interface = match args.interface {
        Some(address) => {
            let name = interface::name_of(address).unwrap_or_else(|| "?".into());
            info!(interface = %name, %address, "using the interface given");
            address
        }
        None => match wait_for_default_interface(shutdown).await {
            Some(choice) => {
                let chosen = &choice.chosen;
                info!(interface = %chosen.name, address = %chosen.address, "chose the interface to announce on: {}", choice.reason);
                if !choice.others.is_empty() {
                    let others: Vec<String> = choice
                        .others
                        .iter()
                        .map(|c| {
                            let carrier = if c.running { "" } else { ", no carrier" };
                            format!("{} ({}{carrier})", c.interface.name, c.interface.address)
                        })
                        .collect();
                    info!(others = %others.join(", "), "other candidates passed over; pick one with --interface ADDR");
                }
                chosen.address
            }
            None => return Ok(None),
        },
    };
    if config.multicast_ttl > 1 {
        warn!(
            multicast_ttl = config.multicast_ttl,
            "beacons may cross routers beyond this link"
        );
    }
    Ok(Some(config))
}

/// The default interface, once there is one: a container's network may come up after the
/// agent starts. Retries with backoff up to 30 s, logging each miss; `None` on shutdown.
async fn wait_for_default_interface(shutdown: &CancellationToken) -> Option<interface::Choice> {
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        match interface::default_interface() {
            Ok(chosen) => return Some(chosen),
            Err(err) => {
                warn!(error = %format!("{err:#}"), retry_in = %humantime::format_duration(delay), "no interface to announce on yet; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return None,
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(30));
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn usage_error(message: String) -> ! {
    usage_error_in("agent", message)
}

/// Exits 2 with `message`, as clap does for `peerd <subcommand>`'s own usage errors.
fn usage_error_in(subcommand: &str, message: String) -> ! {
    let mut command = Cli::command();
    let found = command
        .find_subcommand_mut(subcommand)
        .expect("the subcommand exists");
    found
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

async fn show_peers(list: ListArgs) -> anyhow::Result<()> {
    let args = list.agent;
    let mut peers: Vec<PeerInfo> = client::get_json(args.api, api::PEERS_PATH).await?;
    peers.retain(|peer| tags::matches(&peer.tags, &list.tags));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&peers)?);
    } else if peers.is_empty() {
        println!("no live peers yet");
    } else {
        print!("{}", table::render(&peers));
    }
    Ok(())
}

async fn show_health(args: PeersArgs) -> anyhow::Result<()> {
    let status: AgentStatus = client::get_json(args.api, api::STATUS_PATH).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!(
            "ok: {} on {} via {}, {} live peers",
            status.hostname, status.group, status.interface, status.peers
        );
    }
    Ok(())
}

/// Prints the peers, then each change, until Ctrl-C (exit 0). Rides out the agent going away:
/// says so on stderr and resumes where it left off when the agent answers again.
async fn watch(list: ListArgs) -> anyhow::Result<()> {
    let args = list.agent;
    let mut follower = Follower::connect(args.api).await?;
    let follow = async {
        loop {
            let line = match follower.next().await {
                Followed::Message(message) => match message.filtered(&list.tags) {
                    Some(message) => watch_line(&message, args.json)?,
                    None => continue,
                },
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
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let written = write!(out, "{line}").and_then(|()| out.flush());
            match written {
                // The reader went away (`peerd watch | head`): nothing left to do.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other.context("writing to stdout")?,
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
        (Message::Snapshot(snapshot) | Message::Resync(snapshot), false) => {
            if snapshot.peers.is_empty() {
                "no live peers yet\n".to_owned()
            } else {
                table::render(&snapshot.peers)
            }
        }
        (Message::Change(change), false) => table::change_line(change),
    })
}

/// Exits 0 as soon as the agent lists `count` live peers, counting them from its event stream;
/// after `timeout`, one line and exit 1.
async fn wait_for_peers(args: WaitArgs) -> anyhow::Result<()> {
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

/// Prints every check, then fails (exit 1) if one failed; warnings and unknowns exit 0.
async fn run_doctor(args: DoctorArgs) -> anyhow::Result<()> {
    use peerd::doctor::{self, Status};
    let listen: std::time::Duration = args.listen.into();
    // Too short a window and the probe's return is a race; longer than minutes, nobody waits.
    if !(config::MIN_TIMING..=std::time::Duration::from_secs(600)).contains(&listen) {
        usage_error_in(
            "doctor",
            format!("--listen {} is outside 100ms..=10m", args.listen),
        );
    }
    if !args.beacons.group.is_multicast() {
        usage_error_in(
            "doctor",
            format!(
                "group {} is not an IPv4 multicast address",
                args.beacons.group
            ),
        );
    }
    if args.beacons.port == 0 {
        usage_error_in("doctor", "port 0 is no port to listen on".to_owned());
    }
    let options = doctor::Options {
        group: args.beacons.group,
        port: args.beacons.port,
        interface: args.interface,
        api: args.api,
        listen,
    };
    let checks = doctor::run(&options).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print!("{}", doctor::render(&checks));
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    Ok(())
}
