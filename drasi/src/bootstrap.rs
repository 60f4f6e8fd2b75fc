//! An exact bootstrap per query: each one copies the tables from a snapshot exported by a
//! temporary replication slot of its own, whose consistent point is that query's boundary
//! with the live stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use drasi_lib::bootstrap::{BootstrapContext, BootstrapRequest, BootstrapResult};
use drasi_lib::channels::{BootstrapEvent, BootstrapEventSender};
use futures_util::FutureExt as _;
use pgcdc_tokio::{AckMode, BootstrapError, ChangeBatch, Lsn, PostgresBootstrap, TokioRuntime};

use crate::config::PostgresSourceConfig;
use crate::mapping::{KnownIds, Mapped, MappingOptions, snapshot_boundary};
use crate::source::Tune;

/// The bootstrap of [`PostgresSourceBuilder::with_snapshot_bootstrap`]: a Drasi
/// `BootstrapProvider` that gives every subscribing query (queries added later included) its
/// own consistent snapshot.
///
/// Each bootstrap opens a replication connection, creates a temporary slot exporting a
/// snapshot (`<slot>_b…`, gone with the connection), copies the requested tables inside that
/// snapshot with pgcdc's parallel COPY, and returns the consistent point as
/// `BootstrapResult::source_position` (`[consistent point - 1 | u64::MAX]`). The source
/// delivers that query only the changes committed at or after the consistent point: none is
/// applied twice, none is lost, with writers running. Rows have the ids, labels and values the
/// stream gives (the same decoder).
///
/// [`PostgresSourceBuilder::with_snapshot_bootstrap`]: crate::PostgresSourceBuilder::with_snapshot_bootstrap
pub struct SnapshotBootstrapProvider {
    source_id: String,
    config: PostgresSourceConfig,
    options: MappingOptions,
    tune: Option<Tune>,
    known: Option<Arc<Mutex<KnownIds>>>,
    runs: AtomicU64,
}

impl std::fmt::Debug for SnapshotBootstrapProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotBootstrapProvider")
            .field("source_id", &self.source_id)
            .field("slot_name", &self.config.slot_name)
            .finish_non_exhaustive()
    }
}

impl SnapshotBootstrapProvider {
    /// A provider for the source `source_id` (element ids carry it) with its configuration
    /// and value mapping.
    pub fn new(
        source_id: impl Into<String>,
        config: PostgresSourceConfig,
        options: MappingOptions,
    ) -> Self {
        SnapshotBootstrapProvider {
            source_id: source_id.into(),
            config,
            options,
            tune: None,
            known: None,
            runs: AtomicU64::new(0),
        }
    }

    pub(crate) fn with_tune(mut self, tune: Option<Tune>) -> Self {
        self.tune = tune;
        self
    }

    pub(crate) fn with_known(mut self, known: Option<Arc<Mutex<KnownIds>>>) -> Self {
        self.known = known;
        self
    }

    /// A temporary slot name of at most 63 characters, unique on the server.
    fn slot_name(&self) -> String {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let base: String = self.config.slot_name.chars().take(36).collect();
        format!("{base}_b{n}_{}", &tag[..12])
    }

    /// The configured tables a request needs (all when it names no label or nothing is
    /// configured); `None` when it needs none of them.
    fn tables(&self, request: &BootstrapRequest) -> Option<Vec<String>> {
        if self.config.tables.is_empty() || request.node_labels.is_empty() {
            return Some(self.config.tables.clone());
        }
        let wanted: Vec<String> = self
            .config
            .tables
            .iter()
            .filter(|t| {
                let label = self.options.label(t);
                request.node_labels.iter().any(|l| **l == *label)
            })
            .cloned()
            .collect();
        (!wanted.is_empty()).then_some(wanted)
    }

