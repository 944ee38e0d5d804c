//! The doctor's one piece of I/O on the groups: it joins one as the agent does, sends a probe
//! beacon (and its goodbye) and records every datagram heard for the listening window; the
//! same for IPv4 and IPv6.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::config::{self, MIN_TIMING};
use crate::net::socket;
use crate::wire::beacon::{Beacon, DecodeError, MAX_BEACON_LEN};

/// The hostname the probe announces: agents list it from the probe to its goodbye, a moment.
pub const PROBE_HOSTNAME: &str = "peerd-doctor-probe";

/// One datagram heard on the group during the window.
#[derive(Debug, Clone)]
pub struct Heard {
    /// Since the probe went out.
    pub at: Duration,
    pub beacon: Result<Beacon, DecodeError>,
}

/// Joins the group on `address` as the agent does, sends the probe, and records every datagram
/// for `window`; also `/proc/net/igmp` as it reads while the probe socket is joined.
pub(super) async fn listen(
    group: Ipv4Addr,
    port: u16,
    address: Ipv4Addr,
    window: Duration,
    probe: u64,
) -> Result<(Vec<Heard>, Option<String>), String> {
    let socket = socket::bind_multicast(group, port, address, config::MULTICAST_TTL)
        .map_err(|err| format!("{err:#}"))?;
    let igmp = std::fs::read_to_string("/proc/net/igmp").ok();
    let heard = listen_on(&socket, SocketAddr::from((group, port)), window, probe).await?;
    Ok((heard, igmp))
}

/// [`listen`] on the IPv6 `group`, joined on the interface with `index`; with
/// `/proc/net/igmp6` as it reads while the probe socket is joined.
pub(super) async fn listen6(
    group: Ipv6Addr,
    port: u16,
    index: u32,
    window: Duration,
    probe: u64,
) -> Result<(Vec<Heard>, Option<String>), String> {
    let socket = socket::bind_multicast6(group, port, index, config::MULTICAST_TTL)
        .map_err(|err| format!("{err:#}"))?;
    let igmp6 = std::fs::read_to_string("/proc/net/igmp6").ok();
    let to = SocketAddr::V6(SocketAddrV6::new(group, port, 0, index));
    let heard = listen_on(&socket, to, window, probe).await?;
    Ok((heard, igmp6))
}

/// Sends the probe to `to` from `socket`, and records every datagram the socket hears for
/// `window`; says goodbye once the probe came back (or at the end).
async fn listen_on(
    socket: &tokio::net::UdpSocket,
    to: SocketAddr,
    window: Duration,
    probe: u64,
) -> Result<Vec<Heard>, String> {
    let mut beacon = Beacon {
        instance: probe,
        sequence: 0,
        hostname: PROBE_HOSTNAME.into(),
        // The shortest ttl agents take: should the goodbye be lost, the probe is gone soon.
        ttl: Some(MIN_TIMING),
        ..Beacon::default()
    };
    let start = tokio::time::Instant::now();
    socket
        .send_to(&beacon.encode(), to)
        .await
        .map_err(|err| format!("sending the probe to {to}: {err}"))?;
    let mut heard = Vec::new();
    let mut said_goodbye = false;
    // One byte more than a beacon may have, so an oversized datagram shows as one.
    let mut buf = [0u8; MAX_BEACON_LEN + 1];
    let deadline = start + window;
    while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        let (len, _) = received.map_err(|err| format!("receiving on {to}: {err}"))?;
        let decoded = Beacon::decode(&buf[..len]);
        let probe_back = decoded.as_ref().is_ok_and(|b| b.instance == probe);
        heard.push(Heard {
            at: start.elapsed(),
            beacon: decoded,
        });
        if probe_back && !said_goodbye {
            // Peers have heard the probe, and answer it early: it can leave their lists now.
            said_goodbye = true;
            beacon.sequence = 1;
            beacon.goodbye = true;
            // Best effort: unanswered, agents drop the probe after its short ttl anyway.
            let _ = socket.send_to(&beacon.encode(), to).await;
        }
    }
    if !said_goodbye {
        beacon.sequence = 1;
        beacon.goodbye = true;
        let _ = socket.send_to(&beacon.encode(), to).await;
    }
    Ok(heard)
}
