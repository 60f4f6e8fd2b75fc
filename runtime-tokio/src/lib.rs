//! # pgcdc-tokio
//!
//! pgcdc on the tokio runtime. This crate is only the runtime glue — TCP connect, sleep and
//! spawn — around the shared driver in `pgcdc-driver` and the sans-IO core in `pgcdc-core`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::ReadBuf;

/// The sans-IO core (model, values, configuration), under its own name.
pub use pgcdc_core;
pub use pgcdc_driver::api::*;

/// The replication source on tokio: `PostgresReplicationSource::builder("id")…build()`, or
/// `PostgresReplicationSource::new("id", config)`. See [`pgcdc_driver::Source`].
pub type PostgresReplicationSource = pgcdc_driver::Source<TokioRuntime>;

/// Its builder.
pub type PostgresSourceBuilder = pgcdc_driver::SourceBuilder<TokioRuntime>;

/// A connection on tokio.
pub type PgConnection = pgcdc_driver::PgConnection<TokioRuntime>;

/// The tokio implementation of [`pgcdc_driver::Runtime`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

/// A tokio TCP stream seen through the `futures-io` traits.
#[derive(Debug)]
pub struct TokioTcp(TokioIo<tokio::net::TcpStream>);

impl pgcdc_driver::Runtime for TokioRuntime {
    type Tcp = TokioTcp;

    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<TokioTcp>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            pgcdc_driver::tune_tcp(&s)?;
            Ok(TokioTcp(TokioIo(s)))
        })
    }

    #[cfg(unix)]
    fn connect_unix(
        &self,
        path: std::path::PathBuf,
    ) -> BoxFuture<'static, io::Result<pgcdc_driver::UnixSocket>> {
        Box::pin(async move {
            let s = tokio::net::UnixStream::connect(path).await?;
            Ok(pgcdc_driver::UnixSocket::new(TokioIo(s)))
        })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        tokio::spawn(future);
    }

    fn unblock<T, F>(&self, job: F) -> BoxFuture<'static, Option<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Box::pin(async move {
            match tokio::task::spawn_blocking(job).await {
                Ok(v) => Some(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => None,
            }
        })
    }

    fn now(&self) -> std::time::Instant {
        // tokio's clock, which `sleep` uses (and which tests may pause).
        tokio::time::Instant::now().into_std()
    }
}

/// A tokio stream (TCP or a Unix-domain socket) seen through the `futures-io` traits.
#[derive(Debug)]
struct TokioIo<S>(S);

impl<S: tokio::io::AsyncRead + Unpin> futures_io::AsyncRead for TokioIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> futures_io::AsyncWrite for TokioIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl futures_io::AsyncRead for TokioTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for TokioTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// Connects with [`TokioRuntime`].
pub async fn connect(opts: &ConnectOptions) -> Result<PgConnection, Error> {
    PgConnection::connect(TokioRuntime, opts).await
}

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
