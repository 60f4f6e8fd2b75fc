//! [`PostgresSourceConfig`]: everything a PostgreSQL source needs, with drasi-source-postgres's field names
//! and defaults, serde support, `postgres://` URLs, libpq's `PG*` environment variables and
//! validation with errors that say how to fix them.
//!
//! # Compatibility with drasi-source-postgres
//!
//! `drasi-source-postgres` configures a source with `host` (`"localhost"`), `port` (`5432`),
//! `database` and `user` (required), `password` (`""`), `tables` (`[]`), `slot_name`
//! (`"drasi_slot"`), `publication_name` (`"drasi_publication"`), `ssl_mode` (`"prefer"`) and
//! `table_keys` (`[{table, key_columns}]`). Those names, shapes and defaults are kept, so a seed
//! JSON/YAML/TOML configuration deserializes unchanged; the camelCase spellings drasi-server
//! writes (`slotName`, `publicationName`, `sslMode`, `tableKeys`, `keyColumns`) are accepted as
//! aliases. Like drasi-source-postgres, unknown keys are ignored (configurations often carry keys meant for
//! other layers). `database` and `user` default to empty here so that a URL or `PGDATABASE` /
//! `PGUSER` can supply them later; [`validate`](PostgresSourceConfig::validate) reports them
//! as required when they are still empty.
//!
//! Every other field is optional with a documented default.
//!
//! # Serde formats
//!
//! - durations are integers of milliseconds (`*_ms` fields); `0` for
//!   [`connect_timeout_ms`](PostgresSourceConfig::connect_timeout_ms) means no limit;
//! - `ssl_mode`, `channel_binding` and `require_auth` use libpq's spellings (`"verify-full"`,
//!   `"scram-sha-256,none"`, `"!password"`); `ssl_root_cert` is a path or `"system"`;
//! - `start_lsn` is PostgreSQL's `"X/X"` text form (`"0/16B3748"`);
//! - enums are lower case (`"channel"`, `"broadcast"`, `"off"`, `"on"`, `"parallel"`,
//!   `"on_delivery"`, `"manual"`); `bootstrap` is described on [`BootstrapMode`];
//! - `password` serializes as a plain string (configuration files carry it), while `Debug`
//!   shows `Password(<redacted>)`.
//!
//! # Where settings come from
//!
//! [`apply_env`](PostgresSourceConfig::apply_env), [`apply_url`](PostgresSourceConfig::apply_url)
//! and direct field assignments each overwrite what they set; precedence is the order the
//! caller applies them in. The runtime's convention is: defaults (or a config file), then the
//! environment, then a URL, then explicit builder settings, then
//! [`validate`](PostgresSourceConfig::validate).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::assemble::{KeyConfig, PipelineConfig};
use crate::auth::RequireAuth;
use crate::config::{ChannelBinding, Password, SslMode};
use crate::lsn::Lsn;
use crate::replication::{ReconnectPolicy, ReplicationOptions};
use crate::startup::ConnectParams;
pub use crate::wire::DEFAULT_MAX_FRAME_LEN;

mod bootstrap;
mod error;
mod url;
mod validate;

#[cfg(test)]
mod tests;

pub use bootstrap::BootstrapMode;
pub use error::ConfigError;
pub use url::{ENV_VARS, URL_PARAMS};
pub use validate::{STATUS_INTERVAL_RANGE_MS, TableName, is_valid_slot_name};

/// Session timeouts pinned off in the startup packet of every connection a source opens: a
/// role's or database's `statement_timeout`, `idle_in_transaction_session_timeout` or
/// `lock_timeout` would otherwise abort a bootstrap COPY or end the replication connection
/// while it holds the exported snapshot.
pub const SESSION_TIMEOUTS: [(&str, &str); 3] = [
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("lock_timeout", "0"),
];

