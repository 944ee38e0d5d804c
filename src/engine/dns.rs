//! A stub resolver for `--peers-dns` and `--peer` names: `/etc/hosts`, then A and AAAA (or SRV,
//! for `_service._proto.NAME`) asked over UDP of the nameservers of `/etc/resolv.conf`, with its
//! search domains and options, as the C library does. Not getaddrinfo: its static build brings
//! the C library's resolver into the binary (190 KB of it), and it answers no SRV. The
//! messages are `wire::dns`'s.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::net::interface;
use crate::wire::dns::{self, Record, Reply, TYPE_A, TYPE_AAAA, TYPE_SRV};

/// What `/etc/resolv.conf` says, of what a stub resolver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    /// A name with at least this many dots is tried as given before the search domains.
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: usize,
}

impl ResolvConf {
    /// Parses the file's text; what it lacks takes the C library's defaults (a local server,
    /// ndots 1, 5 s, two attempts). Kubernetes writes `ndots:5` and its search domains here.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        conf.nameservers.push(ip);
                    }
                }
                // The last of `search` and `domain` wins, as in the C library.
                Some("search") | Some("domain") => {
                    conf.search = words.map(|w| w.trim_end_matches('.').to_owned()).collect();
                }
                Some("options") => {
                    for option in words {
                        let (key, value) = option.split_once(':').unwrap_or((option, ""));
                        let number = value.parse::<u64>().ok();
                        match (key, number) {
                            ("ndots", Some(n)) => conf.ndots = n.min(15) as usize,
                            ("timeout", Some(n)) => {
                                conf.timeout = Duration::from_secs(n.clamp(1, 30))
                            }
                            ("attempts", Some(n)) => conf.attempts = n.clamp(1, 5) as usize,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers.push(IpAddr::from([127, 0, 0, 1]));
        }
        conf
    }

    /// The names to ask for, in order, for `name` as given: with a trailing dot only itself;
    /// with at least `ndots` dots itself first, then with each search domain; else the other
    /// way round.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_owned()];
        }
        let searched = self.search.iter().map(|domain| format!("{name}.{domain}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_owned()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_owned())).collect()
        }
    }
}

/// The SRV records of `name` (`_service._proto.domain`): each target and port, the lowest
/// priority first. Empty when the name exists without any.
pub async fn lookup_srv(name: &str) -> Result<Vec<(String, u16)>, String> {
    let conf = ResolvConf::read();
    let mut last_error = format!("{name}: no such name");
    for candidate in conf.candidates(name) {
        match ask(&conf, &candidate, TYPE_SRV).await {
            Ok(Some(records)) => return Ok(srv_records(&records)),
            Ok(None) => last_error = format!("{candidate}: no such name"),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// Every address `name` has: written out, in `/etc/hosts`, or its A and AAAA records asked of
/// the nameservers with the search domains, as the C library's `hosts: files dns` would. Empty
/// when the name exists without an address. Asked here rather than through getaddrinfo, whose
/// static build brings the C library's whole resolver into the binary.
pub async fn lookup_ip(name: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let listed = interface::hosts_entries(&hosts, name);
    if !listed.is_empty() {
        return Ok(listed);
    }
    let conf = ResolvConf::read();
    let mut last_error = format!("{name}: no such name");
    for candidate in conf.candidates(name) {
        let v4 = ask(&conf, &candidate, TYPE_A).await;
        let v6 = ask(&conf, &candidate, TYPE_AAAA).await;
        match (v4, v6) {
            (Ok(None), Ok(None)) => last_error = format!("{candidate}: no such name"),
            (Ok(a), Ok(aaaa)) => {
                let records = a.into_iter().chain(aaaa).flatten();
                return Ok(addresses(records.collect::<Vec<_>>().as_slice()));
            }
            (Err(err), _) | (_, Err(err)) => last_error = err,
        }
    }
    Err(last_error)
}

impl ResolvConf {
    /// `/etc/resolv.conf`, read anew at each lookup (a container's can change under it).
    fn read() -> ResolvConf {
        ResolvConf::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    }
}

/// One name and type, every server, `attempts` rounds: `Ok(None)` when a server says the name
/// does not exist, `Ok(Some)` with the records of that type otherwise (maybe none).
async fn ask(conf: &ResolvConf, name: &str, kind: u16) -> Result<Option<Vec<Record>>, String> {
    let id = fastrand::u16(..);
    let query = dns::query(id, name, kind).ok_or_else(|| format!("{name}: not a valid name"))?;
    let mut last_error = format!("{name}: no answer");
    for _ in 0..conf.attempts {
        for server in &conf.nameservers {
            match exchange(&query, SocketAddr::new(*server, 53), conf.timeout).await {
                Ok(reply) => match dns::reply(&reply, id) {
                    Ok(Reply::NoName) => return Ok(None),
                    Ok(Reply::Records(records)) => return Ok(Some(records)),
                    Err(err) => last_error = format!("{name}: {err}"),
                },
                Err(err) => last_error = format!("{name} from {server}: {err}"),
            }
        }
    }
    Err(last_error)
}

async fn exchange(query: &[u8], server: SocketAddr, timeout: Duration) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0; 4096];
    let len = tokio::time::timeout(timeout, socket.recv(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))??;
    buf.truncate(len);
    Ok(buf)
}

fn addresses(records: &[Record]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|record| match record {
            Record::Address(ip) => Some(*ip),
            Record::Service { .. } => None,
        })
        .collect()
}

