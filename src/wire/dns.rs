//! DNS messages (RFC 1035), only what the stub resolver needs: a query for one name and type,
//! and the A, AAAA and SRV records of a reply. Pure functions over bytes that never panic.
//! Written here rather than taken from a crate: a general one parses every record type, and
//! that cost the static binary its size target (3,354,160 bytes with simple-dns and
//! getaddrinfo, against 3,000,000).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record types asked for.
pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;
/// Response code: the name does not exist.
const NXDOMAIN: u16 = 3;

/// A record of a reply that the resolver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Address(IpAddr),
    Service {
        priority: u16,
        port: u16,
        target: String,
    },
}

/// What a reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The name does not exist (NXDOMAIN).
    NoName,
    /// The records of the answer section that the resolver reads (maybe none: the name exists
    /// without any of that type).
    Records(Vec<Record>),
}

/// A query with id `id`, recursion desired, for `name`'s records of type `kind`; `None` when
/// `name` is no valid DNS name (an empty label, one over 63 bytes, or over 253 in all).
pub fn query(id: u16, name: &str, kind: u16) -> Option<Vec<u8>> {
    let name = name.trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query, recursion desired; one question.
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|len| (1..=63).contains(len))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(out)
}

/// Reads the reply to query `id`: `Err` with why when it is not one (another id, not a
/// response, cut short, a server failure).
pub fn reply(bytes: &[u8], id: u16) -> Result<Reply, String> {
    let mut r = Reader { bytes, at: 0 };
    let got = r.u16()?;
    let flags = r.u16()?;
    if got != id {
        return Err("a reply to another query".to_owned());
    }
    if flags & 0x8000 == 0 {
        return Err("a query, not a reply".to_owned());
    }
    match flags & 0x000f {
        0 => {}
        NXDOMAIN => return Ok(Reply::NoName),
        code => return Err(format!("the server answered with error code {code}")),
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    r.skip(4)?; // authority and additional counts: not read
    for _ in 0..questions {
        r.name()?;
        r.skip(4)?;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        r.name()?;
        let kind = r.u16()?;
        let class = r.u16()?;
        r.skip(4)?; // ttl: every answer is asked again at the next round anyway
        let len = usize::from(r.u16()?);
        let end = r.at + len;
        if end > bytes.len() {
            return Err("a reply cut short".to_owned());
        }
        if class == CLASS_IN {
            match (kind, len) {
                (TYPE_A, 4) => {
                    let b: [u8; 4] = bytes[r.at..end].try_into().map_err(|_| "cut short")?;
                    records.push(Record::Address(IpAddr::V4(Ipv4Addr::from(b))));
                }
                (TYPE_AAAA, 16) => {
                    let b: [u8; 16] = bytes[r.at..end].try_into().map_err(|_| "cut short")?;
                    records.push(Record::Address(IpAddr::V6(Ipv6Addr::from(b))));
                }
                (TYPE_SRV, 7..) => {
                    let priority = r.u16()?;
                    r.skip(2)?; // weight: every target is beaconed, none preferred
                    let port = r.u16()?;
                    let target = r.name()?;
                    records.push(Record::Service {
                        priority,
                        port,
                        target,
                    });
                }
                _ => {} // a CNAME the server followed, or a type not asked for
            }
        }
        r.at = end;
    }
    Ok(Reply::Records(records))
}

/// A cursor over a message; every read checks the length first.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| "a reply cut short".to_owned())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A name, following compression pointers (at most 64 of them, so a loop ends); the
    /// cursor moves past the name as written where it is.
    fn name(&mut self) -> Result<String, String> {
        let mut labels: Vec<String> = Vec::new();
        let mut at = self.at;
        let mut resume = None;
        for _ in 0..64 {
            let len = *self.bytes.get(at).ok_or("a name cut short")?;
            match len {
                0 => {
                    self.at = resume.unwrap_or(at + 1);
                    return Ok(labels.join("."));
                }
                1..=63 => {
                    let label = self
                        .bytes
                        .get(at + 1..at + 1 + usize::from(len))
                        .ok_or("a name cut short")?;
                    labels.push(String::from_utf8_lossy(label).into_owned());
                    at += 1 + usize::from(len);
                }
                0xc0..=0xff => {
                    let low = *self.bytes.get(at + 1).ok_or("a name cut short")?;
                    resume.get_or_insert(at + 2);
                    at = usize::from(len & 0x3f) << 8 | usize::from(low);
                }
                _ => return Err("a name with a reserved label type".to_owned()),
            }
        }
        Err("a name that loops".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply to `question` (as built by [`query`]) with these answer records, each a type and
    /// its data, the name a pointer to the question's.
    fn reply_to(question: &[u8], rcode: u8, records: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = question.to_vec();
        out[2] = 0x81; // a response, recursion desired
        out[3] = 0x80 | rcode;
        out[6..8].copy_from_slice(&u16::try_from(records.len()).expect("few").to_be_bytes());
        for (kind, data) in records {
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&30u32.to_be_bytes());
            out.extend_from_slice(&u16::try_from(data.len()).expect("short").to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn a_query_is_the_documented_bytes() {
        let q = query(0x1234, "peers.test.", TYPE_A).expect("a valid name");
        assert_eq!(
            q,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'p', b'e', b'e', b'r', b's', 4,
                b't', b'e', b's', b't', 0, 0, 1, 0, 1
            ]
        );
        assert_eq!(query(1, "", TYPE_A), None);
        assert_eq!(query(1, "a..b", TYPE_A), None);
        assert_eq!(query(1, &"x".repeat(64), TYPE_A), None);
    }

    #[test]
    fn reads_addresses_and_services_and_follows_compression() {
        let q = query(7, "_beacons._udp.peerd.test", TYPE_SRV).expect("a valid name");
        // The SRV target "node1" + a pointer to "peerd.test" in the question (offset 12 +
        // 9 ("_beacons") + 5 ("_udp") = 26).
        let mut srv = vec![0, 10, 0, 5, 0x5e, 0x65];
        srv.extend_from_slice(&[5, b'n', b'o', b'd', b'e', b'1', 0xc0, 26]);
        let bytes = reply_to(
            &q,
            0,
            &[
                (TYPE_SRV, srv),
                (TYPE_A, vec![10, 0, 0, 5]),
                (5, vec![0xc0, 12]), // a CNAME: skipped
                (
                    TYPE_AAAA,
                    vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
                ),
            ],
        );
        assert_eq!(
            reply(&bytes, 7),
            Ok(Reply::Records(vec![
                Record::Service {
                    priority: 10,
                    port: 24165,
                    target: "node1.peerd.test".into()
                },
                Record::Address(IpAddr::from([10, 0, 0, 5])),
                Record::Address("fd00::3".parse().expect("an address")),
            ]))
        );
        assert!(reply(&bytes, 8).is_err(), "another query's reply");
        assert_eq!(reply(&reply_to(&q, 3, &[]), 7), Ok(Reply::NoName));
        assert!(reply(&reply_to(&q, 2, &[]), 7).is_err(), "SERVFAIL");
        assert!(reply(&q, 7).is_err(), "a query is no reply");
    }

    #[test]
    fn never_panics_on_a_cut_or_looping_reply() {
        let q = query(7, "peers.test", TYPE_A).expect("a valid name");
        let bytes = reply_to(&q, 0, &[(TYPE_A, vec![10, 0, 0, 5])]);
        for len in 0..bytes.len() {
            assert!(reply(&bytes[..len], 7).is_err(), "cut at {len}");
        }
        let mut looping = reply_to(&q, 0, &[(TYPE_A, vec![10, 0, 0, 5])]);
        let at = q.len();
        looping[at..at + 2].copy_from_slice(&[0xc0, u8::try_from(at).expect("short")]);
        assert!(reply(&looping, 7).is_err());
    }
}
