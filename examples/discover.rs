//! Discover and print: announces this program on the network and prints the peers it hears,
//! then each change, until Ctrl-C, when it says goodbye.
//!
//! ```text
//! cargo run --example discover -- [HOSTNAME] [INTERFACE]
//! ```
//!
//! Beside `peerd agent` nodes or other copies of it, on the same network, it lists them and
//! they list it. HOSTNAME defaults to the machine's, INTERFACE to the one the routing table
//! prefers (give `127.0.0.1` to stay on this host's loopback).

use peerd::{Change, Discovery};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut builder = Discovery::builder();
    if let Some(hostname) = args.next() {
        builder = builder.hostname(hostname);
    }
    if let Some(interface) = args.next() {
        builder = builder.interface(&interface);
    }
    let discovery = builder.start().await?;
    println!("announcing as instance {:016x}", discovery.instance());

    let mut changes = discovery.subscribe();
    loop {
        let change = tokio::select! {
            change = changes.next() => change,
            _ = tokio::signal::ctrl_c() => break,
        };
        match change {
            Some(Change::Snapshot(snapshot)) => {
                println!("{} peers", snapshot.peers.len());
                for peer in &snapshot.peers {
                    println!("  {} at {}", peer.hostname, peer.address.ip());
                }
            }
            Some(Change::Event(event)) => {
                let peer = &event.peer;
                println!(
                    "{} {} at {}",
                    event.kind.as_str(),
                    peer.hostname,
                    peer.address.ip()
                );
            }
            Some(Change::Lagged { missed }) => println!("fell behind by {missed} changes"),
            Some(_) => {}
            None => break,
        }
    }
    discovery.shutdown().await;
    Ok(())
}
