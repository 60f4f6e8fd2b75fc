//! The fault tests of the source's integration suite (shared with every runtime), on smol:
//! `faults::*`, with the suite's stress mode (`PGCDC_STRESS_THREADS`, `PGCDC_STRESS_REPEAT`).

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

fault_tests!(smol::block_on, pgcdc_async_std::SmolRuntime);
