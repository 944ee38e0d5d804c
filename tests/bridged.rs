//! The multi-host scenarios on network namespaces joined by veth pairs and a bridge (root
//! only): the same scenarios as the Docker tests, for machines without Docker.

use crate::support::lan::Lan;
use crate::support::timings::Timings;

crate::scenario_tests!(Lan::bridged(4, Timings::FAST));
crate::partition_test!(Lan::bridged(4, Timings::FAST));
