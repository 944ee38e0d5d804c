//! How `peerd agent` learns it should stop: SIGTERM, SIGINT, SIGHUP and SIGQUIT become one
//! cancellation, and SIGHUP is left alone when `nohup` ignored it. What stopping does (the
//! goodbye) is the library's agent, not this file.

use nix::sys::signal::Signal;
use tokio::signal::unix::SignalKind;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// SIGTERM (`docker stop`, which signals PID 1), SIGINT (Ctrl-C), SIGHUP (the terminal or the
/// ssh session went away) and SIGQUIT (`Ctrl-\`) all mean "say goodbye and exit": an agent that
/// dies of one without a goodbye stays listed by its peers for a whole ttl.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    // Checked before any handler is installed, which would undo what `nohup` asked for.
    let hangup_ignored = ignored_at_start(Signal::SIGHUP);
    if hangup_ignored {
        info!("SIGHUP was ignored when the agent started (nohup?): it will not stop the agent");
    }
    let name = tokio::select! {
        () = received(SignalKind::terminate(), "SIGTERM") => "SIGTERM",
        () = received(SignalKind::interrupt(), "SIGINT") => "SIGINT",
        () = received(SignalKind::hangup(), "SIGHUP"), if !hangup_ignored => "SIGHUP",
        () = received(SignalKind::quit(), "SIGQUIT") => "SIGQUIT",
    };
    info!(signal = name, "signal received, stopping");
    shutdown.cancel();
}

/// Returns when `kind` arrives; never, if it cannot be listened for.
async fn received(kind: SignalKind, name: &str) {
    match tokio::signal::unix::signal(kind) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(err) => {
            warn!(signal = name, error = %err, "cannot listen for the signal: it will end the agent without a goodbye");
            std::future::pending::<()>().await;
        }
    }
}

/// Whether the process started with `signal` ignored, from the `SigIgn` mask in
/// /proc/self/status (reading it needs no unsafe `sigaction` call).
fn ignored_at_start(signal: Signal) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| ignored_in_status(&status, signal))
}

/// Whether the `SigIgn:` line of a /proc/PID/status text has `signal`'s bit set; false when
/// there is no such line or it is not hexadecimal.
fn ignored_in_status(status: &str, signal: Signal) -> bool {
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok());
    // Signal numbers start at 1; bit 0 is signal 1.
    mask.is_some_and(|mask| mask >> (signal as i32 - 1) & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines around `SigIgn:` as Linux writes them.
    fn status(sig_ign: &str) -> String {
        format!(
            "Name:\tpeerd\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
             SigBlk:\t0000000000000000\nSigIgn:\t{sig_ign}\nSigCgt:\t0000000000000000\n"
        )
    }

    #[test]
    fn reads_the_signal_bit_of_the_ignored_mask() {
        // nohup: SIGHUP (1) is bit 0.
        let nohup = status("0000000000000001");
        assert!(ignored_in_status(&nohup, Signal::SIGHUP));
        assert!(!ignored_in_status(&nohup, Signal::SIGINT));
        // SIGPIPE (13) and SIGQUIT (3): bits 12 and 2.
        let others = status("0000000000001004");
        assert!(!ignored_in_status(&others, Signal::SIGHUP));
        assert!(ignored_in_status(&others, Signal::SIGPIPE));
        assert!(ignored_in_status(&others, Signal::SIGQUIT));
    }

    #[test]
    fn no_mask_or_a_garbled_one_means_not_ignored() {
        assert!(!ignored_in_status("", Signal::SIGHUP));
        assert!(!ignored_in_status("Name:\tpeerd\n", Signal::SIGHUP));
        assert!(!ignored_in_status(&status("not hex"), Signal::SIGHUP));
    }
}
