//! A TCP stream, possibly wrapped in TLS, or a Unix-domain socket stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

/// A connected Unix-domain socket stream, as a runtime's
/// [`connect_unix`](crate::Runtime::connect_unix) returns it.
pub struct UnixSocket(Box<dyn UnixIo>);

/// What a Unix-domain socket stream must implement (every runtime's Unix stream does, through
/// `futures-io`).
pub trait UnixIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> UnixIo for S {}

impl UnixSocket {
    /// Wraps a runtime's Unix stream.
    pub fn new(stream: impl UnixIo) -> Self {
        UnixSocket(Box::new(stream))
    }
}

impl std::fmt::Debug for UnixSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnixSocket")
    }
}

/// The byte stream under a connection: plain TCP, TLS over TCP, or a Unix-domain socket
/// (never encrypted, as with libpq).
#[derive(Debug)]
pub enum Transport<T> {
    /// Unencrypted.
    Plain(T),
    /// A Unix-domain socket.
    Unix(UnixSocket),
    /// TLS (rustls).
    Tls(Box<futures_rustls::client::TlsStream<T>>),
    /// Momentarily empty while the plain stream is handed to the TLS handshake; every
    /// operation on it fails.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection's stream is detached",
    )
}

impl<T> Transport<T> {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Unix(s) => Pin::new(s.0.as_mut()).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Unix(s) => Pin::new(s.0.as_mut()).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Unix(s) => Pin::new(s.0.as_mut()).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Unix(s) => Pin::new(s.0.as_mut()).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::Detached => Poll::Ready(Ok(())),
        }
    }
}
