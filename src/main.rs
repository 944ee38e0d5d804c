//! The `peerd` binary: parses the command line, sets up logging and signals, binds sockets,
//! and hands over to the library. No domain logic lives here.

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};

use cli::follow::{Followed, Follower, Message};
use peerd::api::client;
use peerd::api::{self, AgentStatus, PeerInfo};
use peerd::config;
use peerd::wire::tags;

mod cli;
use cli::args::{Cli, Command, DoctorArgs, ListArgs, PeersArgs, WaitArgs};
use cli::{follow, table, usage_error_in};

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
            Command::Agent(args) => cli::agent::run(args).await,
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
