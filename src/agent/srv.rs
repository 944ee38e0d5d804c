//! SRV lookups for `--peers-dns _service._proto.NAME`: the one DNS query peerd makes itself,
//! since getaddrinfo answers only A and AAAA. It reads the nameservers, search domains and
//! options of `/etc/resolv.conf` as the C library does, asks over UDP, and hands back each
//! record's target and port; the targets are then resolved like any other name.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, RCODE, TYPE};

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
pub async fn lookup(name: &str) -> Result<Vec<(String, u16)>, String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let conf = ResolvConf::parse(&text);
    let mut last_error = format!("{name}: no such name");
    for candidate in conf.candidates(name) {
        match ask(&conf, &candidate).await {
            Ok(Some(records)) => return Ok(records),
            Ok(None) => last_error = format!("{candidate}: no such name"),
            Err(err) => last_error = err,
        }
    }
    Err(last_error)
}

/// One name, every server, `attempts` rounds: `Ok(None)` when a server says it does not exist.
async fn ask(conf: &ResolvConf, name: &str) -> Result<Option<Vec<(String, u16)>>, String> {
    let id = fastrand::u16(..);
    let query = query(id, name)?;
    let mut last_error = format!("{name}: no answer");
    for _ in 0..conf.attempts {
        for server in &conf.nameservers {
            match exchange(&query, SocketAddr::new(*server, 53), conf.timeout).await {
                Ok(reply) => match answer(&reply, id) {
                    Ok(answer) => return Ok(answer),
                    Err(err) => last_error = format!("{name}: {err}"),
                },
                Err(err) => last_error = format!("{name} from {server}: {err}"),
            }
        }
    }
    Err(last_error)
}

fn query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname = Name::new(name).map_err(|err| format!("{name}: {err}"))?;
    packet.questions.push(Question::new(
        qname,
        TYPE::SRV.into(),
        CLASS::IN.into(),
        false,
    ));
    packet
        .build_bytes_vec()
        .map_err(|err| format!("{name}: {err}"))
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

/// The SRV records of a reply to query `id`, the lowest priority first; `None` for NXDOMAIN.
fn answer(reply: &[u8], id: u16) -> Result<Option<Vec<(String, u16)>>, String> {
    let packet = Packet::parse(reply).map_err(|err| format!("a malformed reply: {err}"))?;
    if packet.id() != id {
        return Err("a reply to another query".to_owned());
    }
    match packet.rcode() {
        RCODE::NoError => {}
        RCODE::NameError => return Ok(None),
        other => return Err(format!("the server answered {other:?}")),
    }
    let mut records: Vec<(u16, String, u16)> = packet
        .answers
        .iter()
        .filter_map(|record| match &record.rdata {
            RData::SRV(srv) => Some((
                srv.priority,
                srv.target.to_string().trim_end_matches('.').to_owned(),
                srv.port,
            )),
            _ => None,
        })
        .filter(|(_, target, _)| !target.is_empty())
        .collect();
    records.sort();
    Ok(Some(
        records
            .into_iter()
            .map(|(_, target, port)| (target, port))
            .collect(),
    ))
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
    fn takes_the_records_of_its_own_query_lowest_priority_first() {
        let mut reply = Packet::new_reply(7);
        let name = Name::new_unchecked("_beacons._udp.peerd.test");
        for (priority, target, port) in [(20, "b.peerd.test", 24902), (10, "a.peerd.test", 24901)] {
            reply.answers.push(simple_dns::ResourceRecord::new(
                name.clone(),
                CLASS::IN,
                30,
                RData::SRV(simple_dns::rdata::SRV {
                    priority,
                    weight: 0,
                    port,
                    target: Name::new_unchecked(target),
                }),
            ));
        }
        let bytes = reply.build_bytes_vec().expect("a reply");
        assert_eq!(
            answer(&bytes, 7),
            Ok(Some(vec![
                ("a.peerd.test".to_owned(), 24901),
                ("b.peerd.test".to_owned(), 24902)
            ]))
        );
        assert!(answer(&bytes, 8).is_err(), "another query's reply");
        assert!(answer(b"garbage", 7).is_err());
        let mut missing = Packet::new_reply(7);
        *missing.rcode_mut() = RCODE::NameError;
        let bytes = missing.build_bytes_vec().expect("a reply");
        assert_eq!(answer(&bytes, 7), Ok(None));
    }
}
