//! The streaming-replication layer inside CopyData: XLogData, primary keepalive, and the
//! client's standby status update.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::DecodeError;
use super::reader::Reader;
use crate::lsn::Lsn;

/// Bytes of an XLogData header, type byte included.
const XLOG_DATA_HEADER_LEN: usize = 1 + 8 + 8 + 8;

/// A CopyData payload sent by the walsender during logical streaming.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationMessage {
    /// `w`: one pgoutput message.
    ///
    /// For a logical walsender `wal_start == wal_end` is the position of this output, `0/0` for
    /// Relation, Type, and a Begin followed by Origin, and not monotonic. It is not a
    /// progress counter: acknowledge Commit `end_lsn` and keepalive `wal_end` instead.
    XLogData {
        /// Start of the data in WAL.
        wal_start: Lsn,
        /// For logical replication, the same as `wal_start`.
        wal_end: Lsn,
        /// Server clock, µs since 2000-01-01.
        send_time: i64,
        /// The pgoutput message, a zero-copy slice of the payload; feed it to
        /// [`Decoder::decode`](super::Decoder::decode).
        data: Bytes,
    },
    /// `k`: primary keepalive.
    Keepalive {
        /// The walsender's sent position. When no transaction is pending, acknowledge it.
        wal_end: Lsn,
        /// Server clock, µs since 2000-01-01.
        send_time: i64,
        /// The server wants a standby status update now (or it will time the client out).
        reply_requested: bool,
    },
}

/// Parses a CopyData payload received while streaming.
///
/// XLogData `data` is the tail of `payload`, narrowed in place (no copy, no reference-count
/// change).
pub fn parse_copy_data(mut payload: Bytes) -> Result<ReplicationMessage, DecodeError> {
    let Some(&tag) = payload.first() else {
        return Err(DecodeError::Empty { layer: "CopyData" });
    };
    match tag {
        b'w' => {
            let (wal_start, wal_end, send_time) = {
                let mut r = Reader::new(&payload, 1, "XLogData");
                (r.lsn()?, r.lsn()?, r.i64()?)
            };
            let skip = XLOG_DATA_HEADER_LEN.min(payload.len());
            payload.advance(skip);
            Ok(ReplicationMessage::XLogData {
                wal_start,
                wal_end,
                send_time,
                data: payload,
            })
        }
        b'k' => {
            let mut r = Reader::new(&payload, 1, "primary keepalive");
            let wal_end = r.lsn()?;
            let send_time = r.i64()?;
            // walreceiver treats any non-zero byte as a request.
            let reply_requested = r.u8()? != 0;
            r.finish()?;
            Ok(ReplicationMessage::Keepalive {
                wal_end,
                send_time,
                reply_requested,
            })
        }
        byte => Err(DecodeError::UnknownMessageType {
            layer: "CopyData",
            byte,
        }),
    }
}

/// The client's standby status update (`r`), which reports progress and moves the slot.
///
/// Every position is "last byte + 1" of what was written, flushed or applied. **`flush` moves
/// the slot's `confirmed_flush`**: never report more than was received and durably processed,
/// and report Commit `end_lsn` (not `commit_lsn`). All zeros is a plain "I'm alive".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StandbyStatusUpdate {
    /// Received and written.
    pub write: Lsn,
    /// Durably processed: what the server may release.
    pub flush: Lsn,
    /// Applied.
    pub apply: Lsn,
    /// The client's wall clock, µs since 2000-01-01, from a clock the driver injects.
    pub client_time: i64,
    /// Ask the server to answer with a keepalive at once (a ping).
    pub reply_requested: bool,
}

impl StandbyStatusUpdate {
    /// The payload length: 34 bytes.
    pub const LEN: usize = 1 + 8 + 8 + 8 + 8 + 1;

    /// Appends the 34-byte CopyData payload (not the CopyData framing: wrap it with
    /// [`wire::frontend::copy_data_with`](crate::wire::frontend::copy_data_with)).
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(Self::LEN);
        buf.put_u8(b'r');
        buf.put_u64(self.write.0);
        buf.put_u64(self.flush.0);
        buf.put_u64(self.apply.0);
        buf.put_i64(self.client_time);
        buf.put_u8(u8::from(self.reply_requested));
    }
}
