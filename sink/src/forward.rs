//! The loop between a subscription and a sink: publish pipelined, acknowledge in order.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use metrics::{Counter, Gauge, counter, gauge};
use pgcdc_tokio::{ChangeBatch, Lsn, PostgresReplicationSource, SourceState, Subscription};
use tokio::time::Instant;

use crate::{Encoder, PendingAck, Record, Sink, SinkError};

/// Limits of [`forward`].
#[derive(Clone, Debug)]
pub struct ForwardOptions {
    /// Records sent and not yet acknowledged by the log, at most (a batch is taken whole, so
    /// this can be passed by one batch's records). Once reached, no batch is taken from the
    /// subscription: its queue fills and the source stops reading the replication socket.
    pub max_in_flight: usize,
    /// Payload bytes in flight, at most (the same way).
    pub max_in_flight_bytes: usize,
    /// The first wait before a record that failed transiently is sent again; it doubles
    /// up to [`retry_max`](Self::retry_max) while the failures go on.
    pub retry_initial: Duration,
    /// The longest wait between two sends of a record.
    pub retry_max: Duration,
    /// Give up after failing transiently for this long without one acknowledgement
    /// (`None`: retry until stopped).
    pub retry_deadline: Option<Duration>,
    /// After the stop signal, how long the records in flight may take to be acknowledged.
    pub drain_timeout: Duration,
    /// Stop after the first transaction whose end LSN reaches this (once it and everything
    /// before it is stored and acknowledged).
    pub until_lsn: Option<Lsn>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            max_in_flight: 4096,
            max_in_flight_bytes: 16 << 20,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            retry_deadline: None,
            drain_timeout: Duration::from_secs(30),
            until_lsn: None,
        }
    }
}

/// Why [`forward`] returned normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The stop future completed and everything in flight was acknowledged.
    Requested,
    /// A transaction reached [`ForwardOptions::until_lsn`] and everything up to it was
    /// acknowledged.
    UntilLsn,
    /// The stop future completed and the log did not acknowledge everything in flight
    /// within [`ForwardOptions::drain_timeout`]: those batches are not acknowledged to
    /// PostgreSQL (they are sent again next time).
    DrainTimedOut,
}

/// What was forwarded.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Records acknowledged by the log (copies included).
    pub records: u64,
    /// Of those, the ones the log recognised as copies of stored records.
    pub duplicates: u64,
    /// Batches acknowledged to PostgreSQL.
    pub batches: u64,
    /// Records sent again after a transient failure.
    pub resent: u64,
    /// The last transaction end acknowledged to PostgreSQL.
    pub last_acked: Option<Lsn>,
    /// Why it ended (`None` until it has).
    pub stop: Option<Stop>,
}

/// Why [`forward`] failed. Nothing after the last acknowledged batch was acknowledged to
/// PostgreSQL: the next start sends it again.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The log refused a record, or failed transiently past the retry deadline.
    #[error("publishing {subject} (id {id}) to {sink}: {error}")]
    Sink {
        /// The sink.
        sink: String,
        /// The record's subject.
        subject: String,
        /// The record's id.
        id: String,
        /// What the log said.
        #[source]
        error: SinkError,
    },
    /// The replication source ended.
    #[error("the replication source stopped: {0}")]
    Source(String),
}

/// The names of the figures [`forward`] hands to the [`metrics`] facade, labelled
/// `sink=<Sink::describe>`.
pub mod metric_names {
    /// Records the log acknowledged (copies included).
    pub const RECORDS: &str = "pgcdc_sink_records_total";
    /// Records the log recognised as copies of stored ones.
    pub const DUPLICATES: &str = "pgcdc_sink_duplicates_total";
    /// Records sent again after a transient failure or an out-of-order refusal.
    pub const RESENT: &str = "pgcdc_sink_resent_total";
    /// Batches acknowledged to PostgreSQL.
    pub const BATCHES: &str = "pgcdc_sink_batches_total";
    /// Records sent and not yet acknowledged.
    pub const IN_FLIGHT: &str = "pgcdc_sink_in_flight_records";
    /// Their payload bytes.
    pub const IN_FLIGHT_BYTES: &str = "pgcdc_sink_in_flight_bytes";
}

/// The metric handles of one [`forward`].
struct Figures {
    records: Counter,
    duplicates: Counter,
    resent: Counter,
    batches: Counter,
    in_flight: Gauge,
    in_flight_bytes: Gauge,
}

impl Figures {
    fn new(sink: &str) -> Self {
        let l = || [("sink", sink.to_owned())];
        Figures {
            records: counter!(metric_names::RECORDS, &l()),
            duplicates: counter!(metric_names::DUPLICATES, &l()),
            resent: counter!(metric_names::RESENT, &l()),
            batches: counter!(metric_names::BATCHES, &l()),
            in_flight: gauge!(metric_names::IN_FLIGHT, &l()),
            in_flight_bytes: gauge!(metric_names::IN_FLIGHT_BYTES, &l()),
        }
    }
}

