//! The beacon wire format, version 1: pure encoding and decoding over bytes.
//! No sockets and no keys here (signing and verifying are `auth`'s); docs/wire-format.md
//! documents the layout byte by byte.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::wire::tags::{self, Tags};

/// First four bytes of every beacon: ASCII `PEER`. Foreign traffic on the port is dropped here.
pub const MAGIC: [u8; 4] = *b"PEER";
/// The only version this build speaks. A future version bumps it; older agents ignore it.
pub const VERSION: u8 = 1;
/// Upper bound on a beacon, well under any link MTU so a beacon is never fragmented.
pub const MAX_BEACON_LEN: usize = 512;
/// Longest hostname, as in DNS (RFC 1035 presentation form).
pub const MAX_HOSTNAME_LEN: usize = 253;
/// magic (4) + version (1) + flags (1) + instance (8) + sequence (8) + hostname length (1).
pub const HEADER_LEN: usize = 23;

/// Flag bit: the sender is shutting down; receivers drop it at once.
const FLAG_GOODBYE: u8 = 0b0000_0001;
/// Flag bit: the sender signs its beacons but still accepts unsigned ones (it runs with
/// `--accept-unauthenticated`, migrating a cluster to a secret). Agents without a secret accept
/// its signed beacons, so a rollout never partitions the cluster.
const FLAG_MIGRATING: u8 = 0b0000_0010;

/// Flag bit: this beacon answers a newcomer, by unicast: the newcomer does not answer it in
/// turn (the sender knows it already).
const FLAG_ANSWER: u8 = 0b0000_0100;

/// Extension field: the sender's ttl, u32 milliseconds. Receivers keep the sender listed that
/// long (clamped to their bounds), so nodes with different timings work together.
pub const EXT_TTL: u8 = 0x01;
/// Extension field: when the beacon was sent, u64 milliseconds since the Unix epoch. Only
/// signed beacons carry it: it is what lets a receiver refuse a replayed one.
pub const EXT_TIMESTAMP: u8 = 0x02;
/// Extension field: the sender's tags (`--tag KEY=VALUE`), see `tags::encode`.
pub const EXT_TAGS: u8 = 0x04;
/// Extension field: addresses of peers the sender lists, each a family byte (4 or 6), the
/// address and a u16 port. A node sends it only in its unicast answer to a newcomer, so that
/// one known member is enough to find the rest; receivers take it only from signed beacons.
pub const EXT_PEERS: u8 = 0x05;
/// Bytes of one IPv4 entry of the peers field: family, address, port.
pub const PEER_V4_LEN: usize = 1 + 4 + 2;
/// Bytes of one IPv6 entry of the peers field, the largest.
pub const PEER_V6_LEN: usize = 1 + 16 + 2;
/// Extension field: the authentication tag, always last: key id (4) then HMAC-SHA256 (32) over
/// every byte of the datagram before the HMAC itself.
pub const EXT_AUTH: u8 = 0x03;
/// Length of the authentication field's value: key id and tag.
pub const AUTH_VALUE_LEN: usize = 4 + TAG_LEN;
/// HMAC-SHA256 output.
pub const TAG_LEN: usize = 32;
/// type (1) + length (2): the framing of every extension field.
pub const EXT_HEADER_LEN: usize = 3;

/// One announcement: "this host is alive" (or, with `goodbye`, "this host is leaving").
/// `Default` is no valid beacon (its hostname is empty); it fills the fields a test leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beacon {
    /// Random per process start, so receivers can tell a restart from a renewal.
    pub instance: u64,
    /// Counts up from 0 per instance; lets receivers drop duplicated or reordered beacons.
    pub sequence: u64,
    /// The sender is shutting down.
    pub goodbye: bool,
    /// The sender signs but also accepts unsigned beacons (see `FLAG_MIGRATING`).
    pub migrating: bool,
    /// It answers a newcomer (see `FLAG_ANSWER`).
    pub answer: bool,
    /// 1..=253 bytes of ASCII letters, digits, `-` and `.`.
    pub hostname: String,
    /// How long the sender asks to stay listed after this beacon, if it says.
    pub ttl: Option<Duration>,
    /// When it was sent, in milliseconds since the Unix epoch, if it says (signed beacons do).
    pub timestamp: Option<u64>,
    /// The sender's tags; none is no field.
    pub tags: Tags,
    /// Peers the sender lists, told to a newcomer; none is no field.
    pub peers: Vec<SocketAddr>,
    /// The authentication field a decoded beacon carried. [`Beacon::encode`] never writes it:
    /// `auth::Keyring::sign` appends it to the encoded bytes.
    pub auth: Option<AuthTag>,
}

