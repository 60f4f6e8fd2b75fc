//! The runtime abstraction: the only things that differ between async runtimes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an async runtime must provide: TCP connect, sleep and spawn. Everything else —
/// TLS, the protocol, reconnects, dispatch — is shared by every runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's TCP stream, adapted to `futures-io`.
    type Tcp: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Opens a TCP connection to `host:port` (resolving the name) with `TCP_NODELAY` set.
    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Self::Tcp>>;

    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture<'static, ()>);
}
