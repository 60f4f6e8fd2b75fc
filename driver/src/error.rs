//! The driver's error type.

use std::io;

use pgcdc_core::connection::ConnectionError;
use pgcdc_core::query::ResultError;
use pgcdc_core::replication::SessionError;
use pgcdc_core::snapshot::SnapshotError;
use pgcdc_core::{ServerError, SqlState};

/// Anything that can go wrong while connecting or talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be opened.
    #[error(
        "could not connect to {host}:{port}: {source}; check the host, the port and that the server accepts TCP connections (listen_addresses)"
    )]
    Connect {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// The underlying error.
        source: io::Error,
    },
    /// The Unix-domain socket could not be connected.
    #[error(
        "could not connect to the Unix-domain socket {path}: {source}; check the host (the server's unix_socket_directories), the port and that the server is running"
    )]
    ConnectUnix {
        /// The socket's path.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The TLS handshake failed (certificate rejected, protocol error, …).
    #[error("TLS handshake with {host} failed: {source}")]
    TlsHandshake {
        /// The host name used for verification.
        host: String,
        /// The underlying error.
        source: io::Error,
    },
    /// TLS could not be set up.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The connection state machine failed (server error, authentication, protocol).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A query returned an error; the connection is still usable.
    #[error("query failed: {0}")]
    Query(Box<ServerError>),
    /// A result did not have the expected shape.
    #[error(transparent)]
    Result(#[from] ResultError),
    /// A setting is invalid; the message names it and says how to fix it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The replication source could not start: a fatal error (the message says what to do)
    /// or too many failed attempts; [`StartError`] carries the failure itself.
    #[error("the replication source could not start: {0}")]
    Start(Box<StartError>),
    /// A deadline passed.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// A snapshot could not be read: a table description or a copied row that does not
    /// parse, a snapshot query that cannot be built.
    #[error("bootstrap{}: {source}", table.as_deref().map(|t| format!(" of {t}")).unwrap_or_default())]
    Snapshot {
        /// The table being copied, if one was.
        table: Option<String>,
        /// What went wrong.
        source: SnapshotError,
    },
    /// The server's answer lacked what the protocol promises (a result set, a row).
    #[error("unexpected answer from the server: {0}")]
    Unexpected(&'static str),
    /// An API used in a way it does not support.
    #[error("{0}")]
    Usage(&'static str),
}

/// Why a bootstrap failed: what [`BootstrapProvider::bootstrap`](crate::BootstrapProvider)
/// returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// Connecting, querying, copying or reading the snapshot failed.
    #[error(transparent)]
    Driver(#[from] Error),
    /// The provider's own failure (a custom provider, an unreadable JSONL file …).
    #[error("{0}")]
    Provider(String),
    /// The source was stopped before the bootstrap completed.
    #[error("{0}")]
    Stopped(&'static str),
    /// The bootstrap failed, and its slot could not be dropped afterwards.
    #[error("{cause}; {drop_error}")]
    SlotNotDropped {
        /// Why the bootstrap failed.
        cause: Box<BootstrapError>,
        /// Why the slot is still there, and how to drop it.
        drop_error: String,
    },
}

impl From<String> for BootstrapError {
    fn from(message: String) -> Self {
        BootstrapError::Provider(message)
    }
}

impl BootstrapError {
    /// The server's error underneath, if any.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            BootstrapError::Driver(e) => e.server_error(),
            BootstrapError::SlotNotDropped { cause, .. } => cause.server_error(),
            _ => None,
        }
    }
}

/// Why [`start`](crate::Source::start) failed: the message (with pgcdc's advice when the
/// failure has a known remedy) and the failure itself, so callers can match on it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    message: String,
    cause: StartCause,
    transient: bool,
}

/// The failure that ended a [`start`](crate::Source::start).
#[derive(Debug)]
#[non_exhaustive]
pub enum StartCause {
    /// The replication session failed: server errors (with SQLSTATE and hint), a missing
    /// slot or publication, a protocol violation …
    Session(SessionError),
    /// Connecting or talking to the server failed (TCP, TLS, authentication).
    Driver(Error),
    /// The bootstrap failed (its slot was dropped, unless
    /// [`BootstrapError::SlotNotDropped`] says otherwise).
    Bootstrap(BootstrapError),
    /// The background task ended before streaming began.
    Ended,
}

impl StartError {
    pub(crate) fn new(message: String, cause: StartCause, transient: bool) -> Self {
        StartError {
            message,
            cause,
            transient,
        }
    }

    /// The failure.
    pub fn cause(&self) -> &StartCause {
        &self.cause
    }

    /// The message, as [`Display`](std::fmt::Display) prints it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the failure was transient (the server down, the slot in use …) and `start()`
    /// gave up on its timeout or attempt limit, rather than a fatal one that a retry cannot
    /// fix (a wrong password, `wal_level` not logical, a missing publication …).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The server's error, when the server reported one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match &self.cause {
            StartCause::Session(e) => e.server_error(),
            StartCause::Driver(e) => e.server_error(),
            StartCause::Bootstrap(e) => e.server_error(),
            StartCause::Ended => None,
        }
    }

    /// The SQLSTATE of the server's error, if any.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.server_error().and_then(|e| e.code)
    }

    /// The server's hint, if it gave one.
    pub fn hint(&self) -> Option<&str> {
        self.server_error().and_then(|e| e.hint.as_deref())
    }
}

impl Error {
    /// The server's error, when the server reported one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Connection(c) => c.server_error(),
            Error::Query(e) => Some(e.as_ref()),
            Error::Start(e) => e.server_error(),
            _ => None,
        }
    }

    /// The SQLSTATE of the server's error, if any.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.server_error().and_then(|e| e.code)
    }
}
