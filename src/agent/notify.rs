//! The systemd notify protocol (`sd_notify(3)`): `READY=1`, `STOPPING=1` and `WATCHDOG=1` as
//! datagrams to `$NOTIFY_SOCKET`. Knows nothing of the agent; `main` reads the environment.

use std::ffi::OsStr;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use anyhow::Context;
use tracing::debug;

/// The agent's socket has joined the group and its API listens.
pub const READY: &str = "READY=1";
/// The agent is stopping: its goodbye goes out next.
pub const STOPPING: &str = "STOPPING=1";
/// The agent's receiver is running (it sends these from its loop).
pub const WATCHDOG: &str = "WATCHDOG=1";

/// Sends notifications to the service manager. Never blocks: a message the manager's queue
/// has no room for is dropped (and logged at debug), as the next ping will do.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET` = `address`: a path, or an abstract-namespace name
    /// written with a leading `@`. `watchdog` is how often to ping (see [`watchdog_interval`]).
    pub fn connect(address: &OsStr, watchdog: Option<Duration>) -> anyhow::Result<Notifier> {
        let target = parse_address(address)
            .with_context(|| format!("NOTIFY_SOCKET={}", address.to_string_lossy()))?;
        let socket =
            UnixDatagram::unbound().context("opening a datagram socket for NOTIFY_SOCKET")?;
        // The agent's one thread must never wait on the service manager.
        socket
            .set_nonblocking(true)
            .context("making the NOTIFY_SOCKET socket non-blocking")?;
        Ok(Notifier {
            socket,
            target,
            watchdog,
        })
    }

    /// How often the agent must send [`WATCHDOG`], if the manager asked for pings.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message; returns whether it went out. A failure is not the agent's problem:
    /// the manager will say so if it missed something that mattered.
    pub fn send(&self, message: &str) -> bool {
        match self.socket.send_to_addr(message.as_bytes(), &self.target) {
            Ok(_) => true,
            Err(err) => {
                debug!(message, error = %err, "cannot notify the service manager");
                false
            }
        }
    }
}

/// `$NOTIFY_SOCKET` as a socket address: a path, or `@name` for Linux's abstract namespace.
fn parse_address(address: &OsStr) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = address.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)
        }
        None if bytes.starts_with(b"/") => SocketAddr::from_pathname(address),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "neither an absolute path nor an @abstract name",
        )),
    }
}

/// Why the watchdog variables were not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidWatchdog(String);

impl std::fmt::Display for InvalidWatchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidWatchdog {}

/// How often to send [`WATCHDOG`], from `$WATCHDOG_USEC` and `$WATCHDOG_PID` (as
/// `sd_watchdog_enabled(3)` reads them): half the timeout, so one late ping is not a restart.
/// `None` when no timeout is set or it is meant for another process (`pid` not ours).
pub fn watchdog_interval(
    usec: Option<&str>,
    pid: Option<&str>,
    our_pid: u32,
) -> Result<Option<Duration>, InvalidWatchdog> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    if let Some(pid) = pid {
        let pid: u32 = pid
            .trim()
            .parse()
            .map_err(|_| InvalidWatchdog(format!("WATCHDOG_PID={pid} is not a process id")))?;
        if pid != our_pid {
            return Ok(None);
        }
    }
    match usec.trim().parse::<u64>() {
        Ok(usec) if usec > 0 => Ok(Some(Duration::from_micros(usec) / 2)),
        _ => Err(InvalidWatchdog(format!(
            "WATCHDOG_USEC={usec} is not a positive number of microseconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_pings_at_half_the_timeout() {
        let half = watchdog_interval(Some("30000000"), None, 7);
        assert_eq!(half, Ok(Some(Duration::from_secs(15))));
        let ours = watchdog_interval(Some("200000"), Some("7"), 7);
        assert_eq!(ours, Ok(Some(Duration::from_millis(100))));
    }

    #[test]
    fn watchdog_is_off_without_a_timeout_or_for_another_process() {
        assert_eq!(watchdog_interval(None, None, 7), Ok(None));
        assert_eq!(watchdog_interval(None, Some("7"), 7), Ok(None));
        assert_eq!(watchdog_interval(Some("200000"), Some("8"), 7), Ok(None));
    }

    #[test]
    fn malformed_watchdog_variables_are_errors() {
        for (usec, pid) in [("0", None), ("-5", None), ("soon", None), ("", None)] {
            assert!(watchdog_interval(Some(usec), pid, 7).is_err(), "{usec:?}");
        }
        assert!(watchdog_interval(Some("200000"), Some("me"), 7).is_err());
    }

    #[test]
    fn messages_are_the_protocol_s_assignments() {
        assert_eq!(
            [READY, STOPPING, WATCHDOG],
            ["READY=1", "STOPPING=1", "WATCHDOG=1"]
        );
    }

    #[test]
    fn relative_addresses_are_refused() {
        assert!(Notifier::connect(OsStr::new("notify.sock"), None).is_err());
        assert!(Notifier::connect(OsStr::new(""), None).is_err());
    }

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 64];
        let len = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }

    #[test]
    fn sends_to_a_path() {
        let dir = std::env::temp_dir().join(format!("peerd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier::connect(path.as_os_str(), None).expect("connect");
        assert!(notifier.send(READY));
        assert_eq!(received(&manager), "READY=1");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn sends_to_an_abstract_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("peerd-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
        let manager = UnixDatagram::bind_addr(&address).expect("bind");
        let notifier = Notifier::connect(OsStr::new(&format!("@{name}")), None).expect("connect");
        assert!(notifier.send(STOPPING));
        assert_eq!(received(&manager), "STOPPING=1");
    }

    #[test]
    fn a_missing_manager_is_not_an_error() {
        let notifier =
            Notifier::connect(OsStr::new("/nonexistent/peerd/notify"), None).expect("connect");
        assert!(!notifier.send(WATCHDOG));
    }
}
