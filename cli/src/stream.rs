//! `pgcdc stream`: changes to stdout, acknowledged once written.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{IsTerminal as _, Write};
use std::time::Duration;

use pgcdc_core::model::SourceChange;
use pgcdc_core::source_config::{BootstrapMode, StreamingMode};
use pgcdc_tokio::{
    AckMode, Error, Lsn, PostgresReplicationSource, SourceState, StartCause, Subscription,
};
use tokio::time::Instant;

use crate::CliError;
use crate::args::{Format, StreamArgs};
use crate::{db, output};
use pgcdc_sink::json;

/// When the stream ends by itself.
#[derive(Debug, Default)]
pub struct Rules {
    /// After the first transaction whose end LSN reaches this.
    pub until_lsn: Option<Lsn>,
    /// After this long without a change.
    pub idle: Option<Duration>,
    /// After this many changes.
    pub max_changes: Option<u64>,
    /// After a batch holding a logical message with this prefix (the demo's end marker).
    pub until_message: Option<&'static str>,
    /// Once this turns `true` (the snapshot was copied) and every batch queued was written.
    pub until_started: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Why the stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    UntilLsn,
    Idle,
    MaxChanges,
    Message,
    SnapshotDone,
    Signal(&'static str),
    StdoutClosed,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::UntilLsn => f.write_str("--until-lsn reached"),
            End::Idle => f.write_str("idle: no change within --idle-exit"),
            End::MaxChanges => f.write_str("--max-changes reached"),
            End::Message => f.write_str("end marker received"),
            End::SnapshotDone => f.write_str("snapshot copied (--snapshot-only)"),
            End::Signal(s) => write!(f, "{s} received"),
            End::StdoutClosed => f.write_str("stdout was closed"),
        }
    }
}

/// What was streamed.
#[derive(Debug)]
pub struct Outcome {
    /// Change lines written.
    pub changes: u64,
    /// Transactions written whole and acknowledged.
    pub transactions: u64,
    /// Changes per `op`.
    pub by_op: BTreeMap<&'static str, u64>,
    /// The last acknowledged transaction end.
    pub last_acked: Option<Lsn>,
    /// Why it ended.
    pub end: End,
}

