//! The initial snapshot ("bootstrap"): providers and their execution.
//!
//! When a bootstrap provider is configured, the source creates its slot with an exported
//! snapshot and, before streaming, runs the provider. The PostgreSQL provider copies the
//! published tables *inside that snapshot* (connections that `SET TRANSACTION SNAPSHOT`), so
//! every row is either in the bootstrap or in the stream that starts at the slot's consistent
//! point — never both, never neither. The bootstrap runs once, when the slot is created; a
//! restart that finds the slot resumes streaming without bootstrapping again, unless a
//! re-bootstrap is forced (the slot is then dropped and recreated with a fresh snapshot).
//! A failed bootstrap drops the slot it created, so the next start bootstraps again.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use pgcdc_core::Lsn;
use pgcdc_core::assemble::{PipelineConfig, TransactionBatch};
use pgcdc_core::model::{SourceChange, TxInfo};
use pgcdc_core::replication::{load_user_types, user_types_query};
use pgcdc_core::snapshot::{self, SnapshotAssembler, SnapshotEvent, SnapshotTable};
use pgcdc_core::source_config::{PostgresSourceConfig, TableName};
use pgcdc_core::value::TypeRegistry;

use super::batch::ChangeBatch;
use super::command::AckHandle;
use super::shared::Shared;
use crate::conn::{ConnectOptions, PgConnection};
use crate::error::{BootstrapError, Error};
use crate::runtime::{BoxFuture, Runtime};

/// Progress of one table's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableProgress {
    /// The table's label (`table`, or `schema.table` outside `public`).
    pub table: String,
    /// Rows delivered so far.
    pub rows: u64,
    /// The planner's estimate (`pg_class.reltuples`), 0 when unknown.
    pub estimated_rows: u64,
    /// Whether every part of the table was copied.
    pub done: bool,
}

/// Where a bootstrap is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapStage {
    /// Listing the tables and planning the copies.
    Planning,
    /// Copying rows.
    Copying,
    /// Every row delivered; streaming starts next.
    Done,
    /// The slot already existed: no bootstrap this time.
    Skipped,
    /// Failed with this message.
    Failed(String),
}

/// A bootstrap's progress ([`SourceStatus::bootstrap`](super::SourceStatus::bootstrap)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BootstrapProgress {
    /// The provider's name.
    pub provider: String,
    /// Where it is.
    pub stage: BootstrapStage,
    /// Per table.
    pub tables: Vec<TableProgress>,
    /// Rows delivered in total.
    pub rows: u64,
}

impl BootstrapProgress {
    /// The sum of the tables' estimates.
    pub fn estimated_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.estimated_rows).sum()
    }
}

/// What a provider works with. Cloning is cheap; clones share the progress and delivery.
#[derive(Clone)]
pub struct BootstrapContext<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) source_id: String,
    pub(crate) config: PostgresSourceConfig,
    pub(crate) connect: ConnectOptions,
    pub(crate) pipeline: PipelineConfig,
    pub(crate) snapshot_name: String,
    pub(crate) consistent_point: Lsn,
    pub(crate) shared: Arc<Shared>,
    pub(crate) acker: AckHandle,
}

