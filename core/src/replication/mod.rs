//! The logical replication session: catalog checks, slot, START_REPLICATION with options
//! chosen by server version, XLogData and keepalives, standby status updates with
//! acknowledgement tracking, and the reconnect policy. Pure sans-IO.
//!
//! # Run loop
//!
//! A [`ReplicationSession`] lives as long as the source; connections come and go. For each
//! attempt the driver opens a socket, runs a [`Connection`](crate::connection::Connection)
//! (opened with `replication=database`) until [`ConnectionEvent::Ready`](crate::connection::ConnectionEvent::Ready),
//! then [`attach`](ReplicationSession::attach)es it and loops:
//!
//! 1. write out everything [`poll_transmit`](ReplicationSession::poll_transmit) yields;
//! 2. handle every [`poll_event`](ReplicationSession::poll_event): offer each
//!    [`Transaction`](SessionEvent::Transaction) and [`Message`](SessionEvent::Message) to
//!    the application and report it [`handed`](ReplicationSession::handed) once a
//!    subscriber queue accepted it, in order; acknowledge processed transactions with
//!    [`ack`](ReplicationSession::ack);
//! 3. wait for socket input (only while the consumer has room) or
//!    [`poll_timeout`](ReplicationSession::poll_timeout), then call
//!    [`handle_input`](ReplicationSession::handle_input),
//!    [`handle_eof`](ReplicationSession::handle_eof) or
//!    [`handle_timeout`](ReplicationSession::handle_timeout) — the timer keeps status updates
//!    going while the socket is not read.
//!
//! On an error it drops the socket, calls [`detach`](ReplicationSession::detach) and asks a
//! [`Reconnector`] whether and when to attach a new connection.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::TcpStream;
//! use std::time::{Instant, SystemTime};
//! use bytes::BytesMut;
//! use pgcdc_core::assemble::{Pipeline, PipelineConfig};
//! use pgcdc_core::connection::{Connection, ConnectionEvent};
//! use pgcdc_core::replication::{
//!     ReplicationOptions, ReplicationSession, SessionError, SessionEvent,
//! };
//! use pgcdc_core::startup::ConnectParams;
//! use pgcdc_core::SslMode;
//!
//! fn pump(session: &mut ReplicationSession, sock: &mut TcpStream) -> Result<(), SessionError> {
//!     let mut out = BytesMut::new();
//!     let mut input = BytesMut::new();
//!     let mut chunk = [0u8; 64 * 1024];
//!     loop {
//!         while session.poll_transmit(&mut out) {}
//!         sock.write_all(&out).map_err(|_| session.handle_eof())?;
//!         out.clear();
//!         while let Some(event) = session.poll_event() {
//!             match event {
//!                 SessionEvent::Transaction(batch) => {
//!                     // … hand the batch to the application; once it took it:
//!                     session.handed()?;
//!                     // … and once it is processed:
//!                     if let Some(lsn) = batch.ack_lsn() {
//!                         session.ack(lsn);
//!                     }
//!                 }
//!                 SessionEvent::Stopped => return Ok(()),
//!                 other => eprintln!("{other:?}"),
//!             }
//!         }
//!         let timeout = session.poll_timeout().map(|t| t.saturating_duration_since(Instant::now()));
//!         sock.set_read_timeout(timeout.map(|t| t.max(std::time::Duration::from_millis(1)))).ok();
//!         match sock.read(&mut chunk) {
//!             Ok(0) => return Err(session.handle_eof()),
//!             Ok(n) => {
//!                 input.extend_from_slice(&chunk[..n]);
//!                 session.handle_input(&mut input, Instant::now())?;
//!             }
//!             Err(_) => session.handle_timeout(Instant::now())?, // timed out
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut session = ReplicationSession::new(
//!     ReplicationOptions { tables: vec!["users".into()], ..ReplicationOptions::default() },
//!     Pipeline::new("pg-source", PipelineConfig::default()),
//!     Box::new(SystemTime::now),
//! );
//! // Per attempt: connect, run the Connection to Ready (see `connection`), then attach.
//! let mut sock = TcpStream::connect("localhost:5432")?;
//! let params = ConnectParams::new("cdc").database("app").replication(true).ssl_mode(SslMode::Disable);
//! let conn = Connection::new(params, [7; 18], Instant::now())?;
//! // … drive `conn` until ConnectionEvent::Ready …
//! session.attach(conn, Instant::now())?;
//! if let Err(e) = pump(&mut session, &mut sock) {
//!     session.detach();
//!     eprintln!("{e} (retryable: {})", e.is_retryable());
//! }
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! * **Delivery accounting.** A batch counts as delivered only once the driver reports it
//!   [`handed`](ReplicationSession::handed) — a subscriber queue accepted it. The resume
//!   position, the reconnect dedupe, what an acknowledgement may confirm and the idle flush
//!   all follow the handed batches; what was emitted and not handed when the connection
//!   broke is sent again by the server. The invariant, held by a property test over random
//!   fault points (`tests/handoff.rs`): *flush ≤ acknowledged ≤ handed ≤ received* (the idle
//!   flush may pass the acknowledged position only when nothing handed is unacknowledged and
//!   nothing emitted is outstanding), and the resume position never passes a batch that was
//!   emitted and not handed.
//! * **Failover safety.** Once streaming from a permanent slot has begun, a slot that is
//!   gone is [`SlotLost`](SessionError::SlotLost), fatal: recreating it would skip the
//!   changes in between. A timeline change, or a server whose WAL ends below the resume
//!   position, resets the delivery position to the slot's
//!   ([`PositionReset`](SessionEvent::PositionReset)), so nothing on the new history is
//!   dropped as a duplicate.
//! * **Bootstrap that cannot be skipped.** With `export_snapshot` on PostgreSQL 12+ (and
//!   without two-phase), the snapshot is exported from a temporary slot; the permanent slot
//!   is copied from it (`pg_copy_logical_replication_slot`, same positions) only at
//!   [`release_snapshot`](ReplicationSession::release_snapshot), after the copy. A bootstrap
//!   cut short leaves no slot, so the next start bootstraps again.
//!
//! * **Setup checks** with clear, actionable errors: `wal_level = logical`, the publication
//!   (created when `create_publication`), the configured tables exist and are published, the
//!   slot (created when missing, or [`SlotMissing`](SessionError::SlotMissing)) is a
//!   logical pgoutput slot of this database and not in use
//!   ([`SlotActive`](SessionError::SlotActive) is retryable). Primary keys are read from the
//!   catalog and given to the pipeline for element ids.
//! * **User-defined types** (unless
//!   [`load_user_types`](ReplicationOptions::load_user_types) is off) are read from
//!   `pg_type` and `pg_range` ([`user_types_query`]) into the pipeline's
//!   [`TypeRegistry`](crate::value::TypeRegistry) ([`load_user_types`]), so values of enums,
//!   domains, user ranges and multiranges, and arrays of them, decode to typed values — a
//!   pgoutput Type message alone carries only a name. A failure of this step is a
//!   [`Warning`](SessionEvent::Warning), not an error.
//! * **Options by server version**: protocol 4/3/2/1 for PostgreSQL 16/15/14/older; `messages`
//!   from 14; `streaming`, `binary`, `two_phase`, `origin` only where supported, otherwise
//!   [`UnsupportedOption`](SessionError::UnsupportedOption) before anything is sent.
//! * **Flush LSN** (write = highest received; flush = apply): the end LSN of the highest
//!   acknowledged transaction — never inside one (acknowledging a non-last chunk or a commit
//!   LSN moves nothing), never past what was received, never past the oldest held prepared
//!   transaction, never backwards. When everything delivered is acknowledged and nothing is
//!   open, it follows the keepalive `wal_end` so an idle publication never pins WAL.
//! * **Status updates**: every `status_interval` (at most a third of the server's
//!   `wal_sender_timeout`), at once when a keepalive requests a reply, and
//!   [`ACK_UPDATE_DELAY`] after an acknowledgement (or an idle keepalive) moved the flush.
//! * **Reconnects inside one process** resume at the end LSN of the last transaction
//!   delivered, so nothing is lost or repeated; re-sent transactions are dropped, and a
//!   transaction cut off after some of its chunks continues after the last change delivered
//!   (see below). After a process restart, `start_lsn` (the application's
//!   stored position) or the slot's confirmed position is used, and
//!   [`ResumeGap`](SessionEvent::ResumeGap) reports a slot already past a requested start.
//! * **Clean stop**: final status update, CopyDone, the server's end of copy and
//!   ReadyForQuery (bounded by `stop_timeout`), Terminate, [`SessionEvent::Stopped`].
//!
//! ## The chunk dedupe
//!
//! A transaction re-sent after a reconnect is matched by xid and commit LSN; the data changes
//! delivered before the break are cut from the front of the replay, whatever its chunk
//! boundaries (a relation whose schema changed inside the broken transaction gives a
//! schema-change entry in one pass and not the other). Replayed chunks are never
//! `first_chunk` and may repeat a `chunk_index`. Non-transactional logical messages are
//! deduplicated by their LSN (the server sends one again after a resume before it).

mod catalog;
pub(crate) use catalog::quote_ident_lossy;
mod error;
mod events;
mod feedback;
mod options;
mod reconnect;
mod session;
mod steps;
mod stream;

#[cfg(test)]
mod tests;

pub use catalog::{
    TableName, USER_TYPE_COLUMNS, USER_TYPES_LIMIT, drop_slot_sql, load_user_types, quote_ident,
    quote_literal, user_types_query,
};
pub use error::SessionError;
pub use events::{Phase, SessionEvent, SessionStats};
pub use options::ReplicationOptions;
pub use reconnect::{
    Decision, Disposition, Failure, ReconnectPolicy, Reconnector, classify, classify_sqlstate,
};
pub use session::{
    ACK_UPDATE_DELAY, CATCH_UP_LAG, COALESCE_READ_BYTES, READ_PAUSE, ReplicationSession,
};

/// How much WAL a slot holds back, read on an ordinary connection
/// ([`SlotHealth::query`]) by a driver's periodic check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotHealth {
    /// Bytes of WAL between the slot's `restart_lsn` and the server's current position.
    pub retained_bytes: Option<u64>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
}

