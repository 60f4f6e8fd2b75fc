//! What subscribers receive, and how they acknowledge it.

use std::ops::Deref;
use std::sync::Arc;

use pgcdc_core::Lsn;
use pgcdc_core::assemble::TransactionBatch;
use pgcdc_core::model::{LogicalMessage, SourceChange, TxInfo};

/// A committed transaction, or one chunk of a large one, as delivered to subscribers.
///
/// It dereferences to [`TransactionBatch`]: `changes`, `xid`, `commit_lsn`, `end_lsn`,
/// `commit_time_ns`, `first_chunk`, `last_chunk`, `chunk_index`. Cloning is cheap (the batch
/// is shared between subscribers).
///
/// A non-transactional logical message (`pg_logical_emit_message(false, …)`) arrives as a
/// batch of its own holding one [`SourceChange::Message`], with xid 0, its LSN as
/// `commit_lsn`, no `end_lsn` and nothing to acknowledge.
#[derive(Clone, Debug)]
pub struct ChangeBatch {
    inner: Arc<TransactionBatch>,
    acker: AckHandle,
    /// The memory it holds, estimated ([`SourceChange::approx_bytes`]).
    bytes: usize,
}

impl ChangeBatch {
    pub(crate) fn new(batch: TransactionBatch, acker: AckHandle) -> Self {
        let bytes = std::mem::size_of::<TransactionBatch>()
            + batch
                .changes
                .iter()
                .map(SourceChange::approx_bytes)
                .sum::<usize>();
        ChangeBatch {
            inner: Arc::new(batch),
            acker,
            bytes,
        }
    }

    /// The memory the batch holds, estimated from its changes' values: what counts against
    /// `dispatch_buffer_bytes`.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn from_message(message: LogicalMessage, acker: AckHandle) -> Self {
        let lsn = message.lsn;
        let tx = TxInfo::outside_transaction(lsn);
        let batch =
            TransactionBatch::outside_transaction(lsn, vec![SourceChange::Message { message, tx }]);
        ChangeBatch::new(batch, acker)
    }

    /// The same batch, acknowledged through `acker` (a subscriber's own).
    pub(crate) fn with_acker(mut self, acker: AckHandle) -> Self {
        self.acker = acker;
        self
    }

    /// The shared batch.
    pub fn batch(&self) -> &Arc<TransactionBatch> {
        &self.inner
    }

    /// Acknowledges this batch: with [`AckMode::Manual`](pgcdc_core::source_config::AckMode),
    /// the source may then confirm the transaction to PostgreSQL, which frees its WAL. A
    /// chunk that is not the last of its transaction acknowledges nothing; acknowledge the
    /// last one once every chunk is processed. Acknowledging is idempotent, and acknowledging
    /// a later batch covers earlier ones.
    pub fn ack(&self) {
        if let Some(lsn) = self.inner.ack_lsn() {
            self.acker.ack(lsn);
        }
    }
}

impl Deref for ChangeBatch {
    type Target = TransactionBatch;

    fn deref(&self) -> &TransactionBatch {
        &self.inner
    }
}

/// Acknowledges transactions by their end LSN ([`TransactionBatch::ack_lsn`]) from anywhere:
/// cheap to clone, `Send`, never blocks.
///
/// The handle inside a batch a [`Subscription`](super::Subscription) received acknowledges
/// for that subscriber only: the source confirms to PostgreSQL the minimum over its live
/// subscribers. [`Source::ack_handle`](super::Source::ack_handle) acknowledges for all of
/// them at once.
#[derive(Clone, Debug)]
pub struct AckHandle {
    tx: async_channel::Sender<super::run::Command>,
    subscriber: Option<u64>,
}

impl AckHandle {
    pub(crate) fn new(tx: async_channel::Sender<super::run::Command>) -> Self {
        AckHandle {
            tx,
            subscriber: None,
        }
    }

    /// The same channel, acknowledging for one subscriber.
    pub(crate) fn for_subscriber(&self, id: u64) -> Self {
        AckHandle {
            tx: self.tx.clone(),
            subscriber: Some(id),
        }
    }

    /// Everything up to and including the transaction ending at `lsn` is processed. Acking
    /// an LSN that was not delivered yet is clamped to what was delivered.
    pub fn ack(&self, lsn: Lsn) {
        // Unbounded: never fails but when the source is gone, and then there is nothing to
        // acknowledge to.
        let _ = self.tx.try_send(super::run::Command::Ack {
            subscriber: self.subscriber,
            lsn,
        });
    }

    /// A subscriber left: the minimum over the others may have moved.
    pub(crate) fn recompute(&self) {
        let _ = self.tx.try_send(super::run::Command::Recompute);
    }
}