impl<R: Runtime> std::fmt::Debug for BootstrapContext<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapContext")
            .field("source_id", &self.source_id)
            .field("snapshot_name", &self.snapshot_name)
            .field("consistent_point", &self.consistent_point)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> BootstrapContext<R> {
    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.rt
    }

    /// The source's id.
    pub fn source_id(&self) -> &str {
        &self.source_id
    }

    /// The source's configuration (tables, keys, publication …).
    pub fn config(&self) -> &PostgresSourceConfig {
        &self.config
    }

    /// The exported snapshot the stream continues from: import it with
    /// `SET TRANSACTION SNAPSHOT` ([`snapshot::import_snapshot_sql`]) to read exactly the
    /// rows the stream will not carry.
    pub fn snapshot_name(&self) -> &str {
        &self.snapshot_name
    }

    /// The LSN streaming starts at.
    pub fn consistent_point(&self) -> Lsn {
        self.consistent_point
    }

    /// Opens an ordinary (non-replication) connection with the source's settings.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn connect(&self) -> Result<PgConnection<R>, Error> {
        let mut opts = self.connect.clone();
        opts.params.replication = false;
        PgConnection::connect(self.rt.clone(), &opts).await
    }

    /// Delivers bootstrap changes to the subscribers (waiting while their queues are full),
    /// as one batch of a synthetic transaction with xid 0 at the consistent point, and
    /// counts them for `table` in the progress.
    pub async fn deliver(&self, table: &str, changes: Vec<SourceChange>) {
        if changes.is_empty() {
            return;
        }
        let n = changes.len() as u64;
        let batch = TransactionBatch::outside_transaction(self.consistent_point, changes);
        self.deliver_batch(batch).await;
        self.count(table, n, false);
    }

    /// The transaction information of bootstrap changes.
    pub fn tx_info(&self) -> TxInfo {
        TxInfo::outside_transaction(self.consistent_point)
    }

    async fn deliver_batch(&self, batch: TransactionBatch) {
        let b = ChangeBatch::new(batch, self.acker.clone());
        let taken = Arc::new(AtomicBool::new(false));
        self.shared.dispatcher.deliver(&self.rt, b, taken).await;
    }

    /// Records progress: `rows` more rows for `table` (registered on first use).
    pub fn count(&self, table: &str, rows: u64, done: bool) {
        self.shared.update(|s| {
            let Some(p) = s.bootstrap.as_mut() else {
                return;
            };
            p.rows += rows;
            match p.tables.iter_mut().find(|t| t.table == table) {
                Some(t) => {
                    t.rows += rows;
                    t.done |= done;
                }
                None => p.tables.push(TableProgress {
                    table: table.to_owned(),
                    rows,
                    estimated_rows: 0,
                    done,
                }),
            }
        });
    }

    fn set_stage(&self, stage: BootstrapStage) {
        self.shared.update(|s| {
            if let Some(p) = s.bootstrap.as_mut() {
                p.stage = stage;
            }
        });
    }
}

/// A source of initial rows, run once before streaming when the slot is created.
///
/// Implement it for a custom bootstrap: deliver rows with [`BootstrapContext::deliver`].
pub trait BootstrapProvider<R: Runtime>: Send + Sync + 'static {
    /// A short name for logs and status.
    fn name(&self) -> &str;

    /// Delivers the initial rows. An error fails the start (and drops the slot just
    /// created, so the next start bootstraps again).
    fn bootstrap<'a>(
        &'a self,
        ctx: &'a BootstrapContext<R>,
    ) -> BoxFuture<'a, Result<(), BootstrapError>>;
}

/// Copies the published tables from the slot's exported snapshot (the default provider for
/// `bootstrap = "postgres"`): COPY in text format through connections that import the
/// snapshot, several tables (and ctid ranges of large tables) in parallel, rows turned into
/// inserts by the same code that decodes the stream.
#[derive(Clone, Debug)]
pub struct PostgresBootstrap {
    /// Connections copying at once (4).
    pub parallelism: usize,
    /// Tables with more pages than this are copied in several ctid ranges, in parallel
    /// (4096 pages, 32 MiB).
    pub split_pages: u64,
    /// At most this many ranges per table (8).
    pub max_parts_per_table: usize,
}

impl Default for PostgresBootstrap {
    fn default() -> Self {
        PostgresBootstrap {
            parallelism: 4,
            split_pages: 4_096,
            max_parts_per_table: 8,
        }
    }
}

impl<R: Runtime> BootstrapProvider<R> for PostgresBootstrap {
    fn name(&self) -> &str {
        "postgres"
    }

    fn bootstrap<'a>(
        &'a self,
        ctx: &'a BootstrapContext<R>,
    ) -> BoxFuture<'a, Result<(), BootstrapError>> {
        Box::pin(async move { self.run(ctx).await.map_err(BootstrapError::Driver) })
    }
}

