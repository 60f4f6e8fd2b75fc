//! The driver's error type.

use std::io;

use pgcdc_core::connection::ConnectionError;
use pgcdc_core::query::ResultError;
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
    /// or too many failed attempts.
    #[error("the replication source could not start: {0}")]
    Start(String),
    /// A deadline passed.
    #[error("timed out while {0}")]
    Timeout(&'static str),
}

impl Error {
    /// The server's error, when the server reported one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Connection(c) => c.server_error(),
            Error::Query(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The SQLSTATE of the server's error, if any.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.server_error().and_then(|e| e.code)
    }
}
