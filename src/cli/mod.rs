//! The `peerd` command (feature `agent`): one file per subcommand, the clap definitions they
//! share, and here the dispatch (the runtime, the two subcommands that need none, exit codes).
//! It may import `agent`, `api`, `doctor` and the public API; nothing else imports it.

mod agent;
mod args;
mod doctor;
mod follow;
mod logging;
mod peers;
mod signals;
mod table;
mod watch;

use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use args::{Cli, Command};

/// The `peerd` command: parses the process's arguments and runs the subcommand they name;
/// exit 0, 1 on failure (after one `peerd: ...` line on stderr), 2 on a usage error. The
/// binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse_naming_variables();
    // Neither needs the runtime: they print what clap knows about the command line.
    match &cli.command {
        Command::Completions { shell } => {
            // Into memory first: written straight to stdout, clap_complete panics when the
            // reader has gone.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "peerd", &mut script);
            return match print(&script) {
                Ok(_) => ExitCode::SUCCESS,
                Err(err) => fail(err),
            };
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
            Command::Agent(args) => agent::run(*args).await,
            Command::Peers(args) => peers::show_peers(args).await,
            Command::Health(args) => peers::show_health(args).await,
            Command::Watch(args) => watch::watch(args).await,
            Command::Wait(args) => watch::wait_for_peers(args).await,
            Command::Completions { .. } | Command::Man { .. } => Ok(()), // handled above
            Command::Doctor(args) => doctor::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

/// One line on stderr, `peerd: ` and the error with its causes; exit 1.
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
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .context("rendering the man page")?;
    print(&roff).map(drop)
}

/// Writes `bytes` to stdout and flushes; `false` when the reader has gone (`peerd man | head`,
/// `peerd watch | head`), which is no error: it read what it wanted, so the command is done.
fn print(bytes: &[u8]) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(anyhow::Error::new(err).context("writing to stdout")),
    }
}

/// Exits 2 with `message`, as clap does for `peerd <subcommand>`'s own usage errors.
pub(crate) fn usage_error_in(subcommand: &str, message: String) -> ! {
    let mut command = Cli::command();
    // Built, as clap builds it to parse, so the usage line reads `peerd agent`, not `agent`.
    command.build();
    let found = command
        .find_subcommand_mut(subcommand)
        .expect("the subcommand exists");
    found
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}
