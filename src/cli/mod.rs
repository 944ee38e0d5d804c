//! The command line, part of the binary, not the library: the subcommands, the client side of
//! the event stream and the peer table. It may import anything of the library.

pub mod agent;
pub mod args;
pub mod doctor;
pub mod follow;
pub mod logging;
pub mod peers;
pub mod signals;
pub mod table;
pub mod watch;

use clap::CommandFactory;

use args::Cli;

/// Exits 2 with `message`, as clap does for `peerd <subcommand>`'s own usage errors.
pub fn usage_error_in(subcommand: &str, message: String) -> ! {
    let mut command = Cli::command();
    let found = command
        .find_subcommand_mut(subcommand)
        .expect("the subcommand exists");
    found
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}
