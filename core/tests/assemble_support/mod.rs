//! Helpers shared by the assemble tests: building pgoutput messages and feeding a pipeline.
#![allow(dead_code, unused_imports, missing_docs)]

use bytes::BytesMut;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::{
    AssembleError, Pipeline, PipelineConfig, PipelineEvent, TransactionBatch,
};
use pgcdc_core::model::SourceChange;
use pgcdc_core::pgoutput::{
    Column, ColumnValue, Oid, OldTuple, PgOutputMessage, RelationBody, ReplicaIdentity, TupleData,
    Xid, encode,
};

pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const NUMERIC: u32 = 1700;

/// A column value for [`tup`].
#[derive(Clone, Copy, Debug)]
pub enum V<'a> {
    /// Text.
    T(&'a str),
    /// Binary.
    B(&'a [u8]),
    /// NULL.
    N,
    /// Unchanged TOAST.
    U,
}

pub use V::{N, T, U};

pub fn tup(values: &[V<'_>]) -> TupleData {
    TupleData::from_values(values.iter().map(|v| match *v {
        V::T(s) => ColumnValue::Text(s.as_bytes()),
        V::B(b) => ColumnValue::Binary(b),
        V::N => ColumnValue::Null,
        V::U => ColumnValue::UnchangedToast,
    }))
    .unwrap()
}

pub fn col(name: &str, type_oid: u32, key: bool) -> Column {
    Column {
        flags: u8::from(key),
        name: name.into(),
        type_oid: Oid(type_oid),
        type_modifier: -1,
    }
}

pub fn relation(
    oid: u32,
    namespace: &str,
    name: &str,
    identity: ReplicaIdentity,
    columns: Vec<Column>,
) -> PgOutputMessage {
    PgOutputMessage::Relation(RelationBody {
        xid: None,
        oid: Oid(oid),
        namespace: namespace.into(),
        name: name.into(),
        replica_identity: identity,
        columns,
    })
}

/// `public.users (id int4 PK, name text, big text)`, identity DEFAULT, OID 100.
pub fn users() -> PgOutputMessage {
    relation(
        100,
        "public",
        "users",
        ReplicaIdentity::Default,
        vec![
            col("id", INT4, true),
            col("name", TEXT, false),
            col("big", TEXT, false),
        ],
    )
}

/// `public.items (id int4, name text, big text)`, identity FULL (every column flagged), OID 200.
pub fn items_full() -> PgOutputMessage {
    relation(
        200,
        "public",
        "items",
        ReplicaIdentity::Full,
        vec![
            col("id", INT4, true),
            col("name", TEXT, true),
            col("big", TEXT, true),
        ],
    )
}

pub fn begin(xid: u32, final_lsn: u64, commit_time: i64) -> PgOutputMessage {
    PgOutputMessage::Begin {
        final_lsn: Lsn(final_lsn),
        commit_time,
        xid: Xid(xid),
    }
}

pub fn commit(commit_lsn: u64, end_lsn: u64, commit_time: i64) -> PgOutputMessage {
    PgOutputMessage::Commit {
        flags: 0,
        commit_lsn: Lsn(commit_lsn),
        end_lsn: Lsn(end_lsn),
        commit_time,
    }
}

pub fn insert(rel: u32, new: &[V<'_>]) -> PgOutputMessage {
    PgOutputMessage::Insert {
        xid: None,
        rel: Oid(rel),
        new: tup(new),
    }
}

pub fn insert_in(xid: u32, rel: u32, new: &[V<'_>]) -> PgOutputMessage {
    PgOutputMessage::Insert {
        xid: Some(Xid(xid)),
        rel: Oid(rel),
        new: tup(new),
    }
}

pub fn update(rel: u32, old: Option<OldTuple>, new: &[V<'_>]) -> PgOutputMessage {
    PgOutputMessage::Update {
        xid: None,
        rel: Oid(rel),
        old,
        new: tup(new),
    }
}

pub fn key(values: &[V<'_>]) -> OldTuple {
    OldTuple::Key(tup(values))
}

pub fn full(values: &[V<'_>]) -> OldTuple {
    OldTuple::Full(tup(values))
}

pub fn delete(rel: u32, old: OldTuple) -> PgOutputMessage {
    PgOutputMessage::Delete {
        xid: None,
        rel: Oid(rel),
        old,
    }
}

/// A pipeline fed with encoded messages, as a driver would.
pub struct Feed {
    pub p: Pipeline,
    wal: u64,
}

impl Feed {
    pub fn new(config: PipelineConfig) -> Self {
        Feed::with(Pipeline::new("src", config))
    }

    pub fn with(p: Pipeline) -> Self {
        Feed { p, wal: 0x1000 }
    }

    pub fn default_config() -> Self {
        Feed::new(PipelineConfig::default())
    }

    /// Encodes and feeds one message.
    pub fn send(&mut self, msg: &PgOutputMessage) -> Result<(), AssembleError> {
        let mut buf = BytesMut::new();
        encode::message(msg, &mut buf).unwrap();
        self.wal += 0x10;
        self.p
            .handle_xlog(&buf.freeze(), Lsn(self.wal), Lsn(self.wal))
    }

    /// Feeds messages that must be accepted.
    pub fn ok(&mut self, msgs: &[PgOutputMessage]) {
        for m in msgs {
            self.send(m)
                .unwrap_or_else(|e| panic!("{} refused: {e}", m.name()));
        }
    }

    pub fn events(&mut self) -> Vec<PipelineEvent> {
        std::iter::from_fn(|| self.p.poll_event()).collect()
    }

    /// Drains events, returning the batches and panicking on anything else but warnings,
    /// which are returned separately.
    pub fn drain(&mut self) -> (Vec<TransactionBatch>, Vec<String>) {
        let mut batches = Vec::new();
        let mut warnings = Vec::new();
        for e in self.events() {
            match e {
                PipelineEvent::Transaction(b) => batches.push(b),
                PipelineEvent::Warning(w) => warnings.push(w),
                other => panic!("unexpected event {other:?}"),
            }
        }
        (batches, warnings)
    }

    /// Drains events that must be exactly batches.
    pub fn batches(&mut self) -> Vec<TransactionBatch> {
        let (b, w) = self.drain();
        assert!(w.is_empty(), "unexpected warnings {w:?}");
        b
    }

    /// Drains events that must be one whole batch, and returns its changes.
    pub fn one_txn(&mut self) -> Vec<SourceChange> {
        let mut b = self.batches();
        assert_eq!(b.len(), 1, "expected one batch, got {b:?}");
        let b = b.remove(0);
        assert!(b.is_whole());
        b.changes
    }
}

/// The element ids of a list of changes, with the kind: `insert users:1`.
pub fn summary(changes: &[SourceChange]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c.element_id() {
            Some(id) => format!("{} {id}", c.kind()),
            None => c.kind().to_owned(),
        })
        .collect()
}
