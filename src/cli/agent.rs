//! `peerd agent`: turns the flags into a checked `Config`, binds the listeners, connects to systemd, and hands over to the library's `crate::agent::run`. The
//! agent's own work (beacons, registry, API, hooks) is not here.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use std::time::Duration;

use crate::agent::AgentParts;
use crate::agent::notify::{self, Notifier};
use crate::api::server;
use crate::config::Target;
use crate::wire::auth;
use crate::{Builder, Discovery, Error};

use super::args::{AgentArgs, parse_name};
use super::logging::init_tracing;
use super::signals::cancel_on_signal;
use super::usage_error_in;

/// Runs the agent until a signal stops it: a discovery instance from the flags, the API and
/// metrics listeners bound, then `agent::run`.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let discovery = agent_discovery(&args)?;
    let hooks = agent_hooks(&args);
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
    let parts = AgentParts {
        api,
        metrics,
        hooks,
        hook_timeout: args.hook_timeout.into(),
        notifier: notifier(),
    };
    crate::agent::run(discovery, parts, shutdown).await
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

/// The discovery instance the flags describe, checked: a bad flag or combination of flags
/// exits 2 through clap, like any other usage error, before anything touches the network.
fn agent_discovery(args: &AgentArgs) -> anyhow::Result<Builder> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => {
            let os = hostname::get().context("reading this machine's hostname")?;
            let os = os.to_string_lossy().into_owned();
            parse_name(&os).unwrap_or_else(|err| usage_error(format!("{err}; pass --name")))
        }
    };
    let (group, group6) = args.beacons.groups().unwrap_or_else(|err| usage_error(err));
    let mut discovery = Discovery::builder()
        .hostname(name)
        .port(args.beacons.port)
        .group(group.into())
        .group(group6.into())
        .interval(args.interval.into())
        .ttl(args.ttl.into())
        .multicast_ttl(args.multicast_ttl)
        .accept_unauthenticated(args.accept_unauthenticated)
        // Lossless: usize is at least 32 bits on every target peerd builds for.
        .max_peers(args.max_peers as usize)
        .multicast(!args.no_multicast)
        .resolve_interval(args.resolve_interval.into());
    for spec in &args.interface {
        discovery = discovery.interface(&spec.to_string());
    }
    for (key, value) in &args.tags {
        discovery = discovery.tag(key, value);
    }
    for target in &args.peers {
        discovery = discovery.peer(&as_given(target));
    }
    for target in &args.peers_dns {
        discovery = discovery.peers_dns(&as_given(target));
    }
    for path in &args.secret_files {
        match auth::read_secret(path) {
            Ok(secret) => {
                if secret.readable_by_others {
                    warn!(file = %path.display(), "the secret file is readable by others: chmod 600 it");
                }
                discovery = discovery.secret(secret.bytes);
            }
            Err(err) => usage_error(format!("--secret-file: {err}")),
        }
    }
    match discovery.check() {
        Ok(()) => Ok(discovery),
        // The flag's name for the builder's setting: `peers_dns` is `--peers-dns`.
        Err(Error::Setting { setting, reason }) => {
            usage_error(format!("--{}: {reason}", setting.replace('_', "-")))
        }
        Err(err) => usage_error(err.to_string()),
    }
}

/// The programs `--on-event` names, each found once at start; and a timeout above zero.
fn agent_hooks(args: &AgentArgs) -> Vec<PathBuf> {
    if Duration::from(args.hook_timeout).is_zero() {
        usage_error("the hook timeout must be greater than zero".to_owned());
    }
    let path = std::env::var_os("PATH");
    let mut hooks = Vec::new();
    for given in &args.on_event {
        match resolve_program(given, path.as_deref(), is_executable) {
            Ok(program) => {
                info!(given = %given.display(), program = %program.display(), "hook program found");
                hooks.push(program);
            }
            Err(err) => usage_error(format!("--on-event {}: {err}", given.display())),
        }
    }
    hooks
}

/// `target` as it was written: without a port when none was given (port 0), so that the
/// instance's port applies.
fn as_given(target: &Target) -> String {
    match (target.port, target.host.contains(':')) {
        (0, true) => format!("[{}]", target.host),
        (0, false) => target.host.clone(),
        _ => target.to_string(),
    }
}

/// The file `--on-event PROGRAM` runs, found once at start as a shell finds a command: with a
/// slash, PROGRAM is a path; without, the first executable `PROGRAM` in the directories of
/// `path` (`PATH`), an empty entry meaning the current directory. Made absolute, so the log
/// says what runs.
fn resolve_program(
    program: &Path,
    path: Option<&OsStr>,
    is_executable: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        if !is_executable(program) {
            return Err("no executable file there".to_owned());
        }
        return std::path::absolute(program).map_err(|err| err.to_string());
    }
    let Some(path) = path else {
        return Err("not a path, and PATH is not set to look it up in".to_owned());
    };
    std::env::split_paths(path)
        .map(|dir| {
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            dir.join(program)
        })
        .find(|candidate| is_executable(candidate))
        .map(|found| std::path::absolute(&found).unwrap_or(found))
        .ok_or_else(|| {
            format!(
                "no executable of that name in PATH ({}); give its path",
                path.to_string_lossy()
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Exits 2 with `message` as a usage error of `peerd agent`.
fn usage_error(message: String) -> ! {
    usage_error_in("agent", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake file system: these paths are executable, nothing else is.
    fn executables(paths: &[&str]) -> impl Fn(&Path) -> bool {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        move |candidate: &Path| paths.iter().any(|p| p == candidate)
    }

    #[test]
    fn a_program_without_a_slash_is_looked_up_in_path_as_a_shell_would() {
        let found = executables(&["/usr/bin/true", "/bin/true", "/opt/hooks/sync"]);
        let path = OsStr::new("/usr/local/bin:/usr/bin:/bin:/opt/hooks");
        let resolve = |program: &str| resolve_program(Path::new(program), Some(path), &found);
        assert_eq!(
            resolve("true"),
            Ok(PathBuf::from("/usr/bin/true")),
            "the first match"
        );
        assert_eq!(resolve("sync"), Ok(PathBuf::from("/opt/hooks/sync")));
        let missing = resolve("nope").expect_err("not found");
        assert_eq!(
            missing,
            "no executable of that name in PATH (/usr/local/bin:/usr/bin:/bin:/opt/hooks); give its path"
        );
        assert!(resolve_program(Path::new("true"), None, &found).is_err());
    }

    #[test]
    fn a_program_with_a_slash_is_a_path_and_an_empty_path_entry_the_current_directory() {
        let here = std::env::current_dir().expect("a current directory");
        let found = executables(&["/opt/hooks/sync", "./sync", "bin/sync"]);
        let resolve = |program: &str, path: &str| {
            resolve_program(Path::new(program), Some(OsStr::new(path)), &found)
        };
        assert_eq!(
            resolve("/opt/hooks/sync", "/bin"),
            Ok(PathBuf::from("/opt/hooks/sync"))
        );
        assert_eq!(resolve("bin/sync", "/opt/hooks"), Ok(here.join("bin/sync")));
        assert_eq!(
            resolve("/bin/sync", "/opt/hooks"),
            Err("no executable file there".to_owned()),
            "a path is never looked up"
        );
        assert_eq!(resolve("sync", "/bin::/opt/hooks"), Ok(here.join("sync")));
    }
}
