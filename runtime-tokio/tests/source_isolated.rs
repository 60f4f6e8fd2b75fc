//! The source's integration suite (shared with every runtime): the tests that need
//! clusters of their own (restart, low wal_sender_timeout, wal_level=replica) or the process to
//! themselves (peak memory of a 1,000,000-row transaction), on tokio, against a
//! real PostgreSQL.

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_tokio::TokioRuntime;

#[path = "support/block_on.rs"]
mod support;
use support::block_on;

isolated_tests!(block_on, TokioRuntime);
