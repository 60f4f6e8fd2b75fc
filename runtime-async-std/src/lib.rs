//! # pgcdc-async-std
//!
//! pgcdc on async-std and on smol. This crate is only the runtime glue — TCP connect, sleep and
//! spawn — around the shared driver in `pgcdc-driver` and the sans-IO core in `pgcdc-core`;
//! the API is the one `pgcdc-tokio` offers, under the same names.
//!
//! Two runtimes are provided:
//!
//! * [`AsyncStdRuntime`] ([`PostgresReplicationSource`], [`PgConnection`], [`connect`]): tasks
//!   go to async-std's global executor.
//! * [`SmolRuntime`] ([`SmolPostgresReplicationSource`], [`SmolPgConnection`],
//!   [`smol_connect`]): tasks go to smol's global executor (`smol::spawn`; its thread count is
//!   set by `SMOL_THREADS`).
//!
//! async-std is discontinued upstream and recommends smol; both runtimes sit on the same
//! reactor (`async-io`), so either source type runs under either executor's `block_on`.
//!
//! ```no_run
//! use pgcdc_async_std::{SmolPostgresReplicationSource, SslMode};
//!
//! # fn main() -> Result<(), pgcdc_async_std::Error> {
//! smol::block_on(async {
//!     let source = SmolPostgresReplicationSource::builder("pg-source")
//!         .with_host("db.example.com")
//!         .with_database("app")
//!         .with_user("cdc")
//!         .with_password("secret")
//!         .with_tables(vec!["users".into()])
//!         .with_ssl_mode(SslMode::VerifyFull)
//!         .with_ssl_root_cert("system") // the platform's roots, with a host-name check
//!         .with_auto_start(false)
//!         .build()?;
//!     let mut changes = source.subscribe();
//!     source.start().await?;
//!     while let Some(batch) = changes.recv().await {
//!         println!("{} changes up to {:?}", batch.changes.len(), batch.end_lsn);
//!     }
//!     source.stop().await
//! })
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::time::Duration;

/// The sans-IO core (model, values, configuration), under its own name.
pub use pgcdc_core;
pub use pgcdc_driver::api::*;

/// The replication source on async-std: `PostgresReplicationSource::builder("id")…build()`, or
/// `PostgresReplicationSource::new("id", config)`. See [`pgcdc_driver::Source`].
pub type PostgresReplicationSource = pgcdc_driver::Source<AsyncStdRuntime>;

/// Its builder.
pub type PostgresSourceBuilder = pgcdc_driver::SourceBuilder<AsyncStdRuntime>;

/// A connection on async-std.
pub type PgConnection = pgcdc_driver::PgConnection<AsyncStdRuntime>;

/// The replication source on smol. See [`pgcdc_driver::Source`].
pub type SmolPostgresReplicationSource = pgcdc_driver::Source<SmolRuntime>;

/// Its builder.
pub type SmolPostgresSourceBuilder = pgcdc_driver::SourceBuilder<SmolRuntime>;

/// A connection on smol.
pub type SmolPgConnection = pgcdc_driver::PgConnection<SmolRuntime>;

/// The async-std implementation of [`pgcdc_driver::Runtime`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStdRuntime;

impl pgcdc_driver::Runtime for AsyncStdRuntime {
    // async-std's own TcpStream does not expose its file descriptor as `AsFd`, which setting
    // TCP keepalive needs; async-net's stream runs on the same async-io reactor that
    // async-std uses, so it is just as native here.
    type Tcp = smol::net::TcpStream;

    fn connect(
        &self,
        host: String,
        port: u16,
    ) -> BoxFuture<'static, io::Result<smol::net::TcpStream>> {
        Box::pin(connect_tcp(host, port))
    }

    fn connect_unix(
        &self,
        path: std::path::PathBuf,
    ) -> BoxFuture<'static, io::Result<pgcdc_driver::UnixSocket>> {
        Box::pin(connect_unix(path))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async_std::task::sleep(duration))
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        // Detached: dropping an async-std JoinHandle does not cancel the task.
        drop(async_std::task::spawn(future));
    }

    fn unblock<T, F>(&self, job: F) -> BoxFuture<'static, Option<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Box::pin(async move { Some(async_std::task::spawn_blocking(job).await) })
    }
}

/// Opens a Unix-domain socket stream on the async-io reactor (shared by async-std and smol).
#[cfg(unix)]
async fn connect_unix(path: std::path::PathBuf) -> io::Result<pgcdc_driver::UnixSocket> {
    let s = smol::net::unix::UnixStream::connect(path).await?;
    Ok(pgcdc_driver::UnixSocket::new(s))
}

/// Unix-domain sockets exist only on Unix.
#[cfg(not(unix))]
async fn connect_unix(path: std::path::PathBuf) -> io::Result<pgcdc_driver::UnixSocket> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "Unix-domain sockets are not available here ({})",
            path.display()
        ),
    ))
}

/// Opens a tuned TCP stream on the async-io reactor (shared by async-std and smol).
async fn connect_tcp(host: String, port: u16) -> io::Result<smol::net::TcpStream> {
    let s = smol::net::TcpStream::connect((host.as_str(), port)).await?;
    pgcdc_driver::tune_tcp(&s)?;
    Ok(s)
}

/// The smol implementation of [`pgcdc_driver::Runtime`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl pgcdc_driver::Runtime for SmolRuntime {
    type Tcp = smol::net::TcpStream;

    fn connect(
        &self,
        host: String,
        port: u16,
    ) -> BoxFuture<'static, io::Result<smol::net::TcpStream>> {
        Box::pin(connect_tcp(host, port))
    }

    fn connect_unix(
        &self,
        path: std::path::PathBuf,
    ) -> BoxFuture<'static, io::Result<pgcdc_driver::UnixSocket>> {
        Box::pin(connect_unix(path))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        smol::spawn(future).detach();
    }

    fn unblock<T, F>(&self, job: F) -> BoxFuture<'static, Option<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Box::pin(async move { Some(smol::unblock(job).await) })
    }
}

/// Connects with [`AsyncStdRuntime`].
pub async fn connect(opts: &ConnectOptions) -> Result<PgConnection, Error> {
    PgConnection::connect(AsyncStdRuntime, opts).await
}

/// Connects with [`SmolRuntime`].
pub async fn smol_connect(opts: &ConnectOptions) -> Result<SmolPgConnection, Error> {
    SmolPgConnection::connect(SmolRuntime, opts).await
}
