//! The fault tests of the source's integration suite (shared with every runtime), on tokio,
//! against a real PostgreSQL: `faults::*`, with the suite's stress mode
//! (`PGCDC_STRESS_THREADS`, `PGCDC_STRESS_REPEAT`).

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_tokio::TokioRuntime;

#[path = "support/block_on.rs"]
mod support;
use support::block_on;

fault_tests!(block_on, TokioRuntime);
