//! A simulated world for the driver: a deterministic single-threaded executor in virtual
//! time, an in-memory network that splits writes at seeded random byte boundaries, and the
//! core's scripted fake walsender ([`pgcdc_core::testing`]) at the other end of every
//! connection, with faults injected at scripted points.
//!
//! * [`SimRuntime`] implements [`pgcdc_driver::Runtime`]: `now()` and `wall_clock()` read
//!   the virtual clock, `sleep` registers a virtual timer, `spawn` hands a task to the
//!   executor, `connect` opens an in-memory connection served by a [`FakeWalsender`].
//! * [`SimRuntime::block_on`] polls ready tasks in a fixed order (FIFO of wake-ups); when
//!   none is ready, virtual time jumps to the earliest timer; when nothing is ready and no
//!   timer is set, it panics with a deadlock report naming what waits.
//! * Timer deadlines are rounded up to whole virtual milliseconds. A sleep may end late,
//!   never early; the rounding also absorbs the driver's reconnect jitter, which is drawn
//!   from the operating system's random source and would otherwise make runs differ
//!   (reconnect delays of 1 ms jitter within (0.8 ms, 1 ms] and always end at 1 ms).
//!
//! The same seed gives the same run: [`World::trace`] records it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod net;
pub mod scenario;
pub mod server;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgcdc_core::testing::FakeServer;
use pgcdc_driver::{BoxFuture, Runtime};

use net::Net;
pub use net::SimStream;
use server::{Faults, Record};

/// Virtual time after which [`SimRuntime::block_on`] gives up: a run that needs more is
/// stuck (retrying forever, or waiting for rows that never come).
pub const HARD_TIME_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// Task polls after which [`SimRuntime::block_on`] gives up (a busy loop in virtual time).
pub const HARD_POLL_LIMIT: u64 = 20_000_000;

/// The wall clock at virtual time zero.
pub fn wall_epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// A small seeded generator (xorshift64*): the network's split points, the runtime's random
/// bits.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A task the executor has not adopted yet.
struct Task {
    name: String,
    fut: BoxFuture<'static, ()>,
}

/// Everything the simulated tasks share. Locked only briefly, never across a poll.
pub struct World {
    base: Instant,
    /// Virtual time since the start.
    pub now: Duration,
    timers: BTreeMap<(Duration, u64), Waker>,
    timer_seq: u64,
    spawned: Vec<Task>,
    spawn_seq: u64,
    /// The network's random split points.
    pub rng: XorShift,
    /// Connections, open and closed.
    pub net: Net,
    /// The catalog, slot and WAL every walsender serves.
    pub server: FakeServer,
    /// Scripted faults and connection refusals.
    pub faults: Faults,
    /// What the consumers saw and what the server was told, for the checks.
    pub record: Record,
    /// The run, line by line (`t=… what`): equal for equal seeds.
    pub trace: Vec<String>,
}

impl World {
    /// Appends a line to the trace, stamped with the virtual time.
    pub fn log(&mut self, line: impl AsRef<str>) {
        let t = self.now;
        self.trace.push(format!(
            "t={}.{:03} {}",
            t.as_secs(),
            t.subsec_millis(),
            line.as_ref()
        ));
    }

    /// Registers `waker` to fire at `deadline` (virtual), replacing the timer `key` names.
    pub fn set_timer(
        &mut self,
        key: &mut Option<(Duration, u64)>,
        deadline: Duration,
        waker: &Waker,
    ) {
        let deadline = round_up_ms(deadline);
        if let Some(k) = *key {
            if k.0 == deadline
                && let Some(w) = self.timers.get_mut(&k)
            {
                w.clone_from(waker);
                return;
            }
            self.timers.remove(&k);
        }
        self.timer_seq += 1;
        let k = (deadline, self.timer_seq);
        self.timers.insert(k, waker.clone());
        *key = Some(k);
    }

    /// Removes the timer `key` names.
    pub fn clear_timer(&mut self, key: &mut Option<(Duration, u64)>) {
        if let Some(k) = key.take() {
            self.timers.remove(&k);
        }
    }

    fn spawn(&mut self, name: String, fut: BoxFuture<'static, ()>) {
        self.spawn_seq += 1;
        self.spawned.push(Task {
            name: format!("{name}#{}", self.spawn_seq),
            fut,
        });
    }
}

fn round_up_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The simulated runtime: a handle to the [`World`]. Cheap to clone.
#[derive(Clone)]
pub struct SimRuntime {
    world: Arc<Mutex<World>>,
}

impl std::fmt::Debug for SimRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRuntime").finish_non_exhaustive()
    }
}

impl SimRuntime {
    /// A world seeded with `seed`, serving `server`.
    pub fn new(seed: u64, server: FakeServer) -> SimRuntime {
        SimRuntime {
            world: Arc::new(Mutex::new(World {
                base: Instant::now(),
                now: Duration::ZERO,
                timers: BTreeMap::new(),
                timer_seq: 0,
                spawned: Vec::new(),
                spawn_seq: 0,
                rng: XorShift::new(seed),
                net: Net::default(),
                server,
                faults: Faults::default(),
                record: Record::default(),
                trace: Vec::new(),
            })),
        }
    }

