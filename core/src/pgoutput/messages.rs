//! The pgoutput message types.

use bytes::Bytes;

use super::tuple::TupleData;
use super::{Oid, Xid};
use crate::lsn::Lsn;

/// One pgoutput message (the payload of one XLogData), protocol versions 1–4.
///
/// Timestamps are `i64` microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's epoch).
///
/// `xid: Option<Xid>` on Relation, Type, Insert, Update, Delete, Truncate and Message is
/// `Some` only inside a Stream Start … Stream Stop block, where it is the xid of the
/// **(sub)transaction** that made the change, not necessarily the top-level one.
///
/// The `flags` fields of Commit, Stream Commit, Prepare, Commit Prepared, Rollback Prepared and
/// Stream Prepare are always 0 after decoding: the decoder rejects other values as a newer
/// protocol. They are kept so encoders can write them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgOutputMessage {
    /// `B`: a transaction starts.
    Begin {
        /// The LSN of the commit record (equals the Commit's `commit_lsn`).
        final_lsn: Lsn,
        /// Commit time.
        commit_time: i64,
        /// Top-level transaction id.
        xid: Xid,
    },
    /// `C`: the transaction commits.
    Commit {
        /// Always 0.
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: Lsn,
        /// The end of the commit record: **the LSN to acknowledge** and resume from.
        end_lsn: Lsn,
        /// Commit time.
        commit_time: i64,
    },
    /// `O`: the transaction came from a replication origin.
    Origin {
        /// The commit LSN on the origin server (0 after a Stream Start).
        origin_lsn: Lsn,
        /// The origin's name.
        name: String,
    },
    /// `R`: a relation's schema (sent repeatedly; upsert it into a
    /// [`RelationCache`](super::RelationCache)).
    Relation(RelationBody),
    /// `Y`: a non-built-in type used by a published column.
    Type {
        /// The changing (sub)transaction, inside a stream block only.
        xid: Option<Xid>,
        /// The type OID (a domain's own OID).
        oid: Oid,
        /// Namespace; `""` means pg_catalog.
        namespace: String,
        /// Type name (for a domain, the base type's name).
        name: String,
    },
    /// `I`: a row was inserted.
    Insert {
        /// The changing (sub)transaction, inside a stream block only.
        xid: Option<Xid>,
        /// The relation.
        rel: Oid,
        /// The new row.
        new: TupleData,
    },
    /// `U`: a row was updated.
    Update {
        /// The changing (sub)transaction, inside a stream block only.
        xid: Option<Xid>,
        /// The relation.
        rel: Oid,
        /// The old key (`K`, only when a key column changed) or old row (`O`, REPLICA
        /// IDENTITY FULL).
        old: Option<OldTuple>,
        /// The new row; `UnchangedToast` columns keep their previous value.
        new: TupleData,
    },
    /// `D`: a row was deleted.
    Delete {
        /// The changing (sub)transaction, inside a stream block only.
        xid: Option<Xid>,
        /// The relation.
        rel: Oid,
        /// The old key (`K`) or old row (`O`).
        old: OldTuple,
    },
    /// `T`: relations were truncated.
    Truncate {
        /// The changing (sub)transaction, inside a stream block only.
        xid: Option<Xid>,
        /// The truncated relations.
        relations: Vec<Oid>,
        /// `TRUNCATE … CASCADE`.
        cascade: bool,
        /// `TRUNCATE … RESTART IDENTITY`.
        restart_identity: bool,
    },
    /// `M`: a logical decoding message (`pg_logical_emit_message`, option `messages`).
    Message {
        /// The emitting (sub)transaction, inside a stream block only.
        xid: Option<Xid>,
        /// Transactional messages sit inside their transaction; non-transactional ones arrive
        /// on their own, possibly before their transaction's Begin, even if it aborts.
        transactional: bool,
        /// The message's LSN.
        lsn: Lsn,
        /// The prefix given to `pg_logical_emit_message`.
        prefix: String,
        /// The content, a zero-copy slice of the frame.
        content: Bytes,
    },
    /// `S`: a block of a streamed in-progress transaction starts.
    StreamStart {
        /// Top-level transaction id.
        xid: Xid,
        /// Whether this is the transaction's first block.
        first_segment: bool,
    },
    /// `E`: the current stream block ends.
    StreamStop,
    /// `c`: a streamed transaction commits.
    StreamCommit {
        /// Top-level transaction id.
        xid: Xid,
        /// Always 0.
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: Lsn,
        /// The end of the commit record: the LSN to acknowledge.
        end_lsn: Lsn,
        /// Commit time.
        commit_time: i64,
    },
    /// `A`: a streamed transaction, or one of its subtransactions, aborts.
    StreamAbort {
        /// Top-level transaction id.
        xid: Xid,
        /// The aborted subtransaction; equal to `xid` when the whole transaction aborts.
        subxid: Xid,
        /// The abort LSN (proto 4 with `streaming 'parallel'` only).
        abort_lsn: Option<Lsn>,
        /// The abort time (proto 4 with `streaming 'parallel'` only).
        abort_time: Option<i64>,
    },
    /// `b`: a transaction being prepared (two-phase) starts.
    BeginPrepare {
        /// The LSN of the prepare record.
        prepare_lsn: Lsn,
        /// The end of the prepare record.
        end_lsn: Lsn,
        /// Prepare time.
        prepare_time: i64,
        /// Transaction id.
        xid: Xid,
        /// The global transaction identifier given to `PREPARE TRANSACTION`.
        gid: String,
    },
    /// `P`: the transaction is prepared.
    Prepare {
        /// Always 0.
        flags: u8,
        /// The LSN of the prepare record.
        prepare_lsn: Lsn,
        /// The end of the prepare record: the LSN to acknowledge.
        end_lsn: Lsn,
        /// Prepare time.
        prepare_time: i64,
        /// Transaction id.
        xid: Xid,
        /// Global transaction identifier.
        gid: String,
    },
    /// `K`: a prepared transaction commits.
    CommitPrepared {
        /// Always 0.
        flags: u8,
        /// The LSN of the commit-prepared record.
        commit_lsn: Lsn,
        /// The end of that record: the LSN to acknowledge.
        end_lsn: Lsn,
        /// Commit time.
        commit_time: i64,
        /// Transaction id.
        xid: Xid,
        /// Global transaction identifier.
        gid: String,
    },
    /// `r`: a prepared transaction rolls back.
    RollbackPrepared {
        /// Always 0.
        flags: u8,
        /// The end LSN of the prepare, to tell whether that prepare was ever received.
        prepare_end_lsn: Lsn,
        /// The end of the rollback record: the LSN to acknowledge.
        rollback_end_lsn: Lsn,
        /// Prepare time.
        prepare_time: i64,
        /// Rollback time.
        rollback_time: i64,
        /// Transaction id.
        xid: Xid,
        /// Global transaction identifier.
        gid: String,
    },
    /// `p`: a streamed transaction is prepared.
    StreamPrepare {
        /// Always 0.
        flags: u8,
        /// The LSN of the prepare record.
        prepare_lsn: Lsn,
        /// The end of the prepare record: the LSN to acknowledge.
        end_lsn: Lsn,
        /// Prepare time.
        prepare_time: i64,
        /// Transaction id.
        xid: Xid,
        /// Global transaction identifier.
        gid: String,
    },
}

