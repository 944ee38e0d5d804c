//! The `peerd` binary: parses the command line, sets up logging and signals, binds sockets,
//! and hands over to the library. No domain logic lives here.

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};

mod cli;
use cli::args::{Cli, Command};

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
            Command::Peers(args) => cli::peers::show_peers(args).await,
            Command::Health(args) => cli::peers::show_health(args).await,
            Command::Watch(args) => cli::watch::watch(args).await,
            Command::Wait(args) => cli::watch::wait_for_peers(args).await,
            Command::Completions { .. } | Command::Man { .. } => Ok(()), // handled above
            Command::Doctor(args) => cli::doctor::run(args).await,
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
