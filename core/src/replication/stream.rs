//! Streaming: XLogData into the pipeline, keepalives, delivery with reconnect dedupe.

use std::time::Instant;

use bytes::Bytes;

use crate::assemble::{PipelineEvent, TransactionBatch, TransactionKind};
use crate::pgoutput::{ReplicationMessage, parse_copy_data};

use super::session::{ReplicationSession, Step};
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
                data,
                ..
            } => {
                self.counters.xlog_messages = self.counters.xlog_messages.saturating_add(1);
                self.feedback.on_received(wal_start.max(wal_end));
                // A Commit Prepared removes its prepare from the pipeline: remember where the
                // held prepares began, to keep the flush there until it is acknowledged.
                self.prepare_floor = self.pipeline.oldest_pending_prepare_lsn();
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
                ..
            } => {
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

    /// Moves the pipeline's events into session events, dropping re-sent transactions, and
    /// accounts for transactions completed without delivery.
    pub(super) fn drain_pipeline(&mut self) {
        while let Some(ev) = self.pipeline.poll_event() {
            match ev {
                PipelineEvent::Transaction(batch) => self.deliver(batch),
                PipelineEvent::Message(m) => self.events.push_back(SessionEvent::Message(m)),
                PipelineEvent::Warning(w) => self.events.push_back(SessionEvent::Warning(w)),
                PipelineEvent::IncompleteTransaction {
                    xid,
                    chunks_emitted,
                } => self.events.push_back(SessionEvent::Warning(format!(
                    "the connection broke inside transaction {xid} after {chunks_emitted} \
                     chunk(s) were delivered; after reconnecting its remaining chunks follow \
                     (the delivered ones are not repeated)"
                ))),
            }
        }
        if let Some(end) = self.pipeline.last_end_lsn()
            && end > self.feedback.delivered()
        {
            // Completed without delivery: an empty transaction, a rolled-back prepare.
            self.feedback.on_silent_end(end);
            let target = self.flush_target();
            self.feedback.mark_dirty_if(target);
        }
    }

    fn deliver(&mut self, mut batch: TransactionBatch) {
        if !self.dedupe.filter(&mut batch, self.feedback.delivered()) {
            self.counters.duplicates_dropped = self.counters.duplicates_dropped.saturating_add(1);
            return;
        }
        self.dedupe.on_delivered(&batch);
        if let Some(end) = batch.ack_lsn() {
            if batch.kind == TransactionKind::TwoPhase
                && !batch.prepare_missing
                && let Some(floor) = self.prepare_floor
            {
                self.feedback.hold(end, floor);
            }
            self.feedback.on_delivered(end);
            self.counters.transactions = self.counters.transactions.saturating_add(1);
        }
        self.counters.changes = self
            .counters
            .changes
            .saturating_add(u64::try_from(batch.changes.len()).unwrap_or(u64::MAX));
        self.events.push_back(SessionEvent::Transaction(batch));
    }
}
