//! The runtime abstraction: the only things that differ between async runtimes.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use futures_io::{AsyncRead, AsyncWrite};

use crate::transport::UnixSocket;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an async runtime must provide: TCP connect, sleep and spawn. Everything else —
/// TLS, the protocol, reconnects, dispatch — is shared by every runtime.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's TCP stream, adapted to `futures-io`.
    type Tcp: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Opens a TCP connection to `host:port` (resolving the name), tuned with [`tune_tcp`]
    /// (`TCP_NODELAY`, keepalive).
    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Self::Tcp>>;

    /// Opens a Unix-domain socket connection to `path` (a host that is a directory, as
    /// libpq reads it, joined with `.s.PGSQL.<port>`). The default refuses
    /// ([`io::ErrorKind::Unsupported`]): a runtime without Unix streams cannot reach such hosts.
    fn connect_unix(&self, path: PathBuf) -> BoxFuture<'static, io::Result<UnixSocket>> {
        Box::pin(async move {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "this runtime cannot open Unix-domain sockets ({})",
                    path.display()
                ),
            ))
        })
    }

    /// Completes after `duration`, measured on the clock of [`now`](Self::now).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// The runtime's monotonic clock. Every deadline the driver hands to the core and every
    /// `sleep` it asks for is measured on it, so a runtime with virtual time (tests) drives
    /// the whole loop deterministically. The default is the system's monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall clock, for standby status updates and delivery timestamps. The default is the
    /// system's.
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Random bits for the element ids of tables without a key and the reconnect jitter
    /// (SCRAM nonces always come from the system's secure generator). The default is the
    /// operating system's generator; a runtime for deterministic tests returns a seeded
    /// sequence.
    fn random(&self) -> u64 {
        system_random()
    }

    /// Runs `job` where it cannot stall the executor (a blocking thread pool) and returns
    /// its result; `None` when the runtime could not run it (it is shutting down). The CPU-heavy
    /// step of a connection — SCRAM's key derivation, up to
    /// [`MAX_SCRAM_ITERATIONS`](pgcdc_core::auth::MAX_SCRAM_ITERATIONS) rounds of PBKDF2 — runs
    /// here. The default runs `job` on the calling task, for runtimes without such a pool.
    fn unblock<T, F>(&self, job: F) -> BoxFuture<'static, Option<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        Box::pin(async move { Some(job()) })
    }

    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture<'static, ()>);
}

/// 64 bits from the operating system's secure generator (through ring); if it fails, a
/// clock-derived value (the jitter and generated ids are then only less spread out).
pub fn system_random() -> u64 {
    let mut b = [0u8; 8];
    if crate::tls::random_bytes(&mut b).is_err() {
        return SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// How long a connection may be silent before the operating system probes it, and then how
/// often: a peer that vanished (a half-open connection) is detected after about
/// `KEEPALIVE_TIME + probes × KEEPALIVE_INTERVAL` (the system's probe count; 9 on Linux: about
/// two minutes), even while the consumer holds the socket back.
pub const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// See [`KEEPALIVE_TIME`].
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Sets `TCP_NODELAY` and TCP keepalive ([`KEEPALIVE_TIME`], [`KEEPALIVE_INTERVAL`]) on a
/// freshly connected socket. Runtimes call it from [`Runtime::connect`].
///
/// # Errors
///
/// The socket option calls' errors.
#[cfg(unix)]
pub fn tune_tcp<S: std::os::fd::AsFd>(socket: &S) -> io::Result<()> {
    let sock = socket2::SockRef::from(socket);
    sock.set_tcp_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL);
    sock.set_tcp_keepalive(&keepalive)
}

/// Sets `TCP_NODELAY` and TCP keepalive on a freshly connected socket (see the Unix version).
///
/// # Errors
///
/// The socket option calls' errors.
#[cfg(windows)]
pub fn tune_tcp<S: std::os::windows::io::AsSocket>(socket: &S) -> io::Result<()> {
    let sock = socket2::SockRef::from(socket);
    sock.set_tcp_nodelay(true)?;
    sock.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_TIME)
            .with_interval(KEEPALIVE_INTERVAL),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn tune_tcp_sets_nodelay_and_keepalive() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        tune_tcp(&stream).unwrap();
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
    }
}
