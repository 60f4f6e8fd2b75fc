//! Streaming: XLogData into the pipeline, keepalives, delivery with reconnect dedupe.

use std::time::Instant;

use bytes::Bytes;

use crate::assemble::{PipelineEvent, TransactionBatch, TransactionKind};
use crate::pgoutput::{ReplicationMessage, parse_copy_data};

use super::feedback::Handed;
use super::session::{Handoff, ReplicationSession, Step};
use super::{SessionError, SessionEvent};

impl ReplicationSession {
    pub(super) fn on_copy_data(&mut self, data: Bytes, now: Instant) -> Result<(), SessionError> {
        match self.step {
            Step::Streaming => {}
            // After stop(): trailing messages are not delivered.
            Step::Stopping => return Ok(()),
            _ => {
                return Err(SessionError::Protocol(format!(
                    "CopyData arrived while {}",
                    self.step.describe()
                )));
            }
        }
        let msg = parse_copy_data(data).map_err(|e| {
            SessionError::Protocol(format!(
                "could not decode a replication message received after LSN {}: {e}",
                self.feedback.received()
            ))
        })?;
        match msg {
            ReplicationMessage::XLogData {
                wal_start,
                wal_end,
                send_time,
                data,
            } => {
                self.server_send_time = send_time;
                self.counters.xlog_messages = self.counters.xlog_messages.saturating_add(1);
                self.feedback.on_received(wal_start.max(wal_end));
                // A Commit Prepared removes its prepare from the pipeline: remember where the
                // held prepares began, to keep the flush there until it is acknowledged.
                // (While a held transaction is read back, the payload waits: the floor stays
                // that of the commit being read back.)
                if !self.pipeline.has_backlog() {
                    self.prepare_floor = self.pipeline.oldest_pending_prepare_lsn();
                }
                let result = self.pipeline.handle_xlog(&data, wal_start, wal_end);
                // Deliver what was assembled before any error.
                self.drain_pipeline();
                result.map_err(|source| SessionError::Assemble {
                    source,
                    lsn: self.feedback.received(),
                })?;
            }
            ReplicationMessage::Keepalive {
                wal_end,
                reply_requested,
                send_time,
            } => {
                // Not a sign of being caught up: a walsender also sends one in a backlog,
                // whenever it finds that more WAL was flushed meanwhile.
                self.server_send_time = send_time;
                self.counters.keepalives = self.counters.keepalives.saturating_add(1);
                self.feedback.on_keepalive(wal_end);
                if reply_requested {
                    self.send_status(now, false)?;
                } else {
                    let target = self.flush_target();
                    self.feedback.mark_dirty_if(target);
                }
            }
        }
        Ok(())
    }

    /// One step of the pipeline's deferred work (reading a held transaction back, input
    /// received meanwhile), its events drained.
    pub(super) fn resume_pipeline(&mut self) -> Result<(), SessionError> {
        if !self.pipeline.is_reading_back() {
            // The next deferred XLogData: as in `on_copy_data`.
            self.prepare_floor = self.pipeline.oldest_pending_prepare_lsn();
        }
        let result = self.pipeline.resume();
        self.drain_pipeline();
        result.map_err(|source| SessionError::Assemble {
            source,
            lsn: self.feedback.received(),
        })
    }

    /// Whether the transaction committed at `commit_time_ns` (Unix nanoseconds) was sent
    /// long after its commit, both by the server's clock: then the server sends a backlog.
    fn note_commit_time(&mut self, commit_time_ns: u64) {
        let Ok(commit_us) = i64::try_from(commit_time_ns / 1000) else {
            return;
        };
        if commit_us <= 0 || self.server_send_time == 0 {
            return;
        }
        let sent_us = self
            .server_send_time
            .saturating_add(crate::model::PG_EPOCH_UNIX_MICROS);
        let lag_us = sent_us.saturating_sub(commit_us);
        self.catching_up =
            lag_us > i64::try_from(super::session::CATCH_UP_LAG.as_micros()).unwrap_or(i64::MAX);
    }

    /// Moves the pipeline's ready events into session events, dropping re-sent transactions
    /// and messages, and queues each emitted one until the driver reports it handed over.
    pub(super) fn drain_pipeline(&mut self) {
        while let Some(ev) = self.pipeline.poll_ready_event() {
            match ev {
                PipelineEvent::Transaction(batch) => self.emit(batch),
                PipelineEvent::Message(m) => {
                    if self.dedupe.message_is_new(m.lsn) {
                        self.handoff.push_back(Handoff::Message(m.lsn));
                        self.events.push_back(SessionEvent::Message(m));
                    } else {
                        self.counters.duplicates_dropped =
                            self.counters.duplicates_dropped.saturating_add(1);
                    }
                }
                PipelineEvent::Warning(w) => self.events.push_back(SessionEvent::Warning(w)),
                PipelineEvent::IncompleteTransaction {
                    xid,
                    chunks_emitted,
                } => self.events.push_back(SessionEvent::Warning(format!(
                    "the connection broke inside transaction {xid} after {chunks_emitted} \
                     chunk(s) were emitted; after reconnecting it is sent again from the \
                     first change no subscriber took"
                ))),
            }
        }
        if let Some(end) = self.pipeline.last_end_lsn()
            && end > self.emitted_end
            && end > self.feedback.delivered()
        {
            // Completed without delivery: an empty transaction, a rolled-back prepare. It
            // counts as delivered once everything emitted before it is handed over.
            self.emitted_end = end;
            if self.handoff.is_empty() {
                self.feedback.on_silent_end(end);
                let target = self.flush_target();
                self.feedback.mark_dirty_if(target);
            } else {
                self.handoff.push_back(Handoff::Silent(end));
            }
        }
    }

    fn emit(&mut self, mut batch: TransactionBatch) {
        self.note_commit_time(batch.commit_time_ns);
        if !self.dedupe.filter(&mut batch, self.feedback.delivered()) {
            self.counters.duplicates_dropped = self.counters.duplicates_dropped.saturating_add(1);
            return;
        }
        let end = batch.ack_lsn();
        if let Some(end) = end {
            self.emitted_end = self.emitted_end.max(end);
        }
        let hold = if batch.kind == TransactionKind::TwoPhase && !batch.prepare_missing {
            self.prepare_floor
        } else {
            None
        };
        self.handoff.push_back(Handoff::Batch {
            handed: Handed::of(&batch),
            end,
            hold,
            changes: u64::try_from(batch.changes.len()).unwrap_or(u64::MAX),
        });
        self.events.push_back(SessionEvent::Transaction(batch));
    }
}
