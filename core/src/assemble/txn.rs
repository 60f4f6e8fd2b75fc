//! Transaction buffers and chunked emission.

use std::collections::VecDeque;

use super::hold::HeldTx;
use super::{PipelineEvent, TransactionBatch, TransactionKind};
use crate::lsn::Lsn;
use crate::model::{SourceChange, TxInfo, pg_time_to_unix_nanos};
use crate::pgoutput::Xid;

/// The Begin … Commit or Begin Prepare … Prepare transaction being received.
#[derive(Debug)]
pub(crate) struct OpenTx {
    pub(crate) xid: Xid,
    /// Begin's `final_lsn` (the commit LSN), or the prepare LSN.
    pub(crate) final_lsn: Lsn,
    /// Commit (or prepare) time, nanoseconds since the Unix epoch.
    pub(crate) time_ns: u64,
    pub(crate) origin: Option<String>,
    pub(crate) changes: Vec<SourceChange>,
    /// The index of the next chunk.
    pub(crate) chunk_index: u32,
    /// `Some(gid)` for a two-phase transaction being prepared: held until Commit Prepared,
    /// never emitted early.
    pub(crate) gid: Option<String>,
    /// The changes of a two-phase transaction being prepared (`gid` set), held as records.
    pub(crate) held: Option<HeldTx>,
    /// For a held transaction being read back at its commit: how it completed. Its chunks
    /// carry this kind and gid, and its changes the final [`TxInfo`].
    pub(crate) done: Option<Box<Completed>>,
    /// How many changes to make room for at the first one (the size of the last transaction),
    /// so that the buffer does not grow step by step.
    pub(crate) capacity_hint: usize,
}

impl OpenTx {
    pub(crate) fn new(xid: Xid, final_lsn: Lsn, time: i64, gid: Option<String>) -> Self {
        OpenTx {
            xid,
            final_lsn,
            time_ns: pg_time_to_unix_nanos(time),
            origin: None,
            changes: Vec::new(),
            chunk_index: 0,
            held: gid.as_ref().map(|_| HeldTx::default()),
            gid,
            done: None,
            capacity_hint: 0,
        }
    }

    /// The transaction `done` completed, whose held changes are read back now: chunks are
    /// emitted as they fill, and every change gets the final [`TxInfo`].
    pub(crate) fn replaying(done: Completed, max: usize, records: u64) -> Self {
        OpenTx {
            xid: done.info.xid,
            final_lsn: done.info.commit_lsn,
            time_ns: done.info.commit_time_ns,
            origin: done.origin.clone(),
            changes: Vec::with_capacity(usize::try_from(records).unwrap_or(max).min(max)),
            chunk_index: 0,
            gid: None,
            held: None,
            done: Some(Box::new(done)),
            capacity_hint: 0,
        }
    }

    /// What a change made now knows about its transaction.
    #[inline]
    pub(crate) fn tx_info(&self) -> TxInfo {
        TxInfo {
            xid: self.xid,
            commit_lsn: self.final_lsn,
            end_lsn: self.done.as_ref().map(|d| d.end_lsn),
            commit_time_ns: self.time_ns,
        }
    }

    /// Adds a change; a plain transaction whose buffer is full first emits it as a non-last
    /// chunk.
    #[inline(always)]
    pub(crate) fn push(
        &mut self,
        change: SourceChange,
        max: usize,
        events: &mut VecDeque<PipelineEvent>,
    ) {
        if self.changes.len() >= max && self.gid.is_none() {
            self.emit_chunk(max, events);
        }
        if self.changes.capacity() == 0 {
            self.make_room(max);
        }
        self.changes.push(change);
    }

    /// The buffer with room for one more change: a plain transaction whose buffer is full
    /// first emits it as a non-last chunk (as [`push`](Self::push) does).
    #[inline(always)]
    pub(crate) fn room_for_one(
        &mut self,
        max: usize,
        events: &mut VecDeque<PipelineEvent>,
    ) -> &mut Vec<SourceChange> {
        if self.changes.len() >= max && self.gid.is_none() {
            self.emit_chunk(max, events);
        }
        if self.changes.capacity() == 0 {
            self.make_room(max);
        }
        &mut self.changes
    }