impl PostgresBootstrap {
    async fn run<R: Runtime>(&self, ctx: &BootstrapContext<R>) -> Result<(), Error> {
        let import =
            snapshot::import_snapshot_sql(&ctx.snapshot_name).map_err(|e| Error::Snapshot {
                table: None,
                source: e,
            })?;
        let names = ctx
            .config
            .tables
            .iter()
            .map(|t| TableName::parse(t).map_err(|e| Error::Config(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let list = snapshot::tables_query(&ctx.config.publication_name, &names).map_err(|e| {
            Error::Snapshot {
                table: None,
                source: e,
            }
        })?;
        let mut planner = ctx.connect().await?;
        planner.simple_query(&import).await?;
        let results = planner.simple_query(&list).await?;
        let result = results
            .first()
            .ok_or(Error::Unexpected("the table list query returned no result"))?;
        let tables = snapshot::parse_tables(result).map_err(|e| Error::Snapshot {
            table: None,
            source: e,
        })?;
        let types = Arc::new(user_types(&mut planner).await?);
        let parts = snapshot::plan_copies(&tables, self.split_pages, self.max_parts_per_table);
        tracing::info!(
            tables = tables.len(),
            parts = parts.len(),
            estimated_rows = tables.iter().map(|t| t.estimated_rows).sum::<u64>(),
            "bootstrap: copying the snapshot"
        );
        ctx.shared.update(|s| {
            if let Some(p) = s.bootstrap.as_mut() {
                p.tables = tables
                    .iter()
                    .map(|t| TableProgress {
                        table: t.label(),
                        rows: 0,
                        estimated_rows: t.estimated_rows,
                        done: false,
                    })
                    .collect();
            }
        });
        ctx.set_stage(BootstrapStage::Copying);
        // The planner connection still holds the snapshot: it copies too.
        let tables = Arc::new(tables);
        let mut remaining = vec![0usize; tables.len()];
        for p in &parts {
            if let Some(r) = remaining.get_mut(p.table) {
                *r += 1;
            }
        }
        let queue = Arc::new(Mutex::new((VecDeque::from(parts), remaining)));
        let failed = Arc::new(AtomicBool::new(false));
        let workers = self.parallelism.max(1);
        let mut conns = vec![planner];
        for _ in 1..workers {
            if queue.lock().unwrap_or_else(PoisonError::into_inner).0.len() <= conns.len() {
                break;
            }
            let mut c = ctx.connect().await?;
            c.simple_query(&import).await?;
            conns.push(c);
        }
        // One task per connection, so parsing and decoding use every core; a dropped
        // bootstrap (the source stopped) tells the workers to end through `failed`.
        let _cancel = CancelOnDrop(Arc::clone(&failed));
        let (done_tx, done_rx) = async_channel::bounded(conns.len());
        let n = conns.len();
        for conn in conns {
            let worker = copy_worker(
                ctx.clone(),
                conn,
                Arc::clone(&tables),
                Arc::clone(&types),
                Arc::clone(&queue),
                Arc::clone(&failed),
            );
            let done_tx = done_tx.clone();
            ctx.rt.spawn(Box::pin(async move {
                let _ = done_tx.send(worker.await).await;
            }));
        }
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            match done_rx.recv().await {
                Ok(r) => results.push(r),
                Err(_) => results.push(Err(Error::Unexpected(
                    "a bootstrap worker ended without reporting",
                ))),
            }
        }
        for r in results {
            r?;
        }
        Ok(())
    }
}

/// The user-defined types as of the snapshot (the planner connection has imported it),
/// read with the query the replication session uses, so that bootstrap values of enums,
/// domains, user ranges and arrays of them decode as the stream's do.
async fn user_types<R: Runtime>(planner: &mut PgConnection<R>) -> Result<TypeRegistry, Error> {
    let version = planner
        .server_params()
        .server_version_num()
        .unwrap_or_default();
    let mut registry = TypeRegistry::new();
    // A failed query aborts the snapshot's transaction: the bootstrap cannot go on.
    let results = planner.simple_query(user_types_query(version)).await?;
    match results.first().map(|r| load_user_types(r, &mut registry)) {
        Some(Ok(n)) => tracing::debug!(types = n, "bootstrap: user-defined types registered"),
        Some(Err(e)) => tracing::warn!(
            error = %e,
            "bootstrap: could not read all user-defined types; values of the others decode \
             from their names only"
        ),
        None => tracing::warn!("bootstrap: the user types query returned nothing"),
    }
    Ok(registry)
}

type PartQueue = Mutex<(VecDeque<snapshot::CopyPart>, Vec<usize>)>;

/// Sets the flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn copy_worker<R: Runtime>(
    ctx: BootstrapContext<R>,
    mut conn: PgConnection<R>,
    tables: Arc<Vec<SnapshotTable>>,
    types: Arc<TypeRegistry>,
    queue: Arc<PartQueue>,
    failed: Arc<AtomicBool>,
) -> Result<(), Error> {
    let time_ns = ctx
        .rt
        .wall_clock()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut asm = SnapshotAssembler::new(
        &ctx.source_id,
        ctx.pipeline.clone(),
        ctx.consistent_point,
        time_ns,
    )
    .with_id_generator({
        let rt = ctx.rt.clone();
        move || super::run::random_u128(&rt)
    });
    *asm.type_registry_mut() = TypeRegistry::clone(&types);
    let result = async {
        loop {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let part = queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .0
                .pop_front();
            let Some(part) = part else {
                return Ok(());
            };
            let Some(table) = tables.get(part.table) else {
                continue;
            };
            let name = table.label();
            asm.handle_part_start(table).map_err(|e| Error::Snapshot {
                table: Some(name.clone()),
                source: e,
            })?;
            conn.copy_out_start(&part.sql).await?;
            while let Some(row) = conn.copy_out_next().await? {
                asm.handle_row(&row).map_err(|e| Error::Snapshot {
                    table: Some(name.clone()),
                    source: e,
                })?;
                drain(&ctx, &mut asm, &name).await;
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            asm.handle_part_end().map_err(|e| Error::Snapshot {
                table: Some(name.clone()),
                source: e,
            })?;
            drain(&ctx, &mut asm, &name).await;
            let last = {
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                match q.1.get_mut(part.table) {
                    Some(r) => {
                        *r = r.saturating_sub(1);
                        *r == 0
                    }
                    None => true,
                }
            };
            if last {
                ctx.count(&name, 0, true);
            }
        }
    }
    .await;
    if result.is_err() {
        failed.store(true, Ordering::Relaxed);
    }
    let _ = conn.close().await;
    result
}

async fn drain<R: Runtime>(ctx: &BootstrapContext<R>, asm: &mut SnapshotAssembler, table: &str) {
    while let Some(event) = asm.poll_event() {
        match event {
            SnapshotEvent::Batch(batch) => {
                let n = batch.changes.len() as u64;
                ctx.deliver_batch(batch).await;
                ctx.count(table, n, false);
            }
            SnapshotEvent::Warning(w) => tracing::warn!(table, "bootstrap: {w}"),
            _ => {}
        }
    }
}

/// Reads initial rows from JSON-lines files (format: [`pgcdc_core::snapshot`]'s docs): one
/// object per line, `{"table": …, "properties": {…}, "id": …}`.
#[derive(Clone, Debug)]
pub struct JsonlBootstrap {
    /// The files, read in order.
    pub paths: Vec<PathBuf>,
}

impl JsonlBootstrap {
    /// A provider reading `paths` in order.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        JsonlBootstrap { paths }
    }
}

impl<R: Runtime> BootstrapProvider<R> for JsonlBootstrap {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn bootstrap<'a>(
        &'a self,
        ctx: &'a BootstrapContext<R>,
    ) -> BoxFuture<'a, Result<(), BootstrapError>> {
        Box::pin(async move {
            ctx.set_stage(BootstrapStage::Copying);
            let keys = ctx.config.key_config();
            let max = ctx.pipeline.max_batch_changes.max(1);
            for path in &self.paths {
                let file = std::fs::File::open(path).map_err(|e| {
                    BootstrapError::Provider(format!("bootstrap file {}: {e}", path.display()))
                })?;
                let mut pending: Vec<SourceChange> = Vec::new();
                let mut table = String::new();
                for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                    let line = line.map_err(|e| {
                        BootstrapError::Provider(format!("bootstrap file {}: {e}", path.display()))
                    })?;
                    let change =
                        snapshot::jsonl_change(&line, i + 1, &ctx.source_id, &keys, ctx.tx_info())
                            .map_err(|e| {
                                BootstrapError::Provider(format!(
                                    "bootstrap file {}: {e}",
                                    path.display()
                                ))
                            })?;
                    let Some(change) = change else { continue };
                    let label = change
                        .metadata()
                        .and_then(|m| m.labels.first())
                        .map(|l| l.to_string())
                        .unwrap_or_default();
                    if label != table && !pending.is_empty() {
                        ctx.deliver(&table, std::mem::take(&mut pending)).await;
                    }
                    table = label;
                    pending.push(change);
                    if pending.len() >= max {
                        ctx.deliver(&table, std::mem::take(&mut pending)).await;
                    }
                }
                ctx.deliver(&table, pending).await;
            }
            Ok(())
        })
    }
}

