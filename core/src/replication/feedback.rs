//! Acknowledgement tracking: which LSN the standby status update may report as flushed, and
//! which re-sent transactions to drop after a reconnect.
//!
//! # The flush LSN
//!
//! * Transactions are *delivered* — handed over: a subscriber queue accepted them, which the
//!   driver reports with `ReplicationSession::handed` — in commit order; each whole
//!   transaction (its last chunk) has an end LSN. The application *acknowledges* an LSN; the
//!   flush is the end LSN of the highest delivered transaction at or below it — never an LSN
//!   inside a transaction, so acknowledging a commit LSN or a non-last chunk moves nothing.
//! * Transactions the pipeline completes without delivering (empty ones, rolled-back
//!   prepares) count as acknowledged once everything delivered before them is.
//! * The flush never passes what was received, nor a held prepared transaction.
//! * When everything delivered is acknowledged and nothing is open or waiting to be handed
//!   over, the flush follows the keepalive `wal_end` of the current connection, so an idle
//!   publication never pins WAL (a keepalive of an earlier connection says nothing about
//!   what the next one sends again).
//! * It never moves backwards.

use std::collections::VecDeque;
use std::time::Instant;

use crate::assemble::TransactionBatch;
use crate::lsn::Lsn;
use crate::model::SourceChange;
use crate::pgoutput::Xid;

/// The most delivered-but-unacknowledged transaction ends remembered. Beyond it the oldest
/// are forgotten, which can only hold the flush lower than it could be.
const MAX_PENDING: usize = 1 << 20;

/// Acknowledgement state, kept across reconnects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Feedback {
    /// Highest LSN received (XLogData positions, keepalive `wal_end`): the `write` position.
    received: Lsn,
    /// Highest keepalive `wal_end` on the current connection.
    keepalive_end: Lsn,
    /// End LSN of the last whole transaction delivered or completed silently (or the start
    /// position / snapshot point): the resume and dedupe watermark.
    delivered: Lsn,
    /// Delivered ends not yet acknowledged, in order; `true` marks silent completions.
    pending: VecDeque<(Lsn, bool)>,
    /// The highest acknowledged transaction end.
    acked: Lsn,
    /// Delivered two-phase transactions not yet acknowledged, merged: (highest end, lowest
    /// cap). Until they are acknowledged the flush stays at or below the cap (the oldest
    /// prepare held when they committed), or after a restart the server would skip their
    /// prepare and send only the commit.
    hold: Option<(Lsn, Lsn)>,
    /// The last flush sent.
    flush_sent: Lsn,
    /// When the last status update went out.
    last_sent_at: Option<Instant>,
    /// An acknowledgement or keepalive moved the flush target past what was sent.
    dirty: bool,
}

impl Feedback {
    /// State for a session that starts at `base` (the application's stored position):
    /// everything up to it counts as delivered and acknowledged.
    pub(crate) fn new(base: Option<Lsn>) -> Self {
        let mut f = Feedback::default();
        if let Some(b) = base {
            f.raise_base(b);
        }
        f
    }

    /// Everything up to `lsn` is processed (start position, snapshot consistent point).
    pub(crate) fn raise_base(&mut self, lsn: Lsn) {
        self.delivered = self.delivered.max(lsn);
        if self.pending.is_empty() {
            self.acked = self.acked.max(lsn);
        }
    }

    pub(crate) fn received(&self) -> Lsn {
        self.received
    }

    pub(crate) fn acked(&self) -> Lsn {
        self.acked
    }

    pub(crate) fn delivered(&self) -> Lsn {
        self.delivered
    }

    pub(crate) fn flush_sent(&self) -> Lsn {
        self.flush_sent
    }

