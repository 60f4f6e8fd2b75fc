//! The Drasi source: `drasi_lib::Source` over pgcdc's source.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;
use async_trait::async_trait;
use bytes::Bytes;
use drasi_lib::bootstrap::{BootstrapContext, BootstrapProvider, BootstrapRequest};
use drasi_lib::channels::{
    ChangeDispatcher, ChannelChangeDispatcher, ComponentStatus, DispatchMode, SubscriptionResponse,
};
use drasi_lib::config::SourceSubscriptionSettings;
use drasi_lib::schema::{NodeSchema, SourceSchema};
use drasi_lib::sources::base::{SourceBase, SourceBaseParams};
use drasi_lib::{Source, SourceError};
use pgcdc_tokio::{AckMode, ChangeBatch, Subscription};

use crate::bootstrap::SnapshotBootstrapProvider;
use crate::config::{PostgresSourceConfig, SslMode, TableKeyConfig};
use crate::fanout::Fanout;
use crate::mapping::{KnownIds, Mapped, MappingOptions, NumericMapping, position, position_lsn};

/// Adjusts the pgcdc source builder (TLS roots, reconnect policy, protocol options …).
pub(crate) type Tune = Arc<
    dyn Fn(pgcdc_tokio::PostgresSourceBuilder) -> pgcdc_tokio::PostgresSourceBuilder + Send + Sync,
>;

/// A Drasi source streaming a PostgreSQL database's changes through logical replication.
///
/// The drop-in for drasi-source-postgres 0.2.12's type of the same name: the same builder,
/// constructors and configuration. See the [crate docs](crate) for what it adds and fixes.
pub struct PostgresReplicationSource {
    base: SourceBase,
    config: PostgresSourceConfig,
    options: MappingOptions,
    tune: Option<Tune>,
    dispatch_capacity: usize,
    inner: Arc<Inner>,
}

struct Inner {
    fanout: Fanout,
    known: Option<Arc<Mutex<KnownIds>>>,
    provider: tokio::sync::RwLock<Option<Arc<dyn BootstrapProvider>>>,
    running: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    source: pgcdc_tokio::PostgresReplicationSource,
    pump: tokio::task::JoinHandle<()>,
}

impl PostgresReplicationSource {
    /// A builder with drasi-source-postgres's defaults.
    pub fn builder(id: impl Into<String>) -> PostgresSourceBuilder {
        PostgresSourceBuilder::new(id)
    }

    /// A source with this configuration.
    ///
    /// # Errors
    ///
    /// The configuration is invalid (the message names the field).
    pub fn new(id: impl Into<String>, config: PostgresSourceConfig) -> Result<Self> {
        PostgresSourceBuilder::new(id).with_config(config).build()
    }

