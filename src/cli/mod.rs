//! The command line, part of the binary, not the library: the subcommands, the client side of
//! the event stream and the peer table. It may import anything of the library.

pub mod args;
pub mod follow;
pub mod logging;
pub mod signals;
pub mod table;
