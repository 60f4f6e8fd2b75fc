//! The replication session state machine: its type, events, getters and run-loop methods.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use crate::assemble::Pipeline;
use crate::commands::IdentifySystem;
use crate::connection::{Connection, ConnectionError, ConnectionEvent, State};
use crate::lsn::Lsn;
use crate::model::PG_EPOCH_UNIX_MICROS;
use crate::pgoutput::StandbyStatusUpdate;

use super::catalog::TableName;
use super::feedback::{Dedupe, Feedback, Handed};
use super::{Phase, ReplicationOptions, SessionError, SessionEvent, SessionStats};

/// The shortest spacing between a status update and one triggered by an acknowledgement (or
/// by an idle keepalive) that moved the flush LSN.
pub const ACK_UPDATE_DELAY: Duration = Duration::from_millis(100);

/// A transaction that committed this long before the server sent it is part of a backlog
/// (see [`ReplicationSession::read_pause`]).
pub const CATCH_UP_LAG: Duration = Duration::from_millis(20);

/// The wait between reads while the server sends a backlog.
pub const READ_PAUSE: Duration = Duration::from_millis(1);

/// A read that brought at least this much is not followed by a pause: the socket had
/// gathered plenty already.
pub const COALESCE_READ_BYTES: usize = 32 * 1024;

/// The command in flight, or what the connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Idle,
    Identify,
    Settings,
    TablesExist,
    Publication,
    CreatePublication,
    PublicationTables,
    PrimaryKeys,
    UserTypes,
    SlotLookup,
    DropSlot,
    CreateSlot,
    CopySlot,
    DropBootstrapSlot,
    StartReplication,
    Streaming,
    Stopping,
}

impl Step {
    pub(super) fn phase(self) -> Phase {
        match self {
            Step::Idle => Phase::Detached,
            Step::CreateSlot => Phase::CreatingSlot,
            Step::StartReplication => Phase::StartingStream,
            Step::Streaming => Phase::Streaming,
            Step::Stopping => Phase::Stopping,
            _ => Phase::Checking,
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Step::Idle => "idle",
            Step::Identify => "running IDENTIFY_SYSTEM",
            Step::Settings => "reading wal_level and wal_sender_timeout",
            Step::TablesExist => "checking that the configured tables exist",
            Step::Publication => "looking up the publication",
            Step::CreatePublication => "creating the publication",
            Step::PublicationTables => "checking the publication's tables",
            Step::PrimaryKeys => "reading primary keys",
            Step::UserTypes => "reading user-defined types",
            Step::SlotLookup => "looking up the replication slot",
            Step::DropSlot => "dropping the replication slot",
            Step::CreateSlot => "creating the replication slot",
            Step::CopySlot => "creating the replication slot from the bootstrap's",
            Step::DropBootstrapSlot => "dropping the bootstrap's temporary slot",
            Step::StartReplication => "starting replication",
            Step::Streaming => "streaming",
            Step::Stopping => "stopping",
        }
    }
}