    pub(crate) fn last_sent_at(&self) -> Option<Instant> {
        self.last_sent_at
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether every delivered transaction is acknowledged.
    #[cfg(test)]
    pub(crate) fn all_acked(&self) -> bool {
        self.pending.is_empty()
    }

    /// Where a new attempt resumes: after the last transaction delivered, or after what was
    /// already reported flushed (then nothing in between was pending).
    pub(crate) fn resume_lsn(&self) -> Lsn {
        self.delivered.max(self.flush_sent)
    }

    pub(crate) fn on_received(&mut self, lsn: Lsn) {
        self.received = self.received.max(lsn);
    }

    pub(crate) fn on_keepalive(&mut self, wal_end: Lsn) {
        self.on_received(wal_end);
        self.keepalive_end = self.keepalive_end.max(wal_end);
    }

    /// A whole transaction ending at `end` was delivered.
    pub(crate) fn on_delivered(&mut self, end: Lsn) {
        if end <= self.delivered {
            return;
        }
        self.delivered = end;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((end, false));
    }

    /// A delivered two-phase transaction ending at `end` keeps the flush at or below `cap`
    /// until it is acknowledged.
    pub(crate) fn hold(&mut self, end: Lsn, cap: Lsn) {
        if end > self.acked {
            self.hold = Some(match self.hold {
                Some((until, c)) => (until.max(end), c.min(cap)),
                None => (end, cap),
            });
        }
    }

    /// A transaction ending at `end` completed without being delivered.
    pub(crate) fn on_silent_end(&mut self, end: Lsn) {
        if end <= self.delivered {
            return;
        }
        self.delivered = end;
        if self.pending.is_empty() {
            self.acked = self.acked.max(end);
        } else {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back((end, true));
        }
    }

    /// The application processed everything up to `lsn`. Returns whether `acked` moved.
    pub(crate) fn ack(&mut self, lsn: Lsn) -> bool {
        let before = self.acked;
        while let Some(&(end, _)) = self.pending.front() {
            if end > lsn {
                break;
            }
            self.acked = self.acked.max(end);
            self.pending.pop_front();
        }
        if self.acked > before {
            while let Some(&(end, true)) = self.pending.front() {
                self.acked = self.acked.max(end);
                self.pending.pop_front();
            }
            if self.hold.is_some_and(|(until, _)| self.acked >= until) {
                self.hold = None;
            }
        }
        self.acked > before
    }

    /// The flush to report. `idle`: no transaction open or buffered in the pipeline; `cap`:
    /// the oldest held prepare.
    pub(crate) fn flush_target(&self, idle: bool, cap: Option<Lsn>) -> Lsn {
        let mut flush = self.acked.min(self.received);
        if idle && self.pending.is_empty() {
            flush = flush.max(self.keepalive_end.min(self.received));
        }
        if let Some(cap) = cap {
            flush = flush.min(cap);
        }
        if let Some((_, hold)) = self.hold {
            flush = flush.min(hold);
        }
        flush.max(self.flush_sent)
    }

    /// Notes that the flush target may have moved past what was sent.
    pub(crate) fn mark_dirty_if(&mut self, target: Lsn) {
        if target > self.flush_sent {
            self.dirty = true;
        }
    }

    /// Records a status update reporting `flush`.
    pub(crate) fn sent(&mut self, flush: Lsn, now: Instant) {
        self.flush_sent = self.flush_sent.max(flush);
        self.last_sent_at = Some(now);
        self.dirty = false;
    }

    /// Forgets the per-connection timing (the next connection starts its own).
    pub(crate) fn detach(&mut self) {
        self.last_sent_at = None;
        self.dirty = false;
        // A keepalive's wal_end says that everything before it was sent on that connection.
        // The next connection starts over at the resume position and sends again what was
        // not handed over: only its own keepalives may move an idle flush.
        self.keepalive_end = Lsn::ZERO;
    }
}

/// What the dedupe needs to know of a batch once a subscriber took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handed {
    pub(crate) xid: Xid,
    pub(crate) commit_lsn: Lsn,
    pub(crate) last_chunk: bool,
    /// Its data changes (everything but schema changes).
    pub(crate) data: u64,
}

