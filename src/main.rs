//! The `peerd` binary: all of it is the library's `cli` module (feature `agent`), which parses
//! the flags and runs the subcommand over the library's public API.

use std::process::ExitCode;

fn main() -> ExitCode {
    peerd::cli::main()
}