/// What one attempt (one attached connection) has learned and decided.
#[derive(Clone, Debug, Default)]
pub(super) struct Attempt {
    pub(super) proto_version: u32,
    pub(super) start_options: Vec<(&'static str, String)>,
    pub(super) tables: Vec<TableName>,
    pub(super) dbname: Option<String>,
    pub(super) publication_all_tables: bool,
    pub(super) slot_confirmed: Option<Lsn>,
    pub(super) slot_retries: u8,
    /// This attempt creates the slot with an exported snapshot.
    pub(super) export: bool,
    /// The temporary slot the snapshot was exported from: the permanent slot is copied from
    /// it once the bootstrap is complete, so a bootstrap cut short leaves no slot behind.
    pub(super) bootstrap_slot: Option<String>,
    pub(super) held_consistent_point: Option<Lsn>,
    pub(super) requested: Lsn,
    pub(super) command_deadline: Option<Instant>,
    pub(super) streaming_since: Option<Instant>,
    /// Why this attempt starts over from the slot's position (timeline change, server
    /// behind the resume point).
    pub(super) reset_reason: Option<String>,
    /// This connection's backend (walsender) PID.
    pub(super) backend_pid: Option<i32>,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub(super) bytes_received: u64,
    pub(super) xlog_messages: u64,
    pub(super) keepalives: u64,
    pub(super) status_updates_sent: u64,
    pub(super) transactions: u64,
    pub(super) changes: u64,
    pub(super) duplicates_dropped: u64,
    pub(super) attempts: u32,
}

/// An emitted [`SessionEvent::Transaction`] or [`SessionEvent::Message`] that the driver has
/// not yet reported handed over ([`ReplicationSession::handed`]), or a transaction that
/// completed silently behind one.
#[derive(Clone, Copy, Debug)]
pub(super) enum Handoff {
    Batch {
        handed: Handed,
        end: Option<Lsn>,
        /// A delivered two-phase transaction keeps the flush at or below this (the oldest
        /// prepare held when it committed) until acknowledged.
        hold: Option<Lsn>,
        changes: u64,
    },
    Message(Lsn),
    Silent(Lsn),
}

/// A logical replication session over one connection at a time, as a sans-IO state machine.
///
/// It runs the setup (IDENTIFY_SYSTEM, catalog checks, slot, START_REPLICATION), feeds every
/// XLogData to its [`Pipeline`], answers keepalives, sends standby status updates with the
/// acknowledged flush LSN, and survives reconnects: the driver attaches a new connection
/// and the session resumes after the last transaction it delivered. See the
/// [module docs](super) for the run loop and the guarantees.
pub struct ReplicationSession {
    pub(super) options: ReplicationOptions,
    pub(super) pipeline: Pipeline,
    pub(super) wall_clock: Box<dyn FnMut() -> SystemTime + Send>,
    pub(super) conn: Option<Connection>,
    pub(super) phase: Phase,
    pub(super) step: Step,
    pub(super) attempt: Attempt,
    pub(super) events: VecDeque<SessionEvent>,
    pub(super) system_id: Option<u64>,
    pub(super) timeline: Option<u64>,
    pub(super) server_version: Option<u32>,
    pub(super) status_interval: Duration,
    pub(super) next_status_at: Option<Instant>,
    pub(super) feedback: Feedback,
    pub(super) dedupe: Dedupe,
    /// The exported snapshot was released: later attempts never export again.
    pub(super) snapshot_done: bool,
    pub(super) stop_deadline: Option<Instant>,
    /// The oldest held prepare before the XLogData being handled.
    pub(super) prepare_floor: Option<Lsn>,
    pub(super) counters: Counters,
    /// Streaming from the (permanent) slot has begun once: from then on a missing slot is
    /// [`SessionError::SlotLost`], never silently recreated.
    pub(super) streamed_from_slot: bool,
    /// The walsender PID of the last connection that streamed from the slot (it may hold the
    /// slot for a moment after that connection broke).
    pub(super) streaming_pid: Option<i32>,
    /// The slot's confirmed position when streaming from it last began: with the flushes
    /// sent since, the most the slot can have been moved to by this source.
    pub(super) slot_floor: Lsn,
    /// Emitted, not yet handed over, in order.
    pub(super) handoff: VecDeque<Handoff>,
    /// The end of the last transaction emitted or completed silently on this connection.
    pub(super) emitted_end: Lsn,
    /// The server's clock when it sent the last message (microseconds since 2000-01-01).
    pub(super) server_send_time: i64,
    /// Whether the transactions arriving committed well before the server sent them: the
    /// server is sending a backlog (see [`read_pause`](Self::read_pause)).
    pub(super) catching_up: bool,
    /// An error met by deferred work in [`poll_event`](Self::poll_event), reported by the
    /// next call that returns a result.
    pub(super) failed: Option<SessionError>,
    scratch: BytesMut,
}

impl fmt::Debug for ReplicationSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationSession")
            .field("phase", &self.phase)
            .field("step", &self.step)
            .field("options", &self.options)
            .field("system_id", &self.system_id)
            .field("server_version", &self.server_version)
            .field("feedback", &self.feedback)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl ReplicationSession {
    /// A detached session. `pipeline` is the assembler the session feeds; `wall_clock`
    /// returns the current wall-clock time for standby status updates (the core reads no
    /// clock itself).
    pub fn new(
        options: ReplicationOptions,
        pipeline: Pipeline,
        wall_clock: Box<dyn FnMut() -> SystemTime + Send>,
    ) -> Self {
        let status_interval = options.effective_status_interval(None);
        ReplicationSession {
            feedback: Feedback::new(options.start_lsn),
            options,
            pipeline,
            wall_clock,
            conn: None,
            phase: Phase::Detached,
            step: Step::Idle,
            attempt: Attempt::default(),
            events: VecDeque::new(),
            system_id: None,
            timeline: None,
            server_version: None,
            status_interval,
            next_status_at: None,
            dedupe: Dedupe::default(),
            snapshot_done: false,
            stop_deadline: None,
            prepare_floor: None,
            counters: Counters::default(),
            streamed_from_slot: false,
            streaming_pid: None,
            slot_floor: Lsn::ZERO,
            handoff: VecDeque::new(),
            emitted_end: Lsn::ZERO,
            server_send_time: 0,
            catching_up: false,
            failed: None,
            scratch: BytesMut::with_capacity(StandbyStatusUpdate::LEN),
        }
    }

    // ------------------------------------------------------------------------------ getters

    /// Where the session is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Counters and positions.
    pub fn stats(&self) -> SessionStats {
        let flush = self.feedback.flush_sent();
        let server_wal_end = self.feedback.received();
        let c = self.counters;
        SessionStats {
            received_lsn: self.pipeline.last_received_lsn(),
            acked_lsn: self.feedback.acked(),
            flush_lsn: flush,
            server_wal_end,
            lag_bytes: server_wal_end.0.saturating_sub(flush.0),
            bytes_received: c.bytes_received,
            xlog_messages: c.xlog_messages,
            keepalives: c.keepalives,
            status_updates_sent: c.status_updates_sent,
            transactions: c.transactions,
            changes: c.changes,
            duplicates_dropped: c.duplicates_dropped,
            attempts: c.attempts,
        }
    }

    /// `server_version_num` of the server of the last attach.
    pub fn server_version_num(&self) -> Option<u32> {
        self.server_version
    }

    /// The cluster's system identifier, once identified.
    pub fn system_id(&self) -> Option<u64> {
        self.system_id
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The pipeline, to configure it (keys, types).
    pub fn pipeline_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    /// The options.
    pub fn options(&self) -> &ReplicationOptions {
        &self.options
    }

    /// The status interval in use (shortened to a third of the server's
    /// `wal_sender_timeout` once read).
    pub fn status_interval(&self) -> Duration {
        self.status_interval
    }

    /// Where the next attempt will start: the end LSN of the last transaction delivered (or
    /// the start position), `0/0` for the slot's confirmed position.
    pub fn resume_lsn(&self) -> Lsn {
        self.feedback.resume_lsn()
    }

    /// The connection, while attached.
    pub fn connection(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }

    // -------------------------------------------------------------------------------- input

    /// Starts a new attempt on a connection the driver established (in state Ready, after
    /// [`ConnectionEvent::Ready`]; opened with `replication=database`, i.e.
    /// [`ConnectParams::replication(true)`](crate::startup::ConnectParams::replication) and a
    /// database). Resets the pipeline and sends IDENTIFY_SYSTEM.
    ///
    /// Fails, dropping `conn`, when a connection is already attached, the connection is not
    /// a ready logical-replication connection, or an option cannot work on this server.
    pub fn attach(&mut self, conn: Connection, now: Instant) -> Result<(), SessionError> {
        if self.conn.is_some() {
            return Err(SessionError::Usage(
                "attach while a connection is attached: call detach first",
            ));
        }
        if !conn.is_ready() {
            return Err(SessionError::Usage(
                "attach needs a connection in state Ready (after ConnectionEvent::Ready)",
            ));
        }
        if !conn.params().replication || conn.params().database.is_none() {
            return Err(SessionError::Usage(
                "the connection must be opened with replication=database \
                 (ConnectParams::replication(true) and a database)",
            ));
        }
        let version = conn.server_params().server_version_num().ok_or_else(|| {
            SessionError::Protocol("the server did not report server_version".to_owned())
        })?;
        self.options.validate()?;
        let plan = self.options.plan(version)?;
        if self.server_version != Some(version) {
            for w in &plan.warnings {
                self.events.push_back(SessionEvent::Warning(w.clone()));
            }
        }
        let tables = self.options.table_names()?;

        let only: Vec<(String, String)> = tables
            .iter()
            .map(|t| (t.schema_or_public().to_owned(), t.name.clone()))
            .collect();
        self.pipeline
            .set_only_tables((!only.is_empty()).then_some(only));
        self.pipeline.reset();
        self.failed = None;
        self.drain_pipeline();
        self.handoff.clear();
        self.emitted_end = self.feedback.delivered();
        self.dedupe.restart();
        self.counters.attempts = self.counters.attempts.saturating_add(1);
        self.server_version = Some(version);
        self.attempt = Attempt {
            proto_version: plan.proto_version,
            start_options: plan.options,
            tables,
            dbname: conn.params().database.clone(),
            export: self.options.export_snapshot && !self.snapshot_done,
            backend_pid: conn.backend_pid(),
            ..Attempt::default()
        };
        self.stop_deadline = None;
        self.next_status_at = None;
        self.conn = Some(conn);
        self.send(Step::Identify, IdentifySystem::COMMAND, now)
    }

    /// Feeds bytes read from the socket, consuming whole messages, and processes what they
    /// carry. Events received before a failure are still processed (delivered).
    pub fn handle_input(&mut self, input: &mut BytesMut, now: Instant) -> Result<(), SessionError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SessionError::Usage("input without an attached connection"));
        };
        let before = input.len();
        let result = conn.handle_input(input, now);
        let consumed = before.saturating_sub(input.len());
        self.counters.bytes_received = self
            .counters
            .bytes_received
            .saturating_add(u64::try_from(consumed).unwrap_or(u64::MAX));
        let processed = self.process_events(now);
        result?;
        processed?;
        self.drive_timers(now)
    }

    /// Reports that time passed (safe to call early): sends due status updates, ends a stop
    /// that timed out, fails a command that timed out.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.handle_timeout(now)?;
        }
        if self.stop_deadline.is_some_and(|d| now >= d) {
            self.finish_stop();
            return Ok(());
        }
        if self.attempt.command_deadline.is_some_and(|d| now >= d) {
            self.attempt.command_deadline = None;
            return Err(SessionError::Timeout {
                during: self.step.describe(),
            });
        }
        self.drive_timers(now)
    }

    /// Reports that the socket closed; returns the error to hand to the reconnect logic.
    /// During [`stop`](Self::stop) this completes the stop ([`SessionEvent::Stopped`]).
    pub fn handle_eof(&mut self) -> SessionError {
        let err = match self.conn.as_mut() {
            Some(c) => c.handle_eof(),
            None => ConnectionError::Closed { during: "detached" },
        };
        if self.phase == Phase::Stopping {
            self.finish_stop();
        }
        SessionError::Connection(err)
    }

    // ----------------------------------------------------------------------------- mutators

    /// The driver dropped the connection (after any error). LSN and acknowledgement state
    /// are kept for the next [`attach`](Self::attach). Batches and messages not reported
    /// [`handed`](Self::handed) — polled or not — are forgotten: the next attempt resumes
    /// before them and the server sends them again. The pipeline is reset (a transaction
    /// cut short is reported as a [`SessionEvent::Warning`]; its chunks are not repeated).
    pub fn detach(&mut self) {
        // What was emitted but not handed over is discarded — also what the driver has not
        // polled yet: the next attempt resumes before it, so the server sends it again.
        self.handoff.clear();
        self.events
            .retain(|e| !matches!(e, SessionEvent::Transaction(_) | SessionEvent::Message(_)));
        self.emitted_end = self.feedback.delivered();
        self.conn = None;
        self.step = Step::Idle;
        self.attempt.command_deadline = None;
        self.attempt.held_consistent_point = None;
        self.next_status_at = None;
        self.feedback.detach();
        self.dedupe.restart();
        match self.phase {
            Phase::Stopping => self.finish_stop(),
            Phase::Stopped => {}
            _ => self.phase = Phase::Detached,
        }
        self.pipeline.reset();
        self.failed = None;
        self.drain_pipeline();
    }

    /// The application processed everything up to `lsn`, a batch's
    /// [`ack_lsn`](crate::assemble::TransactionBatch::ack_lsn). The flush LSN moves to the end of the highest
    /// delivered transaction at or below it; a status update follows within
    /// [`ACK_UPDATE_DELAY`] (on the next [`handle_timeout`](Self::handle_timeout) at
    /// [`poll_timeout`](Self::poll_timeout)).
    pub fn ack(&mut self, lsn: Lsn) {
        if self.feedback.ack(lsn) {
            let target = self.flush_target();
            self.feedback.mark_dirty_if(target);
        }
    }

    /// A subscriber queue accepted the oldest [`SessionEvent::Transaction`] or
    /// [`SessionEvent::Message`] not yet reported: only from now on does it count as
    /// delivered — for the resume position, the reconnect dedupe, what an
    /// [`ack`](Self::ack) may confirm and the idle flush. Report hand-overs in the order the
    /// events were emitted. What is emitted and never reported before
    /// [`detach`](Self::detach) is sent again by the server after the next attach: the
    /// driver discards it.
    ///
    /// Fails with [`SessionError::Usage`] when nothing is waiting to be handed over.
    pub fn handed(&mut self) -> Result<(), SessionError> {
        let Some(first) = self.handoff.pop_front() else {
            return Err(SessionError::Usage(
                "handed() without an emitted batch waiting to be handed over",
            ));
        };
        self.apply_handoff(first);
        // Transactions that completed silently behind it are delivered with it.
        while let Some(Handoff::Silent(end)) = self.handoff.front().copied() {
            self.handoff.pop_front();
            self.apply_handoff(Handoff::Silent(end));
        }
        let target = self.flush_target();
        self.feedback.mark_dirty_if(target);
        Ok(())
    }

    /// Emitted transactions and messages not yet reported handed over.
    pub fn unhanded(&self) -> usize {
        self.handoff
            .iter()
            .filter(|h| !matches!(h, Handoff::Silent(_)))
            .count()
    }

    /// Ends the snapshot hold: starts streaming at the slot's consistent point.
    pub fn release_snapshot(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.phase != Phase::SnapshotHeld {
            return Err(SessionError::Usage(
                "release_snapshot called while no snapshot is held",
            ));
        }
        if let Some(cp) = self.attempt.held_consistent_point.take() {
            self.feedback.raise_base(cp);
        }
        self.snapshot_done = true;
        if let Some(temp) = self.attempt.bootstrap_slot.clone() {
            // The copy is complete: only now does the permanent slot exist, at the same point.
            let sql = super::catalog::copy_slot_command(&temp, &self.options.slot_name)?;
            return self.send(Step::CopySlot, &sql, now);
        }
        self.start_replication(now)
    }

    /// The temporary slot a bootstrap exports its snapshot from, while it runs (`None` when
    /// the snapshot comes from the permanent slot itself: servers before 12, two-phase).
    pub fn bootstrap_slot(&self) -> Option<&str> {
        self.attempt.bootstrap_slot.as_deref()
    }

    /// Stops cleanly: while streaming, a final status update and CopyDone, then waits (at
    /// most `stop_timeout`) for the server's end of the stream and ReadyForQuery, sends
    /// Terminate and emits [`SessionEvent::Stopped`]. In any other phase it sends Terminate
    /// (if attached) and stops at once. XLogData arriving after this is not delivered.
    pub fn stop(&mut self, now: Instant) {
        match self.phase {
            Phase::Stopped | Phase::Stopping => {}
            Phase::Streaming => {
                // Best effort: a failure means the copy already ended.
                let _ = self.send_status(now, false);
                let copy_done = self
                    .conn
                    .as_mut()
                    .is_some_and(|c| c.send_copy_done().is_ok());
                if copy_done {
                    self.step = Step::Stopping;
                    self.phase = Phase::Stopping;
                    self.next_status_at = None;
                    self.stop_deadline = now.checked_add(self.options.stop_timeout);
                } else {
                    self.finish_stop();
                }
            }
            _ => self.finish_stop(),
        }
    }

    // ------------------------------------------------------------------------------- output

    /// Moves pending outbound bytes into `out`; returns whether anything was added.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        self.conn.as_mut().is_some_and(|c| c.poll_transmit(out))
    }

    /// The next event, if any. A held (streamed or prepared) transaction completed by the
    /// server is read back one chunk per call, and what arrived after it is handled then
    /// ([`has_backlog`](Self::has_backlog)); an error that work meets is returned by the
    /// next [`handle_input`](Self::handle_input) or [`handle_timeout`](Self::handle_timeout)
    /// (or [`take_error`](Self::take_error)), and until then this returns `None`.
    ///
    /// A driver that bounds its memory polls this only when it can take another batch, and
    /// [`poll_ready_event`](Self::poll_ready_event) otherwise; it reads no input while
    /// [`has_backlog`](Self::has_backlog) is true.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.failed.is_some() || !self.has_backlog() {
                return None;
            }
            if let Err(e) = self.resume_pipeline() {
                self.failed = Some(e);
            }
        }
    }

    /// The next event already made, without reading back held transactions (see
    /// [`poll_event`](Self::poll_event)).
    pub fn poll_ready_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Whether work waits that [`poll_event`](Self::poll_event) does: a held transaction
    /// being read back, input received meanwhile.
    /// After [`stop`](Self::stop) nothing more is delivered, so there is none.
    pub fn has_backlog(&self) -> bool {
        self.phase == Phase::Streaming && self.pipeline.has_backlog()
    }

    /// How long the driver may wait before its next read of the socket, after a read that
    /// brought less than [`COALESCE_READ_BYTES`] (`None`: read at once).
    ///
    /// While the server sends a backlog (the transactions arriving committed more than
    /// [`CATCH_UP_LAG`] before the server sent them, by the server's own clock in both
    /// cases), the walsender writes each message as it decodes it and an eager reader wakes
    /// up for every few of them; waiting [`READ_PAUSE`] lets a socket buffer's worth gather
    /// and costs no latency that matters, since what arrives is old already. The first
    /// transaction sent soon after its commit makes reads immediate again; until one comes
    /// the pause only follows a read, so a quiet stream is not delayed by it.
    pub fn read_pause(&self) -> Option<Duration> {
        (self.catching_up && self.phase == Phase::Streaming).then_some(READ_PAUSE)
    }

    /// The error deferred work met (see [`poll_event`](Self::poll_event)), if any.
    pub fn take_error(&mut self) -> Option<SessionError> {
        self.failed.take()
    }

    /// The next deadline: a status update, an acknowledgement's update, a command or stop
    /// timeout, the connection's own deadline. Call
    /// [`handle_timeout`](Self::handle_timeout) then — also while not reading the socket
    /// because the consumer is slow, so status updates keep going out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let streaming = self.phase == Phase::Streaming;
        [
            self.conn.as_ref().and_then(Connection::poll_timeout),
            self.attempt.command_deadline,
            self.stop_deadline,
            self.next_status_at.filter(|_| streaming),
            self.ack_update_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----------------------------------------------------------------------------- internal

    /// Sends a command and records it as the step in flight.
    pub(super) fn send(&mut self, step: Step, sql: &str, now: Instant) -> Result<(), SessionError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or(SessionError::Usage("no connection attached"))?;
        conn.send_query(sql)?;
        self.step = step;
        self.phase = step.phase();
        self.attempt.command_deadline = match step {
            Step::CreateSlot => None,
            _ => self
                .options
                .command_timeout
                .and_then(|t| now.checked_add(t)),
        };
        Ok(())
    }

    fn process_events(&mut self, now: Instant) -> Result<(), SessionError> {
        while let Some(ev) = self.conn.as_mut().and_then(Connection::poll_event) {
            self.on_event(ev, now)?;
        }
        Ok(())
    }

    fn on_event(&mut self, ev: ConnectionEvent, now: Instant) -> Result<(), SessionError> {
        match ev {
            ConnectionEvent::Notice(n) => {
                self.events.push_back(SessionEvent::Notice(Box::new(n)));
                Ok(())
            }
            ConnectionEvent::QueryComplete(results) => self.on_query_complete(results, now),
            ConnectionEvent::QueryFailed(e) => self.on_query_failed(e, now),
            ConnectionEvent::CopyStarted(_) => self.on_copy_started(now),
            ConnectionEvent::CopyData(data) => self.on_copy_data(data, now),
            ConnectionEvent::CopyDone => self.on_server_copy_done(),
            _ => Ok(()),
        }
    }

    /// Ends the session: Terminate (if attached), phase Stopped, [`SessionEvent::Stopped`].
    pub(super) fn finish_stop(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            c.close();
        }
        self.phase = Phase::Stopped;
        self.step = Step::Idle;
        self.stop_deadline = None;
        self.next_status_at = None;
        self.attempt.command_deadline = None;
        self.events.push_back(SessionEvent::Stopped);
    }

    /// The flush LSN a status update would report now.
    pub(super) fn flush_target(&self) -> Lsn {
        self.feedback
            .flush_target(self.is_idle(), self.prepare_cap())
    }

    /// The LSN the flush must stay below for prepared transactions: the oldest one the
    /// pipeline holds, one being read back at its Commit Prepared, and those whose Commit
    /// Prepared batch is emitted but not handed over yet (once handed, the feedback holds
    /// it until it is acknowledged). Otherwise a reconnect in between would start after the
    /// prepare and the server would send only the Commit Prepared.
    fn prepare_cap(&self) -> Option<Lsn> {
        let reading = self
            .prepare_floor
            .filter(|_| self.pipeline.is_reading_back());
        let emitted = self.handoff.iter().filter_map(|h| match h {
            Handoff::Batch { hold, .. } => *hold,
            _ => None,
        });
        self.pipeline
            .oldest_pending_prepare_lsn()
            .into_iter()
            .chain(reading)
            .chain(emitted)
            .min()
    }

    /// Nothing open or buffered: no transaction, stream block, prepared transaction or
    /// partly delivered transaction.
    pub(super) fn is_idle(&self) -> bool {
        !self.pipeline.in_transaction()
            && self.pipeline.open_streams() == 0
            && self.pipeline.pending_events() == 0
            && !self.pipeline.has_backlog()
            && self.pipeline.oldest_pending_prepare_lsn().is_none()
            && !self.dedupe.has_partial()
            && self.handoff.is_empty()
    }

    /// Forgets the delivery position: the server's history is not the one it was measured
    /// on. The next start is the slot's own position; nothing is dropped as a duplicate.
    pub(super) fn reset_to_slot(&mut self, reason: String, slot_position: Option<Lsn>) {
        let previous = self.feedback.resume_lsn();
        self.feedback = Feedback::new(None);
        if let Some(p) = slot_position {
            self.feedback.raise_base(p);
        }
        self.dedupe = Dedupe::default();
        self.handoff.clear();
        self.emitted_end = self.feedback.delivered();
        self.events.push_back(SessionEvent::PositionReset {
            previous,
            slot_position,
            reason,
        });
    }

    /// Accounts for one hand-over (or a silent completion behind it).
    fn apply_handoff(&mut self, h: Handoff) {
        match h {
            Handoff::Batch {
                handed,
                end,
                hold,
                changes,
            } => {
                self.dedupe.on_delivered(&handed);
                if let Some(end) = end {
                    if let Some(floor) = hold {
                        self.feedback.hold(end, floor);
                    }
                    self.feedback.on_delivered(end);
                    self.counters.transactions = self.counters.transactions.saturating_add(1);
                }
                self.counters.changes = self.counters.changes.saturating_add(changes);
            }
            Handoff::Message(lsn) => {
                self.dedupe.on_message_delivered(lsn);
                // A non-transactional message is one change of its own.
                self.counters.changes = self.counters.changes.saturating_add(1);
            }
            Handoff::Silent(end) => self.feedback.on_silent_end(end),
        }
    }

    /// Sends a standby status update (streaming only). Does nothing once the server ended
    /// the copy (shutdown: `COPY 0`, then EOF).
    pub(super) fn send_status(
        &mut self,
        now: Instant,
        reply_requested: bool,
    ) -> Result<(), SessionError> {
        if self.conn.as_ref().map(Connection::state) != Some(State::Copy) {
            self.next_status_at = None;
            return Ok(());
        }
        let flush = self.flush_target();
        let update = StandbyStatusUpdate {
            write: self.feedback.received().max(flush),
            flush,
            apply: flush,
            client_time: pg_micros((self.wall_clock)()),
            reply_requested,
        };
        self.scratch.clear();
        update.encode(&mut self.scratch);
        let conn = self
            .conn
            .as_mut()
            .ok_or(SessionError::Usage("no connection attached"))?;
        conn.send_copy_data(&self.scratch)?;
        self.feedback.sent(flush, now);
        self.next_status_at = now.checked_add(self.status_interval);
        self.counters.status_updates_sent = self.counters.status_updates_sent.saturating_add(1);
        Ok(())
    }

    fn ack_update_at(&self) -> Option<Instant> {
        if self.phase != Phase::Streaming || !self.feedback.is_dirty() {
            return None;
        }
        let base = self
            .feedback
            .last_sent_at()
            .or(self.attempt.streaming_since)?;
        base.checked_add(ACK_UPDATE_DELAY)
    }

    /// Sends the status updates that are due.
    pub(super) fn drive_timers(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.phase != Phase::Streaming {
            return Ok(());
        }
        let periodic = self.next_status_at.is_some_and(|t| now >= t);
        let ack = self.ack_update_at().is_some_and(|t| now >= t);
        if periodic || ack {
            self.send_status(now, false)?;
        }
        Ok(())
    }
}

/// Microseconds since 2000-01-01 (PostgreSQL's epoch), saturating.
pub(super) fn pg_micros(t: SystemTime) -> i64 {
    let unix = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    };
    unix.saturating_sub(PG_EPOCH_UNIX_MICROS)
}
