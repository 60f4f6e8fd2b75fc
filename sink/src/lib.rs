//! Publish the changes of a pgcdc source to a distributed log, exactly once.
//!
//! ```text
//! PostgreSQL ──WAL──▶ PostgresReplicationSource ──batches──▶ forward() ──records──▶ Sink
//!     ▲                                                        │                 (JetStream)
//!     └──────── acknowledged once the log has every record ◀───┘
//! ```
//!
//! [`forward`] takes the batches of a [`Subscription`](pgcdc_tokio::Subscription) (a source
//! in [`AckMode::Manual`](pgcdc_tokio::AckMode)), turns each change into a [`Record`] with
//! [`Encoder`] — a subject from its table, the CLI's JSON (or a Debezium-style envelope), and
//! an id made of the slot, the transaction's commit LSN and the change's place in it — and
//! publishes them through a [`Sink`], many in flight at once. A batch is acknowledged to
//! PostgreSQL only when the log acknowledged each of its records and every batch before it.
//! After a crash the server sends the unacknowledged transactions again; their records get
//! the same ids, and the log's deduplication (JetStream's `Nats-Msg-Id` within the stream's
//! duplicate window) stores each once.
//!
//! [`nats::JetStreamSink`] is the JetStream implementation; another log (Kafka) implements
//! [`Sink`] the same way.

use std::future::Future;
use std::pin::Pin;

mod encode;
mod forward;
pub mod json;
pub mod nats;

pub use encode::{Encoder, Envelope, Naming, Record, token};
pub use forward::{ForwardError, ForwardOptions, Outcome, Stop, forward, metric_names};

/// The log's answer to one record: where it was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The record was a copy of one already stored (the log dropped it).
    pub duplicate: bool,
    /// Its position in the log (JetStream's stream sequence).
    pub sequence: u64,
}

/// The acknowledgement of a record sent with [`Sink::publish`].
pub type PendingAck = Pin<Box<dyn Future<Output = Result<Receipt, SinkError>> + Send>>;

/// A distributed log that stores records and acknowledges each one.
pub trait Sink: Send {
    /// Sends `record` and returns its acknowledgement, to be awaited later: several records
    /// are in flight at once.
    ///
    /// Sending a record again (after a [`SinkError::Transient`]) with the same
    /// [`Record::id`] must not store it twice. With `after` (the id of the record sent just
    /// before this one), the log must refuse the record with [`SinkError::OutOfOrder`]
    /// unless that record is the last one it stored, so that a record lost on a broken
    /// connection is never overtaken by a later one (JetStream: `Nats-Expected-Last-Msg-Id`).
    fn publish(
        &mut self,
        record: &Record,
        after: Option<&str>,
    ) -> impl Future<Output = Result<PendingAck, SinkError>> + Send;

    /// A short description for logs (`nats://127.0.0.1:4222 stream ORDERS`).
    fn describe(&self) -> String;
}

/// Why a record was not stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth sending again with the same id: the acknowledgement timed out, the connection
    /// was lost, the log is electing a leader.
    #[error("{message}")]
    Transient {
        /// What happened.
        message: String,
    },
    /// The record was sent after a record that is not the log's last: not stored.
    #[error("{message}")]
    OutOfOrder {
        /// What the log said.
        message: String,
    },
    /// Sending again will not help: the log refused the record (no stream captures its
    /// subject, the stream is full, the record is too large, permissions).
    #[error("{message}{}", hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Refused {
        /// What the log said.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
}

impl SinkError {
    /// The log's last record is not the one this record was sent after: the one before it
    /// was lost (or another publisher wrote in between). [`forward`] sends it again, and the
    /// rest after it.
    pub fn is_out_of_order(&self) -> bool {
        matches!(self, SinkError::OutOfOrder { .. })
    }

    /// Whether sending again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient { .. })
    }
}
