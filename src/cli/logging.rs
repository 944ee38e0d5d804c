//! `peerd agent`'s log lines: to stderr, as text or JSON, filtered by RUST_LOG. What is logged
//! is decided where it happens, not here.

use super::args::LogFormat;

/// Logs to stderr at the levels RUST_LOG names: `info` (the default), `debug`, or per target,
/// `peerd=debug,hyper=warn`. tracing-subscriber's `Targets` reads these without the regex
/// engine that `EnvFilter` brings (360 KB of a 3.2 MB binary); span and field filters are
/// what that leaves out.
pub fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let default = Targets::new().with_default(LevelFilter::INFO);
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => match directives.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(err) => (default, Some((directives, err))),
        },
        _ => (default, None),
    };
    let ansi = std::io::stderr().is_terminal();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().with_filter(filter))
            .init(),
    }
    if let Some((directives, err)) = bad {
        tracing::warn!(RUST_LOG = %directives, error = %err, "RUST_LOG is not a list of levels and TARGET=LEVEL: logging at info");
    }
}