impl Handed {
    pub(crate) fn of(batch: &TransactionBatch) -> Self {
        Handed {
            xid: batch.xid,
            commit_lsn: batch.commit_lsn,
            last_chunk: batch.last_chunk,
            data: data_count(batch),
        }
    }
}

/// The transaction whose first chunks were delivered but not its last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Partial {
    xid: Xid,
    commit_lsn: Lsn,
    /// Data changes (everything but schema changes) delivered so far.
    delivered: u64,
    /// Data changes of the transaction seen since the current connection began: equal to
    /// `delivered` while the first connection lasts, counted up again from 0 on a replay.
    seen: u64,
}

/// Whether a change is row data (or a transactional message) rather than a schema change:
/// schema changes depend on what the relation cache already knew, so a replay may hold more
/// or fewer of them; data changes replay identically.
fn is_data(change: &SourceChange) -> bool {
    !matches!(change, SourceChange::SchemaChange { .. })
}

fn data_count(batch: &TransactionBatch) -> u64 {
    u64::try_from(batch.changes.iter().filter(|c| is_data(c)).count()).unwrap_or(u64::MAX)
}

/// Drops what was delivered before a reconnect.
///
/// * A batch of a transaction that committed before the watermark (the end LSN of the last
///   whole transaction delivered) is a re-sent transaction: dropped, chunks included.
/// * A transaction broken off after some chunks is sent again whole after the reconnect. Its
///   first `delivered` data changes are cut from the replay, whatever the chunk boundaries
///   (a schema-change entry present in one pass and not the other shifts them); schema
///   changes are kept. Replayed batches are never `first_chunk`, and their `chunk_index` is
///   the replay's, so an index can repeat. A batch left without data is dropped, unless it is
///   the last chunk, which carries the end LSN to acknowledge.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dedupe {
    partial: Option<Partial>,
    /// The LSN of the last non-transactional message handed over: the server sends a
    /// message again after a reconnect that resumes before it.
    last_message: Option<Lsn>,
}

impl Dedupe {
    /// Whether a transaction is partly delivered.
    pub(crate) fn has_partial(&self) -> bool {
        self.partial.is_some()
    }

    /// A new connection begins: a partly delivered transaction will be replayed from its
    /// start.
    pub(crate) fn restart(&mut self) {
        if let Some(p) = self.partial.as_mut() {
            p.seen = 0;
        }
    }

    /// Cuts from `batch` what was already delivered, given the watermark; `false` when
    /// nothing of it is left to deliver.
    pub(crate) fn filter(&mut self, batch: &mut TransactionBatch, watermark: Lsn) -> bool {
        if batch.commit_lsn < watermark || batch.end_lsn.is_some_and(|e| e <= watermark) {
            return false;
        }
        let Some(p) = self.partial.as_mut() else {
            return true;
        };
        if p.xid != batch.xid || p.commit_lsn != batch.commit_lsn {
            return true;
        }
        batch.first_chunk = false;
        let owed = p.delivered.saturating_sub(p.seen);
        if owed == 0 {
            return true;
        }
        let skip = owed.min(data_count(batch));
        p.seen = p.seen.saturating_add(skip);
        let mut left = skip;
        batch.changes.retain(|c| {
            if left > 0 && is_data(c) {
                left -= 1;
                false
            } else {
                true
            }
        });
        batch.last_chunk || data_count(batch) > 0
    }

    /// Whether a non-transactional message at `lsn` is new (not handed over before).
    pub(crate) fn message_is_new(&self, lsn: Lsn) -> bool {
        self.last_message.is_none_or(|last| lsn > last)
    }

    /// Records a non-transactional message handed to a subscriber.
    pub(crate) fn on_message_delivered(&mut self, lsn: Lsn) {
        self.last_message = Some(self.last_message.map_or(lsn, |l| l.max(lsn)));
    }