/// The last extension field of a signed beacon. The bytes it covers are the datagram's all but
/// its last [`TAG_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthTag {
    /// Names the key that signed, so several keys can be live during a rotation.
    pub key_id: u32,
    pub tag: [u8; TAG_LEN],
}

/// Why a datagram is not a beacon we accept. Never an error of the agent: it counts and moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Longer than [`MAX_BEACON_LEN`].
    Oversized,
    /// Does not start with [`MAGIC`]: foreign traffic on our port.
    NotABeacon,
    /// A peerd beacon of a version this build does not speak.
    UnsupportedVersion(u8),
    /// Ends before a length it declares.
    Truncated,
    /// Empty, too long, or with bytes outside letters, digits, `-` and `.`.
    InvalidHostname,
    /// An extension field's length runs past the end of the datagram, a known field has the
    /// wrong length or comes twice, or something follows the authentication field.
    MalformedExtension,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Oversized => write!(f, "longer than {MAX_BEACON_LEN} bytes"),
            DecodeError::NotABeacon => write!(f, "no peerd magic"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            DecodeError::Truncated => write!(f, "truncated"),
            DecodeError::InvalidHostname => write!(f, "invalid hostname"),
            DecodeError::MalformedExtension => write!(f, "malformed extension field"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a name cannot be announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHostname(
    /// The name refused.
    pub String,
);

impl fmt::Display for InvalidHostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid hostname: use 1 to {MAX_HOSTNAME_LEN} ASCII letters, digits, '-' and '.'",
            self.0
        )
    }
}

impl std::error::Error for InvalidHostname {}

/// An instance id as 16 hex digits, as the API, the logs and the event stream's ids show it (a
/// string: JSON numbers lose precision past 2^53).
pub fn format_instance(instance: u64) -> String {
    format!("{instance:016x}")
}

/// Checks the hostname rule shared by the sender (`--name`) and the decoder.
pub fn validate_hostname(name: &str) -> Result<(), InvalidHostname> {
    let ok = (1..=MAX_HOSTNAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(InvalidHostname(name.to_owned()))
    }
}

impl Beacon {
    /// Encodes the beacon, without its authentication field (see [`Beacon::auth`]). The
    /// hostname must satisfy [`validate_hostname`] (the agent checks it once at start-up), so
    /// the result, even signed, always fits in [`MAX_BEACON_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(validate_hostname(&self.hostname).is_ok());
        let name = self.hostname.as_bytes();
        let name_len = name.len().min(MAX_HOSTNAME_LEN);
        let mut out = Vec::with_capacity(HEADER_LEN + name_len + 64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        let mut flags = 0;
        if self.goodbye {
            flags |= FLAG_GOODBYE;
        }
        if self.migrating {
            flags |= FLAG_MIGRATING;
        }
        if self.answer {
            flags |= FLAG_ANSWER;
        }
        out.push(flags);
        out.extend_from_slice(&self.instance.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        // Lossless: name_len <= 253.
        out.push(name_len as u8);
        out.extend_from_slice(&name[..name_len]);
        if let Some(ttl) = self.ttl {
            // Saturates: no ttl the agent accepts comes near 49 days.
            let millis = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX);
            push_extension(&mut out, EXT_TTL, &millis.to_be_bytes());
        }
        if let Some(timestamp) = self.timestamp {
            push_extension(&mut out, EXT_TIMESTAMP, &timestamp.to_be_bytes());
        }
        if !self.tags.is_empty() {
            push_extension(&mut out, EXT_TAGS, &tags::encode(&self.tags));
        }
        if !self.peers.is_empty() {
            push_extension(&mut out, EXT_PEERS, &encode_peers(&self.peers));
        }
        out
    }

    /// Decodes one datagram. Never panics, whatever the bytes.
    ///
    /// Unknown flag bits are ignored and unknown extension fields are skipped, so a later minor
    /// addition (tags, say) does not cut off agents of this version. Decoding checks no tag:
    /// a decoded `auth` is a claim until `auth::Keyring::verify` says otherwise.
    pub fn decode(bytes: &[u8]) -> Result<Beacon, DecodeError> {
        if bytes.len() > MAX_BEACON_LEN {
            return Err(DecodeError::Oversized);
        }
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(DecodeError::NotABeacon);
        }
        let mut reader = Reader(&bytes[MAGIC.len()..]);
        let version = reader.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let flags = reader.u8()?;
        let instance = reader.u64()?;
        let sequence = reader.u64()?;
        let name_len = usize::from(reader.u8()?);
        let name = reader.take(name_len)?;
        let hostname = std::str::from_utf8(name).map_err(|_| DecodeError::InvalidHostname)?;
        validate_hostname(hostname).map_err(|_| DecodeError::InvalidHostname)?;
        let mut beacon = Beacon {
            instance,
            sequence,
            goodbye: flags & FLAG_GOODBYE != 0,
            migrating: flags & FLAG_MIGRATING != 0,
            answer: flags & FLAG_ANSWER != 0,
            hostname: hostname.to_owned(),
            ttl: None,
            timestamp: None,
            tags: Tags::new(),
            peers: Vec::new(),
            auth: None,
        };
        read_extensions(reader, &mut beacon)?;
        Ok(beacon)
    }
}