/// SIGINT (Ctrl-C) and SIGTERM, installed before connecting so they never kill the process
/// mid-write.
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn new() -> Result<Signals, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let err =
                |e: std::io::Error| CliError::failed(format!("installing signal handlers: {e}"));
            Ok(Signals {
                int: signal(SignalKind::interrupt()).map_err(err)?,
                term: signal(SignalKind::terminate()).map_err(err)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next signal and names it.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Runs `pgcdc stream`.
pub async fn run(mut a: StreamArgs) -> Result<(), CliError> {
    let mut cfg = db::config(a.url.as_deref())?;
    if a.snapshot_only {
        // A temporary slot: created with the exported snapshot, gone when the stream ends.
        cfg.temporary_slot = true;
        a.create_slot = true;
        a.snapshot = true;
    }
    if a.snapshot {
        // Copied from the slot's exported snapshot when the slot is created, then streamed
        // from its consistent point: every row once. An existing slot is resumed instead.
        cfg.bootstrap = BootstrapMode::Postgres;
    }
    cfg.slot_name = a.slot;
    cfg.publication_name = a.publication;
    cfg.tables = a.tables;
    cfg.create_slot = a.create_slot;
    cfg.create_publication = a.create_publication;
    cfg.start_lsn = a.from_lsn;
    cfg.ack_mode = AckMode::Manual;
    cfg.auto_start = false;
    if a.failover {
        cfg.failover = true;
    }
    if let Some(m) = a.slot_in_use {
        cfg.slot_in_use = m;
    }
    if let Some(t) = a.start_timeout {
        cfg.start_timeout_ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
    }
    cfg.streaming = match a.streaming.as_deref() {
        Some("parallel") => StreamingMode::Parallel,
        Some(_) => StreamingMode::On,
        None => StreamingMode::Off,
    };
    cfg.two_phase = a.two_phase;
    if let Some(bytes) = a.spill_threshold {
        cfg.spill_threshold_bytes = bytes;
    }
    if let Some(dir) = a.spill_dir {
        cfg.spill_dir = Some(dir.into());
    }
    // The log is checked before PostgreSQL is touched: a wrong --sink creates no slot.
    let publisher = match a.sink.take() {
        Some(sink) => {
            Some(crate::publish::connect(&sink, &cfg.database, &cfg.slot_name, a.until_lsn).await?)
        }
        None => None,
    };
    // The recorder comes first: the source makes its metric handles when it is built.
    let recorder = a
        .metrics_addr
        .map(|_| crate::metrics::install())
        .transpose()?;
    let source = PostgresReplicationSource::new("pgcdc", cfg)
        .map_err(|e| CliError::usage(Some("stream"), e.to_string()))?;
    if let (Some(addr), Some(handle)) = (a.metrics_addr, recorder) {
        crate::metrics::serve(addr, handle, source.clone()).await?;
    }
    let mut signals = Signals::new()?;
    let sub = source.subscribe();
    let (started_tx, started_rx) = tokio::sync::watch::channel(false);
    if a.snapshot {
        // start() returns when streaming begins, after the subscribers took every row of the
        // snapshot: they must be consumed meanwhile. A failed start ends the subscription,
        // and `pump` reports the error.
        let starting = source.clone();
        tokio::spawn(async move {
            if starting.start().await.is_ok() {
                let _ = started_tx.send(true);
            }
        });
    } else if !start(&source, &mut signals).await? {
        return Ok(());
    }
    let every = a.progress_every.unwrap_or(PROGRESS_LOG_EVERY);
    let progress = a
        .snapshot
        .then(|| spawn_progress(source.clone(), every))
        .flatten();
    let rules = Rules {
        until_lsn: a.until_lsn,
        idle: a.idle_exit,
        max_changes: a.max_changes,
        until_message: None,
        until_started: a.snapshot_only.then_some(started_rx),
    };
    if let Some(publisher) = publisher {
        let result = crate::publish::pump(
            &source,
            sub,
            publisher,
            &mut signals,
            rules.until_started.clone(),
        )
        .await;
        if let Some(p) = progress {
            p.abort();
        }
        return result;
    }
    // On a worker thread of the runtime, beside the source's task: a batch handed over
    // wakes it without a hop to the main thread.
    let format = a.format.unwrap_or(Format::Jsonl);
    let pumping = source.clone();
    let result = tokio::spawn(async move {
        let mut out = std::io::stdout();
        pump(&pumping, sub, format, &rules, &mut signals, &mut out).await
    })
    .await
    .unwrap_or_else(|e| Err(CliError::failed(format!("the output task failed: {e}"))));
    if let Some(p) = progress {
        p.abort();
    }
    // The copy's summary, however short it was (the periodic lines may not have come).
    if let Some(p) = source.status().bootstrap
        && p.stage == pgcdc_tokio::BootstrapStage::Done
    {
        tracing::info!(
            rows = p.rows,
            estimated_rows = p.estimated_rows(),
            tables = p.tables.len(),
            "snapshot done"
        );
    }
    let outcome = result?;
    tracing::info!(
        changes = outcome.changes,
        transactions = outcome.transactions,
        acked = %outcome.last_acked.map_or_else(|| "-".to_owned(), |l| l.to_string()),
        "stream ended: {}",
        outcome.end
    );
    Ok(())
}

/// Starts the source. `Ok(false)` when a signal arrived first (the source is stopped).
/// Transient failures (the server not up yet, the slot still in use by another consumer)
/// are retried, as the source's reconnect policy says, until the slot is reached or
/// `--start-timeout` passes; each attempt is logged on stderr with its number.
pub async fn start(
    source: &PostgresReplicationSource,
    signals: &mut Signals,
) -> Result<bool, CliError> {
    tokio::select! {
        r = source.start() => r.map_err(|e| {
            let unreachable = matches!(
                &e,
                Error::Start(s) if matches!(
                    s.cause(),
                    StartCause::Driver(Error::Connect { .. } | Error::ConnectUnix { .. })
                )
            );
            let mut message = e.to_string();
            if unreachable {
                message = format!("{message}; {}", db::URL_HINT);
            }
            CliError::failed(message)
        })?,
        sig = signals.recv() => {
            tracing::info!("{sig} received while connecting; stopping");
            let _ = source.stop().await;
            return Ok(false);
        }
    }
    Ok(true)
}

/// Output gathered before it is written (unless the stream is caught up first).
const WRITE_BLOCK: usize = 256 * 1024;

/// Output up to this size is written on the task's thread; larger blocks are written in a
/// blocking section ([`tokio::task::block_in_place`]).
const DIRECT_WRITE: usize = 16 * 1024;

/// Lines rendered and not yet written, with what to acknowledge once they are.
struct Pending {
    buf: String,
    /// The last whole batch among them (acknowledging it covers the earlier ones).
    ack: Option<pgcdc_tokio::ChangeBatch>,
    /// Whole transactions among them.
    transactions: u64,
}

impl Pending {
    /// Writes and flushes the gathered lines, then acknowledges them.
    fn write(
        &mut self,
        out: &mut (dyn Write + Send),
        outcome: &mut Outcome,
    ) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let buf = &self.buf;
            if buf.len() <= DIRECT_WRITE {
                // Fits in a pipe's buffer: written at once unless the reader is far behind,
                // and the hand-off of a blocking section would cost more than the write.
                out.write_all(buf.as_bytes()).and_then(|()| out.flush())?;
            } else {
                // A slow reader blocks the write: let the runtime move its other work
                // elsewhere.
                tokio::task::block_in_place(|| {
                    out.write_all(buf.as_bytes()).and_then(|()| out.flush())
                })?;
            }
            self.buf.clear();
        }
        if let Some(batch) = self.ack.take() {
            batch.ack();
            if let Some(lsn) = batch.ack_lsn() {
                outcome.last_acked = Some(lsn);
            }
        }
        outcome.transactions += std::mem::take(&mut self.transactions);
        Ok(())
    }
}

