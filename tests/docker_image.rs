//! The image itself: small, unprivileged, and healthy by its own check.
//! Skipped, loudly, where no Docker engine answers or no image was built.

mod support;

use std::time::Duration;

use support::docker::{DockerLan, IMAGE_VAR, docker_ok};
use support::wait_for;

#[test]
fn image_is_small_runs_unprivileged_and_reports_healthy() {
    let Some(lan) = DockerLan::start(1) else {
        return;
    };
    let image = std::env::var(IMAGE_VAR).expect("set when DockerLan starts");
    let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", &image])
        .parse()
        .expect("image size in bytes");
    eprintln!("image {image}: {size} bytes");
    assert!(
        size < 5_000_000,
        "image is {size} bytes, over the 5 MB target"
    );
    let user = docker_ok(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert!(
        !user.is_empty() && !user.starts_with("0") && user != "root",
        "runs as {user:?}"
    );

    // The HEALTHCHECK runs `peerd health` every 5 s.
    let container = lan.container("node1");
    let healthy = wait_for(Duration::from_secs(20), || {
        let health = docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", container]);
        (health == "healthy").then_some(())
    });
    assert!(healthy.is_some(), "the container never reported healthy");
}