impl PgOutputMessage {
    /// The wire type byte (`B`, `C`, `R`, …).
    pub fn type_byte(&self) -> u8 {
        match self {
            PgOutputMessage::Begin { .. } => b'B',
            PgOutputMessage::Commit { .. } => b'C',
            PgOutputMessage::Origin { .. } => b'O',
            PgOutputMessage::Relation(_) => b'R',
            PgOutputMessage::Type { .. } => b'Y',
            PgOutputMessage::Insert { .. } => b'I',
            PgOutputMessage::Update { .. } => b'U',
            PgOutputMessage::Delete { .. } => b'D',
            PgOutputMessage::Truncate { .. } => b'T',
            PgOutputMessage::Message { .. } => b'M',
            PgOutputMessage::StreamStart { .. } => b'S',
            PgOutputMessage::StreamStop => b'E',
            PgOutputMessage::StreamCommit { .. } => b'c',
            PgOutputMessage::StreamAbort { .. } => b'A',
            PgOutputMessage::BeginPrepare { .. } => b'b',
            PgOutputMessage::Prepare { .. } => b'P',
            PgOutputMessage::CommitPrepared { .. } => b'K',
            PgOutputMessage::RollbackPrepared { .. } => b'r',
            PgOutputMessage::StreamPrepare { .. } => b'p',
        }
    }

    /// The message's name, as PostgreSQL's documentation spells it.
    pub fn name(&self) -> &'static str {
        message_name(self.type_byte()).unwrap_or("unknown")
    }

    /// The stream-block xid prefix of a Relation, Type, Insert, Update, Delete, Truncate or
    /// Message: `Some` only inside a stream block.
    pub fn stream_xid(&self) -> Option<Xid> {
        match self {
            PgOutputMessage::Relation(r) => r.xid,
            PgOutputMessage::Type { xid, .. }
            | PgOutputMessage::Insert { xid, .. }
            | PgOutputMessage::Update { xid, .. }
            | PgOutputMessage::Delete { xid, .. }
            | PgOutputMessage::Truncate { xid, .. }
            | PgOutputMessage::Message { xid, .. } => *xid,
            _ => None,
        }
    }
}