/// Writes every batch of `sub` to `out`, acknowledges what was flushed, until a rule, a
/// signal or an error ends it; then stops the source cleanly (final status update, CopyDone).
///
/// Lines are gathered in blocks of about [`WRITE_BLOCK`] bytes and written with one call; a
/// block is written early as soon as no further batch is ready (the stream is caught up), so
/// a quiet stream shows each transaction at once and a backlog costs few writes. A batch is
/// acknowledged only once all its lines were written and flushed: a transaction cut short by
/// `--max-changes` (or a closed stdout) is not, and is sent again next time.
pub async fn pump(
    source: &PostgresReplicationSource,
    mut sub: Subscription,
    format: Format,
    rules: &Rules,
    signals: &mut Signals,
    out: &mut (dyn Write + Send),
) -> Result<Outcome, CliError> {
    let mut outcome = Outcome {
        changes: 0,
        transactions: 0,
        by_op: BTreeMap::new(),
        last_acked: None,
        end: End::Idle,
    };
    let mut last_activity = Instant::now();
    let mut pending = Pending {
        buf: String::with_capacity(WRITE_BLOCK + WRITE_BLOCK / 4),
        ack: None,
        transactions: 0,
    };
    let mut write_error = None;
    let end = loop {
        // A batch ready right now; otherwise write what was gathered, then wait for one.
        let ready = tokio::select! {
            biased;
            sig = signals.recv() => break End::Signal(sig),
            b = sub.recv() => Some(b),
            () = std::future::ready(()) => None,
        };
        let next = match ready {
            Some(b) => b,
            None => {
                if let Err(e) = pending.write(out, &mut outcome) {
                    write_error = Some(e);
                    break End::StdoutClosed;
                }
                // The copy was delivered (start() returned), nothing is left to write, and
                // the source saw its queues drained (it leaves Bootstrapping then).
                let snapshot_over = async {
                    let Some(mut rx) = rules.until_started.clone() else {
                        return std::future::pending().await;
                    };
                    if rx.wait_for(|done| *done).await.is_err() {
                        // The start failed: the subscription ends with the error.
                        return std::future::pending().await;
                    }
                    while source.status().state == SourceState::Bootstrapping {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                let idle = async {
                    match rules.idle {
                        Some(d) => tokio::time::sleep_until(last_activity + d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    sig = signals.recv() => break End::Signal(sig),
                    b = sub.recv() => b,
                    () = snapshot_over => break End::SnapshotDone,
                    () = idle => break End::Idle,
                }
            }
        };
        let Some(batch) = next else {
            // What was received is still written (and not acknowledged: the source is gone).
            let _ = pending.write(out, &mut outcome);
            let _ = source.stop().await;
            let st = source.status();
            return Err(CliError::failed(match st.state {
                SourceState::Failed(message) => message,
                _ => format!(
                    "the replication source stopped unexpectedly{}",
                    st.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            }));
        };
        last_activity = Instant::now();
        let room = rules
            .max_changes
            .map_or(u64::MAX, |m| m.saturating_sub(outcome.changes));
        let take = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(batch.changes.len());
        let changes = batch.changes.get(..take).unwrap_or_default();
        output::render(&mut pending.buf, format, &batch, changes);
        for c in changes {
            *outcome.by_op.entry(json::op_name(c)).or_default() += 1;
        }
        outcome.changes += take as u64;
        let mut stop = None;
        if rules.max_changes.is_some_and(|m| outcome.changes >= m) {
            stop = Some(End::MaxChanges);
        }
        if let (Some(until), Some(end)) = (rules.until_lsn, batch.ack_lsn()) {
            if end >= until {
                stop = stop.or(Some(End::UntilLsn));
            }
        }
        if let Some(prefix) = rules.until_message {
            let marker = batch.changes.iter().any(
                |c| matches!(c, SourceChange::Message { message, .. } if message.prefix == prefix),
            );
            if marker {
                stop = stop.or(Some(End::Message));
            }
        }
        if take == batch.changes.len() {
            if batch.ack_lsn().is_some() {
                pending.transactions += 1;
            }
            pending.ack = Some(batch);
        }
        if let Some(end) = stop {
            break end;
        }
        if pending.buf.len() >= WRITE_BLOCK {
            if let Err(e) = pending.write(out, &mut outcome) {
                write_error = Some(e);
                break End::StdoutClosed;
            }
        }
    };
    if write_error.is_none() && end != End::StdoutClosed {
        if let Err(e) = pending.write(out, &mut outcome) {
            write_error = Some(e);
        }
    }
    let end = match write_error {
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => End::StdoutClosed,
        Some(e) => {
            let _ = source.stop().await;
            return Err(CliError::failed(format!("writing to stdout: {e}")));
        }
        None => end,
    };
    if let End::Signal(sig) = end {
        tracing::info!("{sig} received; stopping");
    }
    // Acknowledge the last written transaction once more right before stopping, so the final
    // status update carries it even if the first ack raced the delivery bookkeeping.
    if let Some(lsn) = outcome.last_acked {
        source.ack(lsn);
    }
    source
        .stop()
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;
    outcome.end = end;
    Ok(outcome)
}

/// Progress of the initial snapshot on stderr: on a terminal a bar per table (rows against
/// the planner's estimate `reltuples`, rate, ETA) under a total; elsewhere a log line every
/// `every` ([`PROGRESS_LOG_EVERY`] by default). Ends by itself when the bootstrap is over.
fn spawn_progress(
    source: PostgresReplicationSource,
    every: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if std::io::stderr().is_terminal() {
        Some(tokio::spawn(progress_bars(source)))
    } else {
        Some(tokio::spawn(progress_lines(source, every)))
    }
}

/// How often a bootstrap's progress is logged by default when stderr is not a terminal.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(5);

async fn progress_bars(source: PostgresReplicationSource) {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    let table_style = ProgressStyle::with_template(
        "{prefix:>24} [{bar:30}] {human_pos}/~{human_len} rows  {msg:>14}  eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let mut total: Option<ProgressBar> = None;
    let mut seen_bootstrap = false;
    loop {
        tokio::time::sleep(Duration::from_millis(125)).await;
        let st = source.status();
        let Some(p) = st.bootstrap.as_ref() else {
            if seen_bootstrap || st.state == SourceState::Running {
                break;
            }
            continue;
        };
        seen_bootstrap = true;
        for t in &p.tables {
            let bar = bars.entry(t.table.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(t.estimated_rows.max(1)));
                b.set_style(table_style.clone());
                b.set_prefix(t.table.clone());
                b
            });
            bar.set_message(rate(bar.per_sec()));
            // reltuples is an estimate: the bar grows when the table has more rows.
            bar.set_length(t.estimated_rows.max(t.rows).max(1));
            bar.set_position(t.rows);
            if t.done && !bar.is_finished() {
                bar.set_length(t.rows.max(1));
                bar.finish();
            }
        }
        let total_bar = total.get_or_insert_with(|| {
            let b = multi.add(ProgressBar::new(1));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>24} {human_pos}/~{human_len} rows, {msg}  {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_prefix("snapshot");
            b
        });
        let done = p.tables.iter().filter(|t| t.done).count();
        total_bar.set_length(p.estimated_rows().max(p.rows).max(1));
        total_bar.set_position(p.rows);
        total_bar.set_message(format!(
            "{done}/{} tables  {}",
            p.tables.len(),
            rate(total_bar.per_sec())
        ));
        if !matches!(
            p.stage,
            pgcdc_tokio::BootstrapStage::Planning | pgcdc_tokio::BootstrapStage::Copying
        ) {
            total_bar.finish();
            break;
        }
    }
    let _ = multi.clear();
}

/// `1.04 M rows/s`.
fn rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M rows/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k rows/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} rows/s")
    }
}

async fn progress_lines(source: PostgresReplicationSource, every: Duration) {
    let since = Instant::now();
    let mut last_rows = 0u64;
    loop {
        tokio::time::sleep(every).await;
        let st = source.status();
        let Some(p) = st.bootstrap.as_ref() else {
            if st.state == SourceState::Starting {
                continue;
            }
            break;
        };
        if !matches!(
            p.stage,
            pgcdc_tokio::BootstrapStage::Planning | pgcdc_tokio::BootstrapStage::Copying
        ) {
            break;
        }
        if p.stage == pgcdc_tokio::BootstrapStage::Planning {
            continue;
        }
        let done = p.tables.iter().filter(|t| t.done).count();
        let rate = (p.rows - last_rows.min(p.rows)) as f64 / every.as_secs_f64();
        last_rows = p.rows;
        let estimate = p.estimated_rows();
        let eta = if rate > 0.0 && estimate > p.rows {
            format!("{:.0}s", (estimate - p.rows) as f64 / rate)
        } else {
            "-".to_owned()
        };
        tracing::info!(
            rows = p.rows,
            estimated_rows = estimate,
            tables_done = done,
            tables = p.tables.len(),
            rows_per_sec = rate.round() as u64,
            eta = %eta,
            elapsed_s = since.elapsed().as_secs(),
            "snapshot progress"
        );
    }
}
