//! Arbitrary bytes into `Beacon::decode`: it must never panic, and whatever it accepts must
//! re-encode to the bytes it came from (less unknown flag bits, unknown extension fields and
//! the authentication field, which `encode` never writes), which decode to the same beacon.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerd::wire::beacon::{Beacon, HEADER_LEN};

/// The flags byte's offset, and the bits of it version 1 defines (goodbye, migrating).
const FLAGS_AT: usize = 5;
const KNOWN_FLAGS: u8 = 0b0000_0011;

fuzz_target!(|data: &[u8]| {
    let Ok(beacon) = Beacon::decode(data) else {
        return;
    };
    let encoded = beacon.encode();
    let unsigned = Beacon {
        auth: None,
        ..beacon.clone()
    };
    assert_eq!(
        Beacon::decode(&encoded).as_ref(),
        Ok(&unsigned),
        "a decoded beacon must survive a round trip"
    );
    // Encoding is canonical: the header and hostname exactly as received, then only the known
    // fields, reserved flag bits cleared. A decoder that accepted a byte it then ignored shows
    // here.
    let len = HEADER_LEN + beacon.hostname.len();
    let tags = if beacon.tags.is_empty() {
        0
    } else {
        3 + peerd::wire::tags::encode(&beacon.tags).len()
    };
    let fields = beacon.ttl.map_or(0, |_| 7) + beacon.timestamp.map_or(0, |_| 11) + tags;
    assert_eq!(
        encoded.len(),
        len + fields,
        "header, hostname, known fields"
    );
    assert_eq!(encoded[..FLAGS_AT], data[..FLAGS_AT]);
    assert_eq!(encoded[FLAGS_AT], data[FLAGS_AT] & KNOWN_FLAGS);
    assert_eq!(encoded[FLAGS_AT + 1..len], data[FLAGS_AT + 1..len]);
});
