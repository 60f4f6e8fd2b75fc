//! The builder, with drasi-source-postgres's method names, and the translation of a validated
//! configuration into what the run loop needs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pgcdc_core::auth::RequireAuth;
use pgcdc_core::source_config::{
    AckMode, BootstrapMode, DispatchMode, PostgresSourceConfig, StreamingMode, TableKeyConfig,
};
use pgcdc_core::{ChannelBinding, Lsn, Password, SslMode};

use super::Source;
use super::bootstrap::{BootstrapProvider, JsonlBootstrap, PostgresBootstrap};
use super::run::RunConfig;
use crate::conn::ConnectOptions;
use crate::error::Error;
use crate::runtime::Runtime;

/// Builds a [`Source`]. Every setter has drasi-source-postgres's name; [`build`](Self::build) validates
/// the whole configuration and names the first invalid field.
pub struct SourceBuilder<R: Runtime> {
    id: String,
    rt: R,
    config: PostgresSourceConfig,
    errors: Vec<String>,
    provider: Option<Arc<dyn BootstrapProvider<R>>>,
    force_bootstrap: bool,
}

impl<R: Runtime> std::fmt::Debug for SourceBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceBuilder")
            .field("id", &self.id)
            .field("config", &self.config)
            .field(
                "provider",
                &self.provider.as_ref().map(|p| p.name().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> SourceBuilder<R> {
    pub(crate) fn new(id: impl Into<String>, rt: R) -> Self {
        SourceBuilder {
            id: id.into(),
            rt,
            config: PostgresSourceConfig::default(),
            errors: Vec::new(),
            provider: None,
            force_bootstrap: false,
        }
    }

    /// Starts from a complete configuration instead of the defaults.
    pub fn with_config(mut self, config: PostgresSourceConfig) -> Self {
        self.config = config;
        self
    }

    /// Applies a `postgres://user:password@host:port/database?sslmode=…` URL.
    pub fn with_url(mut self, url: &str) -> Self {
        if let Err(e) = self.config.apply_url(url) {
            self.errors.push(e.to_string());
        }
        self
    }

    /// Applies libpq's `PG*` environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER,
    /// PGPASSWORD, PGSSLMODE, …) of this process.
    pub fn with_env(mut self) -> Self {
        if let Err(e) = self.config.apply_env(|k| std::env::var(k).ok()) {
            self.errors.push(e.to_string());
        }
        self
    }

    /// Server host name or address.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.config.host = host.into();
        self
    }

    /// Server port (5432).
    pub fn with_port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// Database to stream from.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.config.database = database.into();
        self
    }

    /// User (needs the REPLICATION attribute, or superuser).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.config.user = user.into();
        self
    }

    /// Password (never shown in `Debug` or logs).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.config.password = Password::new(password.into());
        self
    }

    /// Tables to stream (`table` or `schema.table`); they must be in the publication.
    /// Empty: every table of the publication.
    pub fn with_tables(mut self, tables: Vec<String>) -> Self {
        self.config.tables = tables;
        self
    }

    /// Adds one table.
    pub fn add_table(mut self, table: impl Into<String>) -> Self {
        self.config.tables.push(table.into());
        self
    }

    /// Replication slot name (`drasi_slot`).
    pub fn with_slot_name(mut self, name: impl Into<String>) -> Self {
        self.config.slot_name = name.into();
        self
    }

    /// Publication name (`drasi_publication`).
    pub fn with_publication_name(mut self, name: impl Into<String>) -> Self {
        self.config.publication_name = name.into();
        self
    }

    /// TLS mode (`Prefer`).
    pub fn with_ssl_mode(mut self, mode: SslMode) -> Self {
        self.config.ssl_mode = mode;
        self
    }

    /// Channel binding policy for SCRAM over TLS (`Prefer`).
    pub fn with_channel_binding(mut self, cb: ChannelBinding) -> Self {
        self.config.channel_binding = cb;
        self
    }

    /// The authentication methods the server may ask for (libpq's `require_auth`, e.g.
    /// `"scram-sha-256".parse()?`). Not set by default: any method except a cleartext password
    /// over a connection that is not TLS; `"password"` allows that.
    pub fn with_require_auth(mut self, require_auth: RequireAuth) -> Self {
        self.config.require_auth = require_auth;
        self
    }

    /// Largest server message accepted once authenticated, in bytes: 64 KiB to 1 GiB (the
    /// default); checked when the source is built. Before authentication the limit is 64 KiB.
    pub fn with_max_frame_len(mut self, bytes: usize) -> Self {
        self.config.max_frame_len = bytes;
        self
    }

    /// PEM file of trusted roots (needed by `verify-ca`/`verify-full`; with `prefer`/`require`
    /// the chain is then checked too), or `"system"` for the platform's roots with a host-name
    /// check whatever the mode. Default none.
    pub fn with_ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.ssl_root_cert = Some(path.into());
        self
    }

    /// Element-id key columns of a table, overriding its primary key.
    pub fn add_table_key(mut self, key: TableKeyConfig) -> Self {
        self.config.table_keys.push(key);
        self
    }

    /// Per-subscriber queues or one shared queue (`Channel`).
    pub fn with_dispatch_mode(mut self, mode: DispatchMode) -> Self {
        self.config.dispatch_mode = mode;
        self
    }

    /// Batches each queue holds before delivery waits (and the socket stops being read).
    pub fn with_dispatch_buffer_capacity(mut self, capacity: usize) -> Self {
        self.config.dispatch_buffer_capacity = capacity;
        self
    }

    /// The most memory (bytes, estimated) one subscriber's queue may hold; `0`: no byte
    /// limit. Default 64 MiB.
    pub fn with_dispatch_buffer_bytes(mut self, bytes: usize) -> Self {
        self.config.dispatch_buffer_bytes = bytes;
        self
    }

    /// The most memory (bytes) streamed and prepared transactions may hold before they spill
    /// to disk; `0`: no limit. Default 64 MiB.
    pub fn with_spill_threshold_bytes(mut self, bytes: usize) -> Self {
        self.config.spill_threshold_bytes = bytes;
        self
    }

    /// The directory of spill files (default: the system's temporary directory).
    pub fn with_spill_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.spill_dir = Some(dir.into());
        self
    }

    /// Start on the first subscription (`true`).
    pub fn with_auto_start(mut self, auto_start: bool) -> Self {
        self.config.auto_start = auto_start;
        self
    }

    /// Acknowledge on delivery (default) or only when the application says so.
    pub fn with_ack_mode(mut self, mode: AckMode) -> Self {
        self.config.ack_mode = mode;
        self
    }

    /// Create the slot when it does not exist (`true`).
    pub fn with_create_slot(mut self, create: bool) -> Self {
        self.config.create_slot = create;
        self
    }

    /// Create the publication when it does not exist (`false`).
    pub fn with_create_publication(mut self, create: bool) -> Self {
        self.config.create_publication = create;
        self
    }

    /// What to do while another consumer holds the slot before this source streamed from it
    /// (`SlotInUse::Wait`: stand by; `Fail`: fail the start).
    pub fn with_slot_in_use(mut self, mode: pgcdc_core::source_config::SlotInUse) -> Self {
        self.config.slot_in_use = mode;
        self
    }

    /// How often the slot's retained WAL is checked while streaming (30 s; zero: never).
    pub fn with_slot_check_interval(mut self, every: Duration) -> Self {
        self.config.slot_check_interval_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Warn when the slot retains more WAL than this (1 GiB; 0: only when `unreserved`).
    pub fn with_slot_lag_warn_bytes(mut self, bytes: u64) -> Self {
        self.config.slot_lag_warn_bytes = bytes;
        self
    }

    /// Create the slot as a failover slot (PostgreSQL 17+), synced to standbys.
    pub fn with_failover(mut self, failover: bool) -> Self {
        self.config.failover = failover;
        self
    }

    /// Resume from this LSN on the first start instead of the slot's confirmed position.
    pub fn with_start_lsn(mut self, lsn: Lsn) -> Self {
        self.config.start_lsn = Some(lsn);
        self
    }

    /// Ask for binary column values.
    pub fn with_binary(mut self, binary: bool) -> Self {
        self.config.binary = binary;
        self
    }

    /// Receive large in-progress transactions as they happen (`Off`).
    pub fn with_streaming(mut self, mode: StreamingMode) -> Self {
        self.config.streaming = mode;
        self
    }

    /// Decode prepared transactions at PREPARE (`false`).
    pub fn with_two_phase(mut self, two_phase: bool) -> Self {
        self.config.two_phase = two_phase;
        self
    }

    /// Changes per delivered batch at most (1000); larger transactions arrive in chunks.
    pub fn with_max_batch_changes(mut self, n: usize) -> Self {
        self.config.max_batch_changes = n;
        self
    }

    /// Standby status update interval (10 s).
    pub fn with_status_interval(mut self, interval: Duration) -> Self {
        self.config.status_interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// First reconnect delay (5 s); later ones back off to `max`.
    pub fn with_reconnect_delay(mut self, initial: Duration, max: Duration) -> Self {
        self.config.reconnect.initial_delay_ms =
            u64::try_from(initial.as_millis()).unwrap_or(u64::MAX);
        self.config.reconnect.max_delay_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Give up after this many failed attempts in a row (default: never).
    pub fn with_max_reconnect_attempts(mut self, attempts: Option<u32>) -> Self {
        self.config.reconnect.max_attempts = attempts;
        self
    }

    /// TCP connect and startup deadline (10 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// How long `start()` keeps retrying transient failures before the capture point is
    /// fixed (the slot exists); `Duration::ZERO` means no limit. Default 60 s.
    pub fn with_start_timeout(mut self, timeout: Duration) -> Self {
        self.config.start_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// `application_name` shown in `pg_stat_activity`.
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.config.application_name = name.into();
        self
    }

    /// Bootstrap with this provider when the slot is created (replaces the configured
    /// `bootstrap` mode).
    pub fn with_bootstrap_provider(mut self, provider: impl BootstrapProvider<R>) -> Self {
        self.provider = Some(Arc::new(provider));
        self
    }

    /// Bootstrap from a PostgreSQL snapshot when the slot is created (the configuration's
    /// `bootstrap = "postgres"`).
    pub fn with_postgres_bootstrap(self) -> Self {
        self.with_bootstrap_provider(PostgresBootstrap::default())
    }

    /// Bootstrap again even though the slot exists: the slot is dropped and recreated with a
    /// fresh snapshot (its unconsumed changes are then part of the new snapshot).
    pub fn with_force_bootstrap(mut self, force: bool) -> Self {
        self.force_bootstrap = force;
        self
    }

    /// The configuration as built so far.
    pub fn config(&self) -> &PostgresSourceConfig {
        &self.config
    }

    /// Validates and builds.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first invalid field and how to fix it.
    pub fn build(self) -> Result<Source<R>, Error> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(Error::Config(e));
        }
        let provider = self
            .provider
            .or_else(|| provider_from_config::<R>(&self.config));
        let source = Source::assemble(
            self.id,
            self.config,
            self.rt,
            provider,
            self.force_bootstrap,
        )?;
        // Catch what only the translation can see (an unreadable root certificate file …).
        run_config::<R>(source.id(), source.config())?;
        Ok(source)
    }
}

