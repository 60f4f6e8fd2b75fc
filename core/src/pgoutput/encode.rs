//! Encoders for pgoutput messages and walsender CopyData payloads: the server's side of the
//! wire, for tests, benches, fuzzing and simulated walsenders.
//!
//! Each encoder appends one payload to a caller-owned buffer; on error the buffer is left as it
//! was. What [`message`] writes is exactly what [`Decoder::decode`](super::Decoder::decode)
//! reads back, given the same stream-block state: a message whose `xid` prefix is `Some` must
//! be decoded inside a stream block.

use bytes::{BufMut, BytesMut};

use super::error::EncodeError;
use super::messages::{OldTuple, PgOutputMessage};
use super::tuple::TupleData;
use super::xlog::ReplicationMessage;
use super::{Oid, Xid};
use crate::lsn::Lsn;

/// Appends the encoding of `msg`.
///
/// Fails on a string containing NUL, more than `i16::MAX` Relation columns, more than
/// `u32::MAX` truncated relations, or Message content over 4 GiB. A Stream Abort is written in
/// the proto 4 (parallel) form when `abort_lsn` or `abort_time` is set, a missing one as 0.
pub fn message(msg: &PgOutputMessage, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let start = buf.len();
    let result = write_message(msg, buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Appends a TupleData (its `i16` count and columns).
pub fn tuple(t: &TupleData, buf: &mut BytesMut) {
    buf.put_slice(t.as_bytes());
}

/// Appends a walsender CopyData payload (`w` XLogData or `k` keepalive).
pub fn replication_message(msg: &ReplicationMessage, buf: &mut BytesMut) {
    match msg {
        ReplicationMessage::XLogData {
            wal_start,
            wal_end,
            send_time,
            data,
        } => {
            buf.reserve(25 + data.len());
            buf.put_u8(b'w');
            buf.put_u64(wal_start.0);
            buf.put_u64(wal_end.0);
            buf.put_i64(*send_time);
            buf.put_slice(data);
        }
        ReplicationMessage::Keepalive {
            wal_end,
            send_time,
            reply_requested,
        } => {
            buf.put_u8(b'k');
            buf.put_u64(wal_end.0);
            buf.put_i64(*send_time);
            buf.put_u8(u8::from(*reply_requested));
        }
    }
}

fn put_cstr(buf: &mut BytesMut, s: &str, field: &'static str) -> Result<(), EncodeError> {
    if s.as_bytes().contains(&0) {
        return Err(EncodeError::NulInString { field });
    }
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
    Ok(())
}

fn put_lsn(buf: &mut BytesMut, lsn: Lsn) {
    buf.put_u64(lsn.0);
}

fn put_xid(buf: &mut BytesMut, xid: Xid) {
    buf.put_u32(xid.0);
}

fn put_oid(buf: &mut BytesMut, oid: Oid) {
    buf.put_u32(oid.0);
}

fn put_stream_xid(buf: &mut BytesMut, xid: Option<Xid>) {
    if let Some(x) = xid {
        put_xid(buf, x);
    }
}

fn write_message(msg: &PgOutputMessage, buf: &mut BytesMut) -> Result<(), EncodeError> {
    buf.put_u8(msg.type_byte());
    match msg {
        PgOutputMessage::Begin {
            final_lsn,
            commit_time,
            xid,
        } => {
            put_lsn(buf, *final_lsn);
            buf.put_i64(*commit_time);
            put_xid(buf, *xid);
        }
        PgOutputMessage::Commit {
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
        } => {
            buf.put_u8(*flags);
            put_lsn(buf, *commit_lsn);
            put_lsn(buf, *end_lsn);
            buf.put_i64(*commit_time);
        }
        PgOutputMessage::Origin { origin_lsn, name } => {
            put_lsn(buf, *origin_lsn);
            put_cstr(buf, name, "origin name")?;
        }
        PgOutputMessage::Relation(rel) => {
            put_stream_xid(buf, rel.xid);
            put_oid(buf, rel.oid);
            put_cstr(buf, &rel.namespace, "namespace")?;
            put_cstr(buf, &rel.name, "relation name")?;
            buf.put_u8(rel.replica_identity.as_byte());
            let n = i16::try_from(rel.columns.len()).map_err(|_| EncodeError::TooMany {
                field: "columns",
                count: rel.columns.len(),
            })?;
            buf.put_i16(n);
            for c in &rel.columns {
                buf.put_u8(c.flags);
                put_cstr(buf, &c.name, "column name")?;
                put_oid(buf, c.type_oid);
                buf.put_i32(c.type_modifier);
            }
        }
        PgOutputMessage::Type {
            xid,
            oid,
            namespace,
            name,
        } => {
            put_stream_xid(buf, *xid);
            put_oid(buf, *oid);
            put_cstr(buf, namespace, "namespace")?;
            put_cstr(buf, name, "type name")?;
        }
        PgOutputMessage::Insert { xid, rel, new } => {
            put_stream_xid(buf, *xid);
            put_oid(buf, *rel);
            buf.put_u8(b'N');
            tuple(new, buf);
        }
        PgOutputMessage::Update { xid, rel, old, new } => {
            put_stream_xid(buf, *xid);
            put_oid(buf, *rel);
            if let Some(old) = old {
                put_old(buf, old);
            }
            buf.put_u8(b'N');
            tuple(new, buf);
        }
        PgOutputMessage::Delete { xid, rel, old } => {
            put_stream_xid(buf, *xid);
            put_oid(buf, *rel);
            put_old(buf, old);
        }
        PgOutputMessage::Truncate {
            xid,
            relations,
            cascade,
            restart_identity,
        } => {
            put_stream_xid(buf, *xid);
            let n = u32::try_from(relations.len()).map_err(|_| EncodeError::TooMany {
                field: "relations",
                count: relations.len(),
            })?;
            buf.put_u32(n);
            buf.put_u8(u8::from(*cascade) | (u8::from(*restart_identity) << 1));
            for oid in relations {
                put_oid(buf, *oid);
            }
        }
        PgOutputMessage::Message {
            xid,
            transactional,
            lsn,
            prefix,
            content,
        } => {
            put_stream_xid(buf, *xid);
            buf.put_u8(u8::from(*transactional));
            put_lsn(buf, *lsn);
            put_cstr(buf, prefix, "message prefix")?;
            let len = u32::try_from(content.len()).map_err(|_| EncodeError::TooLong {
                field: "message content",
                len: content.len(),
            })?;
            buf.put_u32(len);
            buf.put_slice(content);
        }
        PgOutputMessage::StreamStart { xid, first_segment } => {
            put_xid(buf, *xid);
            buf.put_u8(u8::from(*first_segment));
        }
        PgOutputMessage::StreamStop => {}
        PgOutputMessage::StreamCommit {
            xid,
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
        } => {
            put_xid(buf, *xid);
            buf.put_u8(*flags);
            put_lsn(buf, *commit_lsn);
            put_lsn(buf, *end_lsn);
            buf.put_i64(*commit_time);
        }
        PgOutputMessage::StreamAbort {
            xid,
            subxid,
            abort_lsn,
            abort_time,
        } => {
            put_xid(buf, *xid);
            put_xid(buf, *subxid);
            if abort_lsn.is_some() || abort_time.is_some() {
                put_lsn(buf, abort_lsn.unwrap_or_default());
                buf.put_i64(abort_time.unwrap_or_default());
            }
        }
        PgOutputMessage::BeginPrepare {
            prepare_lsn,
            end_lsn,
            prepare_time,
            xid,
            gid,
        } => {
            put_lsn(buf, *prepare_lsn);
            put_lsn(buf, *end_lsn);
            buf.put_i64(*prepare_time);
            put_xid(buf, *xid);
            put_cstr(buf, gid, "gid")?;
        }
        PgOutputMessage::Prepare {
            flags,
            prepare_lsn,
            end_lsn,
            prepare_time,
            xid,
            gid,
        }
        | PgOutputMessage::StreamPrepare {
            flags,
            prepare_lsn,
            end_lsn,
            prepare_time,
            xid,
            gid,
        } => {
            buf.put_u8(*flags);
            put_lsn(buf, *prepare_lsn);
            put_lsn(buf, *end_lsn);
            buf.put_i64(*prepare_time);
            put_xid(buf, *xid);
            put_cstr(buf, gid, "gid")?;
        }
        PgOutputMessage::CommitPrepared {
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
            xid,
            gid,
        } => {
            buf.put_u8(*flags);
            put_lsn(buf, *commit_lsn);
            put_lsn(buf, *end_lsn);
            buf.put_i64(*commit_time);
            put_xid(buf, *xid);
            put_cstr(buf, gid, "gid")?;
        }
        PgOutputMessage::RollbackPrepared {
            flags,
            prepare_end_lsn,
            rollback_end_lsn,
            prepare_time,
            rollback_time,
            xid,
            gid,
        } => {
            buf.put_u8(*flags);
            put_lsn(buf, *prepare_end_lsn);
            put_lsn(buf, *rollback_end_lsn);
            buf.put_i64(*prepare_time);
            buf.put_i64(*rollback_time);
            put_xid(buf, *xid);
            put_cstr(buf, gid, "gid")?;
        }
    }
    Ok(())
}

fn put_old(buf: &mut BytesMut, old: &OldTuple) {
    buf.put_u8(old.marker());
    tuple(old.tuple(), buf);
}

/// The encoding of `msg` with the byte at `edit` replaced and cut at `cut` (positions scaled
/// to its length), for tests that feed damaged messages.
#[cfg(test)]
pub(crate) fn damaged(
    msg: &PgOutputMessage,
    edit: Option<(proptest::sample::Index, u8)>,
    cut: Option<proptest::sample::Index>,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    message(msg, &mut buf).unwrap();
    let mut raw = buf.to_vec();
    if let Some((i, x)) = edit {
        let i = i.index(raw.len());
        raw[i] = x;
    }
    if let Some(c) = cut {
        raw.truncate(c.index(raw.len() + 1));
    }
    raw
}