    /// Emits the buffer as a non-last chunk.
    #[cold]
    #[inline(never)]
    fn emit_chunk(&mut self, max: usize, events: &mut VecDeque<PipelineEvent>) {
        let changes = std::mem::replace(&mut self.changes, Vec::with_capacity(max.min(4096)));
        let (kind, gid) = self
            .done
            .as_ref()
            .map_or((TransactionKind::Plain, None), |d| (d.kind, d.gid.clone()));
        events.push_back(PipelineEvent::Transaction(TransactionBatch {
            xid: self.xid,
            commit_lsn: self.final_lsn,
            end_lsn: None,
            commit_time_ns: self.time_ns,
            origin: self.origin.clone(),
            kind,
            gid,
            prepare_missing: false,
            first_chunk: self.chunk_index == 0,
            last_chunk: false,
            chunk_index: self.chunk_index,
            changes,
        }));
        self.chunk_index = self.chunk_index.saturating_add(1);
    }

    /// Makes room for the first change. Not before it: empty transactions allocate nothing.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, max: usize) {
        self.changes
            .reserve_exact(initial_capacity(self.capacity_hint, max));
    }
}

/// The least room made in a transaction's buffer.
const MIN_CAPACITY: usize = 4;

/// The room made in a transaction's buffer for `hint` changes (the size of the last one) when
/// chunks hold at most `max`.
pub(crate) fn initial_capacity(hint: usize, max: usize) -> usize {
    hint.clamp(MIN_CAPACITY, max.max(MIN_CAPACITY))
}

/// A streamed transaction's changes so far, each tagged with the (sub)transaction that made
/// it.
#[derive(Debug, Default)]
pub(crate) struct StreamTx {
    pub(crate) origin: Option<String>,
    pub(crate) held: HeldTx,
}

/// A prepared transaction waiting for Commit Prepared or Rollback Prepared.
#[derive(Debug)]
pub(crate) struct PreparedTx {
    pub(crate) xid: Xid,
    pub(crate) prepare_lsn: Lsn,
    pub(crate) origin: Option<String>,
    pub(crate) held: HeldTx,
}

/// What every chunk of a completed transaction shares.
#[derive(Clone, Debug)]
pub(crate) struct Completed {
    pub(crate) info: TxInfo,
    pub(crate) end_lsn: Lsn,
    pub(crate) origin: Option<String>,
    pub(crate) kind: TransactionKind,
    pub(crate) gid: Option<String>,
    pub(crate) prepare_missing: bool,
    /// Index of the first chunk emitted now (earlier ones went out before the commit).
    pub(crate) first_index: u32,
}

/// Emits the rest of a completed transaction as chunks of at most `max` changes, the last one
/// flagged and carrying `end_lsn`. Every change gets the final [`TxInfo`].
pub(crate) fn emit_completed(
    done: Completed,
    mut changes: Vec<SourceChange>,
    max: usize,
    events: &mut VecDeque<PipelineEvent>,
) {
    let info = TxInfo {
        end_lsn: Some(done.end_lsn),
        ..done.info
    };
    for c in &mut changes {
        c.set_tx(info);
    }
    let batch = |changes: Vec<SourceChange>, index: u32, last: bool| TransactionBatch {
        xid: info.xid,
        commit_lsn: info.commit_lsn,
        end_lsn: last.then_some(done.end_lsn),
        commit_time_ns: info.commit_time_ns,
        origin: done.origin.clone(),
        kind: done.kind,
        gid: done.gid.clone(),
        prepare_missing: done.prepare_missing,
        first_chunk: index == 0,
        last_chunk: last,
        chunk_index: index,
        changes,
    };
    if changes.len() <= max {
        if changes.capacity() > 2 * changes.len() + 16 {
            // Room was made for a larger transaction: give the consumer no waste to hold.
            changes.shrink_to_fit();
        }
        events.push_back(PipelineEvent::Transaction(batch(
            changes,
            done.first_index,
            true,
        )));
        return;
    }
    let chunks = changes.len().div_ceil(max);
    let mut rest = changes.into_iter();
    let mut index = done.first_index;
    for n in 0..chunks {
        let chunk: Vec<SourceChange> = rest.by_ref().take(max).collect();
        events.push_back(PipelineEvent::Transaction(batch(
            chunk,
            index,
            n + 1 == chunks,
        )));
        index = index.saturating_add(1);
    }
}
