//! One simulated run: a source on [`SimRuntime`] against the fake walsender, a producer
//! committing transactions of numbered rows, consumer tasks (stalling, acknowledging, late or
//! not), a fault plan; then the checks every run must pass.

use std::fmt::Write as _;
use std::time::Duration;

use futures_util::future::{Either, select};
use pgcdc_core::model::SourceChange;
use pgcdc_core::source_config::{AckMode, DispatchMode, PostgresSourceConfig, ReconnectConfig};
use pgcdc_core::testing::{FakeServer, WalTxn};
use pgcdc_core::{Lsn, Password, SslMode};
use pgcdc_driver::{ChangeBatch, Source, SourceStatus, Subscription};

use super::SimRuntime;
use super::server::{BatchSeen, ConsumerSeen, Fault, StatusSeen, Trigger};

/// Virtual time a run may take before it counts as stuck.
pub const RUN_LIMIT: Duration = Duration::from_secs(20 * 60);

/// How a consumer behaves.
#[derive(Clone, Debug)]
pub struct ConsumerPlan {
    /// Stall on every n-th batch received (0: never).
    pub stall_every: usize,
    /// How long a stall lasts (virtual).
    pub stall: Duration,
    /// Acknowledge each batch this many batches later (Manual mode).
    pub ack_lag: usize,
}

impl Default for ConsumerPlan {
    fn default() -> Self {
        ConsumerPlan {
            stall_every: 4,
            stall: Duration::from_secs(2),
            ack_lag: 0,
        }
    }
}

/// When the producer commits its first transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstCommit {
    /// As soon as `start()` returned `Ok`: the application's view. A `start()` that
    /// returns before the slot exists loses those rows.
    AfterStart,
    /// Once `start()` returned and the slot exists: isolates delivery from `start()`.
    OnceTheSlotExists,
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct Case {
    /// Network seed.
    pub seed: u64,
    /// Acknowledgement mode.
    pub ack: AckMode,
    /// Subscriber queue capacity (`dispatch_buffer_capacity`).
    pub capacity: usize,
    /// `max_batch_changes`.
    pub max_batch: usize,
    /// Transactions committed.
    pub txns: u32,
    /// Rows per transaction.
    pub rows: u32,
    /// When the first transaction commits.
    pub first_commit: FirstCommit,
    /// Virtual time between two commits.
    pub commit_every: Duration,
    /// One plan per subscriber (Channel dispatch).
    pub consumers: Vec<ConsumerPlan>,
    /// Faults, each firing once.
    pub faults: Vec<Fault>,
    /// Connection attempts refused from the start.
    pub refuse_first: u32,
}

impl Case {
    /// 10 transactions of 25 rows, chunks of 10, one stalling consumer, no fault.
    pub fn new(seed: u64, ack: AckMode) -> Case {
        Case {
            seed,
            ack,
            capacity: 1,
            max_batch: 10,
            txns: 10,
            rows: 25,
            first_commit: FirstCommit::OnceTheSlotExists,
            commit_every: Duration::from_millis(300),
            consumers: vec![ConsumerPlan::default()],
            faults: Vec::new(),
            refuse_first: 0,
        }
    }

    /// The case with `fault` added.
    pub fn with_fault(mut self, fault: Fault) -> Case {
        self.faults.push(fault);
        self
    }

