//! The multi-host scenarios on real containers of the peerd image, and the image itself.
//! Skipped, loudly and counted, where no Docker engine answers or no image was built.

use std::time::Duration;

use crate::support::docker::{DockerLan, docker_ok};
use crate::support::timings::{POLL_SLACK, Timings};
use crate::support::wait_for;

crate::scenario_tests!(DockerLan::start(4, Timings::FAST));
crate::partition_test!(DockerLan::start(4, Timings::FAST));

#[test]
fn image_is_small_runs_unprivileged_and_reports_healthy() {
    let Some(lan) = DockerLan::start(1, Timings::FAST) else {
        return;
    };
    let image = &lan.image;
    let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", image])
        .parse()
        .expect("image size in bytes");
    eprintln!("image {image}: {size} bytes");
    assert!(
        size < 5_000_000,
        "image is {size} bytes, over the 5 MB target"
    );
    let user = docker_ok(&["image", "inspect", "--format", "{{.Config.User}}", image]);
    assert!(
        !user.is_empty() && !user.starts_with('0') && user != "root",
        "runs as {user:?}"
    );

    // The image's HEALTHCHECK runs `peerd health` every 5 s, after a 2 s start period.
    let container = lan.container("node1");
    let first_check = Duration::from_secs(5);
    let healthy = wait_for(first_check + POLL_SLACK, || {
        let health = docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", container]);
        (health == "healthy").then_some(())
    });
    assert!(healthy.is_some(), "the container never reported healthy");
}

/// The line of `check` in a doctor's report (for a human), if any.
fn report_line<'a>(report: &'a str, check: &str) -> Option<&'a str> {
    report
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some(check))
}

#[test]
fn image_reports_unhealthy_with_the_reason_while_its_agent_cannot_send() {
    // An address no interface of the container has: the socket cannot open.
    let env = ["PEERD_INTERFACE=192.0.2.1"];
    let Some(lan) = DockerLan::start_with(1, Timings::FAST, &[], &env) else {
        return;
    };
    let container = lan.container("node1");
    // The image's HEALTHCHECK runs `peerd health` every 5 s; the agent is not sending from
    // 660 ms on. Its log keeps what each check printed.
    let first_check = Duration::from_secs(5);
    let failed = wait_for(first_check + POLL_SLACK, || {
        let log = docker_ok(&[
            "inspect",
            "--format",
            "{{json .State.Health.Log}}",
            container,
        ]);
        let log: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap_or_default();
        log.into_iter().find(|check| check["ExitCode"] != 0)
    });
    let failed = failed.expect("the image's health check never failed");
    let output = failed["Output"].as_str().unwrap_or_default();
    assert!(
        output.contains("is not sending: no beacon sent for ")
            && output.contains("cannot open the multicast socket"),
        "{failed:#}"
    );
    let out = lan.exec("node1", &["peerd", "doctor", "--listen", "1s"]);
    let report = String::from_utf8_lossy(&out.stdout);
    let agent = report_line(&report, "agent").unwrap_or_else(|| panic!("{report}"));
    assert!(
        agent.starts_with("fail") && agent.contains("it is not sending"),
        "{agent}"
    );
}

#[test]
fn doctor_beside_an_agent_on_an_internal_network_does_not_count_the_agent_as_another_node() {
    // The README's `docker exec CONTAINER peerd doctor`, on an --internal network: the
    // container hears its own agent, and nobody else.
    let Some(lan) = DockerLan::start_with(1, Timings::FAST, &["--internal"], &[]) else {
        return;
    };
    let out = lan.exec("node1", &["peerd", "doctor", "--listen", "1s"]);
    let report = String::from_utf8_lossy(&out.stdout);
    let line = |check| report_line(&report, check).unwrap_or_else(|| panic!("{report}"));
    // Its beacons were heard: they are what today's doctor took for another node's.
    let peers = line("peers");
    assert!(
        peers.starts_with("warn")
            && peers.contains("no other node heard in 1s and the local agent"),
        "{report}"
    );
    assert!(line("agent").starts_with("ok"), "{report}");
    let docker = line("docker");
    assert!(
        docker.starts_with("unknown") && docker.contains("docker network inspect"),
        "{report}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings and unknowns only: {report}"
    );
}

#[test]
fn doctor_in_a_container_says_an_internal_network_cannot_be_told_from_inside() {
    let Some(image) = crate::support::docker::image() else {
        return;
    };
    let network = crate::support::unique("peerd-net-doctor");
    docker_ok(&["network", "create", "--internal", &network]);
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            &network,
            "--entrypoint",
            "peerd",
            &image,
        ])
        .args(["doctor", "--listen", "1s"])
        .output()
        .expect("run docker");
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", &network])
        .output();
    let report = String::from_utf8_lossy(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains("docker "))
        .unwrap_or_else(|| panic!("no docker check: {report}"));
    assert!(line.starts_with("unknown"), "{line}");
    assert!(line.contains("docker network inspect"), "{line}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings and unknowns only: {report}"
    );
}

#[test]
fn docker_run_scripts_started_together_share_one_network() {
    let Some(image) = crate::support::docker::image() else {
        return;
    };
    let network = crate::support::unique("net-race");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bin/docker-run.sh");
    let names = [
        crate::support::unique("race-a"),
        crate::support::unique("race-b"),
    ];
    // Started together, as two terminals would: each checks for the network, then creates it.
    let mut scripts: Vec<std::process::Child> = names
        .iter()
        .map(|name| {
            std::process::Command::new(script)
                .args([name.as_str(), "--interval", "1s", "--ttl", "3s"])
                .env("PEERD_NETWORK", &network)
                .env("PEERD_IMAGE", &image)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run bin/docker-run.sh")
        })
        .collect();
    let running = |name: &str| {
        let out = crate::support::run(
            "docker",
            &["inspect", "--format", "{{.State.Running}}", name],
        );
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    };
    let both = wait_for(POLL_SLACK * 2, || {
        let exited = scripts
            .iter_mut()
            .any(|s| s.try_wait().ok().flatten().is_some());
        (exited || names.iter().all(|n| running(n))).then_some(!exited)
    });
    // On one network, each lists the other.
    let heard = both == Some(true)
        && crate::support::run(
            "docker",
            &[
                "exec",
                &names[0],
                "peerd",
                "wait",
                "--count",
                "1",
                "--timeout",
                "10s",
            ],
        )
        .status
        .success();
    let networks = docker_ok(&[
        "network",
        "ls",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Name}}",
    ]);
    let ids: Vec<&str> = networks
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, name)| *name == network)
        .map(|(id, _)| id)
        .collect();
    for name in &names {
        let _ = crate::support::run("docker", &["rm", "--force", name]);
    }
    let mut errors = String::new();
    for mut script in scripts {
        let _ = script.kill();
        if let Ok(out) = script.wait_with_output() {
            errors.push_str(&String::from_utf8_lossy(&out.stderr));
        }
    }
    for id in &ids {
        let _ = crate::support::run("docker", &["network", "rm", id]);
    }
    assert_eq!(ids.len(), 1, "networks named {network}: {ids:?}; {errors}");
    assert_eq!(both, Some(true), "both nodes run: {errors}");
    assert!(heard, "the nodes hear each other");
}
