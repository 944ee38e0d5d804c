//! Test harness: real `peerd` processes in private network namespaces or containers, and the
//! helpers every test shares. Every datagram a test sends stays in a namespace or a Docker
//! network the test created and removes on drop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod agent;
pub mod alloc;
pub mod browser;
pub mod cluster;
pub mod dns;
pub mod docker;
pub mod lan;
pub mod netns;
pub mod secret;
pub mod skip;
pub mod swarm;
pub mod timings;

pub const PEERD: &str = env!("CARGO_BIN_EXE_peerd");

/// Where the APIs of agents sharing one namespace listen: `127.0.0.1:API_PORTS + n`. Below
/// Linux's ephemeral range (32768-60999), as the default API port is: a port inside it could be
/// the source port of a client connection in the namespace (a poll of another agent) at the
/// moment its agent binds it, and the agent would fail with "address already in use".
pub const API_PORTS: u16 = 25100;

/// `127.0.0.1:API_PORTS + n`.
pub fn api_addr(n: u16) -> String {
    format!("127.0.0.1:{}", API_PORTS + n)
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A unique, short name for namespaces, networks and files of this test process.
pub fn unique(tag: &str) -> String {
    format!(
        "peerd-{tag}-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `program args...`, returning its output; panics with the command line if it cannot start.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} {args:?}: {err}"))
}

/// Runs a command that must succeed; returns its trimmed stdout.
pub fn must(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `check` every 20 ms until it returns `Some` or `within` has passed.
pub fn wait_for<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines a child process prints, read on a thread of their own so that a test can wait for
/// each with a deadline instead of blocking on the pipe.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(from: impl Read + Send + 'static) -> Lines {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(receiver)
    }

    /// The next line, waiting at most `within`; `None` if none came (or the output ended).
    pub fn next(&self, within: Duration) -> Option<String> {
        self.0.recv_timeout(within).ok()
    }
}
