//! Arbitrary bytes into `Beacon::decode`: it must never panic, and whatever it accepts must
//! re-encode to the bytes it came from (less extension fields and unknown flag bits), which
//! decode to the same beacon.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerd::beacon::{Beacon, HEADER_LEN};

/// The flags byte's offset, and the one bit of it version 1 defines (goodbye).
const FLAGS_AT: usize = 5;
const KNOWN_FLAGS: u8 = 0b0000_0001;

fuzz_target!(|data: &[u8]| {
    let Ok(beacon) = Beacon::decode(data) else {
        return;
    };
    let encoded = beacon.encode();
    assert_eq!(
        Beacon::decode(&encoded).as_ref(),
        Ok(&beacon),
        "a decoded beacon must survive a round trip"
    );
    // Encoding is canonical: the header and hostname exactly as received, extensions dropped,
    // reserved flag bits cleared. A decoder that accepted a byte it then ignored shows here.
    let len = HEADER_LEN + beacon.hostname.len();
    assert_eq!(encoded.len(), len, "header and hostname, nothing else");
    assert_eq!(encoded[..FLAGS_AT], data[..FLAGS_AT]);
    assert_eq!(encoded[FLAGS_AT], data[FLAGS_AT] & KNOWN_FLAGS);
    assert_eq!(encoded[FLAGS_AT + 1..], data[FLAGS_AT + 1..len]);
});
