//! # pgcdc-core
//!
//! The sans-IO core of pgcdc: pure state machines for PostgreSQL's frontend/backend protocol,
//! authentication, logical replication and pgoutput decoding. Bytes and time go in; events and
//! bytes come out. Nothing here opens a socket, reads a clock, spawns a thread or awaits.
//!
//! | module | holds |
//! |---|---|
//! | [`wire`] | frontend encoders, incremental zero-copy backend framing |
//! | [`auth`] | SCRAM-SHA-256(-PLUS), SASLprep, channel binding, cleartext; MD5 refused |
//! | [`startup`] | connection parameters, pinned output settings, server parameters |
//! | [`connection`] | the connection state machine: TLS step, startup, auth, simple queries, COPY |
//! | [`query`] | text result sets |
//! | [`commands`] | replication commands and their results |
//! | [`pgoutput`] | pgoutput messages of protocol versions 1–4, XLogData, relation cache |
//! | [`lsn`] | log sequence numbers |
//! | [`model`] | the change model: `SourceChange`, `Element`, element ids, labels |
//! | [`assemble`] | pgoutput messages → transactions of changes: the sans-IO `Pipeline` |
//! | [`snapshot`] | the bootstrap plan: table list, COPY statements, copied rows → inserts, JSONL |
//! | [`replication`] | the replication session: catalog checks, slot, streaming, acknowledgements, reconnect policy |
//! | [`source_config`] | `PostgresSourceConfig`: serde, URLs, `PG*` variables, validation |
//! | [`config`] | the TLS and channel-binding policies, the password type |
//! | [`error`] | protocol violations, server errors with SQLSTATE and hint |
//! | [`value`] | column values: the `Value` model, text and binary decoding per type |
//! | `testing` | (feature `testing`) a scripted fake walsender for tests, byte for byte |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod assemble;
pub mod auth;
pub mod commands;
pub mod config;
pub mod connection;
pub mod error;
pub mod lsn;
pub mod model;
pub mod pgoutput;
pub mod query;
pub mod replication;
pub mod snapshot;
pub mod source_config;
pub mod startup;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod value;
pub mod wire;

pub use config::{ChannelBinding, Password, SslMode};
pub use error::{ProtocolError, ServerError, SqlState};
pub use lsn::Lsn;
pub use source_config::{PostgresSourceConfig, TableKeyConfig};
