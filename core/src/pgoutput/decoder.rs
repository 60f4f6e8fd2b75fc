//! The stateful pgoutput message decoder.

use bytes::Bytes;

use super::error::DecodeError;
use super::messages::{Column, OldTuple, PgOutputMessage, RelationBody, ReplicaIdentity};
use super::reader::Reader;
use super::tuple::{CellPool, RawTuple, TupleData, parse_tuple};
use super::{Oid, Xid};

/// Message flag bit: the `M` message is transactional.
const MESSAGE_TRANSACTIONAL: u8 = 1;
/// Truncate option bits.
const TRUNCATE_CASCADE: u8 = 1;
const TRUNCATE_RESTART_IDENTITY: u8 = 2;
/// The least a Relation column can take: flags, an empty name's NUL, type OID, typmod.
const MIN_COLUMN_LEN: usize = 1 + 1 + 4 + 4;

/// Decodes pgoutput messages, one XLogData payload at a time.
///
/// Its only state is whether a Stream Start … Stream Stop block is open (and for which xid):
/// inside a block, Relation, Type, Insert, Update, Delete, Truncate and Message carry a leading
/// xid, outside they do not, whatever `proto_version` was requested. The decoder refuses a
/// Stream Start inside a block, a Stream Stop outside one, and transaction-control messages
/// (Begin, Commit, the stream ends, two-phase messages) inside one, since any of those means it
/// has lost track. A failed decode leaves the state unchanged.
///
/// Use one decoder per replication session; call [`reset`](Decoder::reset) (or make a new one)
/// after a reconnect.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    stream: Option<Xid>,
    /// Cell tables given back with [`recycle`](Decoder::recycle).
    pool: CellPool,
}

impl Decoder {
    /// A decoder outside any stream block.
    pub fn new() -> Self {
        Decoder {
            stream: None,
            pool: CellPool::default(),
        }
    }

    /// The top-level xid of the open stream block, if one is open.
    #[inline]
    pub fn stream_xid(&self) -> Option<Xid> {
        self.stream
    }

    /// Whether a stream block is open.
    #[inline]
    pub fn in_stream_block(&self) -> bool {
        self.stream.is_some()
    }

    /// Forgets any open stream block, as at the start of a new session.
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Takes back a tuple that is no longer needed, so that the next one decoded reuses its
    /// table of column offsets instead of allocating one.
    #[inline]
    pub(crate) fn recycle(&mut self, tuple: TupleData) {
        self.pool.put(tuple);
    }

