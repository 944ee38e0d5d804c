//! The agent's sockets, the one place that touches socket2: per address family, a group socket
//! (joined on each interface; IPv4's is bound to the group and hears only it, IPv6's hears the
//! port too, and says which each datagram came to) and a unicast socket (beacons go out from
//! it, to the group and to targets, and it hears what is sent to this node). It hands back
//! tokio sockets, and sends; receiving belongs to the agent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use std::os::fd::AsRawFd;

use anyhow::Context;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockRef, Socket, Type};

/// Receive buffer asked for: Linux doubles it for its bookkeeping, and the 2 MiB that results
/// hold a burst of some 2,000 beacons (about 1 KiB of kernel memory each), so a thousand peers
/// answering at once are not dropped. The default (208 KiB) holds about 200.
pub const RECEIVE_BUFFER: usize = 1024 * 1024;

/// Binds a UDP socket that receives the group's datagrams on `interface` and sends to it from
/// there: the doctor's probe. Several agents on one host may bind the same group and port.
///
/// Must be called inside a tokio runtime.
pub fn bind_multicast(
    group: Ipv4Addr,
    port: u16,
    interface: Ipv4Addr,
    multicast_ttl: u32,
) -> anyhow::Result<tokio::net::UdpSocket> {
    let socket = bind_group(SocketAddr::new(group.into(), port))?;
    socket.join_multicast_v4(&group, &interface).with_context(|| {
        format!("joining multicast group {group} on interface {interface} (is that address on this host?)")
    })?;
    socket.set_multicast_if_v4(&interface)?;
    group_options(&socket, multicast_ttl)?;
    receiving(socket)
}

/// Binds a UDP socket that receives the IPv6 `group`'s datagrams on the interface with `index`
/// and sends to it from there: the doctor's IPv6 probe. Bound to `[group%index]:port`, which
/// ties it to that interface, so it hears the group there and nothing sent to the port (what
/// peers answer the probe by unicast is a local agent's, as with IPv4).
///
/// Must be called inside a tokio runtime.
pub fn bind_multicast6(
    group: Ipv6Addr,
    port: u16,
    index: u32,
    multicast_ttl: u32,
) -> anyhow::Result<tokio::net::UdpSocket> {
    let bind = SocketAddr::V6(std::net::SocketAddrV6::new(group, port, 0, index));
    let socket = bind_group(bind)?;
    socket
        .join_multicast_v6(&group, index)
        .with_context(|| format!("joining multicast group {group} on interface index {index}"))?;
    socket
        .set_multicast_if_v6(index)
        .context("sending to the group from that interface")?;
    group_options(&socket, multicast_ttl)?;
    receiving(socket)
}

/// Binds the socket that hears `group` (of either family) on `port`, joined on no interface
/// yet: the agent joins it on each of its interfaces ([`join`]). Several agents on one host
/// may bind the same group and port.
///
/// An IPv4 one is bound to the group address, so unicast datagrams to the port never arrive
/// on it. An IPv6 group of link-local scope cannot be bound without naming one interface, so
/// an IPv6 one is bound to `[::]:port` and hears what is sent to this host's port too: each
/// datagram comes with its destination ([`Batch::got`]), which tells the two apart.
///
/// Must be called inside a tokio runtime.
pub fn bind_group_socket(
    group: IpAddr,
    port: u16,
    multicast_ttl: u32,
) -> anyhow::Result<tokio::net::UdpSocket> {
    let socket = match group {
        IpAddr::V4(_) => bind_group(SocketAddr::new(group, port))?,
        IpAddr::V6(_) => {
            let socket = bind_group(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))?;
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::Ipv6RecvPacketInfo,
                &true,
            )
            .context("asking for each datagram's destination (IPV6_RECVPKTINFO)")?;
            socket
        }
    };
    // The doctor's probe goes out from it; the agent sends from its unicast sockets.
    group_options(&socket, multicast_ttl)?;
    receiving(socket)
}

/// A socket bound to `bind` that several agents on one host may bind the same.
fn bind_group(bind: SocketAddr) -> anyhow::Result<Socket> {
    let socket = udp_socket(bind.ip())?;
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
    socket
        .bind(&bind.into())
        .with_context(|| format!("binding UDP {bind}"))?;
    Ok(socket)
}