/// The provider the configuration's `bootstrap` names.
pub(crate) fn provider_from_config<R: Runtime>(
    cfg: &PostgresSourceConfig,
) -> Option<Arc<dyn BootstrapProvider<R>>> {
    match &cfg.bootstrap {
        BootstrapMode::Postgres => Some(Arc::new(PostgresBootstrap::default())),
        BootstrapMode::Jsonl { paths } => Some(Arc::new(JsonlBootstrap::new(paths.clone()))),
        _ => None,
    }
}

/// The run loop's settings for a validated configuration.
pub(crate) fn run_config<R: Runtime>(
    id: &str,
    cfg: &PostgresSourceConfig,
) -> Result<RunConfig<R>, Error> {
    let connect = ConnectOptions::from_config(cfg, true);
    let replication = cfg.replication_options();
    if cfg.spill_threshold_bytes != 0
        && let Some(dir) = cfg.spill_dir.as_deref()
    {
        super::spill::check_dir(dir).map_err(Error::Config)?;
    }
    let reconnect = cfg.reconnect_policy();
    Ok(RunConfig {
        connect,
        replication,
        pipeline: cfg.pipeline_config(),
        source_id: id.to_owned(),
        reconnect,
        ack_mode: cfg.ack_mode,
        start_timeout: cfg.start_timeout(),
        bootstrap: None,
        config: cfg.clone(),
    })
}
