//! # pgcdc-driver
//!
//! The runtime-agnostic half of pgcdc's drivers: it owns sockets (through a [`Runtime`]),
//! rustls TLS and timers, and moves bytes between them and the sans-IO state machines of
//! `pgcdc-core`. It holds no protocol logic. `pgcdc-tokio` and `pgcdc-async-std` only supply
//! a [`Runtime`] (TCP connect, sleep, spawn).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Everything a runtime crate re-exports, so every runtime offers the same names.
pub mod api {
    /// The names of the figures the source gives the `metrics` recorder.
    pub use crate::source::metrics::names as metric_names;
    pub use crate::source::{
        AckHandle, BootstrapContext, BootstrapProgress, BootstrapProvider, BootstrapStage,
        ChangeBatch, JsonlBootstrap, PostgresBootstrap, SourceState, SourceStatus, Subscription,
        TableProgress,
    };
    pub use crate::{
        BootstrapError, BoxFuture, ConnectOptions, Error, RootCerts, StartCause, StartError,
    };
    pub use pgcdc_core::auth::RequireAuth;
    pub use pgcdc_core::source_config::{
        AckMode, BootstrapMode, DispatchMode, PostgresSourceConfig, SlotInUse, StreamingMode,
        TableKeyConfig,
    };
    pub use pgcdc_core::{ChannelBinding, Lsn, SslMode};
}

mod conn;
mod error;
mod runtime;
pub mod source;
mod tls;
mod transport;

pub use conn::{ConnectOptions, MAX_KEPT_NOTICES, PgConnection};
pub use error::{BootstrapError, Error, StartCause, StartError};
pub use runtime::{
    BoxFuture, KEEPALIVE_INTERVAL, KEEPALIVE_TIME, Runtime, system_random, tune_tcp,
};
pub use source::{
    AckHandle, ChangeBatch, Source, SourceBuilder, SourceState, SourceStatus, Subscription,
};
pub use tls::RootCerts;
pub use transport::{Transport, UnixIo, UnixSocket};