/// A UDP socket of `family`'s family; an IPv6 one speaks IPv6 only, so that the agent's IPv4
/// socket of the same port is a socket of its own.
fn udp_socket(family: IpAddr) -> anyhow::Result<Socket> {
    let domain = match family {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    };
    let socket =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).context("creating a UDP socket")?;
    if family.is_ipv6() {
        socket.set_only_v6(true).context("setting IPV6_V6ONLY")?;
    }
    Ok(socket)
}

/// The group options every socket shares. IP_MULTICAST_ALL off: otherwise Linux delivers
/// datagrams of any group another socket on the host joined. What goes to the group stays on
/// the link (`multicast_ttl`, 1 by default, the hop limit in IPv6) and comes back over the
/// loop: other agents on this host hear it, and the group socket hears the agent's own beacons
/// (the proof it still hears the group; they are dropped by instance id), or the doctor's probe.
fn group_options(socket: &Socket, multicast_ttl: u32) -> anyhow::Result<()> {
    if socket.domain().ok() == Some(Domain::IPV6) {
        socket
            .set_multicast_all_v6(false)
            .context("turning IPV6_MULTICAST_ALL off")?;
        socket
            .set_multicast_hops_v6(multicast_ttl)
            .context("setting the multicast hop limit")?;
        return socket
            .set_multicast_loop_v6(true)
            .context("enabling multicast loopback");
    }
    socket
        .set_multicast_all_v4(false)
        .context("turning IP_MULTICAST_ALL off")?;
    socket
        .set_multicast_ttl_v4(multicast_ttl)
        .context("setting the multicast TTL")?;
    socket
        .set_multicast_loop_v4(true)
        .context("enabling multicast loopback")
}

/// Makes `socket` ready to receive bursts, and hands it to tokio: a large receive buffer, the
/// kernel's drop count with each datagram, non-blocking.
fn receiving(socket: Socket) -> anyhow::Result<tokio::net::UdpSocket> {
    // SO_RCVBUFFORCE goes past net.core.rmem_max, but only with CAP_NET_ADMIN; the caller
    // reads back what the kernel granted and warns when it is short.
    if nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::RcvBufForce,
        &RECEIVE_BUFFER,
    )
    .is_err()
    {
        socket
            .set_recv_buffer_size(RECEIVE_BUFFER)
            .context("setting the receive buffer size")?;
    }
    // The kernel then tells, with each datagram, how many it dropped for this socket so far:
    // the count comes with the reads the agent makes anyway. Only a count lost if it is refused.
    let _ = nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RxqOvfl, &1);
    socket
        .set_nonblocking(true)
        .context("making the socket non-blocking")?;
    tokio::net::UdpSocket::from_std(socket.into()).context("registering the socket with tokio")
}

/// Binds a socket beacons go out from, and what is sent to this node arrives on, in
/// `family`'s family: UDP `port` on every address (0: a port of the kernel's choosing, for an
/// agent that nobody targets), sending to the group with IP TTL (hop limit) `multicast_ttl`.
///
/// Bound beside the group socket of the same port (both set SO_REUSEADDR). It does not hear
/// the group: it joins none, and IP_MULTICAST_ALL is off. Unicast answers to a newcomer go to
/// the address its beacons come from, this socket's, so they reach the right agent even when
/// several share a host.
pub fn bind_unicast(
    family: IpAddr,
    port: u16,
    multicast_ttl: u32,
) -> anyhow::Result<tokio::net::UdpSocket> {
    let socket = udp_socket(family)?;
    if port != 0 {
        socket
            .set_reuse_address(true)
            .context("setting SO_REUSEADDR")?;
    }
    let any = match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let bind = SocketAddr::new(any, port);
    socket
        .bind(&bind.into())
        .with_context(|| format!("binding UDP {bind} for unicast beacons"))?;
    group_options(&socket, multicast_ttl)?;
    receiving(socket)
}

/// Points `socket`'s IPv4 group datagrams at the interface holding `interface`: explicit,
/// since without it the kernel picks the interface by route, and a container without a
/// default route gets "network unreachable". Set before each beacon to the group, as one
/// socket sends on each interface in turn (an IPv6 beacon names its interface in its
/// destination instead).
pub fn send_from(socket: &tokio::net::UdpSocket, interface: Ipv4Addr) -> std::io::Result<()> {
    SockRef::from(socket).set_multicast_if_v4(&interface)
}

