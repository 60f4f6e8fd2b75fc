//! Error types shared by the core's state machines.
//!
//! Each operation has its own `#[non_exhaustive]` enum. Errors say what went wrong and, where
//! an operator can fix it, what to change.

use std::fmt;

/// A five-character SQLSTATE code, such as `28P01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `28P01` invalid_password.
    pub const INVALID_PASSWORD: SqlState = SqlState(*b"28P01");
    /// `28000` invalid_authorization_specification (also: no pg_hba.conf entry).
    pub const INVALID_AUTHORIZATION: SqlState = SqlState(*b"28000");
    /// `42501` insufficient_privilege.
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState(*b"42501");
    /// `42704` undefined_object.
    pub const UNDEFINED_OBJECT: SqlState = SqlState(*b"42704");
    /// `42710` duplicate_object.
    pub const DUPLICATE_OBJECT: SqlState = SqlState(*b"42710");
    /// `55000` object_not_in_prerequisite_state.
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: SqlState = SqlState(*b"55000");
    /// `55006` object_in_use (a replication slot held by another walsender).
    pub const OBJECT_IN_USE: SqlState = SqlState(*b"55006");
    /// `57P01` admin_shutdown.
    pub const ADMIN_SHUTDOWN: SqlState = SqlState(*b"57P01");
    /// `57P02` crash_shutdown.
    pub const CRASH_SHUTDOWN: SqlState = SqlState(*b"57P02");
    /// `57P03` cannot_connect_now (server starting up or shutting down).
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState(*b"57P03");
    /// `53300` too_many_connections.
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState(*b"53300");
    /// `3D000` invalid_catalog_name (unknown database).
    pub const INVALID_CATALOG_NAME: SqlState = SqlState(*b"3D000");
    /// `08P01` protocol_violation.
    pub const PROTOCOL_VIOLATION: SqlState = SqlState(*b"08P01");

    /// Parses a five-character code; anything else gives `None`.
    pub fn from_code(code: &str) -> Option<SqlState> {
        let b: [u8; 5] = code.as_bytes().try_into().ok()?;
        b.iter()
            .all(|c| c.is_ascii_alphanumeric())
            .then_some(SqlState(b))
    }

    /// The code as a string, such as `"28P01"`.
    pub fn code(&self) -> &str {
        // Only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }

    /// The two-character class, such as `"28"`.
    pub fn class(&self) -> &str {
        self.code().get(..2).unwrap_or("")
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({})", self.code())
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An ErrorResponse or NoticeResponse from the server, with every field it carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerError {
    /// Severity (`S`), possibly localized.
    pub severity: String,
    /// Severity, never localized (`V`): ERROR, FATAL, PANIC, WARNING, NOTICE, …
    pub severity_nonlocalized: Option<String>,
    /// SQLSTATE (`C`). `None` only if the server sent none or an invalid one.
    pub code: Option<SqlState>,
    /// Primary message (`M`).
    pub message: String,
    /// Detail (`D`).
    pub detail: Option<String>,
    /// Hint (`H`).
    pub hint: Option<String>,
    /// Cursor position (`P`).
    pub position: Option<String>,
    /// Internal position (`p`).
    pub internal_position: Option<String>,
    /// Internal query (`q`).
    pub internal_query: Option<String>,
    /// Context (`W`).
    pub where_: Option<String>,
    /// Schema name (`s`).
    pub schema: Option<String>,
    /// Table name (`t`).
    pub table: Option<String>,
    /// Column name (`c`).
    pub column: Option<String>,
    /// Data type name (`d`).
    pub datatype: Option<String>,
    /// Constraint name (`n`).
    pub constraint: Option<String>,
    /// Source file (`F`).
    pub file: Option<String>,
    /// Source line (`L`).
    pub line: Option<String>,
    /// Source routine (`R`).
    pub routine: Option<String>,
}

impl ServerError {
    /// Whether the server will close the connection after this error (FATAL or PANIC).
    pub fn is_fatal(&self) -> bool {
        let sev = self
            .severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity);
        sev == "FATAL" || sev == "PANIC"
    }

    /// The SQLSTATE code as a string, or `"?????"` when none was sent.
    pub fn code_str(&self) -> &str {
        self.code.as_ref().map(SqlState::code).unwrap_or("?????")
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = self
            .severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity);
        write!(f, "{sev} {}: {}", self.code_str(), self.message)?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    /// What an operator should do about this error, when pgcdc knows better than the
    /// server's own hint (which is often absent for the errors a CDC client meets).
    pub fn advice(&self) -> Option<&'static str> {
        let code = self.code?;
        let msg = self.message.as_str();
        Some(match code {
            SqlState::INVALID_PASSWORD => {
                "check the user name and password (the `password` setting, the URL or PGPASSWORD)"
            }
            SqlState::INVALID_AUTHORIZATION => {
                "pg_hba.conf has no entry that admits this user, database and address; add one (scram-sha-256) and reload the server"
            }
            SqlState::INSUFFICIENT_PRIVILEGE
                if msg.contains("walsender") || msg.contains("replication") =>
            {
                "the user needs the REPLICATION attribute: ALTER ROLE <user> REPLICATION (or connect as a superuser)"
            }
            SqlState::INSUFFICIENT_PRIVILEGE => {
                "grant the user the privilege named in the message (for example SELECT on the published tables)"
            }
            SqlState::INVALID_CATALOG_NAME => {
                "the database does not exist: check the `database` setting or create it"
            }
            SqlState::TOO_MANY_CONNECTIONS => {
                "the server has no free connection or WAL sender slot: raise max_connections / max_wal_senders or close idle connections"
            }
            SqlState::OBJECT_IN_USE => {
                "another client is using the replication slot: stop it, or give this source its own slot_name"
            }
            _ => return None,
        })
    }
}