/// Default `host`.
pub const DEFAULT_HOST: &str = "localhost";
/// Default `port`.
pub const DEFAULT_PORT: u16 = 5432;
/// Default `slot_name` (drasi-source-postgres's).
pub const DEFAULT_SLOT_NAME: &str = "drasi_slot";
/// Default `publication_name` (drasi-source-postgres's).
pub const DEFAULT_PUBLICATION_NAME: &str = "drasi_publication";
/// Default `application_name`.
pub const DEFAULT_APPLICATION_NAME: &str = "pgcdc";
/// Default `connect_timeout_ms`.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Default `start_timeout_ms`.
pub const DEFAULT_START_TIMEOUT_MS: u64 = 60_000;
/// Default `status_interval_ms`.
pub const DEFAULT_STATUS_INTERVAL_MS: u64 = 10_000;
/// Default `dispatch_buffer_bytes`: 16 MiB per subscriber queue (estimated from the values;
/// the heap it takes is about twice that), which keeps a bootstrap to a slow consumer within
/// 64 MB of memory whatever the table's size.
pub const DEFAULT_DISPATCH_BUFFER_BYTES: usize = 16 << 20;
/// Default `dispatch_buffer_capacity` (drasi-lib's source default).
pub const DEFAULT_DISPATCH_BUFFER_CAPACITY: usize = 1000;
/// The `ssl_root_cert` value that selects the platform's trusted roots (libpq 16's
/// `sslrootcert=system`), with a host-name check.
pub const SSL_ROOT_CERT_SYSTEM: &str = "system";
/// The smallest accepted `max_frame_len`: 64 KiB.
pub const MIN_MAX_FRAME_LEN: usize = 64 * 1024;
/// The smallest accepted `spill_threshold_bytes` other than `0`: 64 KiB.
pub const MIN_SPILL_THRESHOLD_BYTES: usize = 64 * 1024;

