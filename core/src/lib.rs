//! # pgcdc-core
//!
//! The sans-IO core of pgcdc: pure state machines for PostgreSQL's frontend/backend protocol,
//! authentication, logical replication and pgoutput decoding. Bytes and time go in; events and
//! bytes come out. Nothing here opens a socket, reads a clock, spawns a thread or awaits.
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

pub mod auth;
pub mod config;
pub mod error;
pub mod lsn;
pub mod wire;

pub use config::{ChannelBinding, Password, SslMode};
pub use error::{ProtocolError, ServerError, SqlState};
pub use lsn::Lsn;