fn frame_limit_hint(before_authentication: bool) -> &'static str {
    if before_authentication {
        " before authentication completed; no PostgreSQL server sends that much then, so check \
         that host and port lead to the intended server"
    } else {
        "; if this is legitimate, raise max_frame_len in the source configuration \
         (PostgresSourceConfig::max_frame_len, or the builder's with_max_frame_len; at most 1 GiB)"
    }
}

/// The byte stream from the server broke the protocol. The connection cannot continue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame announced a length above the configured maximum (or, before authentication,
    /// above [`MAX_STARTUP_FRAME_LEN`](crate::wire::MAX_STARTUP_FRAME_LEN)).
    #[error(
        "server message of type {kind:?} announces {len} bytes, above the maximum frame size of {max} bytes{}",
        frame_limit_hint(*before_authentication)
    )]
    FrameTooLarge {
        /// The message type byte.
        kind: char,
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
        /// Whether the limit was the one before authentication completes.
        before_authentication: bool,
    },
    /// A frame announced a length below 4 (the length field itself).
    #[error("server message of type {kind:?} has an invalid length {len}")]
    InvalidLength {
        /// The message type byte.
        kind: char,
        /// The announced length.
        len: i64,
    },
    /// A message type that is not valid at this point (lost synchronisation).
    #[error("unexpected server message type {kind:?} ({context})")]
    UnexpectedMessage {
        /// The message type byte.
        kind: char,
        /// Where it arrived.
        context: &'static str,
    },
    /// A message whose body does not match its layout.
    #[error("malformed {message} message: {reason}")]
    Malformed {
        /// The message name.
        message: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The server sent bytes after its one-byte answer to SSLRequest, before TLS started
    /// (a buffer-stuffing attempt, CVE-2021-23222).
    #[error("server sent unencrypted data after accepting TLS; refusing the connection")]
    DataAfterSslResponse,
    /// The server answered SSLRequest with something other than `S` or `N`.
    #[error("server answered the TLS request with an unexpected byte {0:#04x}")]
    InvalidSslResponse(u8),
}