/// One batch in flight: its records, and the acknowledgements of those sent.
struct InFlight {
    batch: ChangeBatch,
    records: Vec<Record>,
    /// Records acknowledged (a prefix of `records`).
    done: usize,
    /// The acknowledgements of `records[done..done + pending.len()]`.
    pending: VecDeque<PendingAck>,
    bytes: usize,
}

/// Publishes every batch of `sub` through `sink` until `stop` completes, and acknowledges
/// each batch to PostgreSQL once the log acknowledged all its records and those of every
/// earlier batch.
///
/// Records are sent as soon as their batch is taken, up to the limits of `options` in
/// flight. A transient failure sends the failed record and every later one again, in
/// order, after a backoff (the log drops the copies of those it had stored); a refusal ends
/// the loop with [`ForwardError::Sink`], leaving the source running and its last
/// acknowledged position where it was: the caller stops the source.
///
/// # Errors
///
/// [`ForwardError::Sink`] when the log refuses a record (or fails past
/// [`ForwardOptions::retry_deadline`]), [`ForwardError::Source`] when the subscription ends.
pub async fn forward<S: Sink>(
    source: &PostgresReplicationSource,
    sub: &mut Subscription,
    sink: &mut S,
    encoder: &mut Encoder,
    options: &ForwardOptions,
    stop: impl Future<Output = ()>,
) -> Result<Outcome, ForwardError> {
    let mut state = State {
        queue: VecDeque::new(),
        records: 0,
        bytes: 0,
        outcome: Outcome::default(),
        backoff: options.retry_initial,
        failing_since: None,
        last_stored_id: None,
        figures: Figures::new(&sink.describe()),
    };
    let mut stop = std::pin::pin!(stop);
    let mut reached = false;
    loop {
        let room =
            state.records < options.max_in_flight && state.bytes < options.max_in_flight_bytes;
        let waiting = !state.queue.is_empty();
        tokio::select! {
            biased;
            () = &mut stop => break,
            ack = head_ack(&mut state.queue), if waiting => {
                state.settle_head(ack, sink, options).await?;
            }
            batch = sub.recv(), if room => {
                let Some(batch) = batch else {
                    let st = source.status();
                    return Err(ForwardError::Source(match st.state {
                        SourceState::Failed(message) => message,
                        _ => st
                            .last_error
                            .unwrap_or_else(|| "the subscription ended".to_owned()),
                    }));
                };
                let end = batch.ack_lsn();
                state.take(batch, encoder, sink, options).await?;
                if let (Some(until), Some(end)) = (options.until_lsn, end)
                    && end >= until
                {
                    reached = true;
                    break;
                }
            }
        }
    }
    // Stopping: what is in flight may still be stored; wait for it, within the timeout.
    let deadline = Instant::now() + options.drain_timeout;
    while !state.queue.is_empty() {
        tokio::select! {
            ack = head_ack(&mut state.queue) => {
                state.settle_head(ack, sink, options).await?;
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(
                    batches = state.queue.len(),
                    records = state.records,
                    "stopping with records the log did not acknowledge in time: they are not \
                     acknowledged to PostgreSQL and are sent again next time"
                );
                state.outcome.stop = Some(Stop::DrainTimedOut);
                return Ok(state.outcome);
            }
        }
    }
    state.outcome.stop = Some(if reached {
        Stop::UntilLsn
    } else {
        Stop::Requested
    });
    Ok(state.outcome)
}

/// The acknowledgement of the oldest record in flight (a batch without records in flight is
/// settled by [`State::settle_done`] before this is awaited).
async fn head_ack(queue: &mut VecDeque<InFlight>) -> Result<crate::Receipt, SinkError> {
    match queue.front_mut().and_then(|b| b.pending.front_mut()) {
        Some(ack) => ack.await,
        None => std::future::pending().await,
    }
}

struct State {
    queue: VecDeque<InFlight>,
    /// Records in flight.
    records: usize,
    /// Their payload bytes.
    bytes: usize,
    outcome: Outcome,
    backoff: Duration,
    /// When the current run of transient failures began.
    failing_since: Option<Instant>,
    /// The id of the last record of the last batch settled (stored).
    last_stored_id: Option<String>,
    figures: Figures,
}

impl State {
    /// Encodes `batch`, sends its records, queues it.
    async fn take<S: Sink>(
        &mut self,
        batch: ChangeBatch,
        encoder: &mut Encoder,
        sink: &mut S,
        options: &ForwardOptions,
    ) -> Result<(), ForwardError> {
        let mut records = Vec::with_capacity(batch.changes.len());
        encoder.encode(&batch, &mut records);
        let bytes = records.iter().map(|r| r.payload.len()).sum();
        self.records += records.len();
        self.bytes += bytes;
        self.figures.in_flight.set(self.records as f64);
        self.figures.in_flight_bytes.set(self.bytes as f64);
        self.queue.push_back(InFlight {
            batch,
            records,
            done: 0,
            pending: VecDeque::new(),
            bytes,
        });
        if let Err((record, error)) = self.send_unsent(sink, false).await {
            self.retry_or_fail(record, error, sink, options).await?;
        }
        self.settle_done();
        Ok(())
    }

