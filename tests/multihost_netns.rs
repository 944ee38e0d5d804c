//! Multi-host scenarios 1 to 5 on network namespaces joined by veth pairs and a bridge (root
//! only): the same scenarios as the Docker tests, for machines without Docker.

mod support;

crate::scenario_tests!(support::lan::Lan::start(4));