/// The name of the message with this type byte.
pub(crate) fn message_name(byte: u8) -> Option<&'static str> {
    Some(match byte {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        b'S' => "Stream Start",
        b'E' => "Stream Stop",
        b'c' => "Stream Commit",
        b'A' => "Stream Abort",
        b'b' => "Begin Prepare",
        b'P' => "Prepare",
        b'K' => "Commit Prepared",
        b'r' => "Rollback Prepared",
        b'p' => "Stream Prepare",
        _ => return None,
    })
}

/// The old-row part of an Update or Delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OldTuple {
    /// `K`: the replica-identity key. Full width: non-key columns are sent as NULL.
    Key(TupleData),
    /// `O`: the whole old row (REPLICA IDENTITY FULL), TOASTed values included.
    Full(TupleData),
}

impl OldTuple {
    /// The tuple, whichever kind it is.
    #[inline]
    pub fn tuple(&self) -> &TupleData {
        match self {
            OldTuple::Key(t) | OldTuple::Full(t) => t,
        }
    }

    /// The tuple, whichever kind it is, by value.
    #[inline]
    pub(crate) fn into_tuple(self) -> TupleData {
        match self {
            OldTuple::Key(t) | OldTuple::Full(t) => t,
        }
    }

    /// The wire marker byte: `K` or `O`.
    #[inline]
    pub fn marker(&self) -> u8 {
        match self {
            OldTuple::Key(_) => b'K',
            OldTuple::Full(_) => b'O',
        }
    }
}

/// A relation's replica identity, which decides what old-row data Update and Delete carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicaIdentity {
    /// `d`: the primary key.
    Default,
    /// `n`: nothing (Update and Delete are not published).
    Nothing,
    /// `f`: the whole row.
    Full,
    /// `i`: the columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    /// From the wire byte (`d`, `n`, `f`, `i`).
    pub fn from_byte(b: u8) -> Option<ReplicaIdentity> {
        match b {
            b'd' => Some(ReplicaIdentity::Default),
            b'n' => Some(ReplicaIdentity::Nothing),
            b'f' => Some(ReplicaIdentity::Full),
            b'i' => Some(ReplicaIdentity::Index),
            _ => None,
        }
    }

    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            ReplicaIdentity::Default => b'd',
            ReplicaIdentity::Nothing => b'n',
            ReplicaIdentity::Full => b'f',
            ReplicaIdentity::Index => b'i',
        }
    }
}

/// One published column of a [`RelationBody`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Column {
    /// Column flags as sent; bit 0 ([`Column::KEY_FLAG`]) marks a replica-identity key column.
    pub flags: u8,
    /// Column name.
    pub name: String,
    /// The column's type OID (see the Type messages for OIDs ≥ 10000).
    pub type_oid: Oid,
    /// The type modifier (`atttypmod`), −1 for none.
    pub type_modifier: i32,
}

impl Column {
    /// The flag bit marking a replica-identity key column.
    pub const KEY_FLAG: u8 = 1;

    /// Whether the column is part of the replica-identity key (every column with FULL).
    #[inline]
    pub fn is_key(&self) -> bool {
        self.flags & Self::KEY_FLAG != 0
    }
}

/// The body of a Relation (`R`) message: a relation's published schema as of its WAL position.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelationBody {
    /// The changing (sub)transaction, inside a stream block only.
    pub xid: Option<Xid>,
    /// The relation's OID, the key that Insert/Update/Delete/Truncate refer to.
    pub oid: Oid,
    /// Namespace (schema); `""` means pg_catalog.
    pub namespace: String,
    /// Relation name.
    pub name: String,
    /// Replica identity.
    pub replica_identity: ReplicaIdentity,
    /// The published columns, in the order TupleData sends them.
    pub columns: Vec<Column>,
}

impl RelationBody {
    /// The namespace, with the empty string PostgreSQL sends for pg_catalog spelled out.
    pub fn schema(&self) -> &str {
        if self.namespace.is_empty() {
            "pg_catalog"
        } else {
            &self.namespace
        }
    }

    /// The position of the column with this name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The replica-identity key columns with their positions.
    pub fn key_columns(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns.iter().enumerate().filter(|(_, c)| c.is_key())
    }

    /// Whether `other` describes the same schema, ignoring the stream xid.
    pub fn same_schema(&self, other: &RelationBody) -> bool {
        self.oid == other.oid
            && self.namespace == other.namespace
            && self.name == other.name
            && self.replica_identity == other.replica_identity
            && self.columns == other.columns
    }
}