impl SlotHealth {
    /// The query for `slot` on a server of `server_version` (`wal_status` from 13).
    ///
    /// # Errors
    ///
    /// The slot name cannot be quoted (a NUL byte).
    pub fn query(slot: &str, server_version: u32) -> Result<String, SessionError> {
        let status = if server_version >= 130_000 {
            "wal_status"
        } else {
            "NULL::text AS wal_status"
        };
        Ok(format!(
            "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint \
             AS retained, {status} FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
            catalog::quote_literal(slot)?
        ))
    }

    /// Reads the query's result (`None`: the slot does not exist).
    pub fn parse(r: &crate::query::QueryResult) -> Option<SlotHealth> {
        if r.rows.is_empty() {
            return None;
        }
        let text = |c| r.text(0, c).ok().flatten();
        Some(SlotHealth {
            retained_bytes: text("retained")
                .and_then(|t| t.parse::<i64>().ok())
                .map(|b| b.max(0) as u64),
            wal_status: text("wal_status").map(str::to_owned),
        })
    }

    /// What to warn about, given the threshold of retained bytes (`0`: none): the retained
    /// WAL past it, or a slot whose WAL the server no longer guarantees (`unreserved`).
    pub fn warning(&self, slot: &str, warn_bytes: u64) -> Option<String> {
        if self.wal_status.as_deref() == Some("unreserved") {
            return Some(format!(
                "replication slot {slot} is past max_slot_wal_keep_size (wal_status unreserved): \
                 the server will invalidate it at the next checkpoint unless the consumer catches up"
            ));
        }
        match self.retained_bytes {
            Some(b) if warn_bytes > 0 && b > warn_bytes => Some(format!(
                "replication slot {slot} retains {b} bytes of WAL, more than slot_lag_warn_bytes \
                 ({warn_bytes}): the consumer is behind, or acknowledges too little"
            )),
            _ => None,
        }
    }
}