    /// Decodes one pgoutput message: the `data` of one XLogData.
    ///
    /// Tuple values and Message content are zero-copy slices of `payload`.
    pub fn decode(&mut self, payload: Bytes) -> Result<PgOutputMessage, DecodeError> {
        let Some(&tag) = payload.first() else {
            return Err(DecodeError::Empty { layer: "pgoutput" });
        };
        let xid_prefix = self.stream.is_some();
        match tag {
            b'I' => decode_insert(payload, xid_prefix, &mut self.pool),
            b'U' => decode_update(payload, xid_prefix, &mut self.pool),
            b'D' => decode_delete(payload, xid_prefix, &mut self.pool),
            b'B' => {
                self.outside_stream("Begin")?;
                let mut r = Reader::new(&payload, 1, "Begin");
                let msg = PgOutputMessage::Begin {
                    final_lsn: r.lsn()?,
                    commit_time: r.i64()?,
                    xid: r.xid()?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'C' => {
                self.outside_stream("Commit")?;
                let mut r = Reader::new(&payload, 1, "Commit");
                let msg = PgOutputMessage::Commit {
                    flags: zero_flags(&mut r)?,
                    commit_lsn: r.lsn()?,
                    end_lsn: r.lsn()?,
                    commit_time: r.i64()?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'O' => {
                let mut r = Reader::new(&payload, 1, "Origin");
                let msg = PgOutputMessage::Origin {
                    origin_lsn: r.lsn()?,
                    name: r.string("origin name")?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'R' => decode_relation(&payload, xid_prefix),
            b'Y' => {
                let mut r = Reader::new(&payload, 1, "Type");
                let msg = PgOutputMessage::Type {
                    xid: stream_xid(&mut r, xid_prefix)?,
                    oid: r.oid()?,
                    namespace: r.string("namespace")?,
                    name: r.string("type name")?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'T' => decode_truncate(&payload, xid_prefix),
            b'M' => decode_message(payload, xid_prefix),
            b'S' => {
                let mut r = Reader::new(&payload, 1, "Stream Start");
                let xid = r.xid()?;
                let at = r.pos();
                let first_segment = match r.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(r.invalid_byte("first-segment flag", other, at)),
                };
                r.finish()?;
                if let Some(open) = self.stream {
                    return Err(DecodeError::StreamAlreadyOpen { xid, open });
                }
                self.stream = Some(xid);
                Ok(PgOutputMessage::StreamStart { xid, first_segment })
            }
            b'E' => {
                Reader::new(&payload, 1, "Stream Stop").finish()?;
                if self.stream.take().is_none() {
                    return Err(DecodeError::StreamNotOpen);
                }
                Ok(PgOutputMessage::StreamStop)
            }
            b'c' => {
                self.outside_stream("Stream Commit")?;
                let mut r = Reader::new(&payload, 1, "Stream Commit");
                let msg = PgOutputMessage::StreamCommit {
                    xid: r.xid()?,
                    flags: zero_flags(&mut r)?,
                    commit_lsn: r.lsn()?,
                    end_lsn: r.lsn()?,
                    commit_time: r.i64()?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'A' => {
                self.outside_stream("Stream Abort")?;
                let mut r = Reader::new(&payload, 1, "Stream Abort");
                let xid = r.xid()?;
                let subxid = r.xid()?;
                // 8 bytes after the type: proto 2-3 form. 24 bytes: proto 4 with
                // `streaming 'parallel'`, which adds abort LSN and time. Only the length tells.
                let (abort_lsn, abort_time) = if r.remaining() == 0 {
                    (None, None)
                } else {
                    (Some(r.lsn()?), Some(r.i64()?))
                };
                r.finish()?;
                Ok(PgOutputMessage::StreamAbort {
                    xid,
                    subxid,
                    abort_lsn,
                    abort_time,
                })
            }
            b'b' => {
                self.outside_stream("Begin Prepare")?;
                let mut r = Reader::new(&payload, 1, "Begin Prepare");
                let msg = PgOutputMessage::BeginPrepare {
                    prepare_lsn: r.lsn()?,
                    end_lsn: r.lsn()?,
                    prepare_time: r.i64()?,
                    xid: r.xid()?,
                    gid: r.string("gid")?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'P' | b'p' => {
                let name = if tag == b'P' {
                    "Prepare"
                } else {
                    "Stream Prepare"
                };
                self.outside_stream(name)?;
                let mut r = Reader::new(&payload, 1, name);
                let flags = zero_flags(&mut r)?;
                let prepare_lsn = r.lsn()?;
                let end_lsn = r.lsn()?;
                let prepare_time = r.i64()?;
                let xid = r.xid()?;
                let gid = r.string("gid")?;
                r.finish()?;
                Ok(if tag == b'P' {
                    PgOutputMessage::Prepare {
                        flags,
                        prepare_lsn,
                        end_lsn,
                        prepare_time,
                        xid,
                        gid,
                    }
                } else {
                    PgOutputMessage::StreamPrepare {
                        flags,
                        prepare_lsn,
                        end_lsn,
                        prepare_time,
                        xid,
                        gid,
                    }
                })
            }
            b'K' => {
                self.outside_stream("Commit Prepared")?;
                let mut r = Reader::new(&payload, 1, "Commit Prepared");
                let msg = PgOutputMessage::CommitPrepared {
                    flags: zero_flags(&mut r)?,
                    commit_lsn: r.lsn()?,
                    end_lsn: r.lsn()?,
                    commit_time: r.i64()?,
                    xid: r.xid()?,
                    gid: r.string("gid")?,
                };
                r.finish()?;
                Ok(msg)
            }
            b'r' => {
                self.outside_stream("Rollback Prepared")?;
                let mut r = Reader::new(&payload, 1, "Rollback Prepared");
                let msg = PgOutputMessage::RollbackPrepared {
                    flags: zero_flags(&mut r)?,
                    prepare_end_lsn: r.lsn()?,
                    rollback_end_lsn: r.lsn()?,
                    prepare_time: r.i64()?,
                    rollback_time: r.i64()?,
                    xid: r.xid()?,
                    gid: r.string("gid")?,
                };
                r.finish()?;
                Ok(msg)
            }
            byte => Err(DecodeError::UnknownMessageType {
                layer: "pgoutput",
                byte,
            }),
        }
    }

    #[inline]
    fn outside_stream(&self, message: &'static str) -> Result<(), DecodeError> {
        match self.stream {
            None => Ok(()),
            Some(open) => Err(DecodeError::UnexpectedInStream { message, open }),
        }
    }
}

/// The leading xid of a change inside a stream block.
#[inline]
fn stream_xid(r: &mut Reader<'_>, present: bool) -> Result<Option<Xid>, DecodeError> {
    if present { r.xid().map(Some) } else { Ok(None) }
}

/// A flags byte that must be 0 (Commit, Stream Commit, Prepare, Commit/Rollback Prepared).
#[inline]
fn zero_flags(r: &mut Reader<'_>) -> Result<u8, DecodeError> {
    let at = r.pos();
    match r.u8()? {
        0 => Ok(0),
        flags => Err(r.unknown_flags(flags, at)),
    }
}

/// Expects the `N` marker of a new tuple.
#[inline]
fn expect_new(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let at = r.pos();
    match r.u8()? {
        b'N' => Ok(()),
        other => Err(r.invalid_byte("tuple marker (expected 'N')", other, at)),
    }
}

/// An Insert, or an Update that carries only its new tuple, read up to that tuple.
pub(crate) struct RowHead<'a> {
    /// An Update (else an Insert).
    pub(crate) update: bool,
    /// The (sub)transaction, inside a stream block.
    pub(crate) xid: Option<Xid>,
    /// The relation.
    pub(crate) rel: Oid,
    /// Positioned at the new tuple.
    pub(crate) reader: Reader<'a>,
}

/// A parsed Insert, Update or Delete whose tuples are not yet attached to the payload.
pub(crate) enum RowMessage {
    /// `I`.
    Insert {
        xid: Option<Xid>,
        rel: Oid,
        new: RawTuple,
    },
    /// `U`; the old tuple with whether it is a key (`K`) tuple.
    Update {
        xid: Option<Xid>,
        rel: Oid,
        old: Option<(bool, RawTuple)>,
        new: RawTuple,
    },
    /// `D`; whether the old tuple is a key (`K`) tuple.
    Delete {
        xid: Option<Xid>,
        rel: Oid,
        key: bool,
        old: RawTuple,
    },
}

impl RowMessage {
    /// The (sub)transaction, relation and message name.
    pub(crate) fn head(&self) -> (Option<Xid>, Oid, &'static str) {
        match self {
            RowMessage::Insert { xid, rel, .. } => (*xid, *rel, "Insert"),
            RowMessage::Update { xid, rel, .. } => (*xid, *rel, "Update"),
            RowMessage::Delete { xid, rel, .. } => (*xid, *rel, "Delete"),
        }
    }
}

impl Decoder {
    /// Gives the cell tables of a row message back.
    pub(crate) fn recycle_row(&mut self, row: RowMessage) {
        match row {
            RowMessage::Insert { new, .. } => self.recycle_cells(new),
            RowMessage::Update { old, new, .. } => {
                if let Some((_, old)) = old {
                    self.recycle_cells(old);
                }
                self.recycle_cells(new);
            }
            RowMessage::Delete { old, .. } => self.recycle_cells(old),
        }
    }

    /// Decodes an Insert, Update or Delete (`I`, `U`, `D`) without attaching its tuples to the
    /// payload: the caller reads them through [`RawTuple::view`] and gives their cell tables
    /// back with [`recycle_cells`](Self::recycle_cells). Errors are those of
    /// [`decode`](Self::decode); any other message type is refused as unknown.
    #[inline]
    pub(crate) fn decode_row(&mut self, payload: &[u8]) -> Result<RowMessage, DecodeError> {
        let xid_prefix = self.stream.is_some();
        match payload.first() {
            Some(b'I') => parse_insert(payload, xid_prefix, &mut self.pool)
                .map(|(xid, rel, new)| RowMessage::Insert { xid, rel, new }),
            Some(b'U') => parse_update(payload, xid_prefix, &mut self.pool)
                .map(|(xid, rel, old, new)| RowMessage::Update { xid, rel, old, new }),
            Some(b'D') => parse_delete(payload, xid_prefix, &mut self.pool)
                .map(|(xid, rel, key, old)| RowMessage::Delete { xid, rel, key, old }),
            Some(&byte) => Err(DecodeError::UnknownMessageType {
                layer: "pgoutput",
                byte,
            }),
            None => Err(DecodeError::Empty { layer: "pgoutput" }),
        }
    }

    /// Reads an Insert, or an Update without an old tuple, up to its new tuple, for the caller
    /// to read that tuple column by column. `None` for any other message, and for one whose
    /// header does not read: [`decode_row`](Self::decode_row) reads those whole (and reports
    /// what is wrong).
    #[inline]
    pub(crate) fn row_head<'a>(&self, payload: &'a [u8]) -> Option<RowHead<'a>> {
        let update = match payload.first() {
            Some(b'I') => false,
            Some(b'U') => true,
            _ => return None,
        };
        let mut reader = Reader::new(payload, 1, if update { "Update" } else { "Insert" });
        let xid = stream_xid(&mut reader, self.stream.is_some()).ok()?;
        let rel = reader.oid().ok()?;
        match reader.u8() {
            Ok(b'N') => Some(RowHead {
                update,
                xid,
                rel,
                reader,
            }),
            _ => None,
        }
    }

    /// Takes back the cell table of a tuple decoded by [`decode_row`](Self::decode_row).
    #[inline]
    pub(crate) fn recycle_cells(&mut self, tuple: RawTuple) {
        self.pool.put_cells(tuple.into_cells());
    }
}

#[inline]
fn parse_insert(
    payload: &[u8],
    xid_prefix: bool,
    pool: &mut CellPool,
) -> Result<(Option<Xid>, Oid, RawTuple), DecodeError> {
    let mut r = Reader::new(payload, 1, "Insert");
    let xid = stream_xid(&mut r, xid_prefix)?;
    let rel = r.oid()?;
    expect_new(&mut r)?;
    let new = parse_tuple(&mut r, pool)?;
    r.finish()?;
    Ok((xid, rel, new))
}

#[inline]
#[allow(clippy::type_complexity)]
fn parse_update(
    payload: &[u8],
    xid_prefix: bool,
    pool: &mut CellPool,
) -> Result<(Option<Xid>, Oid, Option<(bool, RawTuple)>, RawTuple), DecodeError> {
    let mut r = Reader::new(payload, 1, "Update");
    let xid = stream_xid(&mut r, xid_prefix)?;
    let rel = r.oid()?;
    let at = r.pos();
    let old = match r.u8()? {
        b'N' => None,
        marker @ (b'K' | b'O') => {
            let old = parse_tuple(&mut r, pool)?;
            expect_new(&mut r)?;
            Some((marker == b'K', old))
        }
        other => return Err(r.invalid_byte("tuple marker", other, at)),
    };
    let new = parse_tuple(&mut r, pool)?;
    r.finish()?;
    Ok((xid, rel, old, new))
}

#[inline]
fn parse_delete(
    payload: &[u8],
    xid_prefix: bool,
    pool: &mut CellPool,
) -> Result<(Option<Xid>, Oid, bool, RawTuple), DecodeError> {
    let mut r = Reader::new(payload, 1, "Delete");
    let xid = stream_xid(&mut r, xid_prefix)?;
    let rel = r.oid()?;
    let at = r.pos();
    let key = match r.u8()? {
        b'K' => true,
        b'O' => false,
        other => return Err(r.invalid_byte("tuple marker (expected 'K' or 'O')", other, at)),
    };
    let old = parse_tuple(&mut r, pool)?;
    r.finish()?;
    Ok((xid, rel, key, old))
}

fn decode_insert(
    payload: Bytes,
    xid_prefix: bool,
    pool: &mut CellPool,
) -> Result<PgOutputMessage, DecodeError> {
    let (xid, rel, new) = parse_insert(&payload, xid_prefix, pool)?;
    Ok(PgOutputMessage::Insert {
        xid,
        rel,
        new: new.attach(payload),
    })
}

fn decode_update(
    payload: Bytes,
    xid_prefix: bool,
    pool: &mut CellPool,
) -> Result<PgOutputMessage, DecodeError> {
    let (xid, rel, old, new) = parse_update(&payload, xid_prefix, pool)?;
    let old = old.map(|(key, t)| {
        let t = t.attach_ref(&payload);
        if key {
            OldTuple::Key(t)
        } else {
            OldTuple::Full(t)
        }
    });
    Ok(PgOutputMessage::Update {
        xid,
        rel,
        old,
        new: new.attach(payload),
    })
}

fn decode_delete(
    payload: Bytes,
    xid_prefix: bool,
    pool: &mut CellPool,
) -> Result<PgOutputMessage, DecodeError> {
    let (xid, rel, key, old) = parse_delete(&payload, xid_prefix, pool)?;
    let old = old.attach(payload);
    Ok(PgOutputMessage::Delete {
        xid,
        rel,
        old: if key {
            OldTuple::Key(old)
        } else {
            OldTuple::Full(old)
        },
    })
}

fn decode_relation(payload: &Bytes, xid_prefix: bool) -> Result<PgOutputMessage, DecodeError> {
    let mut r = Reader::new(payload, 1, "Relation");
    let xid = stream_xid(&mut r, xid_prefix)?;
    let oid = r.oid()?;
    let namespace = r.string("namespace")?;
    let name = r.string("relation name")?;
    let at = r.pos();
    let ident = r.u8()?;
    let replica_identity = ReplicaIdentity::from_byte(ident)
        .ok_or_else(|| r.invalid_byte("replica identity", ident, at))?;
    let at = r.pos();
    let ncols = r.i16()?;
    let ncols = match u16::try_from(ncols) {
        Ok(n) => usize::from(n),
        Err(_) => return Err(r.negative("column count", i64::from(ncols), at)),
    };
    let mut columns = Vec::with_capacity(ncols.min(r.remaining() / MIN_COLUMN_LEN));
    for _ in 0..ncols {
        columns.push(Column {
            flags: r.u8()?,
            name: r.string("column name")?,
            type_oid: r.oid()?,
            type_modifier: r.i32()?,
        });
    }
    r.finish()?;
    Ok(PgOutputMessage::Relation(RelationBody {
        xid,
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    }))
}

fn decode_truncate(payload: &Bytes, xid_prefix: bool) -> Result<PgOutputMessage, DecodeError> {
    let mut r = Reader::new(payload, 1, "Truncate");
    let xid = stream_xid(&mut r, xid_prefix)?;
    let nrels = r.u32()?;
    let at = r.pos();
    let options = r.u8()?;
    if options & !(TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY) != 0 {
        return Err(r.unknown_flags(options, at));
    }
    let nrels = usize::try_from(nrels).unwrap_or(usize::MAX);
    if nrels > r.remaining() / 4 {
        return Err(r.truncated(nrels.saturating_mul(4)));
    }
    let mut relations = Vec::with_capacity(nrels);
    for _ in 0..nrels {
        relations.push(r.oid()?);
    }
    r.finish()?;
    Ok(PgOutputMessage::Truncate {
        xid,
        relations,
        cascade: options & TRUNCATE_CASCADE != 0,
        restart_identity: options & TRUNCATE_RESTART_IDENTITY != 0,
    })
}

fn decode_message(mut payload: Bytes, xid_prefix: bool) -> Result<PgOutputMessage, DecodeError> {
    let (xid, transactional, lsn, prefix, content) = {
        let mut r = Reader::new(&payload, 1, "Message");
        let xid = stream_xid(&mut r, xid_prefix)?;
        let at = r.pos();
        let flags = r.u8()?;
        if flags & !MESSAGE_TRANSACTIONAL != 0 {
            return Err(r.unknown_flags(flags, at));
        }
        let lsn = r.lsn()?;
        let prefix = r.string("prefix")?;
        let len = r.u32()?;
        let content = r.range(usize::try_from(len).unwrap_or(usize::MAX))?;
        r.finish()?;
        (
            xid,
            flags & MESSAGE_TRANSACTIONAL != 0,
            lsn,
            prefix,
            content,
        )
    };
    // The content is the tail of the payload: narrow it in place.
    payload.truncate(content.end);
    let skip = content.start.min(payload.len());
    bytes::Buf::advance(&mut payload, skip);
    Ok(PgOutputMessage::Message {
        xid,
        transactional,
        lsn,
        prefix,
        content: payload,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::pgoutput::{ColumnValue, Oid, encode};

    fn columns() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        prop::collection::vec((0u8..4, prop::collection::vec(any::<u8>(), 0..8)), 0..10)
    }

    fn tuple(cols: &[(u8, Vec<u8>)]) -> TupleData {
        TupleData::from_values(cols.iter().map(|(k, d)| match k {
            0 => ColumnValue::Null,
            1 => ColumnValue::UnchangedToast,
            2 => ColumnValue::Text(d),
            _ => ColumnValue::Binary(d),
        }))
        .unwrap()
    }

    fn values(t: &TupleData) -> Vec<ColumnValue<'_>> {
        t.iter().collect()
    }

    /// Every tuple of `m`, in order.
    fn tuples(m: &PgOutputMessage) -> Vec<&TupleData> {
        match m {
            PgOutputMessage::Insert { new, .. } => vec![new],
            PgOutputMessage::Update { old, new, .. } => {
                old.iter().map(OldTuple::tuple).chain([new]).collect()
            }
            PgOutputMessage::Delete { old, .. } => vec![old.tuple()],
            _ => Vec::new(),
        }
    }

    proptest! {
        /// Decoding into cell tables given back by earlier tuples (of other widths) reads the
        /// same values as a fresh decoder.
        #[test]
        fn recycled_cell_tables_decode_the_same(
            rows in prop::collection::vec((0u8..3, columns(), columns()), 1..10),
        ) {
            let mut reused = Decoder::new();
            for (kind, a, b) in &rows {
                let msg = match kind {
                    0 => PgOutputMessage::Insert { xid: None, rel: Oid(1), new: tuple(a) },
                    1 => PgOutputMessage::Update {
                        xid: None,
                        rel: Oid(1),
                        old: Some(OldTuple::Key(tuple(b))),
                        new: tuple(a),
                    },
                    _ => PgOutputMessage::Delete {
                        xid: None,
                        rel: Oid(1),
                        old: OldTuple::Full(tuple(a)),
                    },
                };
                let mut buf = BytesMut::new();
                encode::message(&msg, &mut buf).unwrap();
                let payload = buf.freeze();
                let fresh = Decoder::new().decode(payload.clone()).unwrap();
                let got = reused.decode(payload).unwrap();
                prop_assert_eq!(&got, &msg);
                let (got_t, fresh_t, want_t) = (tuples(&got), tuples(&fresh), tuples(&msg));
                prop_assert_eq!(got_t.len(), want_t.len());
                for ((g, f), w) in got_t.iter().zip(&fresh_t).zip(&want_t) {
                    prop_assert_eq!(values(g), values(w));
                    prop_assert_eq!(values(f), values(w));
                }
                match got {
                    PgOutputMessage::Insert { new, .. } => reused.recycle(new),
                    PgOutputMessage::Update { old, new, .. } => {
                        if let Some(old) = old {
                            reused.recycle(old.into_tuple());
                        }
                        reused.recycle(new);
                    }
                    PgOutputMessage::Delete { old, .. } => reused.recycle(old.into_tuple()),
                    _ => {}
                }
            }
        }

        /// The in-place row path reads what `decode` reads, and fails where it fails with
        /// the same error, in and outside stream blocks, on valid and corrupted payloads.
        #[test]
        fn decode_row_matches_decode(
            kind in 0u8..3,
            a in columns(),
            b in columns(),
            key in any::<bool>(),
            in_stream in any::<bool>(),
            edit in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
            cut in prop::option::of(any::<prop::sample::Index>()),
        ) {
            let old = |t: TupleData| if key { OldTuple::Key(t) } else { OldTuple::Full(t) };
            let xid = in_stream.then_some(Xid(7));
            let msg = match kind {
                0 => PgOutputMessage::Insert { xid, rel: Oid(1), new: tuple(&a) },
                1 => PgOutputMessage::Update {
                    xid,
                    rel: Oid(1),
                    old: (!b.is_empty()).then(|| old(tuple(&b))),
                    new: tuple(&a),
                },
                _ => PgOutputMessage::Delete { xid, rel: Oid(1), old: old(tuple(&a)) },
            };
            let payload = Bytes::from(encode::damaged(&msg, edit, cut));
            let mut d1 = Decoder::new();
            let mut d2 = Decoder::new();
            if in_stream {
                let mut start = BytesMut::new();
                encode::message(
                    &PgOutputMessage::StreamStart { xid: Xid(7), first_segment: true },
                    &mut start,
                )
                .unwrap();
                d1.decode(start.clone().freeze()).unwrap();
                d2.decode(start.freeze()).unwrap();
            }
            if !matches!(payload.first(), Some(b'I' | b'U' | b'D')) {
                return Ok(());
            }
            let full = d1.decode(payload.clone());
            let row = d2.decode_row(&payload);
            match (full, row) {
                (Err(e1), Err(e2)) => prop_assert_eq!(e1, e2),
                (Ok(PgOutputMessage::Insert { xid: x1, rel: r1, new: n1 }),
                 Ok(RowMessage::Insert { xid: x2, rel: r2, new: n2 })) => {
                    prop_assert_eq!((x1, r1), (x2, r2));
                    prop_assert_eq!(values(&n1), n2.view(&payload).iter().collect::<Vec<_>>());
                }
                (Ok(PgOutputMessage::Update { xid: x1, rel: r1, old: o1, new: n1 }),
                 Ok(RowMessage::Update { xid: x2, rel: r2, old: o2, new: n2 })) => {
                    prop_assert_eq!((x1, r1), (x2, r2));
                    prop_assert_eq!(values(&n1), n2.view(&payload).iter().collect::<Vec<_>>());
                    match (o1, o2) {
                        (None, None) => {}
                        (Some(o1), Some((k2, o2))) => {
                            prop_assert_eq!(matches!(o1, OldTuple::Key(_)), k2);
                            prop_assert_eq!(
                                values(o1.tuple()),
                                o2.view(&payload).iter().collect::<Vec<_>>()
                            );
                        }
                        (o1, o2) => prop_assert!(false, "{o1:?} vs {:?}", o2.is_some()),
                    }
                }
                (Ok(PgOutputMessage::Delete { xid: x1, rel: r1, old: o1 }),
                 Ok(RowMessage::Delete { xid: x2, rel: r2, key: k2, old: o2 })) => {
                    prop_assert_eq!((x1, r1), (x2, r2));
                    prop_assert_eq!(matches!(o1, OldTuple::Key(_)), k2);
                    prop_assert_eq!(
                        values(o1.tuple()),
                        o2.view(&payload).iter().collect::<Vec<_>>()
                    );
                }
                (f, r) => prop_assert!(false, "{f:?} vs {:?}", r.is_ok()),
            }
        }
    }
}