/// The configuration of a PostgreSQL change-data-capture source.
///
/// See the [module documentation](self) for seed compatibility, serde formats and precedence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostgresSourceConfig {
    // ---- drasi-source-postgres's fields ----
    /// Host name, IP address, or (starting with `/`) a Unix-socket directory. Default
    /// `"localhost"`.
    pub host: String,
    /// TCP port. Default `5432`.
    pub port: u16,
    /// Database to stream from. Required.
    pub database: String,
    /// Role to connect as; it needs the `REPLICATION` attribute (and `SELECT` on the tables for
    /// a bootstrap). Required.
    pub user: String,
    /// Password; empty means none is sent. Default empty.
    pub password: Password,
    /// Tables to capture (`table` or `schema.table`; see [`TableName`]). Empty means every
    /// table of the publication. Default empty.
    pub tables: Vec<String>,
    /// Logical replication slot name: lower-case letters, digits and underscores, at most 63
    /// bytes. Default `"drasi_slot"`.
    #[serde(alias = "slotName")]
    pub slot_name: String,
    /// Publication name. Default `"drasi_publication"`.
    #[serde(alias = "publicationName")]
    pub publication_name: String,
    /// TLS policy, libpq's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`). Default `prefer`.
    #[serde(alias = "sslMode")]
    pub ssl_mode: SslMode,
    /// Element-id key columns per table, overriding primary keys. Default empty.
    #[serde(alias = "tableKeys")]
    pub table_keys: Vec<TableKeyConfig>,

    // ---- connection (ours) ----
    /// Numeric address to connect to instead of resolving `host` (libpq's `hostaddr`); `host`
    /// is still used for TLS certificate checks. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostaddr: Option<IpAddr>,
    /// SCRAM channel-binding policy (`disable`, `prefer`, `require`). Default `prefer`.
    pub channel_binding: ChannelBinding,
    /// The authentication methods the server may ask for, libpq's `require_auth`: a comma
    /// list of `password`, `md5`, `scram-sha-256`, `none`, or of `!`-negated ones (see
    /// [`RequireAuth`]). Default not set: any method pgcdc speaks, except that a cleartext
    /// password is never sent over a connection that is not TLS (a man in the middle could
    /// decline TLS and ask for it); `require_auth = "password"` allows that.
    #[serde(skip_serializing_if = "RequireAuth::is_unset")]
    pub require_auth: RequireAuth,
    /// `application_name` shown in `pg_stat_activity` and `pg_stat_replication`. Default
    /// `"pgcdc"`.
    pub application_name: String,
    /// Limit, in milliseconds, on establishing a connection (TCP, TLS, authentication); `0`
    /// means none. Default `10000`.
    pub connect_timeout_ms: u64,
    /// Largest server message accepted, in bytes, once authenticated: from
    /// [`MIN_MAX_FRAME_LEN`] (64 KiB) to [`DEFAULT_MAX_FRAME_LEN`] (1 GiB, PostgreSQL's own
    /// limit). A row or a pgoutput message larger than this fails the connection. Before
    /// authentication the limit is 64 KiB whatever this says. Default 1 GiB.
    pub max_frame_len: usize,
    /// How long, in milliseconds, `start()` keeps retrying transient failures before the
    /// capture point is fixed (the slot exists and its position is known); `0` means no
    /// limit. Until then no change is captured, so `start()` does not return `Ok` before it.
    /// Default `60000`.
    pub start_timeout_ms: u64,
    /// PEM file of root certificates (libpq's `sslrootcert`), or `"system"` for the
    /// platform's trusted roots ([`SSL_ROOT_CERT_SYSTEM`]). As in libpq: `verify-ca` and
    /// `verify-full` need it (validation fails without); with `prefer` or `require` and a file,
    /// the chain is verified as with `verify-ca`; `"system"` always checks the chain and the
    /// host name, whatever `ssl_mode` (except `disable`) says, because any publicly trusted
    /// certificate would otherwise pass. Default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_root_cert: Option<PathBuf>,

    // ---- slot and publication (ours) ----
    /// Create the slot when it does not exist. Default `true`.
    pub create_slot: bool,
    /// Create a temporary slot, dropped when the connection ends (nothing survives a
    /// reconnect; needs `create_slot`). Default `false`.
    pub temporary_slot: bool,
    /// Create the publication when it does not exist (`FOR TABLE` the `tables`, or
    /// `FOR ALL TABLES` when `tables` is empty, which needs superuser). Default `false`.
    pub create_publication: bool,
    /// What a source that has not streamed yet does when another consumer holds the slot:
    /// `wait` (stand by, state `Standby`, until the slot is free or `start_timeout_ms`) or
    /// `fail` at once. Default `wait`.
    pub slot_in_use: SlotInUse,
    /// Create the slot with `FAILOVER` (PostgreSQL 17+): the server syncs it to standbys that
    /// have `sync_replication_slots` on, so streaming can resume from it after a failover.
    /// Default `false`.
    pub failover: bool,
    /// How often (milliseconds) the slot's retained WAL is checked on an ordinary connection
    /// while streaming; `0`: never. Default 30000.
    pub slot_check_interval_ms: u64,
    /// Warn (log and `status().slot_warning`) when the slot retains more WAL than this many
    /// bytes, or its `wal_status` is `unreserved`; `0`: only the latter. Default 1 GiB.
    pub slot_lag_warn_bytes: u64,
    /// Where to start streaming, in `"X/X"` form. PostgreSQL starts at the later of this and the
    /// slot's confirmed position, so it only matters for an existing slot whose position is
    /// older than this one; `0/0` means the slot's position. Default none (the slot's confirmed
    /// position, or the consistent point of a newly created slot).
    #[serde(with = "opt_lsn", skip_serializing_if = "Option::is_none")]
    pub start_lsn: Option<Lsn>,

    // ---- pgoutput options (ours) ----
    /// pgoutput `proto_version` (1–4). Default none: the highest the server supports that the
    /// other options need.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto_version: Option<u32>,
    /// Ask pgoutput for binary column values (PostgreSQL 14+). Default `false`.
    pub binary: bool,
    /// Streaming of in-progress transactions. Default `off`.
    pub streaming: StreamingMode,
    /// Decode prepared transactions at PREPARE time (PostgreSQL 15+). Default `false`.
    pub two_phase: bool,
    /// pgoutput `origin` filter (PostgreSQL 16+): `"any"` or `"none"` (only changes without a
    /// replication origin). Default none (the server's default, `any`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Deliver logical decoding messages (`pg_logical_emit_message`, PostgreSQL 14+).
    /// Default `true`.
    pub messages: bool,

    // ---- session and delivery (ours) ----
    /// Interval between standby status updates, in milliseconds (100 – 3 600 000). Default
    /// `10000`.
    pub status_interval_ms: u64,
    /// Most changes in one delivered batch; bigger transactions arrive as chunks. Default
    /// `1000`.
    pub max_batch_changes: usize,
    /// Decode and attach old row values to updates and deletes. Default `true`.
    pub include_old_values: bool,
    /// How batches reach subscribers. Default `channel`.
    pub dispatch_mode: DispatchMode,
    /// Capacity of each dispatch queue, in batches. Default `1000`.
    pub dispatch_buffer_capacity: usize,
    /// The most memory, in bytes (estimated from the changes' values), one subscriber's queue
    /// may hold; delivery waits above it, as when the queue is full. A batch larger than the
    /// budget still goes through alone. `0` means no byte limit. Default 64 MiB.
    pub dispatch_buffer_bytes: usize,
    /// The most memory, in bytes, the changes of streamed (`streaming`) and prepared
    /// (`two_phase`) transactions may take while they wait for their commit — in the spirit of
    /// the server's `logical_decoding_work_mem`. Above it the largest such transaction spills
    /// to an unnamed temporary file in `spill_dir`, read back at its commit one batch at a
    /// time; aborted subtransactions and rolled-back prepares discard their spilled changes.
    /// `0` means no limit: everything stays in memory. Otherwise at least 64 KiB. Default
    /// 64 MiB.
    pub spill_threshold_bytes: usize,
    /// The directory of spill files (see `spill_threshold_bytes`); it must exist. The files
    /// are unlinked as soon as they are created, so nothing is left behind, even after a
    /// crash. Default none: the system's temporary directory (`TMPDIR`, else `/tmp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill_dir: Option<PathBuf>,
    /// When a delivered change counts as acknowledged. Default `on_delivery`.
    pub ack_mode: AckMode,
    /// Start with the host application. Default `true`.
    pub auto_start: bool,
    /// Reconnect policy for transient failures.
    pub reconnect: ReconnectConfig,
    /// The initial snapshot. Default `none`.
    pub bootstrap: BootstrapMode,
}

