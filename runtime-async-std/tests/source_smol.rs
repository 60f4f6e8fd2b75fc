//! The source's integration suite (shared with every runtime), the tests on the binary's shared cluster, on smol.
//! Each runtime has binaries of its own: the suite names databases after the test alone.

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

shared_cluster_tests!(smol::block_on, pgcdc_async_std::SmolRuntime);