    /// Locks the world.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the locked world.
    pub fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world())
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.world().now
    }

    /// Runs `fut` in the background under `name` (shown in deadlock reports).
    pub fn spawn_named(&self, name: &str, fut: impl Future<Output = ()> + Send + 'static) {
        self.world().spawn(name.to_owned(), Box::pin(fut));
    }

    /// A future completing `d` of virtual time from now.
    pub fn sleep_for(&self, d: Duration) -> Sleep {
        let deadline = self.world().now.saturating_add(d);
        Sleep {
            rt: self.clone(),
            deadline,
            key: None,
        }
    }

    /// Runs `fut` to completion with every task spawned meanwhile, in virtual time.
    ///
    /// # Panics
    ///
    /// On a deadlock (nothing ready, no timer), past [`HARD_TIME_LIMIT`] or
    /// [`HARD_POLL_LIMIT`], and when a task panics.
    pub fn block_on<T>(&self, fut: impl Future<Output = T>) -> T {
        let ready = Arc::new(ReadyQueue::default());
        let mut tasks: Vec<Option<Task>> = Vec::new();
        let mut main = pin!(fut);
        let mut polls = 0u64;
        ready.push(MAIN);
        loop {
            let adopted = std::mem::take(&mut self.world().spawned);
            for t in adopted {
                ready.push(tasks.len());
                tasks.push(Some(t));
            }
            if let Some(id) = ready.pop() {
                polls += 1;
                if polls > HARD_POLL_LIMIT {
                    panic!("busy loop: {polls} polls by {:?}", self.elapsed());
                }
                let waker = Waker::from(Arc::new(TaskWaker {
                    id,
                    ready: Arc::clone(&ready),
                }));
                let mut cx = Context::from_waker(&waker);
                if id == MAIN {
                    if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
                        return v;
                    }
                } else if let Some(slot) = tasks.get_mut(id)
                    && let Some(task) = slot.as_mut()
                    && task.fut.as_mut().poll(&mut cx).is_ready()
                {
                    *slot = None;
                }
                continue;
            }
            if !self.advance() {
                panic!("{}", self.deadlock_report(&tasks));
            }
            let now = self.elapsed();
            if now > HARD_TIME_LIMIT {
                panic!("virtual time limit passed ({now:?}): the run is stuck");
            }
        }
    }

    /// Moves virtual time to the earliest timer and fires every timer due; false when no
    /// timer is set.
    fn advance(&self) -> bool {
        let due: Vec<Waker> = {
            let mut w = self.world();
            let Some((&(deadline, _), _)) = w.timers.first_key_value() else {
                return false;
            };
            w.now = w.now.max(deadline);
            let now = w.now;
            let later = w.timers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut w.timers, later)
                .into_values()
                .collect()
        };
        for waker in due {
            waker.wake();
        }
        true
    }

    fn deadlock_report(&self, tasks: &[Option<Task>]) -> String {
        let w = self.world();
        let mut s = format!(
            "deadlock at {:?}: nothing is ready and no timer is set. Waiting tasks: main",
            w.now
        );
        for t in tasks.iter().flatten() {
            let _ = write!(s, ", {}", t.name);
        }
        let _ = write!(s, "\nconnections:\n{}", w.net.describe());
        let _ = write!(s, "last trace lines:");
        for line in w.trace.iter().rev().take(20).rev() {
            let _ = write!(s, "\n  {line}");
        }
        s
    }
}

const MAIN: usize = usize::MAX;

/// Task ids woken and not yet polled, in wake-up order, each once.
#[derive(Default)]
struct ReadyQueue {
    queue: Mutex<VecDeque<usize>>,
}

impl ReadyQueue {
    fn push(&self, id: usize) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if !q.contains(&id) {
            q.push_back(id);
        }
    }

    fn pop(&self) -> Option<usize> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

struct TaskWaker {
    id: usize,
    ready: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.ready.push(self.id);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.id);
    }
}

/// A virtual sleep.
pub struct Sleep {
    rt: SimRuntime,
    deadline: Duration,
    key: Option<(Duration, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut w = this.rt.world();
        if w.now >= round_up_ms(this.deadline) {
            w.clear_timer(&mut this.key);
            return Poll::Ready(());
        }
        let deadline = this.deadline;
        w.set_timer(&mut this.key, deadline, cx.waker());
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.key.is_some() {
            let mut key = self.key.take();
            self.rt.world().clear_timer(&mut key);
        }
    }
}

impl Runtime for SimRuntime {
    type Tcp = SimStream;

    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<SimStream>> {
        let rt = self.clone();
        Box::pin(async move { net::connect(&rt, &host, port) })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(self.sleep_for(duration))
    }

    fn now(&self) -> Instant {
        let w = self.world();
        w.base + w.now
    }

    fn wall_clock(&self) -> SystemTime {
        wall_epoch() + self.world().now
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        self.world().spawn("spawned".to_owned(), future);
    }

    fn random(&self) -> u64 {
        // The world's seeded generator: reconnect jitter and generated ids replay exactly.
        self.world().rng.next_u64()
    }
}
