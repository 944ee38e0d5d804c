//! Tags: the `KEY=VALUE` labels a node announces with its beacons (`--tag`), their rules, their
//! bytes in the beacon's tags field, and matching them against filters. Pure; no I/O.

use std::collections::BTreeMap;
use std::fmt;

/// A node's tags, sorted by key: each key once.
pub type Tags = BTreeMap<String, String>;

/// Longest key: enough for `role`, `zone`, `rack`, `k8s.node-pool`.
pub const MAX_KEY_LEN: usize = 32;
/// Longest value: enough for a version, a zone, a short URL path or an image tag.
pub const MAX_VALUE_LEN: usize = 64;

/// Why a tag is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTag(pub String);

impl fmt::Display for InvalidTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid tag: use KEY=VALUE, KEY 1 to {MAX_KEY_LEN} of A-Z a-z 0-9 _ . -, \
             VALUE 0 to {MAX_VALUE_LEN} of those and : / @ +",
            self.0
        )
    }
}

impl std::error::Error for InvalidTag {}

fn key_ok(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn value_ok(value: &str) -> bool {
    value.len() <= MAX_VALUE_LEN
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':' | b'/' | b'@' | b'+')
        })
}

/// Parses one `KEY=VALUE` (the value may be empty).
pub fn parse(tag: &str) -> Result<(String, String), InvalidTag> {
    let invalid = || InvalidTag(tag.to_owned());
    let (key, value) = tag.split_once('=').ok_or_else(invalid)?;
    if key_ok(key) && value_ok(value) {
        Ok((key.to_owned(), value.to_owned()))
    } else {
        Err(invalid())
    }
}

/// The tags field's value: for each tag in key order, key length (1), key, value length (1),
/// value.
pub fn encode(tags: &Tags) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in tags {
        // Lossless: keys and values are at most 64 bytes (checked when they were made).
        out.push(key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Reads a tags field's value; `None` if it is not one: truncated, a key or value outside the
/// rules, keys out of order or repeated.
pub fn decode(mut bytes: &[u8]) -> Option<Tags> {
    let mut tags = Tags::new();
    let take = |bytes: &mut &[u8]| -> Option<String> {
        let (&len, rest) = bytes.split_first()?;
        let len = usize::from(len);
        if rest.len() < len {
            return None;
        }
        let (text, rest) = rest.split_at(len);
        *bytes = rest;
        String::from_utf8(text.to_vec()).ok()
    };
    while !bytes.is_empty() {
        let key = take(&mut bytes).filter(|key| key_ok(key))?;
        let value = take(&mut bytes).filter(|value| value_ok(value))?;
        if tags.last_key_value().is_some_and(|(last, _)| *last >= key) {
            return None; // out of order or repeated: not what any agent sends
        }
        tags.insert(key, value);
    }
    Some(tags)
}

/// Whether `tags` has every `filter` pair, exactly.
pub fn matches(tags: &Tags, filter: &[(String, String)]) -> bool {
    filter
        .iter()
        .all(|(key, value)| tags.get(key) == Some(value))
}

/// `k=v,k2=v2`, for tables, logs and hook environments.
pub fn display(tags: &Tags) -> String {
    tags.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_keys_and_values_within_the_rules() {
        assert_eq!(parse("role=db"), Ok(("role".into(), "db".into())));
        assert_eq!(parse("empty="), Ok(("empty".into(), "".into())));
        assert_eq!(
            parse("img=registry/app:1.2+b@x"),
            Ok(("img".into(), "registry/app:1.2+b@x".into()))
        );
        for bad in [
            "novalue", "=v", "sp ace=v", "k=v w", "k=a,b", "k=a=b", "ü=v",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("{}=v", "k".repeat(MAX_KEY_LEN))).is_ok());
        assert!(parse(&format!("{}=v", "k".repeat(MAX_KEY_LEN + 1))).is_err());
        assert!(parse(&format!("k={}", "v".repeat(MAX_VALUE_LEN + 1))).is_err());
    }

    #[test]
    fn round_trips_and_refuses_what_no_agent_sends() {
        let t = tags(&[("role", "db"), ("zone", "eu-1")]);
        let bytes = encode(&t);
        assert_eq!(bytes, b"\x04role\x02db\x04zone\x04eu-1");
        assert_eq!(decode(&bytes), Some(t));
        assert_eq!(decode(b""), Some(Tags::new()));
        assert_eq!(decode(b"\x04zone\x01a\x04role\x01b"), None, "out of order");
        assert_eq!(decode(b"\x04role\x01a\x04role\x01b"), None, "repeated");
        assert_eq!(decode(b"\x04role\x05db"), None, "truncated");
        assert_eq!(decode(b"\x02r \x01a"), None, "bad key");
    }

    #[test]
    fn a_filter_matches_when_every_pair_is_there_exactly() {
        let t = tags(&[("role", "db"), ("zone", "eu-1")]);
        let want = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(matches(&t, &[]));
        assert!(matches(&t, &want(&[("role", "db")])));
        assert!(matches(&t, &want(&[("role", "db"), ("zone", "eu-1")])));
        assert!(!matches(&t, &want(&[("role", "d")])));
        assert!(!matches(&t, &want(&[("role", "db"), ("rack", "1")])));
        assert_eq!(display(&t), "role=db,zone=eu-1");
    }
}