    /// A one-line description: seed, mode, faults.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "seed {} {:?} capacity {} consumers {}",
            self.seed,
            self.ack,
            self.capacity,
            self.consumers.len()
        );
        if self.first_commit == FirstCommit::AfterStart {
            s.push_str(", commits right after start()");
        }
        if self.refuse_first > 0 {
            let _ = write!(s, ", first {} connections refused", self.refuse_first);
        }
        for f in &self.faults {
            let _ = write!(s, ", fault {f}");
        }
        s
    }

    /// The row ids, in commit order.
    pub fn expected_ids(&self) -> Vec<u32> {
        (1..=self.txns * self.rows).collect()
    }

    fn config(&self) -> PostgresSourceConfig {
        PostgresSourceConfig {
            host: "walsender.sim".into(),
            port: 5432,
            database: "app".into(),
            user: "cdc".into(),
            password: Password::new("secret"),
            tables: vec!["users".into()],
            slot_name: "sim_slot".into(),
            publication_name: "sim_pub".into(),
            ssl_mode: SslMode::Disable,
            max_batch_changes: self.max_batch,
            dispatch_mode: DispatchMode::Channel,
            dispatch_buffer_capacity: self.capacity,
            auto_start: false,
            ack_mode: self.ack,
            status_interval_ms: 1000,
            reconnect: ReconnectConfig {
                initial_delay_ms: 1,
                max_delay_ms: 1,
                max_attempts: None,
            },
            ..PostgresSourceConfig::default()
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The case's description.
    pub case: String,
    /// The transactions committed.
    pub script: Vec<WalTxn>,
    /// What `start()` returned.
    pub start: Result<(), String>,
    /// Whether the slot existed when `start()` returned.
    pub slot_at_start: bool,
    /// Whether every consumer received every row before [`RUN_LIMIT`].
    pub finished: bool,
    /// Per consumer, what it saw.
    pub consumers: Vec<ConsumerSeen>,
    /// Every status update.
    pub statuses: Vec<StatusSeen>,
    /// The slot's confirmed position after `stop()`.
    pub final_confirmed: Option<Lsn>,
    /// Server messages sent over the run.
    pub messages_sent: u64,
    /// Faults fired, with the virtual time.
    pub fired: Vec<String>,
    /// Planned faults that never fired.
    pub unfired: Vec<Fault>,
    /// Queries the fake server had no answer to.
    pub unexpected_queries: Vec<String>,
    /// The source's status after `stop()`.
    pub status: SourceStatus,
    /// Virtual time the run took.
    pub elapsed: Duration,
    /// The run's trace.
    pub trace: Vec<String>,
}

fn row_ids(batch: &ChangeBatch) -> Vec<u32> {
    batch
        .changes
        .iter()
        .filter_map(|c| match c {
            SourceChange::Insert { .. } => c
                .element_id()
                .and_then(|id| id.strip_prefix("users:"))
                .and_then(|id| id.parse().ok()),
            _ => None,
        })
        .collect()
}

async fn consume(
    rt: SimRuntime,
    mut sub: Subscription,
    index: usize,
    plan: ConsumerPlan,
    manual: bool,
    expected: usize,
    done: async_channel::Sender<()>,
) {
    let mut rows = 0usize;
    let mut count = 0usize;
    let mut unacked: Vec<ChangeBatch> = Vec::new();
    let mut done = Some(done);
    while let Some(batch) = sub.recv().await {
        count += 1;
        let ids = row_ids(&batch);
        rows += ids.len();
        let seen = BatchSeen {
            at: rt.elapsed(),
            xid: batch.xid.0,
            chunk: batch.chunk_index,
            first: batch.first_chunk,
            last: batch.last_chunk,
            ack_lsn: batch.ack_lsn(),
            ids,
        };
        rt.with(|w| w.consumer_received(index, seen));
        if plan.stall_every > 0 && count % plan.stall_every == 0 {
            let (n, planned) = rt.with(|w| w.stall_begins(index));
            if planned {
                rt.sleep_for(plan.stall / 2).await;
                rt.with(|w| w.queue_full(n));
                rt.sleep_for(plan.stall - plan.stall / 2).await;
            } else {
                rt.sleep_for(plan.stall).await;
            }
        }
        let finished = rows >= expected;
        if manual {
            unacked.push(batch);
            let keep = if finished { 0 } else { plan.ack_lag };
            while unacked.len() > keep {
                let b = unacked.remove(0);
                if let Some(lsn) = b.ack_lsn() {
                    rt.with(|w| w.consumer_acked(index, lsn));
                }
                b.ack();
            }
        }
        if finished && let Some(tx) = done.take() {
            let _ = tx.try_send(());
        }
    }
    rt.with(|w| w.log(format!("consumer {index}: stream ended")));
}

/// Waits for `fut`, or gives up when `limit` of virtual time has passed.
async fn within<T>(
    rt: &SimRuntime,
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match select(Box::pin(fut), rt.sleep_for(limit)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

/// Runs `case` and returns what happened; the checks are [`Outcome::violations`].
pub fn run(case: &Case) -> Outcome {
    let rt = SimRuntime::new(case.seed, FakeServer::new("15.4"));
    rt.with(|w| {
        w.faults.plan = case.faults.clone();
        w.faults.refuse = case.refuse_first;
        for f in &case.faults {
            if let Trigger::Query(prefix, at) = f.trigger {
                w.server.cut(prefix, at);
            }
        }
        w.record.consumers = vec![ConsumerSeen::default(); case.consumers.len()];
    });
    let source = Source::with_runtime("sim", case.config(), rt.clone())
        .unwrap_or_else(|e| panic!("{}: the configuration is refused: {e}", case.describe()));
    let expected = case.expected_ids().len();
    let (done_tx, done_rx) = async_channel::bounded::<()>(case.consumers.len());
    for (i, plan) in case.consumers.iter().enumerate() {
        let sub = source.subscribe();
        rt.spawn_named(
            &format!("consumer {i}"),
            consume(
                rt.clone(),
                sub,
                i,
                plan.clone(),
                case.ack == AckMode::Manual,
                expected,
                done_tx.clone(),
            ),
        );
    }
    drop(done_tx);
    let (start, slot_at_start, finished) = rt.block_on(async {
        let start = within(&rt, RUN_LIMIT, source.start()).await;
        let slot_at_start = rt.with(|w| w.server.slot.is_some());
        rt.with(|w| w.log(format!("start() returned {start:?}")));
        let start = match start {
            None => Err("start() did not return".to_owned()),
            Some(r) => r.map_err(|e| e.to_string()),
        };
        let mut finished = false;
        if start.is_ok() {
            let producer = {
                let rt = rt.clone();
                let (txns, rows, every) = (case.txns, case.rows, case.commit_every);
                let wait_for_slot = case.first_commit == FirstCommit::OnceTheSlotExists;
                async move {
                    while wait_for_slot && rt.with(|w| w.server.slot.is_none()) {
                        rt.sleep_for(Duration::from_millis(10)).await;
                    }
                    for t in 0..txns {
                        let ids: Vec<u32> = (t * rows + 1..=(t + 1) * rows).collect();
                        rt.with(|w| w.commit(700 + t, &ids));
                        rt.sleep_for(every).await;
                    }
                }
            };
            rt.spawn_named("producer", producer);
            let all = async {
                for _ in 0..case.consumers.len() {
                    let _ = done_rx.recv().await;
                }
            };
            finished = within(&rt, RUN_LIMIT, all).await.is_some();
            // Let the last acknowledgement reach the server before stopping.
            rt.sleep_for(Duration::from_secs(2)).await;
        }
        let _ = within(&rt, RUN_LIMIT, source.stop()).await;
        rt.sleep_for(Duration::from_millis(10)).await;
        (start, slot_at_start, finished)
    });
    let status = source.status();
    let mut w = rt.world();
    Outcome {
        case: case.describe(),
        script: w.server.wal.clone(),
        start,
        slot_at_start,
        finished,
        consumers: std::mem::take(&mut w.record.consumers),
        statuses: std::mem::take(&mut w.record.statuses),
        final_confirmed: w.server.slot.as_ref().map(|s| s.confirmed),
        messages_sent: w.faults.messages_sent,
        fired: std::mem::take(&mut w.faults.fired),
        unfired: std::mem::take(&mut w.faults.plan),
        unexpected_queries: w.server.unexpected.clone(),
        status,
        elapsed: w.now,
        trace: std::mem::take(&mut w.trace),
    }
}

impl Outcome {
    /// Everything that went wrong, each line saying what and where; empty when the run
    /// holds every guarantee.
    pub fn violations(&self, case: &Case) -> Vec<String> {
        let mut v = Vec::new();
        if let Err(e) = &self.start {
            v.push(format!("start() failed: {e}"));
        }
        if case.first_commit == FirstCommit::AfterStart && self.start.is_ok() && !self.slot_at_start
        {
            v.push(
                "start() returned Ok before the replication slot existed: changes committed \
                 meanwhile are not captured"
                    .to_owned(),
            );
        }
        if !self.unexpected_queries.is_empty() {
            v.push(format!(
                "the fake server had no answer to {:?}",
                self.unexpected_queries
            ));
        }
        let expected = case.expected_ids();
        for (i, c) in self.consumers.iter().enumerate() {
            let got: Vec<u32> = c.batches.iter().flat_map(|b| b.ids.clone()).collect();
            if let Some(e) = exactly_once(&expected, &got) {
                v.push(format!("consumer {i}: {e}"));
            }
            for b in c.batches.iter().filter(|b| b.last) {
                let end = self.script.iter().find(|t| t.xid == b.xid).map(|t| t.end);
                if b.ack_lsn != end {
                    v.push(format!(
                        "consumer {i}: the last chunk of xid {} carries ack LSN {:?}, the script's end is {:?}",
                        b.xid, b.ack_lsn, end
                    ));
                }
            }
        }
        if !self.finished && self.start.is_ok() {
            v.push(format!(
                "not every row arrived within {RUN_LIMIT:?} of virtual time"
            ));
        }
        v.extend(self.flush_violations(case));
        let last_end = self.script.last().map(|t| t.end);
        if self.finished && last_end.is_some() && self.final_confirmed != last_end {
            v.push(format!(
                "after stop() the slot is confirmed at {:?}, not at the last transaction's end {:?}",
                self.final_confirmed, last_end
            ));
        }
        v
    }

    /// The flush guarantee, at every status update the server received.
    ///
    /// * Manual: no transaction at or below the flush is unacknowledged by any consumer.
    /// * OnDelivery: every transaction at or below the flush had been handed to each
    ///   subscriber: received, or in its queue, so among the next `capacity` batches it
    ///   received after that moment.
    fn flush_violations(&self, case: &Case) -> Vec<String> {
        let mut v = Vec::new();
        for s in &self.statuses {
            let covered = self.script.iter().filter(|t| t.end <= s.flush);
            match case.ack {
                AckMode::Manual => {
                    let acked = s.acked.iter().copied().min().unwrap_or(Lsn::ZERO);
                    if let Some(t) = covered.clone().find(|t| t.end > acked) {
                        v.push(format!(
                            "status update at t={:?} on conn#{} reported flush {}, past xid {} (end {}) \
                             that not every consumer had acknowledged (acknowledged: {:?})",
                            s.at, s.conn, s.flush, t.xid, t.end, s.acked
                        ));
                    }
                }
                _ => {
                    for (i, c) in self.consumers.iter().enumerate() {
                        let received = s.received.get(i).copied().unwrap_or(0);
                        let bad = covered.clone().find_map(|t| {
                            let pos = c
                                .batches
                                .iter()
                                .position(|b| b.last && b.ack_lsn == Some(t.end))
                                .map(|p| p + 1);
                            match pos {
                                Some(p) if p <= received + case.capacity => None,
                                other => Some((t, other)),
                            }
                        });
                        if let Some((t, pos)) = bad {
                            v.push(format!(
                                "status update at t={:?} on conn#{} reported flush {}, past xid {} (end {}) \
                                 that consumer {i} had neither received nor queued (it had received {received} \
                                 batches, queue capacity {}; the transaction's last chunk arrived as batch {})",
                                s.at,
                                s.conn,
                                s.flush,
                                t.xid,
                                t.end,
                                case.capacity,
                                pos.map_or_else(|| "never".to_owned(), |p| p.to_string())
                            ));
                        }
                    }
                }
            }
            if v.len() >= 3 {
                break;
            }
        }
        v
    }
}

/// Why `got` is not `expected` exactly once and in order, if it is not.
fn exactly_once(expected: &[u32], got: &[u32]) -> Option<String> {
    if got == expected {
        return None;
    }
    let at = expected
        .iter()
        .zip(got)
        .position(|(e, g)| e != g)
        .unwrap_or(expected.len().min(got.len()));
    let mut sorted = got.to_vec();
    sorted.sort_unstable();
    let dupes = sorted.windows(2).filter(|w| w[0] == w[1]).count();
    let missing: Vec<u32> = expected
        .iter()
        .filter(|id| sorted.binary_search(id).is_err())
        .copied()
        .collect();
    let window = |s: &[u32]| -> Vec<u32> {
        s.iter()
            .skip(at.saturating_sub(2))
            .take(6)
            .copied()
            .collect()
    };
    Some(format!(
        "rows not exactly once in order: {} of {} received, {} missing (first {:?}), {} duplicated; \
         first divergence at position {at}: expected {:?}, got {:?}",
        got.len(),
        expected.len(),
        missing.len(),
        missing.first(),
        dupes,
        window(expected),
        window(got)
    ))
}
