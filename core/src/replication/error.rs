//! The error of a replication session.

use crate::assemble::AssembleError;
use crate::connection::ConnectionError;
use crate::error::{ServerError, SqlState};
use crate::lsn::Lsn;

use super::catalog::{quote_ident_lossy, quote_table_list};
use super::reconnect::{Disposition, classify_session};

/// Why a replication session attempt failed.
///
/// After any of these the attempt is over: the driver drops the connection, calls
/// [`ReplicationSession::detach`](super::ReplicationSession::detach), and either reconnects
/// ([`is_retryable`](Self::is_retryable), see [`Reconnector`](super::Reconnector)) or stops
/// with the error, whose text says what happened and what to do.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The connection failed (closed, timed out, a FATAL server error, a protocol violation).
    #[error("replication connection failed: {0}")]
    Connection(#[from] ConnectionError),
    /// The server rejected a command or query of the session.
    #[error("the server rejected a replication command: {0}{hint}", hint = server_hint(.0))]
    Server(Box<ServerError>),
    /// `wal_level` is not `logical`.
    #[error(
        "the server runs with wal_level = {actual}, but logical replication needs \
         wal_level = logical: run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL"
    )]
    WalLevel {
        /// The server's `wal_level`.
        actual: String,
    },
    /// The publication does not exist (and creating it was not enabled).
    #[error(
        "publication {} does not exist: create it with CREATE PUBLICATION {} FOR TABLE \
         <tables>; (or FOR ALL TABLES), or enable create_publication",
        quote_ident_lossy(name),
        quote_ident_lossy(name)
    )]
    PublicationMissing {
        /// The publication name.
        name: String,
    },
    /// Configured tables are not part of the publication.
    #[error(
        "table(s) {} are not in publication {}: run ALTER PUBLICATION {} ADD TABLE {};",
        tables.join(", "), quote_ident_lossy(publication), quote_ident_lossy(publication),
        quote_table_list(tables)
    )]
    TablesNotInPublication {
        /// The publication name.
        publication: String,
        /// The missing tables, as `schema.table`.
        tables: Vec<String>,
    },
    /// Configured tables do not exist in the database.
    #[error(
        "table(s) {} do not exist in this database: create them, or fix the configured \
         table names (\"table\" means public.table; use \"schema.table\" otherwise, names are \
         case-sensitive)",
        tables.join(", ")
    )]
    TableMissing {
        /// The missing tables, as `schema.table`.
        tables: Vec<String>,
    },
    /// The replication slot does not exist and creating it was not enabled.
    #[error(
        "replication slot {} does not exist: enable create_slot, or create it with \
         SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput');",
        quote_ident_lossy(slot)
    )]
    SlotMissing {
        /// The slot name.
        slot: String,
    },
    /// The slot existed and was streamed from, and is gone now. Recreating it would start
    /// after the changes made in between, so they would be lost: the source stops instead.
    #[error(
        "replication slot {} disappeared after streaming from it (last delivered position \
         {delivered}): most likely the server failed over to one without the slot, or the slot \
         was dropped or invalidated. Recreating it would skip every change made since, so \
         pgcdc will not do it. To recover: create the slot again and bootstrap again (a fresh \
         snapshot), or point the source at the server that has the slot",
        quote_ident_lossy(slot)
    )]
    SlotLost {
        /// The slot name.
        slot: String,
        /// The end LSN of the last transaction delivered from it.
        delivered: Lsn,
    },
    /// The server invalidated the slot (PostgreSQL 13+: `wal_status = lost`, e.g. past
    /// `max_slot_wal_keep_size`; 17+: `invalidation_reason`): the WAL after its position is
    /// gone, so it can never stream again.
    #[error(
        "replication slot {} was invalidated by the server ({reason}): the WAL it still needed \
         was removed (for example because it fell more than max_slot_wal_keep_size behind), so \
         the changes after its confirmed position {} cannot be streamed any more and are lost \
         to it. To recover: drop the slot (SELECT pg_drop_replication_slot('{slot}');), create \
         it again and bootstrap again (a fresh snapshot); to prevent it, raise \
         max_slot_wal_keep_size or keep the consumer from falling that far behind",
        quote_ident_lossy(slot),
        confirmed.map_or_else(|| "(unknown)".to_owned(), |l| l.to_string())
    )]
    SlotInvalidated {
        /// The slot name.
        slot: String,
        /// The server's reason (`wal_status lost`, `wal_removed`, `rows_removed`, …).
        reason: String,
        /// The slot's confirmed position, after which changes are lost.
        confirmed: Option<Lsn>,
    },
    /// The slot uses another output plugin.
    #[error(
        "replication slot {} uses output plugin {plugin:?}, but pgcdc needs pgoutput: \
         configure another slot name, or drop the slot (SELECT pg_drop_replication_slot('{slot}');) \
         if nothing else uses it",
        quote_ident_lossy(slot)
    )]
    SlotWrongPlugin {
        /// The slot name.
        slot: String,
        /// Its plugin.
        plugin: String,
    },
    /// The slot belongs to another database.
    #[error(
        "replication slot {} was created in database {database:?}, not in {expected:?} \
         where pgcdc is connected: configure another slot name, or connect to {database:?}",
        quote_ident_lossy(slot)
    )]
    SlotWrongDatabase {
        /// The slot name.
        slot: String,
        /// The slot's database.
        database: String,
        /// The database of the connection.
        expected: String,
    },
    /// The slot is not a logical slot.
    #[error(
        "replication slot {} is a {slot_type} slot, but logical replication needs a logical \
         slot: configure another slot name",
        quote_ident_lossy(slot)
    )]
    SlotWrongType {
        /// The slot name.
        slot: String,
        /// Its type (`physical`).
        slot_type: String,
    },
    /// Another process holds the slot (SQLSTATE 55006). Retryable: the previous walsender
    /// may still hold it for up to `wal_sender_timeout` after a broken connection.
    #[error(
        "replication slot {} is in use by {}; retrying (a previous connection's walsender \
         releases it within wal_sender_timeout). If another consumer uses this slot, \
         configure a different slot name",
        quote_ident_lossy(slot),
        pid.map_or_else(|| "another process".to_owned(), |p| format!("the process with PID {p}"))
    )]
    SlotActive {
        /// The slot name.
        slot: String,
        /// The PID holding it, when known.
        pid: Option<i32>,
    },
    /// The slot is a failover slot synchronized onto this standby from its primary
    /// (PostgreSQL 17+): it cannot be streamed from until the standby is promoted.
    #[error(
        "replication slot {} on this server is a synchronized copy of the primary's failover slot \
         (synced = true): stream from the primary, or from this server once it is promoted (the \
         slot then continues where the primary's left off)",
        quote_ident_lossy(slot)
    )]
    SlotSynced {
        /// The slot name.
        slot: String,
    },
    /// Another consumer holds the slot and `slot_in_use = fail`.
    #[error(
        "replication slot {} is in use by {}, and slot_in_use = fail: stop the other consumer, \
         use another slot, or set slot_in_use = wait to stand by until the slot is free",
        quote_ident_lossy(slot),
        pid.map_or_else(|| "another process".to_owned(), |p| format!("the process with PID {p}"))
    )]
    SlotBusy {
        /// The slot name.
        slot: String,
        /// The PID holding it, when known.
        pid: Option<i32>,
    },
    /// This source streamed from the slot, and another consumer took it over (it holds the
    /// slot, or moved its position past what this source acknowledged). Taking it back would
    /// deliver transactions the other one delivers too: the source ends instead.
    #[error(
        "replication slot {} was taken over by another consumer ({}) after this source \
         streamed from it: this source stops rather than deliver the same transactions \
         in turns with it. Run one consumer per slot (a second one stands by with \
         slot_in_use = wait and takes over only a free slot)",
        quote_ident_lossy(slot),
        detail
    )]
    SlotTakenOver {
        /// The slot name.
        slot: String,
        /// What showed it (the holder's PID, or the slot's position against ours).
        detail: String,
    },
    /// The server is a different cluster than on the first connection.
    #[error(
        "the server's system identifier changed from {expected} to {found}: this is a \
         different PostgreSQL cluster (a restored backup or a failover to a non-replica), so \
         the slot position cannot be trusted; restart the source deliberately (and re-snapshot \
         if needed)"
    )]
    SystemIdentifierChanged {
        /// The identifier of the first connection.
        expected: u64,
        /// The identifier now.
        found: u64,
    },
    /// An option needs a newer server or protocol.
    #[error(
        "option {option} requires {requires}, but the server runs PostgreSQL {}: disable the \
         option or upgrade the server",
        version_string(*server_version)
    )]
    UnsupportedOption {
        /// The option (with its value).
        option: String,
        /// What it needs.
        requires: &'static str,
        /// The server's `server_version_num`.
        server_version: u32,
    },
    /// An option value is invalid (independent of the server).
    #[error("invalid replication option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The server ended the replication stream on its own (it is shutting down, or another
    /// session terminated the walsender). Retryable.
    #[error("the server ended the replication stream (shutting down?); reconnecting")]
    ServerEndedStream,
    /// The change stream could not be assembled. Not retryable: the same WAL would fail the
    /// same way.
    #[error(
        "could not assemble the change stream at or after LSN {lsn}: {source}; this is a \
         server/pgcdc incompatibility or bug — report it with the server version"
    )]
    Assemble {
        /// The pipeline's error.
        source: AssembleError,
        /// The last LSN received before it.
        lsn: Lsn,
    },
    /// The server answered something the session cannot interpret.
    #[error("protocol error in the replication session: {0}")]
    Protocol(String),
    /// The server did not answer in time.
    #[error("the server did not answer within the command timeout while {during}; reconnecting")]
    Timeout {
        /// What was being waited for.
        during: &'static str,
    },
    /// The application used the session wrongly.
    #[error("invalid use of the replication session: {0}")]
    Usage(&'static str),
}