/// [`send_from`] for IPv6, by the interface's index. A group of link-local scope is sent on
/// the interface its destination's scope names, but the kernel reads that scope only for such
/// a group: one of wider scope (`--group ff05::...`) would otherwise go out on one link alone.
pub fn send_from6(socket: &tokio::net::UdpSocket, index: u32) -> std::io::Result<()> {
    SockRef::from(socket).set_multicast_if_v6(index)
}

/// Joins `group` (of the socket's family) on the interface with `index`. Returns `Ok(true)`
/// when it was joined now, `Ok(false)` when the membership already held: one syscall either
/// way, so the agent can re-assert it often (the kernel drops a membership when its interface
/// goes away, and an interface that comes back has a new index). By index in both families:
/// the kernel keeps an IPv4 membership by its interface too, and an address that moved to
/// another interface, or changed on this one, would name the wrong membership.
pub fn join(socket: &tokio::net::UdpSocket, group: IpAddr, index: u32) -> std::io::Result<bool> {
    let socket = SockRef::from(socket);
    let joined = match group {
        IpAddr::V4(group) => {
            socket.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(index))
        }
        IpAddr::V6(group) => socket.join_multicast_v6(&group, index),
    };
    match joined {
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Ok(false),
        Err(err) => Err(err),
        Ok(()) => Ok(true),
    }
}

/// Leaves `group` on the interface with `index`, which the agent no longer uses. An interface
/// that is gone took the membership with it, so an error is no news.
pub fn leave(socket: &tokio::net::UdpSocket, group: IpAddr, index: u32) {
    let socket = SockRef::from(socket);
    let _ = match group {
        IpAddr::V4(group) => {
            socket.leave_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(index))
        }
        IpAddr::V6(group) => socket.leave_multicast_v6(&group, index),
    };
}

/// Sends `beacon` to `target` on `socket`. A target heard from lately is there: `confirm`
/// says so as the datagram goes (MSG_CONFIRM), so the kernel keeps its neighbour entry without
/// asking the link again by ARP or neighbour discovery.
pub async fn send_to(
    socket: &tokio::net::UdpSocket,
    beacon: &[u8],
    target: SocketAddr,
    confirm: bool,
) -> std::io::Result<()> {
    let flags = if confirm { nix::libc::MSG_CONFIRM } else { 0 };
    let send = || SockRef::from(socket).send_to_with_flags(beacon, &target.into(), flags);
    socket
        .async_io(tokio::io::Interest::WRITABLE, send)
        .await
        .map(|_| ())
}

/// Reads and discards every datagram queued on the socket; returns how many there were.
///
/// Straight to the kernel: tokio's own `try_recv_from` answers from the readiness it last saw,
/// and right after the process was stopped it has not seen the datagrams that queued meanwhile.
pub fn discard_queued(socket: &tokio::net::UdpSocket) -> u64 {
    let mut buf = [0u8; 1];
    let mut count = 0;
    // The socket is non-blocking: the first EAGAIN ends it. A datagram longer than `buf` is
    // truncated, which is all a discard needs.
    while nix::sys::socket::recv(
        socket.as_raw_fd(),
        &mut buf,
        nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    )
    .is_ok()
    {
        count += 1;
    }
    count
}

/// Datagrams asked for in one `recvmmsg(2)`.
pub const BATCH: usize = 32;

/// Room for one datagram of a batch: one byte more than a beacon may have, so an oversized
/// datagram shows as oversized instead of being silently cut to a valid-looking length.
pub type DatagramBuf = [u8; crate::wire::beacon::MAX_BEACON_LEN + 1];

/// What one `recvmmsg(2)` read: each datagram's length, sender and whether it was sent to a
/// group (known only where the socket asked for destinations: `None` otherwise), and the
/// kernel's count of datagrams it dropped for this socket (a full receive queue), as of the
/// latest datagram that carried it.
#[derive(Debug, Default)]
pub struct Batch {
    pub got: Vec<(usize, SocketAddr, Option<bool>)>,
    /// `None` until a datagram carries the count (the kernel attaches it once there are drops).
    pub drops: Option<u32>,
}

