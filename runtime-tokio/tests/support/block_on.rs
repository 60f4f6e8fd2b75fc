//! The tokio `block_on` of the suite binaries: a two-worker multi-threaded runtime with
//! every driver (time, I/O) enabled, one per test.

/// Runs `f` to completion on a fresh runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