impl SessionError {
    /// Whether reconnecting may help (transient network trouble, a slot still held by a
    /// previous walsender, a server restart). See
    /// [`classify`](super::classify) for the full table.
    pub fn is_retryable(&self) -> bool {
        classify_session(self) == Disposition::Retry
    }

    /// The SQLSTATE of the server error behind this, or the SQLSTATE PostgreSQL uses for the
    /// same condition when the session detected it itself.
    pub fn sqlstate(&self) -> Option<SqlState> {
        match self {
            SessionError::Connection(e) => e.server_error().and_then(|s| s.code),
            SessionError::Server(e) => e.code,
            SessionError::WalLevel { .. } => Some(SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE),
            SessionError::PublicationMissing { .. }
            | SessionError::SlotMissing { .. }
            | SessionError::SlotLost { .. } => Some(SqlState::UNDEFINED_OBJECT),
            SessionError::TableMissing { .. } => SqlState::from_code("42P01"),
            SessionError::SlotActive { .. }
            | SessionError::SlotBusy { .. }
            | SessionError::SlotTakenOver { .. } => Some(SqlState::OBJECT_IN_USE),
            SessionError::SlotWrongDatabase { .. }
            | SessionError::SlotWrongType { .. }
            | SessionError::SlotInvalidated { .. }
            | SessionError::SlotSynced { .. } => Some(SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE),
            SessionError::UnsupportedOption { .. } => SqlState::from_code("0A000"),
            _ => None,
        }
    }

    /// The server error behind this, if any.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            SessionError::Connection(e) => e.server_error(),
            SessionError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// What to do about a server error, by SQLSTATE (empty when the server's own text is best).
fn server_hint(e: &ServerError) -> &'static str {
    match e.code_str() {
        "42501" => {
            "; grant the role the REPLICATION attribute (ALTER ROLE <role> REPLICATION;) \
             and the privileges the statement needs"
        }
        "53400" => "; raise max_replication_slots / max_wal_senders, or drop unused slots",
        "58P01" => {
            "; the WAL the slot needs is gone (or the plugin is missing): the slot must be \
             dropped and recreated, and the data re-snapshotted"
        }
        "42704" => "; create the missing object (publication or slot) and restart",
        "55006" => "; another process uses the replication slot",
        _ => "",
    }
}

/// `150018` → `15.18`, `90624` → `9.6.24`.
fn version_string(v: u32) -> String {
    if v >= 100_000 {
        format!("{}.{}", v / 10_000, v % 10_000)
    } else {
        format!("{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_print() {
        assert_eq!(version_string(150018), "15.18");
        assert_eq!(version_string(90624), "9.6.24");
    }
}
