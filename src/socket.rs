//! The multicast socket, the one place that touches socket2: options, bind, group membership.
//! It hands back a tokio socket; sending and receiving belong to the agent.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use anyhow::Context;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Binds a UDP socket that receives the group's datagrams on `interface` and sends to it from
/// there. Several agents on one host may bind the same group and port.
///
/// Must be called inside a tokio runtime.
pub fn bind_multicast(
    group: Ipv4Addr,
    port: u16,
    interface: Ipv4Addr,
    multicast_ttl: u32,
) -> anyhow::Result<tokio::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .context("creating a UDP socket")?;
    // SO_REUSEADDR is what lets several agents (any user's) share the port on Linux, and each
    // still gets every group datagram. SO_REUSEPORT adds sharing with programs that set only it
    // (the BSD habit for multicast receivers); Linux allows that only between sockets of the
    // same effective user.
    socket
        .set_reuse_address(true)
        .context("setting SO_REUSEADDR")?;
    socket
        .set_reuse_port(true)
        .context("setting SO_REUSEPORT")?;
    // Bound to the group address, not 0.0.0.0, so unicast datagrams to the port never arrive.
    let bind = SocketAddr::V4(SocketAddrV4::new(group, port));
    socket
        .bind(&bind.into())
        .with_context(|| format!("binding UDP {bind}"))?;
    join(&socket, group, interface).with_context(|| {
        format!("joining multicast group {group} on interface {interface} (is that address on this host?)")
    })?;
    // Otherwise Linux delivers datagrams of any group another socket on the host joined.
    socket
        .set_multicast_all_v4(false)
        .context("turning IP_MULTICAST_ALL off")?;
    socket
        .set_multicast_ttl_v4(multicast_ttl)
        .context("setting the multicast TTL")?;
    // On: other agents on this host (one per container sharing a network namespace, or tests
    // on loopback) must hear us. Our own copies are dropped by instance id.
    socket
        .set_multicast_loop_v4(true)
        .context("enabling multicast loopback")?;
    socket
        .set_nonblocking(true)
        .context("making the socket non-blocking")?;
    tokio::net::UdpSocket::from_std(socket.into()).context("registering the socket with tokio")
}

/// Re-asserts the group membership and the sending interface, in case the interface went away
/// and came back (a container disconnected from its network and reconnected, a link replugged):
/// the kernel drops memberships with the old device, and the socket keeps its old index.
///
/// Returns `Ok(true)` when the membership had been lost and is now restored. One syscall when
/// nothing changed, so the agent calls it before every beacon.
pub fn refresh_membership(
    socket: &tokio::net::UdpSocket,
    group: Ipv4Addr,
    interface: Ipv4Addr,
) -> std::io::Result<bool> {
    match join(&SockRef::from(socket), group, interface) {
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Ok(false),
        Err(err) => Err(err),
        Ok(()) => Ok(true),
    }
}

/// Joins `group` on `interface` and sends from there. Fails with `AddrInUse`, changing nothing,
/// while the membership still holds.
fn join(socket: &Socket, group: Ipv4Addr, interface: Ipv4Addr) -> std::io::Result<()> {
    socket.join_multicast_v4(&group, &interface)?;
    // Explicit: without it the kernel picks the interface by route, and a container without
    // a default route gets "network unreachable".
    socket.set_multicast_if_v4(&interface)
}
