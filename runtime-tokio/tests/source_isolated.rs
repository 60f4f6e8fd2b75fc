//! Suite tests that need a cluster of their own (restart, low wal_sender_timeout,
//! wal_level=replica) or the process to themselves (peak memory of a 1,000,000-row
//! transaction), on tokio.

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_tokio::TokioRuntime;

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(suite::$module::$name::<TokioRuntime>());
            }
        )*
    };
}

isolated_tests!(tests);
