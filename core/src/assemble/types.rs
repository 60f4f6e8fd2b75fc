//! The configuration, events, batches and errors of a [`Pipeline`](super::Pipeline).

use super::KeyConfig;
use crate::lsn::Lsn;
use crate::model::{LogicalMessage, SourceChange};
use crate::pgoutput::{DecodeError, Oid, Xid};

/// The default [`PipelineConfig::max_batch_changes`].
pub const DEFAULT_MAX_BATCH_CHANGES: usize = 1000;

/// The default [`PipelineConfig::spill_threshold_bytes`]: 64 MiB (PostgreSQL's
/// `logical_decoding_work_mem` is 64 MB by default too).
pub const DEFAULT_SPILL_THRESHOLD_BYTES: usize = 64 << 20;

/// How a [`Pipeline`](super::Pipeline) assembles changes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// The most changes in one [`TransactionBatch`]; larger transactions are emitted as
    /// chunks. Default 1000; 0 counts as 1.
    pub max_batch_changes: usize,
    /// Element-id key columns per table (drasi-source-postgres's `table_keys`).
    pub keys: KeyConfig,
    /// Don't emit transactions without changes. Default true.
    pub skip_empty_transactions: bool,
    /// Decode and attach the old row (or old key) to updates. Default true; turning it off
    /// saves decoding every old value of REPLICA IDENTITY FULL tables.
    pub include_old_values: bool,
    /// The most memory, in bytes, the changes of streamed and prepared transactions may hold
    /// while they wait for their commit (they are held compactly, as the pgoutput bytes of
    /// their rows). Above it the largest such transaction spills to the
    /// [`SpillStore`](super::SpillStore) given with
    /// [`Pipeline::with_spill_store`](super::Pipeline::with_spill_store), and is read back at
    /// its commit one chunk at a time. `0` means no limit (nothing spills); without a store
    /// nothing spills either. Default [`DEFAULT_SPILL_THRESHOLD_BYTES`] (64 MiB).
    pub spill_threshold_bytes: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_batch_changes: DEFAULT_MAX_BATCH_CHANGES,
            keys: KeyConfig::default(),
            skip_empty_transactions: true,
            include_old_values: true,
            spill_threshold_bytes: DEFAULT_SPILL_THRESHOLD_BYTES,
        }
    }
}

impl PipelineConfig {
    /// Sets [`max_batch_changes`](Self::max_batch_changes).
    pub fn with_max_batch_changes(mut self, n: usize) -> Self {
        self.max_batch_changes = n;
        self
    }

    /// Sets [`keys`](Self::keys).
    pub fn with_keys(mut self, keys: KeyConfig) -> Self {
        self.keys = keys;
        self
    }

    /// Sets [`skip_empty_transactions`](Self::skip_empty_transactions).
    pub fn with_skip_empty_transactions(mut self, skip: bool) -> Self {
        self.skip_empty_transactions = skip;
        self
    }

    /// Sets [`include_old_values`](Self::include_old_values).
    pub fn with_include_old_values(mut self, include: bool) -> Self {
        self.include_old_values = include;
        self
    }

    /// Sets [`spill_threshold_bytes`](Self::spill_threshold_bytes).
    pub fn with_spill_threshold_bytes(mut self, bytes: usize) -> Self {
        self.spill_threshold_bytes = bytes;
        self
    }
}

/// How a transaction reached the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionKind {
    /// Begin … Commit.
    Plain,
    /// Stream blocks, then Stream Commit.
    Streamed,
    /// Begin Prepare … Prepare (or stream blocks and Stream Prepare), then Commit Prepared.
    TwoPhase,
}

/// The changes of one committed transaction, or one chunk of them.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionBatch {
    /// Top-level transaction id.
    pub xid: Xid,
    /// The LSN of the commit record (for two-phase, the COMMIT PREPARED record).
    pub commit_lsn: Lsn,
    /// The end of the commit record — the LSN to acknowledge — on the **last chunk only**;
    /// `None` on every earlier chunk, which must never be acknowledged.
    pub end_lsn: Option<Lsn>,
    /// Commit timestamp in nanoseconds since the Unix epoch.
    pub commit_time_ns: u64,
    /// The replication origin the transaction came from, if any.
    pub origin: Option<String>,
    /// How the transaction arrived.
    pub kind: TransactionKind,
    /// The global transaction id of a two-phase transaction.
    pub gid: Option<String>,
    /// A Commit Prepared arrived for a prepare this pipeline never received (it was prepared,
    /// and acknowledged, in an earlier session): `changes` is empty and the transaction's
    /// changes were delivered — or lost — then.
    pub prepare_missing: bool,
    /// The changes, in order.
    pub changes: Vec<SourceChange>,
    /// Whether this is the transaction's first chunk.
    pub first_chunk: bool,
    /// Whether this is the transaction's last chunk (then `end_lsn` is set).
    pub last_chunk: bool,
    /// The chunk's position in the transaction, from 0.
    pub chunk_index: u32,
}

