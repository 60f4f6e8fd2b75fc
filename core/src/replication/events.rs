//! What a replication session reports: its phase, events and statistics.

use crate::assemble::TransactionBatch;
use crate::error::ServerError;
use crate::lsn::Lsn;
use crate::model::LogicalMessage;

#[cfg(doc)]
use super::ReplicationSession;

/// Where a [`ReplicationSession`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// No connection attached (before the first attach, or after [`detach`]).
    ///
    /// [`detach`]: ReplicationSession::detach
    Detached,
    /// IDENTIFY_SYSTEM and the catalog checks (settings, tables, publication, keys, slot).
    Checking,
    /// CREATE_REPLICATION_SLOT is running; it waits for every running transaction to end.
    CreatingSlot,
    /// The slot was created with an exported snapshot; nothing is sent until
    /// [`release_snapshot`](ReplicationSession::release_snapshot).
    SnapshotHeld,
    /// START_REPLICATION was sent.
    StartingStream,
    /// Changes are flowing.
    Streaming,
    /// [`stop`](ReplicationSession::stop) sent CopyDone; waiting for the server to finish.
    Stopping,
    /// Stopped cleanly (or the stop timed out); [`SessionEvent::Stopped`] was emitted.
    Stopped,
}

/// What the session reports to the driver.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// IDENTIFY_SYSTEM answered (every attempt).
    Identified {
        /// The cluster's system identifier.
        system_id: u64,
        /// The server's timeline.
        timeline: u64,
        /// The server's current WAL flush position.
        xlogpos: Lsn,
        /// `server_version_num` of the server.
        server_version_num: u32,
    },
    /// The session created the replication slot.
    SlotCreated {
        /// The slot name.
        slot_name: String,
        /// Where the slot starts: its first `confirmed_flush`.
        consistent_point: Lsn,
        /// The exported snapshot, when `export_snapshot` is on.
        snapshot_name: Option<String>,
        /// A temporary slot: it ends with the connection. A bootstrap's snapshot comes from
        /// a temporary slot; the permanent one is created (another `SlotCreated`) once the
        /// bootstrap is complete.
        temporary: bool,
    },
    /// `export_snapshot`: the slot was just created with an exported snapshot. Import it
    /// (`SET TRANSACTION SNAPSHOT '<name>'` in a `REPEATABLE READ` transaction on another
    /// connection) and copy the tables, then call
    /// [`release_snapshot`](ReplicationSession::release_snapshot): streaming starts at
    /// `consistent_point`, so every row is in the snapshot or the stream, exactly once. The
    /// session sends nothing on this connection meanwhile (the snapshot lives only until the
    /// next command on it).
    SnapshotHeld {
        /// The snapshot name.
        snapshot_name: String,
        /// The LSN the stream starts at.
        consistent_point: Lsn,
    },
    /// `export_snapshot` was asked for, but the slot already exists and
    /// `snapshot_existing_slot` is off: no snapshot is taken (the bootstrap happened when the
    /// slot was created) and streaming resumes from the slot.
    SnapshotSkipped {
        /// The slot's confirmed position.
        slot_confirmed_lsn: Option<Lsn>,
    },
    /// The server accepted START_REPLICATION.
    StreamingStarted {
        /// The start LSN sent (`0/0`: the slot's confirmed position).
        requested_lsn: Lsn,
        /// The slot's `confirmed_flush_lsn` (or consistent point) just before.
        slot_confirmed_lsn: Option<Lsn>,
        /// The pgoutput protocol version in use.
        proto_version: u32,
    },
    /// The slot is already past the non-zero start position asked for: the changes in
    /// between will never arrive (the slot was recreated, advanced by someone else, or a
    /// temporary slot was lost). Log it and expose it.
    ResumeGap {
        /// The start LSN asked for.
        requested: Lsn,
        /// Where the server starts instead.
        server_start: Lsn,
    },
    /// The delivery position was reset to the slot's: the server's history changed under
    /// it (a timeline switch, or a server whose WAL ends before the resume position). The
    /// stream starts again at the slot's confirmed position and nothing is dropped as
    /// already delivered, so changes between the two positions may arrive again (or, on
    /// the new history, for the first time). Log it and expose it.
    PositionReset {
        /// The resume position before the reset.
        previous: Lsn,
        /// The slot's confirmed position, where streaming starts now.
        slot_position: Option<Lsn>,
        /// What happened.
        reason: String,
    },
    /// A transaction, or one chunk of a large one. Acknowledge `batch.ack_lsn()` with
    /// [`ack`](ReplicationSession::ack) once processed.
    Transaction(TransactionBatch),
    /// A non-transactional logical message.
    Message(LogicalMessage),
    /// Something the operator should know; processing continues.
    Warning(String),
    /// A NoticeResponse (or WARNING) from the server (boxed: it is large and rare).
    Notice(Box<ServerError>),
    /// [`stop`](ReplicationSession::stop) finished.
    Stopped,
}

/// Counters and positions of a [`ReplicationSession`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// The highest XLogData position received.
    pub received_lsn: Lsn,
    /// The highest transaction end the application acknowledged.
    pub acked_lsn: Lsn,
    /// The flush LSN last sent to the server.
    pub flush_lsn: Lsn,
    /// The server's WAL position, from keepalives and XLogData.
    pub server_wal_end: Lsn,
    /// `server_wal_end - flush_lsn`: WAL the slot still holds because of this client.
    pub lag_bytes: u64,
    /// Bytes consumed from the socket.
    pub bytes_received: u64,
    /// XLogData messages.
    pub xlog_messages: u64,
    /// Primary keepalives.
    pub keepalives: u64,
    /// Standby status updates sent.
    pub status_updates_sent: u64,
    /// Whole transactions delivered (last chunks).
    pub transactions: u64,
    /// Changes delivered (a non-transactional logical message counts as one).
    pub changes: u64,
    /// Transactions and chunks dropped as already delivered before a reconnect.
    pub duplicates_dropped: u64,
    /// Attempts (attach calls).
    pub attempts: u32,
}
