//! The beacon wire format, version 1: pure encoding and decoding over bytes.
//! No sockets here; docs/wire-format.md documents the layout byte by byte.

use std::fmt;

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

/// One announcement: "this host is alive" (or, with `goodbye`, "this host is leaving").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// Random per process start, so receivers can tell a restart from a renewal.
    pub instance: u64,
    /// Counts up from 0 per instance; lets receivers drop duplicated or reordered beacons.
    pub sequence: u64,
    /// The sender is shutting down.
    pub goodbye: bool,
    /// 1..=253 bytes of ASCII letters, digits, `-` and `.`.
    pub hostname: String,
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
    /// An extension field's length runs past the end of the datagram.
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
pub struct InvalidHostname(pub String);

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
    /// Encodes the beacon. The hostname must satisfy [`validate_hostname`] (the agent checks it
    /// once at start-up), so the result always fits in [`MAX_BEACON_LEN`].
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(validate_hostname(&self.hostname).is_ok());
        let name = self.hostname.as_bytes();
        let name_len = name.len().min(MAX_HOSTNAME_LEN);
        let mut out = Vec::with_capacity(HEADER_LEN + name_len);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(if self.goodbye { FLAG_GOODBYE } else { 0 });
        out.extend_from_slice(&self.instance.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        // Lossless: name_len <= 253.
        out.push(name_len as u8);
        out.extend_from_slice(&name[..name_len]);
        out
    }

    /// Decodes one datagram. Never panics, whatever the bytes.
    ///
    /// Unknown flag bits are ignored and extension fields after the hostname are skipped, so a
    /// later minor addition (tags, an authentication tag) does not cut off agents of this version.
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
        skip_extensions(reader)?;
        Ok(Beacon {
            instance,
            sequence,
            goodbye: flags & FLAG_GOODBYE != 0,
            hostname: hostname.to_owned(),
        })
    }
}

/// Extension fields: `type: u8, length: u16 (big-endian), value: [u8; length]`, repeated to the
/// end of the datagram. Version 1 defines none and skips them all, but insists they are framed
/// correctly so that garbage after a valid header is still refused.
fn skip_extensions(mut reader: Reader<'_>) -> Result<(), DecodeError> {
    while !reader.0.is_empty() {
        let framed = reader.u8().and_then(|_type| reader.u16()).and_then(|len| {
            reader.take(usize::from(len))?;
            Ok(())
        });
        framed.map_err(|_| DecodeError::MalformedExtension)?;
    }
    Ok(())
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
            let beacon = Beacon { instance, sequence, goodbye, hostname };
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
            let mut bytes = Beacon { instance: 1, sequence: 2, goodbye: false, hostname }.encode();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = Beacon::decode(&bytes);
        }
    }
}