impl TransactionBatch {
    /// A whole batch of changes outside any transaction (a non-transactional message, rows
    /// given by a bootstrap provider): xid 0 at `lsn`, no end LSN, so nothing to
    /// acknowledge.
    pub fn outside_transaction(lsn: Lsn, changes: Vec<SourceChange>) -> Self {
        TransactionBatch {
            xid: Xid(0),
            commit_lsn: lsn,
            end_lsn: None,
            commit_time_ns: 0,
            origin: None,
            kind: TransactionKind::Plain,
            gid: None,
            prepare_missing: false,
            changes,
            first_chunk: true,
            last_chunk: true,
            chunk_index: 0,
        }
    }

    /// The LSN to acknowledge once this batch is processed: `end_lsn` of a last chunk, `None`
    /// for the others.
    pub fn ack_lsn(&self) -> Option<Lsn> {
        if self.last_chunk { self.end_lsn } else { None }
    }

    /// Whether the batch is a whole transaction (first and last chunk).
    pub fn is_whole(&self) -> bool {
        self.first_chunk && self.last_chunk
    }
}

/// What a [`Pipeline`](super::Pipeline) reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PipelineEvent {
    /// A committed transaction, or one chunk of it.
    Transaction(TransactionBatch),
    /// A non-transactional logical message, delivered at once (even if its transaction later
    /// aborts).
    Message(LogicalMessage),
    /// A transaction cut short by [`Pipeline::reset`](super::Pipeline::reset) after some of its chunks were emitted.
    /// The server sends it again, whole, after reconnecting: discard those chunks.
    IncompleteTransaction {
        /// Top-level transaction id.
        xid: Xid,
        /// How many chunks were emitted.
        chunks_emitted: u32,
    },
    /// Something the operator should know (a table without a key, a configured key column
    /// that does not exist …). Processing continues.
    Warning(String),
}

/// Counters of a [`Pipeline`](super::Pipeline).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// pgoutput messages handled.
    pub messages: u64,
    /// Transactions completed: emitted, skipped as empty, or prepared and rolled back.
    pub transactions: u64,
    /// Changes assembled (including ones later discarded by an abort or rollback).
    pub changes: u64,
    /// Values kept as text because they did not decode as their type.
    pub fallback_values: u64,
    /// Element ids generated for tables without a key.
    pub generated_ids: u64,
    /// Changes discarded by stream aborts and rollbacks of prepared transactions.
    pub discarded_changes: u64,
    /// Times a held (streamed or prepared) transaction's records were written to its spill
    /// file.
    pub spills: u64,
    /// Bytes written to spill files.
    pub spilled_bytes: u64,
}

/// Why a message could not be assembled.
///
/// Every variant means the stream does not follow the pgoutput protocol as this pipeline
/// understands it, so the session cannot continue safely: stop streaming, [`reset`] the
/// pipeline, and restart replication from the last acknowledged LSN.
///
/// [`reset`]: super::Pipeline::reset
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// The payload is not a valid pgoutput message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A change refers to a relation no Relation message described.
    #[error(
        "protocol violation: {message} for relation OID {oid}, which no Relation message \
         described; restart replication from the last acknowledged LSN"
    )]
    UnknownRelation {
        /// The message.
        message: &'static str,
        /// The relation OID.
        oid: Oid,
    },
    /// A tuple's width differs from its relation's column count.
    #[error(
        "protocol violation: {message} tuple has {got} columns but relation {oid} has \
         {expected}; restart replication from the last acknowledged LSN"
    )]
    ColumnCount {
        /// The message.
        message: &'static str,
        /// The relation OID.
        oid: Oid,
        /// Columns of the relation.
        expected: usize,
        /// Columns in the tuple.
        got: usize,
    },
    /// A change or transactional message arrived outside any transaction.
    #[error(
        "protocol violation: {message} outside a transaction; restart replication from the \
         last acknowledged LSN"
    )]
    OutsideTransaction {
        /// The message.
        message: &'static str,
    },
    /// A transaction-control message arrived in the wrong state.
    #[error(
        "protocol violation: unexpected {message}: {reason}; restart replication from the \
         last acknowledged LSN"
    )]
    Unexpected {
        /// The message.
        message: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// A held transaction could not be spilled or read back (a full disk, a spill file
    /// removed). The transaction is sent again after a reconnect.
    #[error(
        "could not {action} the changes of a held transaction ({kind:?}: {detail}); free disk \
         space in the spill directory, or raise the spill threshold"
    )]
    Spill {
        /// `"spill"` or `"read back"`.
        action: &'static str,
        /// The I/O error's kind.
        kind: std::io::ErrorKind,
        /// The I/O error.
        detail: String,
    },
    /// A stream message names a streamed transaction whose first block was not received.
    #[error(
        "protocol violation: {message} for streamed transaction {xid} whose first block was \
         not received; restart replication from the last acknowledged LSN"
    )]
    UnknownStream {
        /// The message.
        message: &'static str,
        /// Top-level xid.
        xid: Xid,
    },
}
