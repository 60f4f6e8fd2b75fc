//! The source's integration suite (shared with every runtime), on tokio, against a
//! real PostgreSQL.

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_tokio::TokioRuntime;

#[path = "support/block_on.rs"]
mod support;
use support::block_on;

shared_cluster_tests!(block_on, TokioRuntime);