/// Appends one extension field. `value` is at most a few hundred bytes (the config checks that
/// tags fit a beacon).
fn push_extension(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    out.push(kind);
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// Extension fields: `type: u8, length: u16 (big-endian), value: [u8; length]`, repeated to the
/// end of the datagram. Unknown types are skipped, but every field must be framed correctly, so
/// garbage after a valid header is still refused; a known field must have its length, come at
/// most once, and the authentication field must be the last.
fn read_extensions(mut reader: Reader<'_>, beacon: &mut Beacon) -> Result<(), DecodeError> {
    let malformed = |_| DecodeError::MalformedExtension;
    while !reader.0.is_empty() {
        if beacon.auth.is_some() {
            return Err(DecodeError::MalformedExtension);
        }
        let kind = reader.u8().map_err(malformed)?;
        let len = reader.u16().map_err(malformed)?;
        let mut value = Reader(reader.take(usize::from(len)).map_err(malformed)?);
        match kind {
            EXT_TTL if len == 4 && beacon.ttl.is_none() => {
                let millis = value.u32().map_err(malformed)?;
                beacon.ttl = Some(Duration::from_millis(u64::from(millis)));
            }
            EXT_TIMESTAMP if len == 8 && beacon.timestamp.is_none() => {
                beacon.timestamp = Some(value.u64().map_err(malformed)?);
            }
            EXT_TAGS if beacon.tags.is_empty() && len > 0 => {
                beacon.tags = tags::decode(value.0).ok_or(DecodeError::MalformedExtension)?;
            }
            EXT_PEERS if beacon.peers.is_empty() && len > 0 => {
                beacon.peers = decode_peers(value)?;
            }
            EXT_AUTH if usize::from(len) == AUTH_VALUE_LEN => {
                let key_id = value.u32().map_err(malformed)?;
                let mut tag = [0; TAG_LEN];
                tag.copy_from_slice(value.take(TAG_LEN).map_err(malformed)?);
                beacon.auth = Some(AuthTag { key_id, tag });
            }
            EXT_TTL | EXT_TIMESTAMP | EXT_TAGS | EXT_PEERS | EXT_AUTH => {
                return Err(DecodeError::MalformedExtension);
            }
            _ => {} // a later addition: skipped
        }
    }
    Ok(())
}

/// The value of the peers field: each address as its family (4 or 6), its bytes and its port.
fn encode_peers(peers: &[SocketAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(peers.len() * PEER_V4_LEN);
    for peer in peers {
        match peer.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&peer.port().to_be_bytes());
    }
    out
}

/// The addresses of a peers field; an unknown family or a cut entry makes it malformed.
fn decode_peers(mut value: Reader<'_>) -> Result<Vec<SocketAddr>, DecodeError> {
    let malformed = |_| DecodeError::MalformedExtension;
    let mut peers = Vec::new();
    while !value.0.is_empty() {
        let ip = match value.u8().map_err(malformed)? {
            4 => {
                let mut b = [0; 4];
                b.copy_from_slice(value.take(4).map_err(malformed)?);
                IpAddr::V4(Ipv4Addr::from(b))
            }
            6 => {
                let mut b = [0; 16];
                b.copy_from_slice(value.take(16).map_err(malformed)?);
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return Err(DecodeError::MalformedExtension),
        };
        let port = value.u16().map_err(malformed)?;
        peers.push(SocketAddr::new(ip, port));
    }
    Ok(peers)
}

/// A cursor over the unread bytes; every read checks the length first.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let mut b = [0; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Beacon {
        Beacon {
            instance: 0x0123_4567_89ab_cdef,
            sequence: 42,
            goodbye: false,
            hostname: "node-1".into(),
            ..Beacon::default()
        }
    }

    /// The test vector of docs/wire-format.md; if this changes, the wire format changed.
    #[test]
    fn encodes_the_documented_test_vector() {
        let bytes = sample().encode();
        let expected: &[u8] = &[
            0x50, 0x45, 0x45, 0x52, // "PEER"
            0x01, // version
            0x00, // flags
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, // instance
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // sequence 42
            0x06, // hostname length
            b'n', b'o', b'd', b'e', b'-', b'1',
        ];
        assert_eq!(bytes, expected);
        assert_eq!(Beacon::decode(expected), Ok(sample()));
    }

    /// The tags field of docs/wire-format.md.
    #[test]
    fn encodes_tags_as_documented_and_refuses_broken_ones() {
        let tagged = Beacon {
            tags: [("role".to_owned(), "db".to_owned())].into(),
            ..sample()
        };
        let bytes = tagged.encode();
        let field = &bytes[sample().encode().len()..];
        assert_eq!(field, b"\x04\x00\x08\x04role\x02db");
        assert_eq!(Beacon::decode(&bytes), Ok(tagged));
        let mut broken = sample().encode();
        broken.extend_from_slice(b"\x04\x00\x06\x04r le\x00");
        assert_eq!(
            Beacon::decode(&broken),
            Err(DecodeError::MalformedExtension)
        );
    }

    #[test]
    fn goodbye_flag_round_trips() {
        let bye = Beacon {
            goodbye: true,
            ..sample()
        };
        let bytes = bye.encode();
        assert_eq!(bytes[5], 0x01);
        assert_eq!(Beacon::decode(&bytes), Ok(bye));
    }

    #[test]
    fn rejects_foreign_truncated_and_oversized_datagrams() {
        let good = sample().encode();
        assert_eq!(Beacon::decode(b""), Err(DecodeError::NotABeacon));
        assert_eq!(
            Beacon::decode(b"GET / HTTP/1.1"),
            Err(DecodeError::NotABeacon)
        );
        for cut in 4..good.len() {
            assert_eq!(
                Beacon::decode(&good[..cut]),
                Err(DecodeError::Truncated),
                "cut at {cut}"
            );
        }
        let mut huge = good.clone();
        huge.resize(MAX_BEACON_LEN + 1, 0);
        assert_eq!(Beacon::decode(&huge), Err(DecodeError::Oversized));
    }

    #[test]
    fn rejects_other_versions() {
        let mut bytes = sample().encode();
        bytes[4] = 2;
        assert_eq!(
            Beacon::decode(&bytes),
            Err(DecodeError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn rejects_invalid_hostnames() {
        for bad in ["", "under_score", "sp ace", "dollar$", "ünï"] {
            let mut bytes = sample().encode();
            bytes.truncate(HEADER_LEN - 1);
            bytes.push(bad.len() as u8);
            bytes.extend_from_slice(bad.as_bytes());
            assert_eq!(
                Beacon::decode(&bytes),
                Err(DecodeError::InvalidHostname),
                "{bad:?}"
            );
        }
        assert!(validate_hostname(&"a".repeat(253)).is_ok());
        assert!(validate_hostname(&"a".repeat(254)).is_err());
    }

    #[test]
    fn skips_well_framed_extensions_and_refuses_broken_ones() {
        let mut bytes = sample().encode();
        bytes.extend_from_slice(&[0x07, 0x00, 0x02, 0xaa, 0xbb]);
        assert_eq!(Beacon::decode(&bytes), Ok(sample()));
        bytes.extend_from_slice(&[0x08, 0x00, 0x05, 0xaa]);
        assert_eq!(Beacon::decode(&bytes), Err(DecodeError::MalformedExtension));
    }

    #[test]
    fn unknown_flag_bits_are_ignored() {
        let mut bytes = sample().encode();
        bytes[5] = 0b1000_0000;
        assert_eq!(Beacon::decode(&bytes), Ok(sample()));
    }

    fn hostname() -> impl Strategy<Value = String> {
        "[A-Za-z0-9.-]{1,253}"
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(instance: u64, sequence: u64, goodbye: bool, hostname in hostname()) {
            let beacon = Beacon { instance, sequence, goodbye, hostname, ..Beacon::default() };
            let bytes = beacon.encode();
            prop_assert!(bytes.len() <= MAX_BEACON_LEN);
            prop_assert_eq!(Beacon::decode(&bytes), Ok(beacon));
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Beacon::decode(&bytes);
        }

        #[test]
        fn mutated_beacons_decode_without_panic(
            hostname in hostname(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = Beacon { instance: 1, sequence: 2, hostname, ..Beacon::default() }.encode();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = Beacon::decode(&bytes);
        }
    }
}