impl Default for PostgresSourceConfig {
    fn default() -> Self {
        PostgresSourceConfig {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            database: String::new(),
            user: String::new(),
            password: Password::default(),
            tables: Vec::new(),
            slot_name: DEFAULT_SLOT_NAME.to_owned(),
            publication_name: DEFAULT_PUBLICATION_NAME.to_owned(),
            ssl_mode: SslMode::Prefer,
            table_keys: Vec::new(),
            hostaddr: None,
            channel_binding: ChannelBinding::Prefer,
            require_auth: RequireAuth::unset(),
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            start_timeout_ms: DEFAULT_START_TIMEOUT_MS,
            ssl_root_cert: None,
            create_slot: true,
            temporary_slot: false,
            create_publication: false,
            slot_in_use: SlotInUse::Wait,
            failover: false,
            slot_check_interval_ms: 30_000,
            slot_lag_warn_bytes: 1 << 30,
            start_lsn: None,
            proto_version: None,
            binary: false,
            streaming: StreamingMode::Off,
            two_phase: false,
            origin: None,
            messages: true,
            status_interval_ms: DEFAULT_STATUS_INTERVAL_MS,
            max_batch_changes: crate::assemble::DEFAULT_MAX_BATCH_CHANGES,
            include_old_values: true,
            dispatch_mode: DispatchMode::Channel,
            dispatch_buffer_capacity: DEFAULT_DISPATCH_BUFFER_CAPACITY,
            dispatch_buffer_bytes: DEFAULT_DISPATCH_BUFFER_BYTES,
            spill_threshold_bytes: crate::assemble::DEFAULT_SPILL_THRESHOLD_BYTES,
            spill_dir: None,
            ack_mode: AckMode::OnDelivery,
            auto_start: true,
            reconnect: ReconnectConfig::default(),
            bootstrap: BootstrapMode::None,
        }
    }
}

impl PostgresSourceConfig {
    /// The defaults with `database` and `user` set.
    pub fn new(database: impl Into<String>, user: impl Into<String>) -> Self {
        PostgresSourceConfig {
            database: database.into(),
            user: user.into(),
            ..PostgresSourceConfig::default()
        }
    }

    /// Whether `ssl_root_cert` is `"system"`: the platform's roots, with a host-name check.
    pub fn uses_system_roots(&self) -> bool {
        self.ssl_root_cert
            .as_deref()
            .is_some_and(|p| p.as_os_str() == SSL_ROOT_CERT_SYSTEM)
    }

