//! The `peerd` binary: the command line in `cli` (src/cli/) parses the flags, sets up logging
//! and signals, binds sockets, and hands over to the library. No domain logic lives here.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
