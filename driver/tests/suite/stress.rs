//! The stress mode of the fault tests: busy threads beside each test, and each test body run
//! several times. A fault test that passes only on a quiet machine proves nothing, so the
//! timing-dependent guarantees are checked under load too.
//!
//! * `PGCDC_STRESS_THREADS=N` (default 0): N busy threads run for as long as each fault test
//!   does, and are stopped when it ends (also when it fails). They spin on integer arithmetic;
//!   with N ≥ 2 one of them allocates and frees buffers instead, so the allocator is contended
//!   too. Tests of one binary run in parallel: two tests at once means 2 × N threads.
//! * `PGCDC_STRESS_REPEAT=K` (default 1): each fault test runs its body K times in a row, each
//!   time on fresh database, slot and publication names (the test's name with `_<i>` appended,
//!   i = 0..K).
//!
//! When either is set, every repetition reports on stderr (shown with `--nocapture`, or when
//! the test fails) a line `pgcdc-stress: <test> repetition <i>/<K> starting` and, when it
//! passes, `pgcdc-stress: <test> repetition <i>/<K> passed in <seconds>s`.

use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// Busy threads beside a test.
pub const THREADS_VAR: &str = "PGCDC_STRESS_THREADS";
/// Repetitions of a test's body.
pub const REPEAT_VAR: &str = "PGCDC_STRESS_REPEAT";

/// The stress settings, read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StressConfig {
    /// Busy threads per test.
    pub threads: usize,
    /// Runs of each test body.
    pub repeat: usize,
}

impl StressConfig {
    /// Reads [`THREADS_VAR`] and [`REPEAT_VAR`]; a value that is not a number (or a repeat
    /// of 0) fails the test, so a typo never silently turns the stress off.
    pub fn from_env() -> StressConfig {
        StressConfig {
            threads: read_var(THREADS_VAR, 0, 0),
            repeat: read_var(REPEAT_VAR, 1, 1),
        }
    }

    /// Whether anything differs from a plain run.
    pub fn active(&self) -> bool {
        self.threads > 0 || self.repeat > 1
    }
}

fn read_var(name: &str, default: usize, min: usize) -> usize {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => default,
        Ok(v) if v.trim().is_empty() => default,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= min => n,
            _ => panic!("{name}={v:?}: expected a whole number of at least {min}"),
        },
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Runs `body` as a fault test under the configured stress: once per repetition, with the
/// repetition's name (`test`, or `test_<i>` when repeating), while the busy threads run.
pub async fn stressed<F, Fut>(test: &str, mut body: F)
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let cfg = StressConfig::from_env();
    let _load = Load::start(cfg.threads);
    for i in 0..cfg.repeat {
        let run = Repetition::start(test, i, cfg);
        body(run.name.clone()).await;
        run.passed();
    }
}

/// [`stressed`] for a test body that blocks (it runs its own runtime, or none). Used by the
/// JetStream sink tests, which include this file; the suite itself does not.
#[allow(dead_code)]
pub fn stressed_blocking(test: &str, mut body: impl FnMut(String)) {
    let cfg = StressConfig::from_env();
    let _load = Load::start(cfg.threads);
    for i in 0..cfg.repeat {
        let run = Repetition::start(test, i, cfg);
        body(run.name.clone());
        run.passed();
    }
}

/// One repetition of a stressed test: its name and its report lines.
struct Repetition<'a> {
    test: &'a str,
    name: String,
    i: usize,
    cfg: StressConfig,
    started: Instant,
}

impl<'a> Repetition<'a> {
    fn start(test: &'a str, i: usize, cfg: StressConfig) -> Self {
        let name = if cfg.repeat == 1 {
            test.to_owned()
        } else {
            format!("{test}_{i}")
        };
        if cfg.active() {
            eprintln!(
                "pgcdc-stress: {test} repetition {}/{} starting ({} busy threads)",
                i + 1,
                cfg.repeat,
                cfg.threads
            );
        }
        Repetition {
            test,
            name,
            i,
            cfg,
            started: Instant::now(),
        }
    }

    fn passed(self) {
        if self.cfg.active() {
            eprintln!(
                "pgcdc-stress: {} repetition {}/{} passed in {:.1}s",
                self.test,
                self.i + 1,
                self.cfg.repeat,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Busy threads, stopped and joined when dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `n` busy threads (see the module docs).
    pub fn start(n: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = Arc::clone(&stop);
                let allocates = n >= 2 && i == 0;
                thread::Builder::new()
                    .name(format!("stress-{i}"))
                    .spawn(move || {
                        if allocates {
                            churn(&stop);
                        } else {
                            spin(&stop, i as u64);
                        }
                    })
                    .expect("spawn a stress thread")
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Integer arithmetic (xorshift and a multiply) until `stop`.
fn spin(stop: &AtomicBool, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        }
        black_box(x);
    }
}

/// Allocates, fills and frees buffers of changing sizes (up to 64 KiB, 256 alive at a time)
/// until `stop`.
fn churn(stop: &AtomicBool) {
    let mut alive: VecDeque<Vec<u8>> = VecDeque::with_capacity(257);
    let mut size = 1usize;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1_000 {
            size = (size * 7 + 13) % (64 * 1024) + 1;
            alive.push_back(black_box(vec![size as u8; size]));
            if alive.len() > 256 {
                drop(alive.pop_front());
            }
        }
    }
}