    /// `connect_timeout_ms` as a duration (`None` when it is `0`: no limit).
    pub fn connect_timeout(&self) -> Option<Duration> {
        (self.connect_timeout_ms > 0).then(|| Duration::from_millis(self.connect_timeout_ms))
    }

    /// `slot_check_interval_ms` as a duration (`None` when it is `0`: no checks).
    pub fn slot_check_interval(&self) -> Option<Duration> {
        (self.slot_check_interval_ms > 0)
            .then(|| Duration::from_millis(self.slot_check_interval_ms))
    }

    /// `start_timeout_ms` as a duration (`None` when it is `0`: no limit).
    pub fn start_timeout(&self) -> Option<Duration> {
        (self.start_timeout_ms > 0).then(|| Duration::from_millis(self.start_timeout_ms))
    }

    /// `status_interval_ms` as a duration.
    pub fn status_interval(&self) -> Duration {
        Duration::from_millis(self.status_interval_ms)
    }

    /// The parameters of one connection to this source's database: a logical replication
    /// connection when `replication` is true, an ordinary one (catalog queries, snapshot copy)
    /// otherwise. The startup deadline is `connect_timeout_ms`; an empty password is not sent.
    ///
    /// The startup packet also pins [`SESSION_TIMEOUTS`] (as `pg_dump` does), so a timeout set
    /// for the role or the database cannot abort a long COPY, drop the exported snapshot the
    /// replication connection holds idle in its transaction, or fail a catalog query.
    pub fn connect_params(&self, replication: bool) -> ConnectParams {
        let mut params = ConnectParams::new(self.user.clone())
            .replication(replication)
            .ssl_mode(self.ssl_mode)
            .channel_binding(self.channel_binding)
            .require_auth(self.require_auth.clone())
            .application_name(self.application_name.clone())
            .startup_timeout(self.connect_timeout())
            .max_frame_len(self.max_frame_len);
        if !self.database.is_empty() {
            params = params.database(self.database.clone());
        }
        if !self.password.expose().is_empty() {
            params = params.password(self.password.clone());
        }
        params.extra_params.extend(
            SESSION_TIMEOUTS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        params
    }

    /// The configured element-id keys (`table_keys`). Tables are keyed by `schema.table` or
    /// bare `table`, with quotes removed (see [`TableName`]).
    pub fn key_config(&self) -> KeyConfig {
        let mut keys = KeyConfig::new();
        for tk in &self.table_keys {
            let name = match TableName::parse(&tk.table) {
                Ok(t) => t.to_key(),
                Err(_) => tk.table.clone(),
            };
            keys.insert(name, tk.key_columns.iter().cloned());
        }
        keys
    }

    /// What the replication session sets up and asks the server for: slot, publication,
    /// tables, creation flags, start position, pgoutput options, status interval.
    pub fn replication_options(&self) -> ReplicationOptions {
        ReplicationOptions {
            slot_name: self.slot_name.clone(),
            publication_name: self.publication_name.clone(),
            tables: self.tables.clone(),
            create_slot: self.create_slot,
            temporary_slot: self.temporary_slot,
            create_publication: self.create_publication,
            slot_in_use: self.slot_in_use,
            failover: self.failover,
            start_lsn: self.start_lsn,
            proto_version: self.proto_version,
            binary: self.binary,
            streaming: self.streaming,
            two_phase: self.two_phase,
            origin: self.origin.clone(),
            messages: self.messages,
            status_interval: self.status_interval(),
            ..ReplicationOptions::default()
        }
    }

    /// The reconnect policy of `reconnect` (delays in milliseconds, attempts).
    pub fn reconnect_policy(&self) -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(self.reconnect.initial_delay_ms),
            max_delay: Duration::from_millis(self.reconnect.max_delay_ms),
            max_attempts: self.reconnect.max_attempts,
            ..ReconnectPolicy::default()
        }
    }

    /// The assembly pipeline's configuration: `max_batch_changes`, `table_keys`,
    /// `include_old_values`, `spill_threshold_bytes`.
    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig::default()
            .with_max_batch_changes(self.max_batch_changes)
            .with_keys(self.key_config())
            .with_include_old_values(self.include_old_values)
            .with_spill_threshold_bytes(self.spill_threshold_bytes)
    }
}