/// Runs `provider` and records its progress; on success the stage is `Done`.
pub(crate) async fn run_provider<R: Runtime>(
    provider: &dyn BootstrapProvider<R>,
    ctx: &BootstrapContext<R>,
) -> Result<(), BootstrapError> {
    ctx.shared.update(|s| {
        s.bootstrap = Some(BootstrapProgress {
            provider: provider.name().to_owned(),
            stage: BootstrapStage::Planning,
            tables: Vec::new(),
            rows: 0,
        });
    });
    match provider.bootstrap(ctx).await {
        Ok(()) => {
            ctx.set_stage(BootstrapStage::Done);
            let rows = ctx
                .shared
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .bootstrap
                .as_ref()
                .map_or(0, |p| p.rows);
            tracing::info!(rows, "bootstrap complete");
            Ok(())
        }
        Err(e) => {
            ctx.set_stage(BootstrapStage::Failed(e.to_string()));
            Err(e)
        }
    }
}

/// Makes sure the slot of a failed bootstrap is gone, so the next start bootstraps again:
/// drops it once no walsender holds it (a temporary slot goes by itself when its connection
/// ends), checking on an ordinary connection, retried a few times.
///
/// # Errors
///
/// The slot is still there after the retries (or the server cannot be reached): the message
/// says how to drop it by hand. Starting again without dropping it would resume from a
/// slot whose snapshot was never completely copied.
pub(crate) async fn drop_slot<R: Runtime>(
    rt: &R,
    connect: &ConnectOptions,
    slot: &str,
) -> Result<(), String> {
    const TRIES: u32 = 20;
    let mut opts = connect.clone();
    opts.params.replication = false;
    let quoted = pgcdc_core::replication::quote_literal(slot).map_err(|e| e.to_string())?;
    let drop_sql = pgcdc_core::replication::drop_slot_sql(slot).map_err(|e| e.to_string())?;
    let count_sql = format!(
        "SELECT count(*) AS n FROM pg_catalog.pg_replication_slots WHERE slot_name = {quoted}"
    );
    let mut last = String::new();
    for attempt in 1..=TRIES {
        match PgConnection::connect(rt.clone(), &opts).await {
            Ok(mut c) => {
                let left = match c.simple_query(&drop_sql).await {
                    Ok(_) => c.simple_query(&count_sql).await.map(|r| {
                        r.first()
                            .and_then(|r| r.text(0, "n").ok().flatten().map(str::to_owned))
                            .unwrap_or_default()
                    }),
                    Err(e) => Err(e),
                };
                let _ = c.close().await;
                match left {
                    Ok(n) if n == "0" => return Ok(()),
                    Ok(n) => last = format!("{n} slot(s) named {slot} still exist"),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(e) => last = e.to_string(),
        }
        tracing::debug!(attempt, slot, error = %last, "the failed bootstrap's slot is not gone yet");
        rt.sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(format!(
        "the replication slot {slot} of the failed bootstrap could not be dropped ({last}); drop \
         it before the next start (SELECT pg_drop_replication_slot({quoted});), or that start \
         would resume from an incomplete bootstrap"
    ))
}
