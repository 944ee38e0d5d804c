//! Authenticated beacons: the keys read from secret files, signing and constant-time verifying
//! with HMAC-SHA256 (RustCrypto). Which beacons to accept is `node::admission`'s to say, not
//! this module's.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::beacon::{AUTH_VALUE_LEN, AuthTag, EXT_AUTH, TAG_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: 16 bytes is 128 bits when random, and anything shorter is more
/// likely a typo or a password than a key.
pub const MIN_SECRET_LEN: usize = 16;

/// One key: the secret, ready to MAC with, and the id that names it on the wire.
#[derive(Clone)]
struct Key {
    id: u32,
    mac: HmacSha256,
}

/// The keys an agent holds. The first signs; every one verifies, so a key can be rotated with no
/// downtime: install the new one everywhere as a second key, make it first, drop the old one.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring of these secrets, in order. Each is at least [`MIN_SECRET_LEN`] bytes (see
    /// [`read_secret`]).
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Keyring {
        let keys = secrets
            .iter()
            .map(|secret| {
                let mac = HmacSha256::new_from_slice(secret.as_ref())
                    .expect("HMAC takes keys of any length");
                Key {
                    id: key_id(&mac),
                    mac,
                }
            })
            .collect();
        Keyring { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids of the keys, the signing one first, as 8 hex digits: safe to show, they say
    /// which key is which without saying anything about it.
    pub fn ids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| format!("{:08x}", key.id))
            .collect()
    }

    /// Appends the authentication field to an encoded beacon: the key id of the first key and
    /// the HMAC over every byte before the HMAC. Does nothing to a keyring without keys.
    pub fn sign(&self, beacon: &mut Vec<u8>) {
        let Some(key) = self.keys.first() else {
            return;
        };
        beacon.push(EXT_AUTH);
        let len = u16::try_from(AUTH_VALUE_LEN).expect("36 fits");
        beacon.extend_from_slice(&len.to_be_bytes());
        beacon.extend_from_slice(&key.id.to_be_bytes());
        let mut mac = key.mac.clone();
        mac.update(beacon);
        beacon.extend_from_slice(&mac.finalize().into_bytes());
    }

    /// Checks the tag of a decoded beacon (`bytes` is the whole datagram it came from) in
    /// constant time.
    pub fn verify(&self, bytes: &[u8], auth: &AuthTag) -> Result<(), AuthError> {
        let key = self
            .keys
            .iter()
            .find(|key| key.id == auth.key_id)
            .ok_or(AuthError::UnknownKey(auth.key_id))?;
        let signed = bytes.len().checked_sub(TAG_LEN).ok_or(AuthError::BadTag)?;
        let mut mac = key.mac.clone();
        mac.update(&bytes[..signed]);
        mac.verify_slice(&auth.tag).map_err(|_| AuthError::BadTag)
    }
}

/// Key ids only: a secret never reaches a log line, `/v1/status` or an error.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.ids())
            .finish()
    }
}

impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        self.keys.len() == other.keys.len()
            && self.keys.iter().zip(&other.keys).all(|(a, b)| a.id == b.id)
    }
}

/// The first 4 bytes of the key's HMAC of a fixed label: derived, so nobody numbers keys by
/// hand, and one-way, so the id tells nothing about the key.
fn key_id(mac: &HmacSha256) -> u32 {
    let mut mac = mac.clone();
    mac.update(b"peerd key id");
    let digest = mac.finalize().into_bytes();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Why a signed beacon is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Signed with a key this agent does not hold.
    UnknownKey(u32),
    /// The tag does not match: forged, corrupted, or a byte changed on the way.
    BadTag,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::UnknownKey(id) => write!(f, "signed with unknown key {id:08x}"),
            AuthError::BadTag => write!(f, "authentication tag does not verify"),
        }
    }
}

/// A secret as read from its file, and whether others could read that file too.
pub struct Secret {
    pub bytes: Vec<u8>,
    /// The file's mode lets its group or everyone read it: worth a warning, not a refusal.
    pub readable_by_others: bool,
}

/// The most a secret file may hold. A secret is 16 bytes or more, and the recipe below makes a
/// 45-byte line; 4 KiB is far beyond any key a person makes, while a wrong path (a log file, a
/// disk image) costs one small read instead of its whole size in memory.
pub const MAX_SECRET_FILE_LEN: u64 = 4096;