/// Element-id key columns for one table (drasi-source-postgres's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableKeyConfig {
    /// `table` or `schema.table`.
    pub table: String,
    /// The key columns, in key order.
    #[serde(alias = "keyColumns")]
    pub key_columns: Vec<String>,
}

impl TableKeyConfig {
    /// Key columns for `table`.
    pub fn new<S: Into<String>>(
        table: impl Into<String>,
        key_columns: impl IntoIterator<Item = S>,
    ) -> Self {
        TableKeyConfig {
            table: table.into(),
            key_columns: key_columns.into_iter().map(Into::into).collect(),
        }
    }
}

/// pgoutput's `streaming` option: whether large in-progress transactions are sent before they
/// commit (then they are held until Stream Commit, see
/// [`PipelineConfig::spill_threshold_bytes`](crate::assemble::PipelineConfig::spill_threshold_bytes)).
/// Serde and `Display`: `"off"`, `"on"`, `"parallel"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamingMode {
    /// Transactions are sent after they commit.
    #[default]
    Off,
    /// Large in-progress transactions are streamed (protocol version 2+, PostgreSQL 14+).
    On,
    /// Streamed, possibly interleaved for parallel apply (protocol version 4, PostgreSQL 16+).
    Parallel,
}

impl std::fmt::Display for StreamingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StreamingMode {
    /// The option value (`off`, `on`, `parallel`).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamingMode::Off => "off",
            StreamingMode::On => "on",
            StreamingMode::Parallel => "parallel",
        }
    }

    /// The lowest pgoutput protocol version that supports this mode.
    pub fn min_proto_version(self) -> u32 {
        match self {
            StreamingMode::Off => 1,
            StreamingMode::On => 2,
            StreamingMode::Parallel => 4,
        }
    }
}

/// How change batches are handed to subscribers. Serde: `"channel"`, `"broadcast"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DispatchMode {
    /// One bounded queue per subscriber; a full queue slows the source (backpressure reaches
    /// the socket).
    #[default]
    Channel,
    /// One bounded shared queue fanned out to every subscriber.
    Broadcast,
}

/// What a source that has not streamed from its slot yet does when another consumer holds it.
/// Serde: `"wait"`, `"fail"`.
///
/// Either way a source never takes a slot back from a consumer that took it over: a source
/// that streamed and finds the slot held by another process, or moved past what it
/// acknowledged, ends with [`SlotTakenOver`](crate::replication::SessionError::SlotTakenOver),
/// so two consumers never deliver from one slot in turns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotInUse {
    /// Stand by (state `Standby`) and take the slot when it is free, retrying until
    /// `start_timeout_ms` (0: forever).
    #[default]
    Wait,
    /// Fail the start at once.
    Fail,
}

impl std::str::FromStr for SlotInUse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wait" => Ok(SlotInUse::Wait),
            "fail" => Ok(SlotInUse::Fail),
            other => Err(format!("slot_in_use must be wait or fail, not {other:?}")),
        }
    }
}

/// When a delivered change counts as acknowledged, which bounds the flush LSN reported to
/// PostgreSQL. Serde: `"on_delivery"`, `"manual"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// As soon as it has been handed to every subscriber (drasi-source-postgres's behaviour).
    #[default]
    #[serde(alias = "ondelivery", alias = "on-delivery")]
    OnDelivery,
    /// Only when the application acknowledges it.
    Manual,
}

/// Reconnection after transient failures: exponential backoff with jitter from
/// `initial_delay_ms` up to `max_delay_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconnectConfig {
    /// First delay, in milliseconds. Default `5000`.
    pub initial_delay_ms: u64,
    /// Longest delay, in milliseconds. Default `60000`.
    pub max_delay_ms: u64,
    /// Give up after this many consecutive failed attempts (`0`: never reconnect). Default none
    /// (retry forever).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_delay_ms: 5000,
            max_delay_ms: 60_000,
            max_attempts: None,
        }
    }
}

/// `Option<Lsn>` as an optional `"X/X"` string.
mod opt_lsn {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::lsn::Lsn;

    pub(super) fn serialize<S: Serializer>(lsn: &Option<Lsn>, s: S) -> Result<S::Ok, S::Error> {
        match lsn {
            Some(l) => s.collect_str(l),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lsn>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