/// Reads up to [`BATCH`] queued datagrams with one `recvmmsg(2)`, into `bufs`, and puts each
/// one's length and sender in `batch` (cleared first). `WouldBlock` when none is queued, which
/// also tells tokio the socket is drained. One system call instead of one per datagram: at a
/// full queue, the call is most of what a datagram costs.
pub fn recv_batch(
    socket: &tokio::net::UdpSocket,
    bufs: &mut [DatagramBuf; BATCH],
    batch: &mut Batch,
) -> std::io::Result<()> {
    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
    };
    batch.got.clear();
    batch.drops = None;
    socket.try_io(tokio::io::Interest::READABLE, || {
        // Allocated per call: the kernel shrinks each header's control length to what it wrote,
        // and nix offers no way to restore it for a second call.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
            BATCH,
            Some(nix::cmsg_space!(u32, nix::libc::in6_pktinfo)),
        );
        let mut slices = bufs.each_mut().map(|buf| [std::io::IoSliceMut::new(buf)]);
        let received = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        for message in received {
            // An IPv6 sender keeps its scope: a link-local address names its interface. The
            // unspecified address stands in for one the kernel did not give.
            let address = message.address.as_ref();
            let from = match address.map(|a| (a.as_sockaddr_in(), a.as_sockaddr_in6())) {
                Some((Some(v4), _)) => SocketAddr::V4(SocketAddrV4::from(*v4)),
                Some((_, Some(v6))) => SocketAddr::V6(std::net::SocketAddrV6::from(*v6)),
                _ => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            };
            let mut to_group = None;
            if let Ok(cmsgs) = message.cmsgs() {
                for cmsg in cmsgs {
                    match cmsg {
                        ControlMessageOwned::RxqOvfl(drops) => batch.drops = Some(drops),
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            to_group = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr).is_multicast());
                        }
                        _ => {}
                    }
                }
            }
            batch.got.push((message.bytes, from, to_group));
        }
        Ok(())
    })
}

/// The receive buffer the kernel granted, in bytes.
pub fn receive_buffer(socket: &tokio::net::UdpSocket) -> Option<usize> {
    SockRef::from(socket).recv_buffer_size().ok()
}

/// Whether the kernel reports this socket's drops with its datagrams (see [`Batch::drops`]).
pub fn reports_drops(socket: &tokio::net::UdpSocket) -> bool {
    nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::RxqOvfl).is_ok_and(|on| on != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loopback only: the group is joined on 127.0.0.1 and the sender's multicast interface is
    /// 127.0.0.1 with TTL 1, so no datagram leaves this host.
    #[tokio::test]
    async fn the_kernel_counts_its_drops_with_the_datagrams() {
        let group = Ipv4Addr::new(239, 255, 49, 99);
        let receiver = bind_multicast(group, 0, Ipv4Addr::LOCALHOST, 1).expect("bound on lo");
        assert!(reports_drops(&receiver));
        // The smallest buffer the kernel grants holds a few datagrams: the rest are dropped.
        SockRef::from(&receiver)
            .set_recv_buffer_size(0)
            .expect("shrunk");
        let port = receiver.local_addr().expect("bound").port();
        let sender = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
        sender
            .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
            .expect("on lo");
        sender.set_multicast_ttl_v4(1).expect("ttl 1");
        let to = SocketAddr::V4(SocketAddrV4::new(group, port)).into();
        for _ in 0..200 {
            sender.send_to(&[0; 400], &to).expect("sent on lo");
        }
        let mut bufs = Box::new([[0; crate::wire::beacon::MAX_BEACON_LEN + 1]; BATCH]);
        let mut batch = Batch::default();
        let mut read = async || {
            let mut received = 0;
            let mut drops = None;
            receiver.readable().await.expect("readable");
            while recv_batch(&receiver, &mut bufs, &mut batch).is_ok() {
                received += batch.got.len();
                drops = batch.drops.or(drops);
            }
            (received, drops)
        };
        let (received, drops) = read().await;
        assert!(received > 0 && received < 200, "{received} of 200 fit");
        // The count comes with the datagrams queued after a drop: those before it had none.
        assert_eq!(drops, None);
        sender.send_to(&[0; 400], &to).expect("sent on lo");
        let (one, drops) = read().await;
        assert_eq!(one, 1);
        assert_eq!(
            drops.and_then(|d| usize::try_from(d).ok()),
            Some(200 - received),
            "every datagram either read or counted as dropped"
        );
    }
}
