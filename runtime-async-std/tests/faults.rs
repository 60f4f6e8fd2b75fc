//! The fault tests of the source's integration suite (shared with every runtime), on
//! async-std: `faults::*`, with the suite's stress mode (`PGCDC_STRESS_THREADS`,
//! `PGCDC_STRESS_REPEAT`).

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

fault_tests!(async_std::task::block_on, pgcdc_async_std::AsyncStdRuntime);
