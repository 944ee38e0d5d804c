//! A network namespace of the test's own: every datagram sent inside it stays there. Deleted,
//! with any process still in it, on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

use super::skip::skip;
use super::{must, unique};

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

    /// Gives the namespace its own /etc/hosts: `ip netns exec` mounts /etc/netns/NAME/hosts
    /// over the host's for each command it runs. Removed with the namespace.
    pub fn hosts(&self, text: &str) {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).expect("create the namespace's /etc directory");
        std::fs::write(format!("{dir}/hosts"), text).expect("write the namespace's hosts file");
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

impl Drop for PortHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
        // Only this namespace's own directory, made by `hosts`, if it was.
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}