/// The SRV records' targets and ports, the lowest priority first; none with an empty target.
fn srv_records(records: &[Record]) -> Vec<(String, u16)> {
    let mut services: Vec<(u16, String, u16)> = records
        .iter()
        .filter_map(|record| match record {
            Record::Service {
                priority,
                target,
                port,
            } if !target.is_empty() => Some((*priority, target.clone(), *port)),
            _ => None,
        })
        .collect();
    services.sort();
    services
        .into_iter()
        .map(|(_, target, port)| (target, port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_servers_search_domains_and_options_as_the_c_library_does() {
        let conf = ResolvConf::parse(
            "# Kubernetes\nnameserver 10.96.0.10\nsearch peerd.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:1 attempts:3 rotate\n",
        );
        assert_eq!(conf.nameservers, [IpAddr::from([10, 96, 0, 10])]);
        assert_eq!(
            conf.search,
            ["peerd.svc.cluster.local", "svc.cluster.local"]
        );
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (5, Duration::from_secs(1), 3)
        );
        let empty = ResolvConf::parse("");
        assert_eq!(empty.nameservers, [IpAddr::from([127, 0, 0, 1])]);
        assert_eq!((empty.ndots, empty.attempts), (1, 2));
    }

    #[test]
    fn a_short_name_tries_the_search_domains_first_and_a_dotted_one_itself() {
        let conf =
            ResolvConf::parse("nameserver 127.0.0.11\nsearch a.test b.test\noptions ndots:3\n");
        assert_eq!(
            conf.candidates("_beacons._udp.peerd"),
            [
                "_beacons._udp.peerd.a.test",
                "_beacons._udp.peerd.b.test",
                "_beacons._udp.peerd"
            ]
        );
        assert_eq!(
            conf.candidates("_beacons._udp.peerd.default.svc"),
            [
                "_beacons._udp.peerd.default.svc",
                "_beacons._udp.peerd.default.svc.a.test",
                "_beacons._udp.peerd.default.svc.b.test"
            ]
        );
        assert_eq!(
            conf.candidates("_b._udp.peerd.test."),
            ["_b._udp.peerd.test"]
        );
    }

    #[test]
    fn reads_the_hosts_file_as_the_c_library_does() {
        let hosts = "127.0.0.1 localhost\n10.0.1.3 cba1712b88e0  # the overlay\n# 10.9.9.9 cba1712b88e0\nfd00::3 CBA1712B88E0 alias\n";
        assert_eq!(
            interface::hosts_entries(hosts, "cba1712b88e0"),
            [
                IpAddr::from([10, 0, 1, 3]),
                "fd00::3".parse::<IpAddr>().expect("an address")
            ]
        );
        assert!(interface::hosts_entries(hosts, "elsewhere").is_empty());
    }

    #[test]
    fn services_come_lowest_priority_first_and_addresses_apart() {
        let service = |priority, target: &str, port| Record::Service {
            priority,
            port,
            target: target.into(),
        };
        let records = [
            service(20, "b.peerd.test", 24902),
            Record::Address(IpAddr::from([10, 0, 0, 5])),
            service(10, "a.peerd.test", 24901),
            service(5, "", 1),
        ];
        assert_eq!(
            srv_records(&records),
            [
                ("a.peerd.test".to_owned(), 24901),
                ("b.peerd.test".to_owned(), 24902)
            ]
        );
        assert_eq!(addresses(&records), [IpAddr::from([10, 0, 0, 5])]);
    }
}
