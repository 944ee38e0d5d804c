//! Finds the interface the agent announces on when none is given.
//! Reads the OS interface list; it never opens a socket.

use std::net::Ipv4Addr;

use anyhow::{Context, bail};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// One IPv4 address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub address: Ipv4Addr,
}

/// The first interface that is up, multicast-capable and not loopback, with an IPv4 address
/// (a container's `eth0`, a host's LAN port), in the order the kernel lists them.
pub fn default_interface() -> anyhow::Result<Interface> {
    let addrs = getifaddrs().context("listing network interfaces")?;
    let wanted = InterfaceFlags::IFF_UP | InterfaceFlags::IFF_MULTICAST;
    for ifaddr in addrs {
        if !ifaddr.flags.contains(wanted) || ifaddr.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        let Some(ipv4) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        return Ok(Interface {
            name: ifaddr.interface_name,
            address: ipv4.ip(),
        });
    }
    bail!(
        "no interface is up, multicast-capable and has an IPv4 address; pass --interface ADDR \
         (127.0.0.1 for a single-host trial)"
    )
}

/// The name of the interface holding `address`, for logs; `None` if no interface has it.
pub fn name_of(address: Ipv4Addr) -> Option<String> {
    getifaddrs().ok()?.find_map(|ifaddr| {
        let ip = ifaddr.address.as_ref()?.as_sockaddr_in()?.ip();
        (ip == address).then_some(ifaddr.interface_name)
    })
}