    /// A source with this configuration and dispatch settings.
    ///
    /// # Errors
    ///
    /// The configuration is invalid (the message names the field).
    pub fn with_dispatch(
        id: impl Into<String>,
        config: PostgresSourceConfig,
        dispatch_mode: Option<DispatchMode>,
        dispatch_buffer_capacity: Option<usize>,
    ) -> Result<Self> {
        let mut b = PostgresSourceBuilder::new(id).with_config(config);
        if let Some(mode) = dispatch_mode {
            b = b.with_dispatch_mode(mode);
        }
        if let Some(capacity) = dispatch_buffer_capacity {
            b = b.with_dispatch_buffer_capacity(capacity);
        }
        b.build()
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresSourceConfig {
        &self.config
    }

    /// The value mapping.
    pub fn mapping(&self) -> &MappingOptions {
        &self.options
    }

    /// The underlying pgcdc source's status (LSNs, lag, counters) while it runs.
    pub async fn pgcdc_status(&self) -> Option<pgcdc_tokio::SourceStatus> {
        self.inner
            .running
            .lock()
            .await
            .as_ref()
            .map(|r| r.source.status())
    }

    /// The number of subscribed queries.
    pub fn subscriber_count(&self) -> usize {
        self.inner.fanout.subscribers()
    }

    fn pgcdc_source(&self) -> Result<pgcdc_tokio::PostgresReplicationSource> {
        let mut b = self
            .config
            .pgcdc_builder(&self.base.id)
            .with_ack_mode(AckMode::Manual)
            .with_auto_start(false)
            .with_application_name("pgcdc-drasi");
        if let Some(tune) = &self.tune {
            b = tune(b);
        }
        b.build().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The slot's confirmed position, read on an ordinary connection (`None`: no slot).
    async fn slot_position(&self) -> Result<Option<u64>> {
        let cfg = self.pgcdc_source()?.config().clone();
        let opts = pgcdc_tokio::ConnectOptions::from_config(&cfg, false);
        let mut conn = pgcdc_tokio::PgConnection::connect(pgcdc_tokio::TokioRuntime, &opts).await?;
        let name = pgcdc_tokio::pgcdc_core::replication::quote_literal(&cfg.slot_name)?;
        let rows = conn
            .simple_query(&format!(
                "SELECT confirmed_flush_lsn::text AS lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = {name}"
            ))
            .await;
        let _ = conn.close().await;
        let rows = rows?;
        let text = rows
            .first()
            .and_then(|r| r.text(0, "lsn").ok().flatten().map(str::to_owned));
        Ok(match text {
            Some(t) => Some(
                t.parse::<pgcdc_tokio::Lsn>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .0,
            ),
            None => None,
        })
    }
}

/// Maps and distributes the stream, then acknowledges each batch once it is in every
/// subscribed query's channel (queries hold no replayable checkpoint: `supports_replay` is
/// false), so the slot never pins WAL for a change already handed over.
async fn pump(
    source_id: String,
    inner: Arc<Inner>,
    options: MappingOptions,
    mut changes: Subscription,
    status: drasi_lib::component_graph::ComponentStatusHandle,
    source: pgcdc_tokio::PostgresReplicationSource,
) {
    // Offsets run on across the chunks of one transaction.
    let mut tx_lsn = None;
    let mut offset = 0u64;
    loop {
        let batch: Option<ChangeBatch> = tokio::select! {
            biased;
            () = inner.fanout.wake.notified() => None,
            b = changes.recv() => match b {
                Some(b) => Some(b),
                None => break,
            },
        };
        if let Some(batch) = &batch {
            if tx_lsn != Some(batch.commit_lsn) {
                tx_lsn = Some(batch.commit_lsn);
                offset = 0;
            }
            let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
            let mut out = Vec::with_capacity(batch.changes.len());
            {
                let mut known = inner
                    .known
                    .as_ref()
                    .map(|k| k.lock().unwrap_or_else(PoisonError::into_inner));
                for c in &batch.changes {
                    if let Mapped::Changes(mapped) =
                        options.change(&source_id, c, known.as_deref_mut(), now_ms)
                    {
                        for m in mapped {
                            out.push((m, position(batch.commit_lsn.0, offset)));
                            offset += 1;
                        }
                    }
                }
            }
            inner.fanout.distribute(&source_id, out);
        }
        inner.fanout.flush().await;
        if let Some(batch) = batch {
            batch.ack();
        }
    }
    // The stream ended: the pgcdc source stopped or failed for good.
    let st = source.status();
    if let pgcdc_tokio::SourceState::Failed(message) = &st.state {
        tracing::error!(source = %source_id, error = %message, "PostgreSQL replication failed");
        status
            .set_status(
                ComponentStatus::Error,
                Some(format!("PostgreSQL replication failed: {message}")),
            )
            .await;
    }
}

#[async_trait]
impl Source for PostgresReplicationSource {
    fn id(&self) -> &str {
        &self.base.id
    }

    fn type_name(&self) -> &str {
        "postgres"
    }

    fn properties(&self) -> HashMap<String, serde_json::Value> {
        let mut map: HashMap<String, serde_json::Value> = match serde_json::to_value(&self.config) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
            _ => HashMap::new(),
        };
        map.remove("password");
        map
    }

    /// Always `Channel`: every query has a queue of its own (a `Broadcast` setting is
    /// accepted and delivered the same way), so queries enqueue without ever dropping.
    fn dispatch_mode(&self) -> DispatchMode {
        DispatchMode::Channel
    }

    fn auto_start(&self) -> bool {
        self.base.get_auto_start()
    }

    /// `false`: a running source cannot rewind to an earlier position yet, so persistent
    /// (checkpointed) queries are refused by DrasiLib rather than given a gap.
    fn supports_replay(&self) -> bool {
        false
    }

    fn describe_schema(&self) -> Option<SourceSchema> {
        (!self.config.tables.is_empty()).then(|| SourceSchema {
            nodes: self
                .config
                .tables
                .iter()
                .map(|t| NodeSchema::new(self.options.label(t).to_string()))
                .collect(),
            relations: Vec::new(),
        })
    }

    /// Starts streaming; returns once the slot exists and its position is known (transient
    /// failures are retried until pgcdc's start timeout, 60 s).
    async fn start(&self) -> Result<()> {
        let mut running = self.inner.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        self.base.set_status(ComponentStatus::Starting, None).await;
        let source = self.pgcdc_source()?;
        let changes = source.subscribe();
        if let Err(e) = source.start().await {
            let message = format!("PostgreSQL replication failed to start: {e}");
            self.base
                .set_status(ComponentStatus::Error, Some(message.clone()))
                .await;
            return Err(anyhow::anyhow!(message));
        }
        let pump = tokio::spawn(pump(
            self.base.id.clone(),
            Arc::clone(&self.inner),
            self.options.clone(),
            changes,
            self.base.status_handle(),
            source.clone(),
        ));
        *running = Some(Running { source, pump });
        self.base
            .set_status(
                ComponentStatus::Running,
                Some("PostgreSQL replication started".to_owned()),
            )
            .await;
        tracing::info!(source = %self.base.id, slot = %self.config.slot_name, "PostgreSQL source running");
        Ok(())
    }

    async fn stop(&self) -> Result<()> {
        let Some(running) = self.inner.running.lock().await.take() else {
            return Ok(());
        };
        self.base.set_status(ComponentStatus::Stopping, None).await;
        let stopped = running.source.stop().await;
        running.pump.abort();
        let _ = running.pump.await;
        self.base
            .set_status(
                ComponentStatus::Stopped,
                Some("PostgreSQL replication stopped".to_owned()),
            )
            .await;
        stopped.map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn status(&self) -> ComponentStatus {
        self.base.get_status().await
    }

    async fn subscribe(
        &self,
        settings: SourceSubscriptionSettings,
    ) -> Result<SubscriptionResponse> {
        let query_id = settings.query_id.clone();
        let provider = self.inner.provider.read().await.clone();
        let dispatcher = Arc::new(ChannelChangeDispatcher::new(self.dispatch_capacity));
        let receiver = dispatcher.create_receiver().await?;
        if let Some(resume) = &settings.resume_from {
            self.check_resume(resume).await?;
        }
        let bootstrap = settings.enable_bootstrap && settings.resume_from.is_none();
        let provider = provider.filter(|_| bootstrap);
        if bootstrap && provider.is_none() {
            tracing::info!(query = %settings.query_id, "bootstrap requested but the source has no bootstrap provider: streaming only");
        }
        let id = self.inner.fanout.add(
            &settings.query_id,
            settings.nodes.iter().cloned().collect(),
            dispatcher,
            provider.is_some(),
            settings.resume_from.clone(),
        );
        tracing::info!(query = %settings.query_id, labels = ?settings.nodes, bootstrap = provider.is_some(), "query subscribed");
        let (bootstrap_receiver, bootstrap_result_receiver) = match provider {
            None => (None, None),
            Some(provider) => {
                let (tx, rx) = tokio::sync::mpsc::channel(1000);
                let (result_tx, result_rx) = tokio::sync::oneshot::channel();
                let request = BootstrapRequest {
                    query_id: settings.query_id.clone(),
                    node_labels: settings.nodes.iter().cloned().collect(),
                    relation_labels: settings.relations.iter().cloned().collect(),
                    request_id: format!("{}-{}", settings.query_id, uuid::Uuid::new_v4()),
                };
                let context =
                    BootstrapContext::new_minimal(self.base.id.clone(), self.base.id.clone());
                let inner = Arc::clone(&self.inner);
                tokio::spawn(async move {
                    let result = provider
                        .bootstrap(request, &context, tx, Some(&settings))
                        .await;
                    match &result {
                        Ok(r) => {
                            if r.source_position.is_none() {
                                tracing::warn!(query = %settings.query_id, "the bootstrap provider returned no position: changes during the bootstrap may apply twice");
                            }
                            inner.fanout.release(id, r.source_position.clone());
                        }
                        Err(e) => {
                            tracing::error!(query = %settings.query_id, error = %e, "bootstrap failed");
                            inner.fanout.release(id, None);
                        }
                    }
                    let _ = result_tx.send(result);
                });
                (Some(rx), Some(result_rx))
            }
        };
        Ok(SubscriptionResponse {
            query_id,
            source_id: self.base.id.clone(),
            receiver,
            bootstrap_receiver,
            position_handle: None,
            bootstrap_result_receiver,
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn initialize(&self, context: drasi_lib::context::SourceRuntimeContext) {
        self.base.initialize(context).await;
    }

    async fn set_bootstrap_provider(&self, provider: Box<dyn BootstrapProvider + 'static>) {
        *self.inner.provider.write().await = Some(Arc::from(provider));
    }
}

impl PostgresReplicationSource {
    /// A resume point is served only when no change past it was lost: it is at or past the
    /// slot's position and past what this process already distributed (a running source
    /// cannot rewind).
    async fn check_resume(&self, resume: &Bytes) -> Result<()> {
        let lsn = position_lsn(resume)?;
        let unavailable = |earliest: Option<Bytes>| SourceError::PositionUnavailable {
            source_id: self.base.id.clone(),
            requested: resume.clone(),
            earliest_available: earliest,
        };
        if let Some(slot) = self.slot_position().await? {
            if lsn < slot {
                return Err(unavailable(Some(position(slot, 0))).into());
            }
        }
        if let Some(last) = self.inner.fanout.last_position() {
            if resume.as_ref() < last.as_ref() {
                return Err(unavailable(Some(last)).into());
            }
        }
        Ok(())
    }
}

/// Builds a [`PostgresReplicationSource`]: drasi-source-postgres's methods, and pgcdc's
/// additions.
pub struct PostgresSourceBuilder {
    id: String,
    config: PostgresSourceConfig,
    options: MappingOptions,
    dispatch_mode: Option<DispatchMode>,
    dispatch_buffer_capacity: Option<usize>,
    bootstrap_provider: Option<Box<dyn BootstrapProvider + 'static>>,
    snapshot_bootstrap: bool,
    auto_start: bool,
    tune: Option<Tune>,
}

impl PostgresSourceBuilder {
    /// A builder with the defaults (`localhost:5432`, slot `drasi_slot`, publication
    /// `drasi_publication`, `ssl_mode = prefer`, no bootstrap, auto start).
    pub fn new(id: impl Into<String>) -> Self {
        PostgresSourceBuilder {
            id: id.into(),
            config: PostgresSourceConfig::default(),
            options: MappingOptions::default(),
            dispatch_mode: None,
            dispatch_buffer_capacity: None,
            bootstrap_provider: None,
            snapshot_bootstrap: false,
            auto_start: true,
            tune: None,
        }
    }

    /// The host.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.config.host = host.into();
        self
    }

    /// The port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// The database.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.config.database = database.into();
        self
    }

    /// The user.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.config.user = user.into();
        self
    }

    /// The password.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.config.password = password.into();
        self
    }

    /// The tables to replicate.
    pub fn with_tables(mut self, tables: Vec<String>) -> Self {
        self.config.tables = tables;
        self
    }

    /// Adds a table to replicate.
    pub fn add_table(mut self, table: impl Into<String>) -> Self {
        self.config.tables.push(table.into());
        self
    }

    /// The replication slot.
    pub fn with_slot_name(mut self, slot_name: impl Into<String>) -> Self {
        self.config.slot_name = slot_name.into();
        self
    }

    /// The publication.
    pub fn with_publication_name(mut self, publication_name: impl Into<String>) -> Self {
        self.config.publication_name = publication_name.into();
        self
    }

    /// The TLS mode.
    pub fn with_ssl_mode(mut self, ssl_mode: SslMode) -> Self {
        self.config.ssl_mode = ssl_mode;
        self
    }

    /// The element-id keys.
    pub fn with_table_keys(mut self, table_keys: Vec<TableKeyConfig>) -> Self {
        self.config.table_keys = table_keys;
        self
    }

    /// Adds an element-id key.
    pub fn add_table_key(mut self, table_key: TableKeyConfig) -> Self {
        self.config.table_keys.push(table_key);
        self
    }

    /// Accepted for compatibility; every query has a queue of its own either way.
    pub fn with_dispatch_mode(mut self, mode: DispatchMode) -> Self {
        self.dispatch_mode = Some(mode);
        self
    }

    /// The capacity of each query's queue, in changes (1000).
    pub fn with_dispatch_buffer_capacity(mut self, capacity: usize) -> Self {
        self.dispatch_buffer_capacity = Some(capacity);
        self
    }

    /// A Drasi bootstrap provider (e.g. drasi-bootstrap-postgres's), run for each query that
    /// subscribes with bootstrap. The position it returns is that query's boundary with the
    /// stream; one that returns none may have changes of its bootstrap window applied twice.
    pub fn with_bootstrap_provider(mut self, provider: impl BootstrapProvider + 'static) -> Self {
        self.bootstrap_provider = Some(Box::new(provider));
        self
    }

    /// Bootstraps each query from a snapshot of its own, exactly
    /// ([`SnapshotBootstrapProvider`]).
    pub fn with_snapshot_bootstrap(mut self) -> Self {
        self.snapshot_bootstrap = true;
        self
    }

    /// Whether DrasiLib starts the source by itself (true).
    pub fn with_auto_start(mut self, auto_start: bool) -> Self {
        self.auto_start = auto_start;
        self
    }

    /// The whole configuration.
    pub fn with_config(mut self, config: PostgresSourceConfig) -> Self {
        self.config = config;
        self
    }

    /// Every `numeric` as an exact `String` instead of `Integer`/`Float`.
    pub fn with_numeric_as_string(mut self, exact: bool) -> Self {
        self.options.numeric = if exact {
            NumericMapping::String
        } else {
            NumericMapping::Auto
        };
        self
    }

    /// `json`/`jsonb` as their text instead of `Object`/`List`.
    pub fn with_json_as_text(mut self, text: bool) -> Self {
        self.options.json_as_text = text;
        self
    }

    /// Labels `schema.table` outside `public` instead of the bare table name.
    pub fn with_qualified_labels(mut self, qualified: bool) -> Self {
        self.options.qualified_labels = qualified;
        self
    }

    /// TRUNCATE as a `Delete` of every id seen for the table (keeps one id per row in
    /// memory).
    pub fn with_truncate_as_deletes(mut self, deletes: bool) -> Self {
        self.options.truncate_as_deletes = deletes;
        self
    }

    /// Sets anything else on the underlying pgcdc source builder: TLS roots
    /// (`with_ssl_root_cert`), `verify-full`, reconnect policy, protocol options … It is
    /// applied to the stream's source and to each bootstrap's.
    pub fn with_pgcdc(
        mut self,
        tune: impl Fn(pgcdc_tokio::PostgresSourceBuilder) -> pgcdc_tokio::PostgresSourceBuilder
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.tune = Some(Arc::new(tune));
        self
    }

    /// Builds the source.
    ///
    /// # Errors
    ///
    /// The configuration is invalid: the message names the field and the fix.
    pub fn build(self) -> Result<PostgresReplicationSource> {
        self.config.validate()?;
        let mut params = SourceBaseParams::new(&self.id).with_auto_start(self.auto_start);
        if let Some(mode) = self.dispatch_mode {
            params = params.with_dispatch_mode(mode);
        }
        let known = self
            .options
            .truncate_as_deletes
            .then(|| Arc::new(Mutex::new(KnownIds::default())));
        let provider: Option<Arc<dyn BootstrapProvider>> = if self.snapshot_bootstrap {
            Some(Arc::new(
                SnapshotBootstrapProvider::new(&self.id, self.config.clone(), self.options.clone())
                    .with_tune(self.tune.clone())
                    .with_known(known.clone()),
            ))
        } else {
            self.bootstrap_provider.map(Arc::from)
        };
        Ok(PostgresReplicationSource {
            base: SourceBase::new(params)?,
            config: self.config,
            options: self.options,
            tune: self.tune,
            dispatch_capacity: self.dispatch_buffer_capacity.unwrap_or(1000).max(1),
            inner: Arc::new(Inner {
                fanout: Fanout::default(),
                known,
                provider: tokio::sync::RwLock::new(provider),
                running: tokio::sync::Mutex::new(None),
            }),
        })
    }
}
