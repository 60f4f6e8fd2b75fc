//! What subscribers receive: [`ChangeBatch`], a transaction (or a chunk of one) with the
//! handle that acknowledges it.

use std::ops::Deref;
use std::sync::Arc;

use pgcdc_core::assemble::TransactionBatch;
use pgcdc_core::model::{LogicalMessage, SourceChange, TxInfo};

use super::command::AckHandle;

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