/// Reads a secret file: its bytes are the key, less trailing whitespace (so `echo` and editors
/// that add a newline do no harm). Generate one with `head -c 32 /dev/urandom | base64`.
///
/// Only a regular file of at most [`MAX_SECRET_FILE_LEN`] bytes is read. The type is checked
/// on the opened file, so the file checked is the file read; the open does not block, so a
/// FIFO with no writer is refused at once instead of hanging the start.
pub fn read_secret(path: &Path) -> Result<Secret, SecretError> {
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let unreadable = |err: std::io::Error| match err.kind() {
        std::io::ErrorKind::NotFound => SecretError::Missing(path.to_owned()),
        kind => SecretError::Unreadable(path.to_owned(), kind),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if let Some(kind) = not_regular(&meta.file_type()) {
        return Err(SecretError::NotAFile(path.to_owned(), kind));
    }
    // The size may change after the fstat: the read is bounded whatever it said.
    let too_large = || SecretError::TooLarge(path.to_owned());
    if meta.len() > MAX_SECRET_FILE_LEN {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(too_large());
    }
    let kept = bytes.trim_ascii_end().len();
    bytes.truncate(kept);
    if bytes.is_empty() {
        return Err(SecretError::Empty(path.to_owned()));
    }
    if bytes.len() < MIN_SECRET_LEN {
        return Err(SecretError::TooShort(path.to_owned(), bytes.len()));
    }
    Ok(Secret {
        bytes,
        readable_by_others: meta.permissions().mode() & 0o044 != 0,
    })
}

/// What a file that is not a regular one is, for the error; `None` for a regular file.
fn not_regular(file_type: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kinds = [
        (file_type.is_dir(), "a directory"),
        (file_type.is_fifo(), "a FIFO"),
        (file_type.is_char_device(), "a character device"),
        (file_type.is_block_device(), "a block device"),
        (file_type.is_socket(), "a socket"),
    ];
    if file_type.is_file() {
        return None;
    }
    Some(
        kinds
            .iter()
            .find(|(is, _)| *is)
            .map_or("not a file", |(_, what)| what),
    )
}

/// Why a secret file cannot be used. Names the file, never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// Nothing at that path.
    Missing(PathBuf),
    /// There, but it cannot be opened or read: permissions, most likely.
    Unreadable(PathBuf, std::io::ErrorKind),
    /// A directory, a FIFO, a device or a socket: what it is.
    NotAFile(PathBuf, &'static str),
    /// Over [`MAX_SECRET_FILE_LEN`] bytes: not a key file.
    TooLarge(PathBuf),
    Empty(PathBuf),
    TooShort(PathBuf, usize),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Missing(path) => {
                write!(f, "secret file {}: no such file", path.display())
            }
            SecretError::Unreadable(path, kind) => {
                write!(f, "cannot read secret file {}: {kind}", path.display())
            }
            SecretError::NotAFile(path, what) => write!(
                f,
                "secret file {} is not a regular file ({what}): give the path of a file holding the secret",
                path.display()
            ),
            SecretError::TooLarge(path) => write!(
                f,
                "secret file {} is larger than {MAX_SECRET_FILE_LEN} bytes: a secret is {MIN_SECRET_LEN} to {MAX_SECRET_FILE_LEN} bytes; is it the right file?",
                path.display()
            ),
            SecretError::Empty(path) => write!(f, "secret file {} is empty", path.display()),
            SecretError::TooShort(path, len) => write!(
                f,
                "secret file {} holds {len} bytes; use at least {MIN_SECRET_LEN} (e.g. `head -c 32 /dev/urandom | base64 > {}`)",
                path.display(),
                path.display()
            ),
        }
    }
}

impl std::error::Error for SecretError {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wire::beacon::Beacon;

    const SECRET: &[u8] = b"peerd test vector secret";

    fn sample() -> Beacon {
        Beacon {
            instance: 0x0123_4567_89ab_cdef,
            sequence: 42,
            hostname: "node-1".into(),
            ttl: Some(Duration::from_secs(35)),
            timestamp: Some(1_796_000_000_000),
            ..Beacon::default()
        }
    }

    fn signed(keyring: &Keyring) -> Vec<u8> {
        let mut bytes = sample().encode();
        keyring.sign(&mut bytes);
        bytes
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The signed test vector of docs/wire-format.md; if this changes, the wire format changed.
    #[test]
    fn signs_the_documented_test_vector() {
        let keyring = Keyring::new(&[SECRET]);
        assert_eq!(keyring.ids(), ["d5bcbea8"]);
        // Computed independently with Python's hmac and hashlib.
        let expected = "50454552010001234567\
                        89abcdef000000000000\
                        002a066e6f64652d3101\
                        0004000088b802000800\
                        0001a229f12800030024\
                        d5bcbea83a97dabd7031\
                        132136a6a6670dbce933\
                        4c690e1c81d547b0aadf\
                        668a7f4ca315";
        assert_eq!(hex(&signed(&keyring)), expected);
    }

    #[test]
    fn verifies_its_own_tags_and_refuses_any_flipped_bit() {
        let keyring = Keyring::new(&[SECRET]);
        let bytes = signed(&keyring);
        let beacon = Beacon::decode(&bytes).expect("valid");
        let auth = beacon.auth.expect("signed");
        assert_eq!(keyring.verify(&bytes, &auth), Ok(()));
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let verdict = match Beacon::decode(&flipped) {
                Err(_) => continue, // refused before any tag is checked
                Ok(Beacon { auth: None, .. }) => continue,
                Ok(Beacon {
                    auth: Some(auth), ..
                }) => keyring.verify(&flipped, &auth),
            };
            assert!(verdict.is_err(), "bit {bit} flipped and still verified");
        }
    }

