//! A single-node Docker Swarm that a test makes, with a stack deployed on it, and leaves on
//! drop, even when the test fails. An engine already in a swarm is someone else's: the test
//! skips rather than use it or leave it.

use std::process::Command;
use std::time::Duration;

use super::docker::{REQUIRE_DOCKER, docker_ok, image};
use super::skip::skip;
use super::{run, unique, wait_for};

/// The bridge Swarm gives each task its way out through; made by `swarm init` when missing,
/// and kept by `swarm leave`.
const GATEWAY_BRIDGE: &str = "docker_gwbridge";

pub struct Swarm {
    pub image: String,
    stack: Option<String>,
    /// Whether `swarm init` made the gateway bridge, so the drop removes it too.
    made_gateway_bridge: bool,
}

/// One running task of a service.
pub struct Task {
    pub container: String,
    /// Its address on the network named to [`Swarm::tasks`].
    pub address: String,
}

fn network_exists(name: &str) -> bool {
    run("docker", &["network", "inspect", name])
        .status
        .success()
}

impl Swarm {
    /// Makes this engine the manager of a swarm of its own; `None` (a skip) when Docker or the
    /// image is not here, the engine is in a swarm already, or `docker swarm init` fails.
    pub fn init() -> Option<Swarm> {
        let image = image()?;
        let state = docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state != "inactive" {
            return skip(
                &format!(
                    "Swarm test cannot run: this engine is in a swarm already ({state}), \
                     not the test's to use or to leave"
                ),
                REQUIRE_DOCKER,
            );
        }
        let made_gateway_bridge = !network_exists(GATEWAY_BRIDGE);
        // On loopback: one node needs no other address, and the manager's port then listens
        // nowhere else.
        let init = run(
            "docker",
            &[
                "swarm",
                "init",
                "--advertise-addr",
                "127.0.0.1",
                "--listen-addr",
                "127.0.0.1:2377",
            ],
        );
        if !init.status.success() {
            // A failed init may still have made the gateway bridge, or half a swarm: what the
            // test made goes, as Drop would take it.
            let _ = run("docker", &["swarm", "leave", "--force"]);
            if made_gateway_bridge && network_exists(GATEWAY_BRIDGE) {
                let _ = run("docker", &["network", "rm", GATEWAY_BRIDGE]);
            }
            return skip(
                &format!(
                    "Swarm test cannot run: docker swarm init failed: {}",
                    String::from_utf8_lossy(&init.stderr).trim()
                ),
                REQUIRE_DOCKER,
            );
        }
        Some(Swarm {
            image,
            stack: None,
            made_gateway_bridge,
        })
    }

    /// Deploys the Compose file at `path` as a stack of a name of its own, with `env` for the
    /// `${VAR}`s in it; returns the name (its services are `NAME_SERVICE`).
    pub fn deploy(&mut self, path: &str, env: &[(&str, &str)]) -> String {
        let stack = unique("stack");
        self.stack = Some(stack.clone());
        // `never`: the image is this engine's own, no registry has it.
        let out = Command::new("docker")
            .args(["stack", "deploy", "--resolve-image", "never"])
            .args(["--compose-file", path, &stack])
            .envs(env.iter().copied())
            .output()
            .expect("run docker stack deploy");
        assert!(
            out.status.success(),
            "docker stack deploy -c {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stack
    }

    /// The running tasks of `service` and their addresses on `network`.
    pub fn tasks(&self, service: &str, network: &str) -> Vec<Task> {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        let ids = docker_ok(&["ps", "--quiet", "--filter", &filter]);
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        ids.lines()
            .map(|container| Task {
                container: container.to_owned(),
                address: docker_ok(&["inspect", "--format", &format, container]),
            })
            .collect()
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if let Some(stack) = &self.stack {
            let filter = format!("label=com.docker.stack.namespace={stack}");
            let containers = || {
                let out = run("docker", &["ps", "--all", "--quiet", "--filter", &filter]);
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            if std::thread::panicking() {
                for container in containers() {
                    let out = run("docker", &["logs", &container]);
                    eprintln!(
                        "---- log of task {container} ----\n{}{}",
                        String::from_utf8_lossy(&out.stderr),
                        String::from_utf8_lossy(&out.stdout)
                    );
                }
            }
            let _ = run("docker", &["stack", "rm", stack]);
            // `stack rm` returns before the tasks are gone; leaving with them still running
            // can leave their containers and their network's interfaces behind.
            let gone = wait_for(Duration::from_secs(30), || {
                containers().is_empty().then_some(())
            });
            if gone.is_none() {
                for container in containers() {
                    let _ = run("docker", &["rm", "--force", &container]);
                }
            }
        }
        let _ = run("docker", &["swarm", "leave", "--force"]);
        if self.made_gateway_bridge {
            let _ = run("docker", &["network", "rm", GATEWAY_BRIDGE]);
        }
    }
}
