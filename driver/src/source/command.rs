//! What the source's handles tell its task: acknowledgements, a subscriber leaving, stop;
//! and the [`AckHandle`] that sends acknowledgements.

use pgcdc_core::Lsn;

/// Messages from the source handle to the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A subscriber (or, with `None`, the application for all of them) processed everything
    /// up to this transaction end LSN.
    Ack { subscriber: Option<u64>, lsn: Lsn },
    /// A subscriber left: the acknowledged minimum may have moved.
    Recompute,
    /// Stop cleanly.
    Stop,
}

/// Acknowledges transactions by their end LSN ([`TransactionBatch::ack_lsn`](pgcdc_core::assemble::TransactionBatch::ack_lsn)) from anywhere:
/// cheap to clone, `Send`, never blocks.
///
/// The handle inside a batch a [`Subscription`](super::Subscription) received acknowledges
/// for that subscriber only: the source confirms to PostgreSQL the minimum over its live
/// subscribers. [`Source::ack_handle`](super::Source::ack_handle) acknowledges for all of
/// them at once.
#[derive(Clone, Debug)]
pub struct AckHandle {
    tx: async_channel::Sender<Command>,
    subscriber: Option<u64>,
}

impl AckHandle {
    pub(crate) fn new(tx: async_channel::Sender<Command>) -> Self {
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
        let _ = self.tx.try_send(Command::Ack {
            subscriber: self.subscriber,
            lsn,
        });
    }

    /// A subscriber left: the minimum over the others may have moved.
    pub(crate) fn recompute(&self) {
        let _ = self.tx.try_send(Command::Recompute);
    }
}
