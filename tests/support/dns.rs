//! A DNS server of the test's own: Debian's dnsmasq in a namespace the test made, answering
//! names under [`DOMAIN`] from a hosts file the test rewrites, and nothing else: it forwards no
//! query and reads neither `/etc/hosts` nor the machine's resolver.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::netns::Netns;
use super::skip::skip;
use super::timings::POLL_SLACK;
use super::{must, unique, wait_for};

/// Set by `.ci/run`, which installs dnsmasq: a skip for want of it would hide a broken test.
pub const REQUIRE_DNSMASQ: &str = "PEERD_REQUIRE_DNSMASQ";

/// The only zone the server answers for (RFC 6761 keeps `.test` out of the real DNS). A name
/// in it that the test never set, or removed, is NXDOMAIN.
pub const DOMAIN: &str = "peerd.test";

/// What a lookup of a name from inside a namespace returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Its IPv4 addresses, sorted.
    Addresses(Vec<String>),
    /// NXDOMAIN: no such name (getaddrinfo's `EAI_NONAME`).
    NoName,
    /// The name exists with no IPv4 address (`EAI_NODATA`).
    NoAddress,
    /// Anything else: a timeout, a refusal.
    Failed(String),
}

pub struct Dns {
    /// The namespace it runs in, and its address there.
    netns: String,
    address: String,
    /// The `--addn-hosts` file: every name with addresses. dnsmasq reads it again on SIGHUP.
    hosts: PathBuf,
    log: PathBuf,
    records: BTreeMap<String, Vec<String>>,
    /// Names that exist without an address: a TXT record each, on dnsmasq's command line, so
    /// changing them means starting it again.
    empty: BTreeSet<String>,
    /// SRV records, each name's targets and ports: on dnsmasq's command line too.
    services: BTreeMap<String, Vec<(String, u16)>>,
    child: Option<Child>,
}

impl Dns {
    /// Starts dnsmasq in `netns` on `address` (one of its own) and port 53, and points `netns`'s
    /// own resolver at it; returns once it answers. `None` (a skip) without dnsmasq.
    pub fn start(netns: &Netns, address: &str) -> Option<Dns> {
        if Command::new("dnsmasq").arg("--version").output().is_err() {
            return skip(
                "no dnsmasq to serve the test's names (apt-get install dnsmasq-base)",
                REQUIRE_DNSMASQ,
            );
        }
        let base = std::env::temp_dir().join(unique("dns"));
        let mut dns = Dns {
            netns: netns.name.clone(),
            address: address.to_owned(),
            hosts: base.with_extension("hosts"),
            log: base.with_extension("log"),
            records: BTreeMap::new(),
            empty: BTreeSet::new(),
            services: BTreeMap::new(),
            child: None,
        };
        netns.resolver(address);
        dns.write_hosts();
        dns.spawn();
        Some(dns)
    }

    /// Makes `name` resolve to `addresses`; returns once the server says so.
    pub fn answer(&mut self, name: &str, addresses: &[String]) {
        let mut sorted = addresses.to_vec();
        sorted.sort();
        self.records.insert(name.to_owned(), sorted.clone());
        let was_empty = self.empty.remove(name);
        self.apply(was_empty, name, Lookup::Addresses(sorted));
    }

    /// Makes `name` an SRV name whose records point at `targets` (host, port); returns once
    /// the server answers again (it is started anew, as these are on its command line).
    pub fn services(&mut self, name: &str, targets: &[(String, u16)]) {
        self.services.insert(name.to_owned(), targets.to_vec());
        self.kill();
        self.spawn();
    }

    /// Removes `name`: NXDOMAIN from now on. Returns once the server says so.
    pub fn remove(&mut self, name: &str) {
        self.records.remove(name);
        let was_empty = self.empty.remove(name);
        self.apply(was_empty, name, Lookup::NoName);
    }

    /// Keeps `name` but with no address: an empty answer (NODATA) from now on. Returns once the
    /// server says so.
    pub fn answer_nothing(&mut self, name: &str) {
        self.records.remove(name);
        let added = self.empty.insert(name.to_owned());
        self.apply(added, name, Lookup::NoAddress);
    }

