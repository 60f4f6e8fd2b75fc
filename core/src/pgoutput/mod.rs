//! The `pgoutput` logical decoding plugin: every message of protocol versions 1–4.
//!
//! Decoding is two layers, matching the wire:
//!
//! 1. [`parse_copy_data`] splits a CopyData payload from the walsender into XLogData (`w`) or a
//!    primary keepalive (`k`). [`StandbyStatusUpdate::encode`] writes the client's `r` reply.
//! 2. [`Decoder::decode`] turns the payload of one XLogData into a [`PgOutputMessage`]. The
//!    decoder is stateful only in one respect: it tracks whether a Stream Start … Stream Stop
//!    block is open, because inside one every R/Y/I/U/D/T/M carries a leading xid.
//!
//! Row data is zero-copy: a [`TupleData`] keeps one reference-counted slice of the frame and a
//! small table of column offsets, so decoding an Insert costs one `Vec` allocation and no
//! string allocation (none at all inside the [`Pipeline`](crate::assemble::Pipeline), which
//! hands the offset tables back to its decoder for reuse). Relation and Type messages (rare) own their strings; feed them to a
//! [`RelationCache`] and [`TypeCache`], which accept identical repeats as no change.
//!
//! ```
//! use bytes::Bytes;
//! use pgcdc_core::pgoutput::{parse_copy_data, Decoder, PgOutputMessage, ReplicationMessage};
//!
//! let mut decoder = Decoder::new();
//! // A CopyData payload: 'w', wal_start, wal_end, send_time, then a pgoutput Begin.
//! let mut frame = vec![b'w'];
//! frame.extend_from_slice(&0x19428C8u64.to_be_bytes());
//! frame.extend_from_slice(&0x19428C8u64.to_be_bytes());
//! frame.extend_from_slice(&0i64.to_be_bytes());
//! frame.push(b'B');
//! frame.extend_from_slice(&0x1942A38u64.to_be_bytes());
//! frame.extend_from_slice(&0i64.to_be_bytes());
//! frame.extend_from_slice(&752u32.to_be_bytes());
//!
//! match parse_copy_data(Bytes::from(frame))? {
//!     ReplicationMessage::XLogData { data, .. } => match decoder.decode(data)? {
//!         PgOutputMessage::Begin { xid, .. } => assert_eq!(xid.0, 752),
//!         other => panic!("unexpected {other:?}"),
//!     },
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), pgcdc_core::pgoutput::DecodeError>(())
//! ```

use std::fmt;

mod decoder;
pub mod encode;
mod error;
mod messages;
mod reader;
mod relation;
mod tuple;
mod xlog;

pub use decoder::Decoder;
pub(crate) use decoder::{RowHead, RowMessage};
pub use error::{DecodeError, EncodeError};
pub use messages::{Column, OldTuple, PgOutputMessage, RelationBody, ReplicaIdentity};
pub use relation::{RelationCache, SchemaChange, SchemaDiff, TypeCache, TypeInfo};
pub(crate) use tuple::{Cell, TupleReader, TupleRef};
pub use tuple::{ColumnValue, TupleData, TupleIter};
pub use xlog::{ReplicationMessage, StandbyStatusUpdate, parse_copy_data};

/// A PostgreSQL object identifier: a relation or type OID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub u32);

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for Oid {
    fn from(v: u32) -> Self {
        Oid(v)
    }
}

impl From<Oid> for u32 {
    fn from(v: Oid) -> Self {
        v.0
    }
}

/// A PostgreSQL transaction id (32 bits, without epoch).
///
/// `Ord` is plain numeric order, for use as a map key. It is **not** PostgreSQL's
/// wraparound-aware "older than" comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xid(pub u32);

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for Xid {
    fn from(v: u32) -> Self {
        Xid(v)
    }
}

impl From<Xid> for u32 {
    fn from(v: Xid) -> Self {
        v.0
    }
}