    async fn run(
        &self,
        request: &BootstrapRequest,
        context: &BootstrapContext,
        events: &BootstrapEventSender,
    ) -> anyhow::Result<BootstrapResult> {
        let Some(tables) = self.tables(request) else {
            tracing::info!(query = %request.query_id, "bootstrap: no configured table carries the requested labels");
            return Ok(BootstrapResult::default());
        };
        let slot = self.slot_name();
        let point = Arc::new(Mutex::new(None));
        let mut cfg = self.config.pgcdc_builder(&self.source_id).config().clone();
        cfg.tables = tables;
        cfg.slot_name = slot.clone();
        cfg.create_slot = true;
        cfg.temporary_slot = true;
        let mut builder = pgcdc_tokio::PostgresReplicationSource::builder(&self.source_id)
            .with_config(cfg)
            .with_ack_mode(AckMode::Manual)
            .with_auto_start(false)
            .with_application_name("pgcdc-drasi-bootstrap")
            .with_bootstrap_provider(RecordPoint {
                inner: PostgresBootstrap::default(),
                point: Arc::clone(&point),
            });
        if let Some(tune) = &self.tune {
            builder = tune(builder);
        }
        let source = builder
            .build()
            .map_err(|e| anyhow::anyhow!("bootstrap source: {e}"))?;
        let mut rows = source.subscribe();
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let mut count = 0usize;
        tracing::info!(query = %request.query_id, %slot, labels = ?request.node_labels, "bootstrap: exporting a snapshot");
        let outcome = async {
            let start = source.start();
            futures_util::pin_mut!(start);
            let mut started = false;
            loop {
                let batch = if started {
                    // start() returned: every row is already queued.
                    match rows.recv().now_or_never() {
                        Some(Some(b)) => b,
                        _ => break,
                    }
                } else {
                    tokio::select! {
                        r = &mut start => {
                            r.map_err(|e| anyhow::anyhow!("bootstrap of query {}: {e}", request.query_id))?;
                            started = true;
                            continue;
                        }
                        b = rows.recv() => match b {
                            Some(b) => b,
                            None => anyhow::bail!("the bootstrap source ended before its snapshot was copied"),
                        },
                    }
                };
                if batch.xid.0 != 0 {
                    break;
                }
                count += self.forward(&batch, request, context, events, now_ms).await?;
            }
            Ok(())
        }
        .await;
        let _ = source.stop().await;
        outcome?;
        let consistent_point = point
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ok_or_else(|| anyhow::anyhow!("the bootstrap snapshot was never exported"))?;
        tracing::info!(query = %request.query_id, rows = count, %consistent_point, "bootstrap complete");
        Ok(BootstrapResult {
            event_count: count,
            source_position: Some(snapshot_boundary(consistent_point.0)),
        })
    }

    async fn forward(
        &self,
        batch: &ChangeBatch,
        request: &BootstrapRequest,
        context: &BootstrapContext,
        events: &BootstrapEventSender,
        now_ms: u64,
    ) -> anyhow::Result<usize> {
        let mut n = 0;
        for change in &batch.changes {
            let mapped = {
                let mut known = self
                    .known
                    .as_ref()
                    .map(|k| k.lock().unwrap_or_else(PoisonError::into_inner));
                self.options
                    .change(&self.source_id, change, known.as_deref_mut(), now_ms)
            };
            let Mapped::Changes(changes) = mapped else {
                continue;
            };
            for change in changes {
                let wanted = request.node_labels.is_empty()
                    || crate::mapping::change_label(&change)
                        .is_some_and(|l| request.node_labels.iter().any(|w| w == l));
                if !wanted {
                    continue;
                }
                let event = BootstrapEvent {
                    source_id: self.source_id.clone(),
                    change,
                    timestamp: chrono::Utc::now(),
                    sequence: context.next_sequence(),
                };
                events
                    .send(event)
                    .await
                    .map_err(|_| anyhow::anyhow!("the query stopped reading its bootstrap"))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[async_trait]
impl drasi_lib::bootstrap::BootstrapProvider for SnapshotBootstrapProvider {
    async fn bootstrap(
        &self,
        request: BootstrapRequest,
        context: &BootstrapContext,
        event_tx: BootstrapEventSender,
        _settings: Option<&drasi_lib::config::SourceSubscriptionSettings>,
    ) -> anyhow::Result<BootstrapResult> {
        self.run(&request, context, &event_tx).await
    }
}

/// pgcdc's COPY bootstrap, noting the snapshot's consistent point.
struct RecordPoint {
    inner: PostgresBootstrap,
    point: Arc<Mutex<Option<Lsn>>>,
}

impl pgcdc_tokio::BootstrapProvider<TokioRuntime> for RecordPoint {
    fn name(&self) -> &str {
        "drasi-query-snapshot"
    }

    fn bootstrap<'a>(
        &'a self,
        ctx: &'a pgcdc_tokio::BootstrapContext<TokioRuntime>,
    ) -> pgcdc_tokio::BoxFuture<'a, Result<(), BootstrapError>> {
        *self.point.lock().unwrap_or_else(PoisonError::into_inner) = Some(ctx.consistent_point());
        pgcdc_tokio::BootstrapProvider::<TokioRuntime>::bootstrap(&self.inner, ctx)
    }
}
