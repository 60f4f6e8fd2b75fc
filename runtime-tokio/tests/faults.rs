//! The fault tests of the source's integration suite (shared with every runtime), on tokio,
//! against a real PostgreSQL: `faults::*`, with the suite's stress mode
//! (`PGCDC_STRESS_THREADS`, `PGCDC_STRESS_REPEAT`).

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_tokio::TokioRuntime;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fault_tests!(block_on, TokioRuntime);
