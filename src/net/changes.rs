//! Word from the kernel that this host's interfaces or addresses changed: a netlink route socket
//! subscribed to link and address changes, used only as a wake-up. What changed is read again
//! from the interfaces themselves (`host`), so no netlink message is parsed.

use std::os::fd::OwnedFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket,
};
use tokio::io::unix::AsyncFd;

/// `RTMGRP_LINK`: an interface came, went, or changed state (up, carrier).
const LINKS: u32 = 0x1;
/// `RTMGRP_IPV4_IFADDR` and `RTMGRP_IPV6_IFADDR`: an address came or went, or passed DAD.
const ADDRESSES: u32 = 0x10 | 0x100;

/// A subscription to the kernel's changes of interfaces and addresses.
pub struct InterfaceChanges {
    socket: AsyncFd<OwnedFd>,
}

impl InterfaceChanges {
    /// Subscribes. Fails where netlink is not there (a sandbox that forbids it); the caller
    /// then reads the interfaces on a timer instead. Must be called inside a tokio runtime.
    pub fn subscribe() -> std::io::Result<InterfaceChanges> {
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            flags,
            SockProtocol::NetlinkRoute,
        )?;
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, LINKS | ADDRESSES),
        )?;
        // `new` is deprecated for fds that something else could close while tokio watches them
        // (its replacement, `register`, is unsafe, which this crate forbids). AsyncFd owns this
        // one, so nothing else can.
        #[allow(deprecated)]
        let socket = AsyncFd::new(fd)?;
        Ok(InterfaceChanges { socket })
    }

    /// Returns once something changed since the last call, with what the kernel said read and
    /// thrown away: a burst of messages (an interface and its addresses) is one change. A
    /// subscription whose queue overflowed (ENOBUFS) lost messages, which is a change too.
    pub async fn changed(&self) {
        let Ok(mut ready) = self.socket.readable().await else {
            return;
        };
        // Messages of a few hundred bytes each; what does not fit is cut, which is fine.
        let mut buf = [0u8; 1024];
        let fd = std::os::fd::AsRawFd::as_raw_fd(self.socket.get_ref());
        loop {
            match recv(fd, &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(_) => continue,
                Err(nix::errno::Errno::ENOBUFS) => continue,
                Err(_) => break, // EAGAIN: drained
            }
        }
        ready.clear_ready();
    }
}
