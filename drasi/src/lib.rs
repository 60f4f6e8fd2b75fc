//! # pgcdc-drasi
//!
//! pgcdc as a [Drasi](https://drasi.io) source: a `drasi_lib::Source` that streams a
//! PostgreSQL database's changes into continuous queries, the drop-in for
//! `drasi-source-postgres` 0.2.12 (same builder, constructors, configuration struct and
//! position format; change the crate name and nothing else).
//!
//! What it adds: TLS (rustls) on the replication connection too, an exact bootstrap per query
//! ([`PostgresSourceBuilder::with_snapshot_bootstrap`]), reconnecting forever with backoff,
//! numeric kept exact on request, key changes as delete + insert (no ghost node), and a slot
//! that follows the stream even when nothing is published (no WAL pinned). The value
//! mapping is in [`MappingOptions`] and the README's Drasi section.
//!
//! ```no_run
//! use pgcdc_drasi::PostgresReplicationSource;
//!
//! # fn main() -> anyhow::Result<()> {
//! let source = PostgresReplicationSource::builder("pg-source")
//!     .with_host("db.example.com")
//!     .with_database("production")
//!     .with_user("replication_user")
//!     .with_password("secret")
//!     .with_tables(vec!["users".to_string(), "orders".to_string()])
//!     .with_snapshot_bootstrap()
//!     .build()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bootstrap;
pub mod config;
mod fanout;
pub mod mapping;
mod source;

pub use bootstrap::SnapshotBootstrapProvider;
pub use config::{PostgresSourceConfig, SslMode, TableKeyConfig};
pub use mapping::{MappingOptions, NumericMapping};
pub use source::{PostgresReplicationSource, PostgresSourceBuilder};
