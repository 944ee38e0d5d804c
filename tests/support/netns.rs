//! A network namespace of the test's own: every datagram sent inside it stays there. Deleted,
//! with any process still in it and its resolver configuration, on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::skip::skip;
use super::{Lines, must, unique};

/// Set by `.ci/run`: where namespaces always work, a skip would hide a broken test.
pub const REQUIRE_NETNS: &str = "PEERD_REQUIRE_NETNS";

pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates a namespace with loopback up, or skips the test (see [`skip`]) if this machine
    /// cannot (not root, no iproute2).
    pub fn create(tag: &str) -> Option<Netns> {
        let name = unique(tag);
        let added = Command::new("ip").args(["netns", "add", &name]).output();
        let failure = match added {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(err) => Some(format!("cannot run `ip`: {err}")),
        };
        if let Some(why) = failure {
            let why = format!("cannot create a network namespace ({why}); needs root and iproute2");
            return skip(&why, REQUIRE_NETNS);
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // Lets plain tools (a Python socket) send to the group; agents set their interface
        // explicitly and do not need it.
        ns.ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
        Some(ns)
    }

    /// `ip -n <ns> args...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    /// A veth pair `name`/`name`p in this namespace, `name` up with `address` (CIDR); the other
    /// end up too (`name` has carrier) or left down (it has none).
    pub fn veth(&self, name: &str, address: &str, carrier: bool) {
        let peer = format!("{name}p");
        self.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        self.ip(&["addr", "add", address, "dev", name]);
        self.ip(&["link", "set", name, "up"]);
        if carrier {
            self.ip(&["link", "set", &peer, "up"]);
        }
    }

    /// Makes programs in this namespace ask `nameserver` (an address on the test's own bridge)
    /// for names, through `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` mounts over
    /// `/etc/resolv.conf`. A second per try and no retry: a stopped server fails a lookup in
    /// about a second, well inside any test's deadline.
    pub fn resolver(&self, nameserver: &str) {
        let dir = self.etc();
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<ns>");
        let conf = format!("nameserver {nameserver}\noptions timeout:1 attempts:1\n");
        std::fs::write(dir.join("resolv.conf"), conf).expect("write the namespace's resolv.conf");
    }

    /// Gives the namespace its own /etc/hosts: `ip netns exec` mounts /etc/netns/NAME/hosts
    /// over the host's for each command it runs. Removed with the namespace.
    pub fn hosts(&self, text: &str) {
        let dir = self.etc();
        std::fs::create_dir_all(&dir).expect("create the namespace's /etc directory");
        std::fs::write(dir.join("hosts"), text).expect("write the namespace's hosts file");
    }

    /// `/etc/netns/<ns>`: the files `ip netns exec` mounts over `/etc` in this namespace.
    fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Sends each datagram to `group:port` from inside the namespace, one `sendto` each, from
    /// one Python process. (Not bash's /dev/udp: its printf flushes at every newline byte, so
    /// a datagram holding 0x0a went out as two.)
    pub fn send_udp(&self, group: Ipv4Addr, port: u16, datagrams: &[&[u8]]) {
        let script = format!(
            "import socket, sys\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             for line in sys.stdin:\n    s.sendto(bytes.fromhex(line.strip()), ('{group}', {port}))\n"
        );
        // On stdin, one datagram in hex per line: a flood is longer than an argument may be.
        let lines: String = datagrams
            .iter()
            .map(|datagram| {
                let hex: String = datagram.iter().map(|b| format!("{b:02x}")).collect();
                hex + "\n"
            })
            .collect();
        let mut python = self
            .command("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut stdin = python.stdin.take().expect("piped");
        stdin
            .write_all(lines.as_bytes())
            .expect("write the datagrams");
        drop(stdin);
        let out = python.wait_with_output().expect("python3 ran");
        assert!(
            out.status.success(),
            "sending datagrams: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A process of the test's own holding a UDP port; killed (by its pid) on drop, which frees it.
pub struct PortHolder(Child);

impl Netns {
    /// Binds UDP `port` on every address of this namespace without SO_REUSEADDR, as a program
    /// that knows nothing of sharing a port does: until dropped, no agent can bind it. Returns
    /// once it is bound.
    pub fn hold_udp_port(&self, port: u16) -> PortHolder {
        let script = format!(
            "import socket, sys\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('0.0.0.0', {port}))\n\
             print('bound', flush=True)\n\
             sys.stdin.read()\n"
        );
        let mut python = self
            .command("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3");
        let mut line = String::new();
        BufReader::new(python.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .expect("read python3's output");
        assert_eq!(line.trim(), "bound", "python3 could not bind UDP {port}");
        PortHolder(python)
    }
}

/// A UDP port of the test's own that records every datagram it receives: which address it came
/// from, and when. The listening process is killed (by its pid) on drop.
pub struct UdpCapture {
    python: Child,
    lines: Lines,
    /// Every datagram so far: its source address, and when the test read it.
    pub received: Vec<(String, Instant)>,
}

impl Netns {
    /// Listens on UDP `port` of every address of this namespace; returns once it is bound.
    pub fn capture_udp(&self, port: u16) -> UdpCapture {
        let script = format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('0.0.0.0', {port}))\n\
             print('bound', flush=True)\n\
             while True:\n    _, (host, _) = s.recvfrom(65536)\n    print(host, flush=True)\n"
        );
        let mut python = self
            .command("python3")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3");
        let lines = Lines::new(python.stdout.take().expect("piped"));
        let bound = lines.next(super::timings::POLL_SLACK);
        assert_eq!(
            bound.as_deref(),
            Some("bound"),
            "python3 could not bind UDP {port}"
        );
        UdpCapture {
            python,
            lines,
            received: Vec::new(),
        }
    }
}

impl UdpCapture {
    /// Takes in what arrived since the last call, waiting at most `within` for the first of it.
    pub fn collect(&mut self, within: std::time::Duration) {
        let mut wait = within;
        while let Some(host) = self.lines.next(wait) {
            self.received.push((host, Instant::now()));
            wait = std::time::Duration::ZERO;
        }
    }

    /// The senders heard so far, each once, sorted.
    pub fn senders(&self) -> Vec<String> {
        let mut senders: Vec<String> = self.received.iter().map(|(h, _)| h.clone()).collect();
        senders.sort();
        senders.dedup();
        senders
    }
}

impl Drop for UdpCapture {
    fn drop(&mut self) {
        let _ = self.python.kill();
        let _ = self.python.wait();
    }
}

impl Drop for PortHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Loads `rules` with `nft -f -` through `nft`, a `command("nft")` of the namespace to change;
/// panics with nft's complaint if it refuses them.
pub fn load_nft(mut nft: Command, rules: &str) {
    let out = nft
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut nft| {
            nft.stdin
                .take()
                .expect("piped")
                .write_all(rules.as_bytes())?;
            nft.wait_with_output()
        })
        .expect("run nft in the namespace (the test needs nftables)");
    assert!(
        out.status.success(),
        "nft refused {rules}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        // Only there if `resolver` or `hosts` wrote it; the name is this test's own.
        let _ = std::fs::remove_dir_all(self.etc());
    }
}