    /// SIGSTOP: queries go unanswered (each lookup times out) until [`Dns::resume`].
    pub fn pause(&self) {
        must("kill", &["-STOP", &self.pid().to_string()]);
    }

    /// SIGCONT after [`Dns::pause`]; returns once it answers again.
    pub fn resume(&self) {
        must("kill", &["-CONT", &self.pid().to_string()]);
        self.wait_answering();
    }

    /// Looks `name` up as an agent in `netns` would: the system resolver, IPv4.
    pub fn lookup(netns: &str, name: &str) -> Lookup {
        let script = "import socket, sys\n\
             try:\n    infos = socket.getaddrinfo(sys.argv[1], 0, socket.AF_INET, socket.SOCK_DGRAM)\n    print(' '.join(sorted({i[4][0] for i in infos})))\n\
             except socket.gaierror as err:\n    print('error', err.errno, err.strerror)\n";
        let out = must(
            "ip",
            &["netns", "exec", netns, "python3", "-c", script, name],
        );
        match out.split_whitespace().collect::<Vec<_>>()[..] {
            ["error", "-2", ..] => Lookup::NoName,
            ["error", "-5", ..] => Lookup::NoAddress,
            ["error", ..] => Lookup::Failed(out.clone()),
            ref addresses => Lookup::Addresses(addresses.iter().map(|a| a.to_string()).collect()),
        }
    }

    /// The address it answers on.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn apply(&mut self, restart: bool, name: &str, expected: Lookup) {
        self.write_hosts();
        if restart {
            self.kill();
            self.spawn();
        } else {
            // Reads the hosts file again.
            must("kill", &["-HUP", &self.pid().to_string()]);
        }
        let answered = wait_for(POLL_SLACK, || {
            (Dns::lookup(&self.netns, name) == expected).then_some(())
        });
        assert!(
            answered.is_some(),
            "dnsmasq does not answer {expected:?} for {name}: {:?}\n{}",
            Dns::lookup(&self.netns, name),
            self.log_text()
        );
    }

    fn write_hosts(&self) {
        // Its own address under a name of its own: how the harness knows it answers.
        let mut text = format!("{} dns.{DOMAIN}\n", self.address);
        for (name, addresses) in &self.records {
            for address in addresses {
                text.push_str(&format!("{address} {name}\n"));
            }
        }
        // dnsmasq reads it as its own unprivileged user: 0644 under the usual umask.
        fs::write(&self.hosts, text).expect("write the DNS server's hosts file");
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the DNS server's log");
        let mut args: Vec<String> = [
            "--no-daemon",
            // No configuration file, no pid file, no upstream server, no /etc/hosts.
            "--conf-file=/dev/null",
            "--pid-file",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--log-queries",
            "--log-facility=-",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--listen-address={}", self.address));
        args.push(format!("--addn-hosts={}", self.hosts.display()));
        // Authoritative for the zone: a name not in the hosts file is NXDOMAIN, not REFUSED.
        args.push(format!("--local=/{DOMAIN}/"));
        for name in &self.empty {
            args.push(format!("--txt-record={name},no address"));
        }
        for (name, targets) in &self.services {
            for (host, port) in targets {
                args.push(format!("--srv-host={name},{host},{port}"));
            }
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, "dnsmasq"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dnsmasq");
        self.child = Some(child);
        self.wait_answering();
    }

    fn wait_answering(&self) {
        let expected = Lookup::Addresses(vec![self.address.clone()]);
        let answering = wait_for(POLL_SLACK, || {
            (Dns::lookup(&self.netns, &format!("dns.{DOMAIN}")) == expected).then_some(())
        });
        assert!(
            answering.is_some(),
            "dnsmasq does not answer:\n{}",
            self.log_text()
        );
    }

    /// `ip netns exec` execs dnsmasq, which stays in the foreground: the child is dnsmasq.
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("dnsmasq runs").id()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- log of dnsmasq ----\n{}", self.log_text());
        }
        let _ = fs::remove_file(&self.hosts);
        let _ = fs::remove_file(&self.log);
    }
}
