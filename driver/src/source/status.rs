//! The source's observable state and counters.

use std::time::SystemTime;

use pgcdc_core::Lsn;

/// Where the source is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceState {
    /// Not started, or stopped cleanly.
    Stopped,
    /// Connecting, checking the configuration against the server, preparing the slot.
    Starting,
    /// Copying the initial snapshot.
    Bootstrapping,
    /// Streaming changes.
    Running,
    /// The connection failed with a transient error; the next attempt is scheduled.
    Reconnecting {
        /// Failed attempts in a row.
        attempt: u32,
        /// Milliseconds until the next attempt (as of the failure).
        delay_ms: u64,
    },
    /// Another consumer holds the slot and this source has not streamed from it yet
    /// (`slot_in_use = wait`): it takes the slot over once it is free.
    Standby {
        /// Attempts so far.
        attempt: u32,
        /// The PID of the walsender holding the slot, when known.
        holder_pid: Option<i32>,
    },
    /// Stopping: final status update and clean close in progress.
    Stopping,
    /// Ended by a fatal error (or after too many failed attempts); the message says what to do.
    Failed(String),
}

/// A snapshot of the source's state and counters ([`Source::status`](super::Source::status)).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SourceStatus {
    /// Where the source is.
    pub state: SourceState,
    /// The highest WAL position received from the server.
    pub last_received_lsn: Lsn,
    /// The end LSN of the last transaction delivered to subscribers.
    pub last_delivered_lsn: Lsn,
    /// The highest transaction end LSN acknowledged by the application.
    pub acked_lsn: Lsn,
    /// The flush position last reported to PostgreSQL (what the slot may free up to).
    pub flush_lsn: Lsn,
    /// The server's WAL end, as of its last message.
    pub server_wal_end: Lsn,
    /// `server_wal_end - flush_lsn`: WAL the slot still retains because of this source.
    pub lag_bytes: u64,
    /// Changes delivered.
    pub changes: u64,
    /// Transactions delivered (counted at their last chunk).
    pub transactions: u64,
    /// Bytes received from the replication connection.
    pub bytes_received: u64,
    /// Connections lost and re-established (or attempted).
    pub reconnects: u64,
    /// Number of subscribers.
    pub subscribers: usize,
    /// The most memory (bytes, estimated) queued for one subscriber and not received yet;
    /// bounded by `dispatch_buffer_bytes` (plus one batch).
    pub queued_bytes: usize,
    /// The memory (bytes, estimated) the changes of streamed and prepared transactions
    /// waiting for their commit take; bounded by `spill_threshold_bytes`.
    pub held_bytes: usize,
    /// The peak of `held_bytes` since the source started.
    pub peak_held_bytes: usize,
    /// Bytes of held transactions written to spill files since the source started.
    pub spilled_bytes: u64,
    /// The last error, transient or fatal.
    pub last_error: Option<String>,
    /// Set when PostgreSQL started streaming later than the position asked for: the changes
    /// in between were confirmed earlier and will not arrive (`(requested, server_start)`).
    pub resume_gap: Option<(Lsn, Lsn)>,
    /// When the last change was delivered.
    pub last_change_at: Option<SystemTime>,
    /// The commit time of the last transaction delivered: how far behind the source is, in
    /// time.
    pub last_commit_time: Option<SystemTime>,
    /// The WAL the slot retains (bytes behind the server's position), as of the last slot
    /// check (`slot_check_interval_ms`).
    pub retained_wal_bytes: Option<u64>,
    /// The slot's `wal_status` as of the last check (PostgreSQL 13+).
    pub wal_status: Option<String>,
    /// Set while the slot retains more than `slot_lag_warn_bytes` or is `unreserved`.
    pub slot_warning: Option<String>,
    /// The bootstrap's progress, when one ran (or was skipped) in this start.
    pub bootstrap: Option<super::bootstrap::BootstrapProgress>,
}

impl Default for SourceStatus {
    fn default() -> Self {
        SourceStatus {
            state: SourceState::Stopped,
            last_received_lsn: Lsn(0),
            last_delivered_lsn: Lsn(0),
            acked_lsn: Lsn(0),
            flush_lsn: Lsn(0),
            server_wal_end: Lsn(0),
            lag_bytes: 0,
            changes: 0,
            transactions: 0,
            bytes_received: 0,
            reconnects: 0,
            subscribers: 0,
            queued_bytes: 0,
            held_bytes: 0,
            peak_held_bytes: 0,
            spilled_bytes: 0,
            last_error: None,
            resume_gap: None,
            last_change_at: None,
            last_commit_time: None,
            retained_wal_bytes: None,
            wal_status: None,
            slot_warning: None,
            bootstrap: None,
        }
    }
}
