//! `peerd doctor` on the command line: refuses flags it cannot use, runs the library's checks
//! and prints them as a report or JSON, exit 1 if one failed. The checks themselves are
//! `crate::doctor`, not here.

use crate::config;
use crate::doctor::{self, Status};

use super::args::DoctorArgs;
use super::usage_error_in;

/// Prints every check, then fails (exit 1) if one failed; warnings and unknowns exit 0.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let listen: std::time::Duration = args.listen.into();
    // Too short a window and the probe's return is a race; longer than minutes, nobody waits.
    if !(config::MIN_TIMING..=std::time::Duration::from_secs(600)).contains(&listen) {
        usage_error_in(
            "doctor",
            format!("--listen {} is outside 100ms..=10m", args.listen),
        );
    }
    // The agent's own rules, so the doctor never accepts a group or port the agent refuses.
    let (group, group6) = args
        .beacons
        .groups()
        .unwrap_or_else(|err| usage_error_in("doctor", err));
    let beacons = config::validate_group(group)
        .and_then(|()| config::validate_group6(group6))
        .and_then(|()| config::validate_port(args.beacons.port));
    if let Err(err) = beacons {
        usage_error_in("doctor", err.to_string());
    }
    let options = doctor::Options {
        group,
        group6,
        port: args.beacons.port,
        interface: args.interface.into_iter().next(),
        api: args.api,
        listen,
    };
    let checks = doctor::run(&options).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print!("{}", doctor::render(&checks));
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    Ok(())
}
