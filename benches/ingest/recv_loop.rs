//! The floor `bin/bench-ingest` holds the agent to: the least a program can do with the
//! agent's socket, a `recv_from` loop that only counts, on the same runtime flavour.
//!
//! `recv-loop GROUP PORT INTERFACE`: opens the socket through `peerd::net::socket::bind_multicast`,
//! the function the agent opens its own with, so buffer size and options are identical; counts
//! datagrams into a buffer the size the agent reads into. SIGUSR1 prints the count so far,
//! SIGTERM prints it and exits 0.

use std::cell::Cell;
use std::net::Ipv4Addr;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [group, port, interface] = args.as_slice() else {
        anyhow::bail!("usage: recv-loop GROUP PORT INTERFACE");
    };
    let group: Ipv4Addr = group.parse().context("GROUP")?;
    let port: u16 = port.parse().context("PORT")?;
    let interface: Ipv4Addr = interface.parse().context("INTERFACE")?;
    // The agent's flavour (src/cli/mod.rs): one thread drives the socket.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(group, port, interface))
}

async fn run(group: Ipv4Addr, port: u16, interface: Ipv4Addr) -> anyhow::Result<()> {
    let socket = peerd::net::socket::bind_multicast(group, port, interface, 1)?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("handling SIGUSR1")?;
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let count = Cell::new(0u64);
    // The agent's read buffer: a beacon's limit and one byte more.
    let mut buf = [0u8; peerd::wire::beacon::MAX_BEACON_LEN + 1];
    // One future for the whole loop, so the signals are looked at once per wake-up (after a
    // burst, or tokio's budget of reads), never once per datagram.
    let counting = async {
        loop {
            if let Err(err) = socket.recv_from(&mut buf).await {
                return err;
            }
            count.set(count.get() + 1);
        }
    };
    tokio::pin!(counting);
    loop {
        tokio::select! {
            err = &mut counting => return Err(err).context("receiving"),
            _ = usr1.recv() => println!("{}", count.get()),
            _ = term.recv() => break,
        }
    }
    println!("{}", count.get());
    Ok(())
}
