//! `peerd agent`: turns the flags into a checked `Config`, binds the listeners, connects to systemd, and hands over to the library's `peerd::agent::run`. The
//! agent's own work (beacons, registry, API, hooks) is not here.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use peerd::agent::notify::{self, Notifier};
use peerd::api::server;
use peerd::config::{self, Config};
use peerd::wire::auth;

use super::args::{AgentArgs, parse_name};
use super::logging::init_tracing;
use super::signals::cancel_on_signal;
use super::usage_error_in;

/// Runs the agent until a signal stops it: the config from the flags, the API and metrics
/// listeners bound, then `peerd::agent::run`.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let config = agent_config(&args)?;
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
    peerd::agent::run(config, api, metrics, notifier(), shutdown).await
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

/// Resolves defaults that depend on the machine and validates the result; a bad combination of
/// flags exits 2 through clap, like any other usage error. The interfaces are the agent's to
/// find and follow.
fn agent_config(args: &AgentArgs) -> anyhow::Result<Config> {
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
    let (group, group6) = args.beacons.groups().unwrap_or_else(|err| usage_error(err));
    let config = Config {
        name,
        group,
        group6,
        port: args.beacons.port,
        interfaces: args.interface.clone(),
        interval: args.interval.into(),
        ttl: args.ttl.into(),
        multicast_ttl: args.multicast_ttl,
        hooks,
        hook_timeout: args.hook_timeout.into(),
        keys: auth::Keyring::new(&secrets),
        accept_unauthenticated: args.accept_unauthenticated,
        // Lossless: usize is at least 32 bits on every target peerd builds for.
        max_peers: args.max_peers as usize,
        tags: args.tags.iter().cloned().collect(),
        multicast: !args.no_multicast,
        peers_dns: with_port(&args.peers_dns, args.beacons.port),
        peers: with_port(&args.peers, args.beacons.port),
        resolve_interval: args.resolve_interval.into(),
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
    if config::group6_beyond_link(config.group6) {
        warn!(group = %config.group6, "the IPv6 group is of wider scope than the link: beacons still go with a hop limit of --multicast-ttl, but prefer a group of link-local scope (ff12::/16)");
    }
    if config.multicast_ttl > 1 {
        warn!(
            multicast_ttl = config.multicast_ttl,
            "beacons may cross routers beyond this link"
        );
    }
    Ok(config)
}

/// `targets` with `port` where none was given.
fn with_port(targets: &[config::Target], port: u16) -> Vec<config::Target> {
    targets
        .iter()
        .map(|target| config::Target {
            host: target.host.clone(),
            port: if target.port == 0 { port } else { target.port },
        })
        .collect()
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