    /// Records a batch handed to a subscriber.
    pub(crate) fn on_delivered(&mut self, batch: &Handed) {
        if batch.last_chunk {
            self.partial = None;
            return;
        }
        let n = batch.data;
        match self.partial.as_mut() {
            Some(p) if p.xid == batch.xid && p.commit_lsn == batch.commit_lsn => {
                p.delivered = p.delivered.saturating_add(n);
                p.seen = p.seen.saturating_add(n);
            }
            _ => {
                self.partial = Some(Partial {
                    xid: batch.xid,
                    commit_lsn: batch.commit_lsn,
                    delivered: n,
                    seen: n,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_maps_to_delivered_ends() {
        let mut f = Feedback::new(None);
        f.on_received(Lsn(1000));
        f.on_delivered(Lsn(100));
        f.on_delivered(Lsn(200));
        f.on_delivered(Lsn(300));
        // An LSN inside the second transaction acknowledges only the first.
        assert!(f.ack(Lsn(150)));
        assert_eq!(f.flush_target(true, None), Lsn(100));
        assert!(!f.ack(Lsn(199)));
        assert!(f.ack(Lsn(300)));
        assert_eq!(f.flush_target(false, None), Lsn(300));
        assert!(f.all_acked());
    }

    #[test]
    fn flush_bounds() {
        let mut f = Feedback::new(None);
        f.on_delivered(Lsn(500));
        f.ack(Lsn(500));
        // Never past what was received.
        assert_eq!(f.flush_target(false, None), Lsn(0));
        f.on_received(Lsn(500));
        assert_eq!(f.flush_target(false, None), Lsn(500));
        // Never past a held prepare.
        assert_eq!(f.flush_target(false, Some(Lsn(300))), Lsn(300));
        // Follows the keepalive only when idle.
        f.on_keepalive(Lsn(900));
        assert_eq!(f.flush_target(false, None), Lsn(500));
        assert_eq!(f.flush_target(true, None), Lsn(900));
        f.sent(Lsn(900), Instant::now());
        // Never backwards.
        assert_eq!(f.flush_target(false, None), Lsn(900));
    }

    #[test]
    fn silent_ends() {
        let mut f = Feedback::new(None);
        f.on_received(Lsn(1000));
        f.on_silent_end(Lsn(50));
        assert_eq!(f.acked(), Lsn(50));
        f.on_delivered(Lsn(100));
        f.on_silent_end(Lsn(150));
        f.on_delivered(Lsn(200));
        f.on_silent_end(Lsn(250));
        f.ack(Lsn(100));
        assert_eq!(f.acked(), Lsn(150));
        f.ack(Lsn(200));
        assert_eq!(f.acked(), Lsn(250));
        assert!(f.all_acked());
        assert_eq!(f.resume_lsn(), Lsn(250));
    }

    #[test]
    fn two_phase_holds_until_acknowledged() {
        let mut f = Feedback::new(None);
        f.on_received(Lsn(1000));
        f.on_delivered(Lsn(100));
        f.on_delivered(Lsn(300));
        f.hold(Lsn(300), Lsn(200));
        f.on_delivered(Lsn(400));
        f.ack(Lsn(100));
        assert_eq!(f.flush_target(false, None), Lsn(100));
        f.ack(Lsn(400));
        assert_eq!(f.flush_target(true, None), Lsn(400));
        let mut g = Feedback::new(None);
        g.on_received(Lsn(1000));
        g.on_delivered(Lsn(300));
        g.hold(Lsn(300), Lsn(200));
        g.on_delivered(Lsn(400));
        // Acknowledging a later transaction before the held one is impossible (in order), so
        // an ack of 400 releases both; an ack inside keeps the cap.
        g.ack(Lsn(250));
        assert_eq!(g.flush_target(false, None), Lsn(0));
        g.ack(Lsn(300));
        assert_eq!(g.flush_target(false, None), Lsn(300));
    }

    #[test]
    fn base_counts_as_acked() {
        let f = Feedback::new(Some(Lsn(700)));
        assert_eq!(f.resume_lsn(), Lsn(700));
        assert_eq!(f.acked(), Lsn(700));
    }
}
