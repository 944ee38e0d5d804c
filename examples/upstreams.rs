//! Keeps a list of upstreams in sync: the peers tagged `role=backend` whose `port` tag says
//! where they serve, written as an nginx `upstream` block to a file each time the list
//! changes (renamed into place, so a reader never sees half of it). Point nginx's `include`
//! at it and reload on change, or read it from your own proxy.
//!
//! ```text
//! cargo run --example upstreams -- FILE [INTERFACE]
//! ```
//!
//! Backends announce themselves with `peerd agent --tag role=backend --tag port=8080`, or
//! from their own code with `.tag("role", "backend").tag("port", "8080")`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use peerd::{Change, Discovery, Peer};

/// Where `peer` serves, if it is a backend: its address with the port its tags give.
fn upstream(peer: &Peer) -> Option<SocketAddr> {
    if peer.tags.get("role").map(String::as_str) != Some("backend") {
        return None;
    }
    let port = peer.tags.get("port")?.parse().ok()?;
    // The peer's address with the port swapped: an IPv6 link-local one keeps its interface.
    let mut address = peer.address;
    address.set_port(port);
    Some(address)
}

/// Writes the upstream block for `servers` to `path`, through a file renamed over it.
fn write(path: &Path, servers: &BTreeMap<String, SocketAddr>) -> std::io::Result<()> {
    let mut text = String::from("upstream backends {\n");
    for address in servers.values() {
        text.push_str(&format!("    server {address};\n"));
    }
    text.push_str("}\n");
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: upstreams FILE [INTERFACE]")?);
    let mut builder = Discovery::builder().tag("role", "proxy");
    if let Some(interface) = args.next() {
        builder = builder.interface(&interface);
    }
    let discovery = builder.start().await?;

    // Hostname to address: replaced by each snapshot, kept by each event.
    let mut servers = BTreeMap::new();
    let mut changes = discovery.subscribe();
    loop {
        let change = tokio::select! {
            change = changes.next() => change,
            _ = tokio::signal::ctrl_c() => break,
        };
        let before = servers.clone();
        match change {
            Some(Change::Snapshot(snapshot)) => {
                servers = snapshot
                    .peers
                    .iter()
                    .filter_map(|peer| Some((peer.hostname.clone(), upstream(peer)?)))
                    .collect();
            }
            Some(Change::Event(event)) => {
                // A peer that left, expired or was evicted is no upstream; one that joined,
                // moved or changed its tags is, if its tags say so now.
                let peer = &event.peer;
                match upstream(peer).filter(|_| event.kind.lists_the_peer()) {
                    Some(address) => servers.insert(peer.hostname.clone(), address),
                    None => servers.remove(&peer.hostname),
                };
            }
            // A fresh snapshot follows, which replaces the list.
            Some(_) => continue,
            None => break,
        }
        if servers != before || !path.exists() {
            write(&path, &servers)?;
            println!(
                "{} upstreams: {:?}",
                servers.len(),
                servers.keys().collect::<Vec<_>>()
            );
        }
    }
    discovery.shutdown().await;
    Ok(())
}