    /// Sends, in order, every queued record that has no acknowledgement pending, each after
    /// the record before it (the first of a run after none: everything before it is stored;
    /// with `fresh_head`, the first one sent also after none). On an error, the record that
    /// failed (as `(subject, id)`) and the error.
    async fn send_unsent<S: Sink>(
        &mut self,
        sink: &mut S,
        fresh_head: bool,
    ) -> Result<(), ((String, String), SinkError)> {
        // Batches sent whole are skipped: the last record among them is the previous one.
        let skip = self
            .queue
            .iter()
            .take_while(|b| b.done + b.pending.len() == b.records.len())
            .count();
        let start: Option<String> = self
            .queue
            .iter()
            .take(skip)
            .rev()
            .find_map(|b| b.records.last())
            .map(|r| r.id.clone())
            .or_else(|| self.last_stored_id.clone());
        let mut prev: Option<&str> = start.as_deref();
        let mut first = true;
        for b in self.queue.iter_mut().skip(skip) {
            for (i, record) in b.records.iter().enumerate() {
                if i < b.done + b.pending.len() {
                    prev = Some(&record.id);
                    continue;
                }
                let after = if first && fresh_head { None } else { prev };
                first = false;
                match sink.publish(record, after).await {
                    Ok(ack) => b.pending.push_back(ack),
                    Err(e) => return Err(((record.subject.clone(), record.id.clone()), e)),
                }
                prev = Some(&record.id);
            }
        }
        Ok(())
    }

    /// Handles the oldest acknowledgement.
    async fn settle_head<S: Sink>(
        &mut self,
        ack: Result<crate::Receipt, SinkError>,
        sink: &mut S,
        options: &ForwardOptions,
    ) -> Result<(), ForwardError> {
        match ack {
            Ok(receipt) => {
                if let Some(b) = self.queue.front_mut() {
                    b.pending.pop_front();
                    b.done += 1;
                }
                self.records = self.records.saturating_sub(1);
                self.outcome.records += 1;
                self.figures.records.increment(1);
                if receipt.duplicate {
                    self.outcome.duplicates += 1;
                    self.figures.duplicates.increment(1);
                }
                self.figures.in_flight.set(self.records as f64);
                self.backoff = options.retry_initial;
                self.failing_since = None;
                self.settle_done();
                Ok(())
            }
            Err(error) => {
                let record = self
                    .queue
                    .front()
                    .and_then(|b| b.records.get(b.done))
                    .map(|r| (r.subject.clone(), r.id.clone()))
                    .unwrap_or_default();
                self.retry_or_fail(record, error, sink, options).await
            }
        }
    }

    /// After a failure: a refusal (or a transient failure past the deadline) is the error;
    /// otherwise waits the backoff and sends everything unacknowledged again, in order,
    /// until that succeeds.
    async fn retry_or_fail<S: Sink>(
        &mut self,
        mut record: (String, String),
        mut error: SinkError,
        sink: &mut S,
        options: &ForwardOptions,
    ) -> Result<(), ForwardError> {
        loop {
            let since = *self.failing_since.get_or_insert_with(Instant::now);
            let past_deadline = options.retry_deadline.is_some_and(|d| since.elapsed() >= d);
            let out_of_order = error.is_out_of_order();
            if !(error.is_transient() || out_of_order) || past_deadline {
                return Err(ForwardError::Sink {
                    sink: sink.describe(),
                    subject: record.0,
                    id: record.1,
                    error,
                });
            }
            if out_of_order {
                // Everything before it is stored (acknowledged, perhaps as a copy): it
                // starts a new run of records, after none.
                tracing::debug!(subject = %record.0, id = %record.1,
                    "the log's last record is not the one before this: sending it and the later ones again");
            } else {
                tracing::warn!(
                    subject = %record.0,
                    id = %record.1,
                    retry_in_ms = self.backoff.as_millis() as u64,
                    "the log did not acknowledge a record ({error}); sending it and the later ones again"
                );
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(options.retry_max);
            }
            // Every acknowledgement pending is dropped: what they covered is sent again.
            let mut resent = 0u64;
            for b in &mut self.queue {
                resent += b.pending.len() as u64;
                b.pending.clear();
            }
            self.outcome.resent += resent;
            self.figures.resent.increment(resent);
            match self.send_unsent(sink, out_of_order).await {
                Ok(()) => return Ok(()),
                Err((r, e)) => {
                    record = r;
                    error = e;
                }
            }
        }
    }

    /// Acknowledges, in order, the batches at the head whose records are all stored.
    fn settle_done(&mut self) {
        while self
            .queue
            .front()
            .is_some_and(|b| b.done == b.records.len())
        {
            let Some(b) = self.queue.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(b.bytes);
            if let Some(last) = b.records.last() {
                self.last_stored_id = Some(last.id.clone());
            }
            b.batch.ack();
            if let Some(lsn) = b.batch.ack_lsn() {
                self.outcome.last_acked = Some(lsn);
            }
            self.outcome.batches += 1;
            self.figures.batches.increment(1);
        }
        self.figures.in_flight_bytes.set(self.bytes as f64);
    }
}