    #[test]
    fn the_first_key_signs_and_every_key_verifies() {
        let (old, new) = (b"the old secret, 24 bytes".as_slice(), SECRET);
        let rotating = Keyring::new(&[new, old]);
        let old_only = Keyring::new(&[old]);
        let new_only = Keyring::new(&[new]);
        let from_old = signed(&old_only);
        let from_rotating = signed(&rotating);
        let verify = |keyring: &Keyring, bytes: &[u8]| {
            let auth = Beacon::decode(bytes).expect("valid").auth.expect("signed");
            keyring.verify(bytes, &auth)
        };
        assert_eq!(verify(&rotating, &from_old), Ok(()));
        assert_eq!(verify(&new_only, &from_rotating), Ok(()));
        assert!(matches!(
            verify(&old_only, &from_rotating),
            Err(AuthError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_wrong_key_with_the_right_id_does_not_verify() {
        let keyring = Keyring::new(&[SECRET]);
        let mut bytes = signed(&keyring);
        let n = bytes.len();
        bytes[n - TAG_LEN..].copy_from_slice(&[0; TAG_LEN]);
        let auth = Beacon::decode(&bytes).expect("valid").auth.expect("signed");
        assert_eq!(keyring.verify(&bytes, &auth), Err(AuthError::BadTag));
    }

    #[test]
    fn debug_shows_key_ids_never_secrets() {
        let shown = format!("{:?}", Keyring::new(&[SECRET]));
        assert!(shown.contains("d5bcbea8"), "{shown}");
        assert!(!shown.contains("vector"), "{shown}");
    }

    #[test]
    fn secret_files_must_hold_a_real_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("peerd-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let write = |name: &str, content: &[u8], mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, content).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path
        };
        let good = read_secret(&write("good", b"0123456789abcdef0123\n", 0o600)).expect("ok");
        assert_eq!(good.bytes, b"0123456789abcdef0123");
        assert!(!good.readable_by_others);
        let shared = read_secret(&write("shared", b"0123456789abcdef", 0o644)).expect("ok");
        assert!(shared.readable_by_others);
        assert!(matches!(
            read_secret(&write("empty", b"\n", 0o600)),
            Err(SecretError::Empty(_))
        ));
        let short = read_secret(&write("short", b"hunter2", 0o600));
        assert!(matches!(short, Err(SecretError::TooShort(_, 7))));
        let message = short.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(matches!(
            read_secret(&dir.join("missing")),
            Err(SecretError::Missing(_))
        ));
        let missing = read_secret(&dir.join("missing"))
            .err()
            .map(|e| e.to_string());
        assert!(
            missing
                .as_deref()
                .is_some_and(|m| m.ends_with("missing: no such file")),
            "{missing:?}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = std::env::temp_dir().join(format!("peerd-secret-kinds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let largest = dir.join("largest");
        std::fs::write(&largest, "k".repeat(4096)).expect("write");
        assert_eq!(
            read_secret(&largest).expect("4 KiB is fine").bytes.len(),
            4096
        );
        let large = dir.join("large");
        std::fs::write(&large, "k".repeat(4097)).expect("write");
        let refused = read_secret(&large).err();
        assert_eq!(refused, Some(SecretError::TooLarge(large.clone())));
        let message = refused.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("larger than 4096 bytes"), "{message}");
        assert!(!message.contains("kkkk"), "{message}");

        assert_eq!(
            read_secret(Path::new("/dev/null")).err(),
            Some(SecretError::NotAFile(
                "/dev/null".into(),
                "a character device"
            ))
        );
        assert_eq!(
            read_secret(&dir).err(),
            Some(SecretError::NotAFile(dir.clone(), "a directory"))
        );
        // A FIFO with no writer: opening it to read would wait for one, forever.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(read_secret(&path).err()));
        let read = rx.recv_timeout(Duration::from_secs(5));
        assert_eq!(
            read,
            Ok(Some(SecretError::NotAFile(fifo, "a FIFO"))),
            "a FIFO must be refused at once"
        );
        let message = SecretError::NotAFile("/run/x".into(), "a FIFO").to_string();
        assert_eq!(
            message,
            "secret file /run/x is not a regular file (a FIFO): give the path of a file holding the secret"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
