//! Multi-host scenarios 1 to 5 on real containers of the peerd image, on a Docker network the
//! test creates. Skipped, loudly, where no Docker engine answers or no image was built.

mod support;

crate::scenario_tests!(support::docker::DockerLan::start(4));
