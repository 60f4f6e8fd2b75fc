//! Incremental, zero-copy parsing of backend (server → client) messages.
//!
//! [`Framer::parse`] takes bytes accumulated from the socket and returns one message at a time,
//! or `None` until a whole frame has arrived. Payloads are `Bytes` slices of the input buffer
//! (`split_to(..).freeze()`), never copies.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{ProtocolError, ServerError, SqlState};

/// Default maximum frame size: 1 GiB, PostgreSQL's own allocation limit for one message.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 30;

/// The frame limit until authentication completes: 64 KiB.
///
/// Before AuthenticationOk the server is not yet known to be the intended one, and the only
/// messages it sends (Authentication, ErrorResponse, NoticeResponse, ParameterStatus,
/// NegotiateProtocolVersion) are small; a SCRAM exchange or a FATAL error is well under 1 KiB.
/// The configured maximum applies from AuthenticationOk on.
pub const MAX_STARTUP_FRAME_LEN: usize = 64 * 1024;

/// The least extra room reserved for an incomplete frame; above it the reservation doubles
/// with what has arrived, so memory follows the bytes received, never the announced length.
const RESERVE_STEP: usize = 64 * 1024;

/// An Authentication (`R`) request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication {
    /// Code 0: authentication succeeded.
    Ok,
    /// Code 3: send the password in cleartext.
    CleartextPassword,
    /// Code 5: send an MD5 hash with this salt (pgcdc refuses it).
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// Code 10: SASL, with the mechanisms offered in the server's preference order.
    Sasl {
        /// Mechanism names, such as `SCRAM-SHA-256-PLUS` and `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// Code 11: SASL continue (the server-first-message for SCRAM).
    SaslContinue(Bytes),
    /// Code 12: SASL final (the server-final-message for SCRAM).
    SaslFinal(Bytes),
    /// Any other code (Kerberos 2, SCM 6, GSS 7, GSSContinue 8, SSPI 9, …).
    Other(i32),
}

/// The transaction status carried by ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: idle, not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block.
    Failed,
}

/// One field of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// OID of the source table, or 0.
    pub table_oid: u32,
    /// Attribute number in the source table, or 0.
    pub column_id: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// Data type size (negative for variable width).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// Format code: 0 text, 1 binary.
    pub format: i16,
}

/// A RowDescription (`T`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowDescription {
    /// The fields, in column order.
    pub fields: Vec<FieldDescription>,
}

/// A DataRow (`D`): column values as slices of the frame (`None` is SQL NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRow {
    /// The values, in column order.
    pub values: Vec<Option<Bytes>>,
}

/// The body of CopyBothResponse / CopyOutResponse / CopyInResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResponse {
    /// Overall format: 0 text, 1 binary.
    pub format: u8,
    /// Per-column format codes.
    pub column_formats: Vec<i16>,
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// `R`
    Authentication(Authentication),
    /// `S`
    ParameterStatus {
        /// Parameter name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `K`: process id and cancel key (4 bytes under 3.0, up to 256 under 3.2).
    BackendKeyData {
        /// Backend process id.
        process_id: i32,
        /// Secret key bytes.
        secret_key: Bytes,
    },
    /// `Z`
    ReadyForQuery(TransactionStatus),
    /// `T`
    RowDescription(RowDescription),
    /// `D`
    DataRow(DataRow),
    /// `C`: the command tag, such as `SELECT 1` or `IDENTIFY_SYSTEM`.
    CommandComplete {
        /// The tag.
        tag: String,
    },
    /// `I`
    EmptyQueryResponse,
    /// `E`
    ErrorResponse(ServerError),
    /// `N`
    NoticeResponse(ServerError),
    /// `W`
    CopyBothResponse(CopyResponse),
    /// `H`
    CopyOutResponse(CopyResponse),
    /// `G`
    CopyInResponse(CopyResponse),
    /// `d`: the payload, as a slice of the frame.
    CopyData(Bytes),
    /// `c`
    CopyDone,
    /// `v`: the newest protocol version the server supports (full code, e.g. 196608) and the
    /// protocol options it did not recognise.
    NegotiateProtocolVersion {
        /// Full version code.
        newest_version: i32,
        /// Unrecognised `_pq_.` options.
        unrecognized: Vec<String>,
    },
    /// `A`
    NotificationResponse {
        /// Notifying backend's process id.
        process_id: i32,
        /// Channel name.
        channel: String,
        /// Payload.
        payload: String,
    },
}

/// Splits a byte stream into backend messages, enforcing a maximum frame size.
///
/// A framer made with [`for_startup`](Self::for_startup) holds frames to
/// [`MAX_STARTUP_FRAME_LEN`] until [`authenticated`](Self::authenticated) is called.
#[derive(Clone, Debug)]
pub struct Framer {
    max_frame_len: usize,
    limit: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Framer {
    /// A framer refusing frames whose announced length exceeds `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Framer {
            max_frame_len,
            limit: max_frame_len,
        }
    }

    /// A framer for a connection that has not authenticated yet: frames are held to
    /// [`MAX_STARTUP_FRAME_LEN`] (or `max_frame_len` if smaller) until
    /// [`authenticated`](Self::authenticated).
    pub fn for_startup(max_frame_len: usize) -> Self {
        Framer {
            max_frame_len,
            limit: max_frame_len.min(MAX_STARTUP_FRAME_LEN),
        }
    }

    /// Lifts the startup limit: from now on frames up to the configured maximum are accepted.
    pub fn authenticated(&mut self) {
        self.limit = self.max_frame_len;
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The limit in force now: [`max_frame_len`](Self::max_frame_len), or the startup limit
    /// before authentication.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Parses the next complete message from the front of `buf`, removing its bytes.
    ///
    /// Returns `Ok(None)` (leaving `buf` untouched) while the frame is incomplete; when the
    /// header is known it reserves room for more of the frame, in steps that follow what has
    /// arrived (never the announced length, which the peer chooses).
    ///
    /// An unknown type byte is reported as soon as it arrives, and a length that cannot fit the
    /// message type's layout (for example a ReadyForQuery longer than one byte) as soon as the
    /// header arrives, so a desynchronised stream never makes the buffer grow.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UnexpectedMessage`] for an unknown type byte,
    /// [`ProtocolError::InvalidLength`] for a length below 4, [`ProtocolError::FrameTooLarge`]
    /// for a body above the maximum, and [`ProtocolError::Malformed`] for a body that does not
    /// match its layout. After an error the stream is out of sync and the connection must be
    /// closed. Errors found from the header leave `buf` as it was; a `Malformed` body has
    /// already been removed from `buf` along with its header.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<BackendMessage>, ProtocolError> {
        let Some(&tag) = buf.first() else {
            return Ok(None);
        };
        let kind = char::from(tag);
        let Some(name) = message_name(tag) else {
            return Err(ProtocolError::UnexpectedMessage {
                kind,
                context: "unknown backend message type",
            });
        };
        let Some(&[_, l0, l1, l2, l3]) = buf.first_chunk::<5>() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([l0, l1, l2, l3]);
        let body_len = match len.checked_sub(4).map(usize::try_from) {
            Some(Ok(n)) => n,
            _ => {
                return Err(ProtocolError::InvalidLength {
                    kind,
                    len: i64::from(len),
                });
            }
        };
        if body_len > self.limit {
            return Err(ProtocolError::FrameTooLarge {
                kind,
                len: u64::from(len.unsigned_abs()),
                max: self.limit,
                before_authentication: self.limit < self.max_frame_len,
            });
        }
        if let Some((min, max)) = body_len_bounds(tag) {
            if body_len < min {
                return Err(malformed(name, "message is shorter than its layout"));
            }
            if body_len > max {
                return Err(malformed(name, "message is longer than its layout"));
            }
        }
        let total = body_len.saturating_add(HEADER_LEN);
        if buf.len() < total {
            let missing = total - buf.len();
            buf.reserve(missing.min(buf.len().max(RESERVE_STEP)));
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        let body = frame.split_off(HEADER_LEN);
        parse_body(tag, name, body).map(Some)
    }
}

impl BackendMessage {
    /// The message's type byte as a `char` (such as `'Z'`), as used by
    /// [`ProtocolError::UnexpectedMessage`].
    pub fn kind(&self) -> char {
        char::from(match self {
            BackendMessage::Authentication(_) => b'R',
            BackendMessage::ParameterStatus { .. } => b'S',
            BackendMessage::BackendKeyData { .. } => b'K',
            BackendMessage::ReadyForQuery(_) => b'Z',
            BackendMessage::RowDescription(_) => b'T',
            BackendMessage::DataRow(_) => b'D',
            BackendMessage::CommandComplete { .. } => b'C',
            BackendMessage::EmptyQueryResponse => b'I',
            BackendMessage::ErrorResponse(_) => b'E',
            BackendMessage::NoticeResponse(_) => b'N',
            BackendMessage::CopyBothResponse(_) => b'W',
            BackendMessage::CopyOutResponse(_) => b'H',
            BackendMessage::CopyInResponse(_) => b'G',
            BackendMessage::CopyData(_) => b'd',
            BackendMessage::CopyDone => b'c',
            BackendMessage::NegotiateProtocolVersion { .. } => b'v',
            BackendMessage::NotificationResponse { .. } => b'A',
        })
    }

    /// The protocol's name for the message, such as `"ReadyForQuery"`.
    pub fn name(&self) -> &'static str {
        u8::try_from(self.kind())
            .ok()
            .and_then(message_name)
            .unwrap_or("unknown")
    }
}

impl TransactionStatus {
    /// The status byte ReadyForQuery carries for this status (`I`, `T` or `E`).
    pub fn as_byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// Type byte plus length field.
const HEADER_LEN: usize = 5;

/// Largest BackendKeyData secret key (protocol 3.2).
const MAX_SECRET_KEY_LEN: usize = 256;

/// Smallest BackendKeyData secret key (protocol 3.0).
const MIN_SECRET_KEY_LEN: usize = 4;

/// Smallest encoding of one RowDescription field: an empty name's NUL plus 18 fixed bytes.
const MIN_FIELD_DESCRIPTION_LEN: usize = 19;

/// The protocol's name for a backend type byte, or `None` if the byte is not a backend message.
fn message_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        b'R' => "Authentication",
        b'S' => "ParameterStatus",
        b'K' => "BackendKeyData",
        b'Z' => "ReadyForQuery",
        b'T' => "RowDescription",
        b'D' => "DataRow",
        b'C' => "CommandComplete",
        b'I' => "EmptyQueryResponse",
        b'E' => "ErrorResponse",
        b'N' => "NoticeResponse",
        b'W' => "CopyBothResponse",
        b'H' => "CopyOutResponse",
        b'G' => "CopyInResponse",
        b'd' => "CopyData",
        b'c' => "CopyDone",
        b'v' => "NegotiateProtocolVersion",
        b'A' => "NotificationResponse",
        _ => return None,
    })
}

/// Inclusive body-length bounds for message types whose size is fixed or small, checked as
/// soon as the header arrives so that a bogus length is refused before any buffering.
fn body_len_bounds(tag: u8) -> Option<(usize, usize)> {
    match tag {
        b'Z' => Some((1, 1)),
        b'I' | b'c' => Some((0, 0)),
        b'K' => Some((4 + MIN_SECRET_KEY_LEN, 4 + MAX_SECRET_KEY_LEN)),
        b'R' => Some((4, usize::MAX)),
        _ => None,
    }
}

fn malformed(message: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::Malformed { message, reason }
}

/// A checked, zero-copy reader over one message body.
struct Reader {
    buf: Bytes,
    message: &'static str,
}

impl Reader {
    fn new(message: &'static str, buf: Bytes) -> Self {
        Reader { buf, message }
    }

    fn err(&self, reason: &'static str) -> ProtocolError {
        malformed(self.message, reason)
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let arr = *self
            .buf
            .first_chunk::<N>()
            .ok_or_else(|| self.err("message ends early"))?;
        self.buf.advance(N);
        Ok(arr)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        self.array::<1>().map(|[b]| b)
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        self.array().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        self.array().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A count field (`i16` or `i32`), refused when negative.
    fn count(&mut self, value: i64) -> Result<usize, ProtocolError> {
        usize::try_from(value).map_err(|_| self.err("negative count"))
    }

    /// The next `n` bytes, as a slice of the frame.
    fn bytes(&mut self, n: usize) -> Result<Bytes, ProtocolError> {
        if n > self.buf.len() {
            return Err(self.err("message ends early"));
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left, as a slice of the frame.
    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// The bytes of a NUL-terminated string, without the NUL.
    fn cstr_bytes(&mut self) -> Result<Bytes, ProtocolError> {
        let nul = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err("string is missing its NUL terminator"))?;
        let s = self.buf.split_to(nul);
        self.buf.advance(1);
        Ok(s)
    }

    /// A NUL-terminated string that must be valid UTF-8.
    fn cstr(&mut self) -> Result<String, ProtocolError> {
        let b = self.cstr_bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not valid UTF-8"))
    }

    /// A NUL-terminated string, with invalid UTF-8 replaced by U+FFFD.
    fn cstr_lossy(&mut self) -> Result<String, ProtocolError> {
        let b = self.cstr_bytes()?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Refuses bytes left over after a fixed layout.
    fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes after the message body"))
        }
    }
}

/// Capacity for `count` items of at least `min_item_len` bytes each in `remaining` bytes, so
/// that an untrusted count never drives an allocation beyond what the frame can hold.
fn bounded_capacity(count: usize, remaining: usize, min_item_len: usize) -> usize {
    count.min(remaining / min_item_len.max(1))
}

fn parse_body(tag: u8, name: &'static str, body: Bytes) -> Result<BackendMessage, ProtocolError> {
    let mut r = Reader::new(name, body);
    let msg = match tag {
        b'R' => BackendMessage::Authentication(parse_authentication(&mut r)?),
        b'S' => {
            let name = r.cstr()?;
            let value = r.cstr()?;
            r.finish()?;
            BackendMessage::ParameterStatus { name, value }
        }
        b'K' => {
            let process_id = r.i32()?;
            let secret_key = r.rest();
            if !(MIN_SECRET_KEY_LEN..=MAX_SECRET_KEY_LEN).contains(&secret_key.len()) {
                return Err(r.err("secret key length is outside 4..=256 bytes"));
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            }
        }
        b'Z' => {
            let status = match r.u8()? {
                b'I' => TransactionStatus::Idle,
                b'T' => TransactionStatus::InTransaction,
                b'E' => TransactionStatus::Failed,
                _ => return Err(r.err("unknown transaction status")),
            };
            r.finish()?;
            BackendMessage::ReadyForQuery(status)
        }
        b'T' => BackendMessage::RowDescription(parse_row_description(&mut r)?),
        b'D' => BackendMessage::DataRow(parse_data_row(&mut r)?),
        b'C' => {
            let tag = r.cstr()?;
            r.finish()?;
            BackendMessage::CommandComplete { tag }
        }
        b'I' => {
            r.finish()?;
            BackendMessage::EmptyQueryResponse
        }
        b'E' => BackendMessage::ErrorResponse(parse_server_error(&mut r)?),
        b'N' => BackendMessage::NoticeResponse(parse_server_error(&mut r)?),
        b'W' => BackendMessage::CopyBothResponse(parse_copy_response(&mut r)?),
        b'H' => BackendMessage::CopyOutResponse(parse_copy_response(&mut r)?),
        b'G' => BackendMessage::CopyInResponse(parse_copy_response(&mut r)?),
        b'd' => BackendMessage::CopyData(r.rest()),
        b'c' => {
            r.finish()?;
            BackendMessage::CopyDone
        }
        b'v' => {
            let newest_version = r.i32()?;
            let n = r.i32()?;
            let n = r.count(i64::from(n))?;
            let mut unrecognized = Vec::with_capacity(bounded_capacity(n, r.remaining(), 1));
            for _ in 0..n {
                unrecognized.push(r.cstr()?);
            }
            r.finish()?;
            BackendMessage::NegotiateProtocolVersion {
                newest_version,
                unrecognized,
            }
        }
        b'A' => {
            let process_id = r.i32()?;
            let channel = r.cstr()?;
            let payload = r.cstr()?;
            r.finish()?;
            BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }
        _ => {
            return Err(ProtocolError::UnexpectedMessage {
                kind: char::from(tag),
                context: "unknown backend message type",
            });
        }
    };
    Ok(msg)
}

fn parse_authentication(r: &mut Reader) -> Result<Authentication, ProtocolError> {
    let auth = match r.i32()? {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => Authentication::Md5Password { salt: r.array()? },
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Authentication::Sasl { mechanisms }
        }
        11 => return Ok(Authentication::SaslContinue(r.rest())),
        12 => return Ok(Authentication::SaslFinal(r.rest())),
        // Unsupported methods may carry data (GSSContinue's token); the caller refuses them.
        other => {
            r.rest();
            return Ok(Authentication::Other(other));
        }
    };
    r.finish()?;
    Ok(auth)
}

fn parse_row_description(r: &mut Reader) -> Result<RowDescription, ProtocolError> {
    let n = r.i16()?;
    let n = r.count(i64::from(n))?;
    let mut fields = Vec::with_capacity(bounded_capacity(
        n,
        r.remaining(),
        MIN_FIELD_DESCRIPTION_LEN,
    ));
    for _ in 0..n {
        fields.push(FieldDescription {
            name: r.cstr()?,
            table_oid: r.u32()?,
            column_id: r.i16()?,
            type_oid: r.u32()?,
            type_size: r.i16()?,
            type_modifier: r.i32()?,
            format: r.i16()?,
        });
    }
    r.finish()?;
    Ok(RowDescription { fields })
}

fn parse_data_row(r: &mut Reader) -> Result<DataRow, ProtocolError> {
    let n = r.i16()?;
    let n = r.count(i64::from(n))?;
    let mut values = Vec::with_capacity(bounded_capacity(n, r.remaining(), 4));
    for _ in 0..n {
        let len = r.i32()?;
        let value = match len {
            -1 => None,
            len => {
                let len = usize::try_from(len).map_err(|_| r.err("negative value length"))?;
                Some(r.bytes(len)?)
            }
        };
        values.push(value);
    }
    r.finish()?;
    Ok(DataRow { values })
}

fn parse_server_error(r: &mut Reader) -> Result<ServerError, ProtocolError> {
    let mut e = ServerError::default();
    loop {
        let code = r.u8()?;
        if code == 0 {
            break;
        }
        let value = r.cstr_lossy()?;
        let slot = match code {
            b'S' => {
                e.severity = value;
                continue;
            }
            b'M' => {
                e.message = value;
                continue;
            }
            b'C' => {
                e.code = SqlState::from_code(&value);
                continue;
            }
            b'V' => &mut e.severity_nonlocalized,
            b'D' => &mut e.detail,
            b'H' => &mut e.hint,
            b'P' => &mut e.position,
            b'p' => &mut e.internal_position,
            b'q' => &mut e.internal_query,
            b'W' => &mut e.where_,
            b's' => &mut e.schema,
            b't' => &mut e.table,
            b'c' => &mut e.column,
            b'd' => &mut e.datatype,
            b'n' => &mut e.constraint,
            b'F' => &mut e.file,
            b'L' => &mut e.line,
            b'R' => &mut e.routine,
            // Unknown field codes are reserved for future use and must be ignored.
            _ => continue,
        };
        *slot = Some(value);
    }
    r.finish()?;
    Ok(e)
}

fn parse_copy_response(r: &mut Reader) -> Result<CopyResponse, ProtocolError> {
    let format = r.u8()?;
    let n = r.i16()?;
    let n = r.count(i64::from(n))?;
    let mut column_formats = Vec::with_capacity(bounded_capacity(n, r.remaining(), 2));
    for _ in 0..n {
        column_formats.push(r.i16()?);
    }
    r.finish()?;
    Ok(CopyResponse {
        format,
        column_formats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    /// One frame: type byte, length (counting itself), body.
    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn parse_all(bytes: &[u8]) -> Result<Option<BackendMessage>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let r = Framer::default().parse(&mut buf);
        if let Ok(Some(_)) = r {
            assert!(buf.is_empty(), "frame not fully consumed");
        }
        r
    }

    fn parse_one(tag: u8, body: &[u8]) -> BackendMessage {
        parse_all(&frame(tag, body)).unwrap().unwrap()
    }

    fn parse_err(tag: u8, body: &[u8]) -> ProtocolError {
        parse_all(&frame(tag, body)).unwrap_err()
    }

    fn is_malformed(e: &ProtocolError, name: &str) -> bool {
        matches!(e, ProtocolError::Malformed { message, .. } if *message == name)
    }

    #[test]
    fn authentication_codes() {
        assert_eq!(
            parse_one(b'R', &0i32.to_be_bytes()),
            BackendMessage::Authentication(Authentication::Ok)
        );
        assert_eq!(
            parse_one(b'R', &3i32.to_be_bytes()),
            BackendMessage::Authentication(Authentication::CleartextPassword)
        );
        assert_eq!(
            parse_one(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]),
            BackendMessage::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] })
        );
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
            BackendMessage::Authentication(Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            })
        );
        // Observed on PG15.
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"),
            BackendMessage::Authentication(Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()]
            })
        );
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x0br=abc,s=c2FsdA==,i=4096"),
            BackendMessage::Authentication(Authentication::SaslContinue(Bytes::from_static(
                b"r=abc,s=c2FsdA==,i=4096"
            )))
        );
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x0cv=xyz"),
            BackendMessage::Authentication(Authentication::SaslFinal(Bytes::from_static(b"v=xyz")))
        );
        assert_eq!(
            parse_one(b'R', &7i32.to_be_bytes()),
            BackendMessage::Authentication(Authentication::Other(7))
        );
        assert_eq!(
            parse_one(b'R', b"\0\0\0\x08token"),
            BackendMessage::Authentication(Authentication::Other(8))
        );
    }

    #[test]
    fn authentication_malformed() {
        // Salt too short, trailing bytes, unterminated mechanism list, body shorter than the code.
        assert!(is_malformed(
            &parse_err(b'R', &[0, 0, 0, 5, 1, 2, 3]),
            "Authentication"
        ));
        assert!(is_malformed(
            &parse_err(b'R', &[0, 0, 0, 0, 9]),
            "Authentication"
        ));
        assert!(is_malformed(
            &parse_err(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0"),
            "Authentication"
        ));
        assert!(is_malformed(&parse_err(b'R', &[0, 0]), "Authentication"));
    }

    #[test]
    fn parameter_status() {
        assert_eq!(
            parse_one(b'S', b"server_version\x0015.18\0"),
            BackendMessage::ParameterStatus {
                name: "server_version".into(),
                value: "15.18".into()
            }
        );
        assert!(is_malformed(
            &parse_err(b'S', b"a\0b\0c"),
            "ParameterStatus"
        ));
        assert!(is_malformed(&parse_err(b'S', b"a\0b"), "ParameterStatus"));
        assert!(is_malformed(
            &parse_err(b'S', b"\xff\0b\0"),
            "ParameterStatus"
        ));
    }

    #[test]
    fn backend_key_data_protocol_3_0() {
        let bytes = frame(b'K', &[0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef]);
        // Message length 12, as observed.
        assert_eq!(bytes.get(1..5), Some(&12i32.to_be_bytes()[..]));
        assert_eq!(
            parse_all(&bytes).unwrap().unwrap(),
            BackendMessage::BackendKeyData {
                process_id: 12345,
                secret_key: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])
            }
        );
    }

    #[test]
    fn backend_key_data_protocol_3_2() {
        let mut body = 7i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0xab; 32]);
        assert_eq!(
            parse_one(b'K', &body),
            BackendMessage::BackendKeyData {
                process_id: 7,
                secret_key: Bytes::from(vec![0xab; 32])
            }
        );
        let mut body = 7i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[1; 256]);
        assert!(matches!(
            parse_one(b'K', &body),
            BackendMessage::BackendKeyData { .. }
        ));
    }

    #[test]
    fn backend_key_data_bad_key_lengths() {
        assert!(is_malformed(
            &parse_err(b'K', &[0, 0, 0, 1, 1, 2, 3]),
            "BackendKeyData"
        ));
        let mut body = 7i32.to_be_bytes().to_vec();
        body.extend_from_slice(&[1; 257]);
        assert!(is_malformed(&parse_err(b'K', &body), "BackendKeyData"));
    }

    #[test]
    fn ready_for_query() {
        for (b, s) in [
            (b'I', TransactionStatus::Idle),
            (b'T', TransactionStatus::InTransaction),
            (b'E', TransactionStatus::Failed),
        ] {
            assert_eq!(parse_one(b'Z', &[b]), BackendMessage::ReadyForQuery(s));
            assert_eq!(s.as_byte(), b);
        }
        assert!(is_malformed(&parse_err(b'Z', b"X"), "ReadyForQuery"));
        assert!(is_malformed(&parse_err(b'Z', b""), "ReadyForQuery"));
        assert!(is_malformed(&parse_err(b'Z', b"II"), "ReadyForQuery"));
    }

    #[test]
    fn fixed_length_checked_from_header_alone() {
        // A ReadyForQuery announcing 1 GiB is refused before its body arrives.
        let mut buf = BytesMut::from(&b"Z\x40\x00\x00\x00I"[..]);
        let e = Framer::default().parse(&mut buf).unwrap_err();
        assert!(is_malformed(&e, "ReadyForQuery"));
        assert_eq!(buf.len(), 6);
        assert!(buf.capacity() < 1024);
    }

    fn row_description_body() -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(2);
        for (name, table, col, ty, size, modifier, format) in [
            ("systemid", 0u32, 0i16, 25u32, -1i16, -1i32, 0i16),
            ("timeline", 16384, 3, 20, 8, -1, 1),
        ] {
            b.put_slice(name.as_bytes());
            b.put_u8(0);
            b.put_u32(table);
            b.put_i16(col);
            b.put_u32(ty);
            b.put_i16(size);
            b.put_i32(modifier);
            b.put_i16(format);
        }
        b.to_vec()
    }

    #[test]
    fn row_description() {
        let msg = parse_one(b'T', &row_description_body());
        assert_eq!(
            msg,
            BackendMessage::RowDescription(RowDescription {
                fields: vec![
                    FieldDescription {
                        name: "systemid".into(),
                        table_oid: 0,
                        column_id: 0,
                        type_oid: 25,
                        type_size: -1,
                        type_modifier: -1,
                        format: 0,
                    },
                    FieldDescription {
                        name: "timeline".into(),
                        table_oid: 16384,
                        column_id: 3,
                        type_oid: 20,
                        type_size: 8,
                        type_modifier: -1,
                        format: 1,
                    },
                ]
            })
        );
        assert_eq!(
            parse_one(b'T', &[0, 0]),
            BackendMessage::RowDescription(RowDescription { fields: vec![] })
        );
    }

    #[test]
    fn row_description_malformed() {
        let mut body = row_description_body();
        body.push(0);
        assert!(is_malformed(&parse_err(b'T', &body), "RowDescription"));
        let body = row_description_body();
        assert!(is_malformed(
            &parse_err(b'T', body.get(..body.len() - 1).unwrap()),
            "RowDescription"
        ));
        assert!(is_malformed(
            &parse_err(b'T', &[0xff, 0xff]),
            "RowDescription"
        ));
        // A huge count with no fields behind it fails without allocating for the count.
        assert!(is_malformed(
            &parse_err(b'T', &[0x7f, 0xff]),
            "RowDescription"
        ));
    }

    #[test]
    fn data_row_values_are_slices_of_the_frame() {
        let mut body = vec![0, 3];
        body.extend_from_slice(&[0, 0, 0, 3]);
        body.extend_from_slice(b"abc");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 0]);
        let bytes = frame(b'D', &body);
        let mut buf = BytesMut::from(&bytes[..]);
        let start = buf.as_ptr();
        let msg = Framer::default().parse(&mut buf).unwrap().unwrap();
        let BackendMessage::DataRow(row) = msg else {
            panic!("not a DataRow: {msg:?}");
        };
        assert_eq!(
            row.values,
            vec![Some(Bytes::from_static(b"abc")), None, Some(Bytes::new())]
        );
        let abc = row.values.first().unwrap().as_ref().unwrap();
        assert_eq!(abc.as_ptr(), start.wrapping_add(5 + 2 + 4));
    }

    #[test]
    fn data_row_malformed() {
        // Negative length other than -1.
        let mut body = vec![0, 1];
        body.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(is_malformed(&parse_err(b'D', &body), "DataRow"));
        // Value longer than the frame.
        let body = [0, 1, 0, 0, 0, 9, b'a'];
        assert!(is_malformed(&parse_err(b'D', &body), "DataRow"));
        // Trailing bytes.
        let body = [0, 1, 0, 0, 0, 1, b'a', b'b'];
        assert!(is_malformed(&parse_err(b'D', &body), "DataRow"));
        // Negative count.
        assert!(is_malformed(&parse_err(b'D', &[0x80, 0x00]), "DataRow"));
        // Huge count, nothing behind it.
        assert!(is_malformed(&parse_err(b'D', &[0x7f, 0xff]), "DataRow"));
    }

    #[test]
    fn command_complete_and_empty_query() {
        assert_eq!(
            parse_one(b'C', b"IDENTIFY_SYSTEM\0"),
            BackendMessage::CommandComplete {
                tag: "IDENTIFY_SYSTEM".into()
            }
        );
        assert_eq!(
            parse_one(b'C', b"SELECT 1\0"),
            BackendMessage::CommandComplete {
                tag: "SELECT 1".into()
            }
        );
        assert!(is_malformed(&parse_err(b'C', b"COPY 0"), "CommandComplete"));
        assert!(is_malformed(
            &parse_err(b'C', b"COPY 0\0x"),
            "CommandComplete"
        ));
        assert!(is_malformed(&parse_err(b'C', b"\xc3\0"), "CommandComplete"));
        assert_eq!(parse_one(b'I', b""), BackendMessage::EmptyQueryResponse);
        assert!(is_malformed(&parse_err(b'I', b"x"), "EmptyQueryResponse"));
    }

    fn error_body(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (code, value) in fields {
            v.push(*code);
            v.extend_from_slice(value);
            v.push(0);
        }
        v.push(0);
        v
    }

    #[test]
    fn error_response_all_fields() {
        let body = error_body(&[
            (b'S', b"FEHLER"),
            (b'V', b"ERROR"),
            (b'C', b"42704"),
            (b'M', b"publication \"p\" does not exist"),
            (b'D', b"detail text"),
            (b'H', b"hint text"),
            (b'P', b"12"),
            (b'p', b"3"),
            (b'q', b"select 1"),
            (
                b'W',
                b"slot \"s\", output plugin \"pgoutput\", in the change callback",
            ),
            (b's', b"public"),
            (b't', b"orders"),
            (b'c', b"id"),
            (b'd', b"int4"),
            (b'n', b"orders_pkey"),
            (b'F', b"pgoutput.c"),
            (b'L', b"1234"),
            (b'R', b"LoadPublications"),
            (b'Z', b"unknown field, ignored"),
        ]);
        let msg = parse_one(b'E', &body);
        let expected = ServerError {
            severity: "FEHLER".into(),
            severity_nonlocalized: Some("ERROR".into()),
            code: Some(SqlState::UNDEFINED_OBJECT),
            message: "publication \"p\" does not exist".into(),
            detail: Some("detail text".into()),
            hint: Some("hint text".into()),
            position: Some("12".into()),
            internal_position: Some("3".into()),
            internal_query: Some("select 1".into()),
            where_: Some("slot \"s\", output plugin \"pgoutput\", in the change callback".into()),
            schema: Some("public".into()),
            table: Some("orders".into()),
            column: Some("id".into()),
            datatype: Some("int4".into()),
            constraint: Some("orders_pkey".into()),
            file: Some("pgoutput.c".into()),
            line: Some("1234".into()),
            routine: Some("LoadPublications".into()),
        };
        assert_eq!(msg, BackendMessage::ErrorResponse(expected));
        assert_eq!(msg.kind(), 'E');
        assert_eq!(msg.name(), "ErrorResponse");
    }

    #[test]
    fn notice_response_and_lossy_text() {
        let body = error_body(&[(b'S', b"WARNING"), (b'C', b"bad"), (b'M', b"caf\xe9")]);
        let BackendMessage::NoticeResponse(n) = parse_one(b'N', &body) else {
            panic!("not a notice");
        };
        assert_eq!(n.severity, "WARNING");
        assert_eq!(n.code, None);
        assert_eq!(n.message, "caf\u{fffd}");
        assert_eq!(n.detail, None);
    }

    #[test]
    fn error_response_malformed() {
        // Missing final 0, unterminated value, trailing bytes after the terminator.
        assert!(is_malformed(&parse_err(b'E', b"SERROR\0"), "ErrorResponse"));
        assert!(is_malformed(&parse_err(b'E', b"SERROR"), "ErrorResponse"));
        assert!(is_malformed(
            &parse_err(b'N', b"SERROR\0\0x"),
            "NoticeResponse"
        ));
        assert_eq!(
            parse_one(b'E', b"\0"),
            BackendMessage::ErrorResponse(ServerError::default())
        );
    }

    #[test]
    fn copy_responses() {
        // The walsender's CopyBothResponse: `00 0000`.
        assert_eq!(
            parse_one(b'W', &[0, 0, 0]),
            BackendMessage::CopyBothResponse(CopyResponse {
                format: 0,
                column_formats: vec![]
            })
        );
        assert_eq!(
            parse_one(b'H', &[1, 0, 2, 0, 1, 0, 0]),
            BackendMessage::CopyOutResponse(CopyResponse {
                format: 1,
                column_formats: vec![1, 0]
            })
        );
        assert_eq!(
            parse_one(b'G', &[0, 0, 1, 0, 0]),
            BackendMessage::CopyInResponse(CopyResponse {
                format: 0,
                column_formats: vec![0]
            })
        );
        assert!(is_malformed(&parse_err(b'W', &[0, 0]), "CopyBothResponse"));
        assert!(is_malformed(
            &parse_err(b'W', &[0, 0, 0, 0]),
            "CopyBothResponse"
        ));
        assert!(is_malformed(
            &parse_err(b'H', &[0, 0, 1, 0]),
            "CopyOutResponse"
        ));
        assert!(is_malformed(
            &parse_err(b'G', &[0, 0xff, 0xff]),
            "CopyInResponse"
        ));
        assert!(is_malformed(
            &parse_err(b'W', &[0, 0x7f, 0xff]),
            "CopyBothResponse"
        ));
    }

    #[test]
    fn copy_data_and_done() {
        let bytes = frame(b'd', b"w\0\0payload");
        let mut buf = BytesMut::from(&bytes[..]);
        let start = buf.as_ptr();
        let msg = Framer::default().parse(&mut buf).unwrap().unwrap();
        let BackendMessage::CopyData(data) = msg else {
            panic!("not CopyData");
        };
        assert_eq!(&data[..], b"w\0\0payload");
        assert_eq!(data.as_ptr(), start.wrapping_add(5));
        assert_eq!(parse_one(b'd', b""), BackendMessage::CopyData(Bytes::new()));
        assert_eq!(parse_one(b'c', b""), BackendMessage::CopyDone);
        assert!(is_malformed(&parse_err(b'c', b"x"), "CopyDone"));
    }

    #[test]
    fn negotiate_protocol_version() {
        // Observed on PG15: `v 196608, 1, "_pq_.foo"`.
        let mut body = 196_608i32.to_be_bytes().to_vec();
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(b"_pq_.foo\0");
        assert_eq!(
            parse_one(b'v', &body),
            BackendMessage::NegotiateProtocolVersion {
                newest_version: 196_608,
                unrecognized: vec!["_pq_.foo".into()]
            }
        );
        let mut body = 196_608i32.to_be_bytes().to_vec();
        body.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(
            parse_one(b'v', &body),
            BackendMessage::NegotiateProtocolVersion {
                newest_version: 196_608,
                unrecognized: vec![]
            }
        );
        let mut body = 196_608i32.to_be_bytes().to_vec();
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"_pq_.foo\0");
        assert!(is_malformed(
            &parse_err(b'v', &body),
            "NegotiateProtocolVersion"
        ));
        let mut body = 196_608i32.to_be_bytes().to_vec();
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert!(is_malformed(
            &parse_err(b'v', &body),
            "NegotiateProtocolVersion"
        ));
        let mut body = 196_608i32.to_be_bytes().to_vec();
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(is_malformed(
            &parse_err(b'v', &body),
            "NegotiateProtocolVersion"
        ));
    }

    #[test]
    fn notification_response() {
        let mut body = 4242i32.to_be_bytes().to_vec();
        body.extend_from_slice(b"chan\0hello\0");
        assert_eq!(
            parse_one(b'A', &body),
            BackendMessage::NotificationResponse {
                process_id: 4242,
                channel: "chan".into(),
                payload: "hello".into()
            }
        );
        body.push(b'x');
        assert!(is_malformed(
            &parse_err(b'A', &body),
            "NotificationResponse"
        ));
    }

    #[test]
    fn incomplete_input_returns_none_and_keeps_the_buffer() {
        let bytes = frame(b'S', b"TimeZone\0UTC\0");
        let mut framer = Framer::default();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(bytes.get(..cut).unwrap());
            assert_eq!(framer.parse(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(&buf[..], bytes.get(..cut).unwrap());
            if cut >= 5 {
                assert!(buf.capacity() >= bytes.len(), "reserved for the rest");
            }
        }
        let mut buf = BytesMut::from(&bytes[..]);
        buf.put_slice(b"Z\0\0");
        assert!(matches!(
            framer.parse(&mut buf),
            Ok(Some(BackendMessage::ParameterStatus { .. }))
        ));
        assert_eq!(&buf[..], b"Z\0\0");
        assert_eq!(framer.parse(&mut buf), Ok(None));
        buf.put_slice(b"\0\x05I");
        assert_eq!(
            framer.parse(&mut buf),
            Ok(Some(BackendMessage::ReadyForQuery(TransactionStatus::Idle)))
        );
        assert!(buf.is_empty());
        assert_eq!(framer.parse(&mut buf), Ok(None));
    }

    #[test]
    fn frame_too_large_is_refused_before_reserving() {
        let mut framer = Framer::new(16);
        let mut buf = BytesMut::from(&b"d\x00\x00\x00\x15"[..]);
        assert_eq!(
            framer.parse(&mut buf),
            Err(ProtocolError::FrameTooLarge {
                kind: 'd',
                len: 21,
                max: 16,
                before_authentication: false,
            })
        );
        assert_eq!(buf.len(), 5);
        // Exactly at the maximum is fine.
        let mut buf = BytesMut::from(&frame(b'd', &[7; 16])[..]);
        assert_eq!(
            framer.parse(&mut buf),
            Ok(Some(BackendMessage::CopyData(Bytes::from(vec![7; 16]))))
        );
        // The default maximum refuses a 2 GiB - 1 announcement without reserving it.
        let mut buf = BytesMut::from(&b"d\x7f\xff\xff\xff"[..]);
        assert!(matches!(
            Framer::default().parse(&mut buf),
            Err(ProtocolError::FrameTooLarge { kind: 'd', .. })
        ));
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn an_announced_length_reserves_only_what_arrived() {
        // 100 MiB announced, 16 bytes sent: the buffer grows with what arrives.
        let mut framer = Framer::default();
        let mut buf = BytesMut::from(&b"d\x06\x40\x00\x04"[..]);
        buf.put_slice(&[1; 16]);
        assert_eq!(framer.parse(&mut buf), Ok(None));
        assert!(
            buf.capacity() < 1 << 20,
            "{} bytes reserved",
            buf.capacity()
        );
        // Feeding the frame in 64 KiB pieces completes it.
        let body = vec![2u8; 3 << 20];
        let mut buf = BytesMut::new();
        let whole = frame(b'd', &body);
        let mut parsed = None;
        for piece in whole.chunks(64 << 10) {
            buf.put_slice(piece);
            assert!(
                buf.capacity() <= 4 * buf.len() + (256 << 10),
                "{} for {}",
                buf.capacity(),
                buf.len()
            );
            if let Some(m) = framer.parse(&mut buf).unwrap() {
                parsed = Some(m);
            }
        }
        assert_eq!(parsed, Some(BackendMessage::CopyData(Bytes::from(body))));
    }

    #[test]
    fn the_too_large_error_names_the_setting() {
        let text = ProtocolError::FrameTooLarge {
            kind: 'd',
            len: 2 << 30,
            max: 1 << 30,
            before_authentication: false,
        }
        .to_string();
        assert!(text.contains("max_frame_len"), "{text}");
        assert!(text.contains("with_max_frame_len"), "{text}");
    }

    #[test]
    fn negative_and_short_lengths() {
        for len in [-1i32, i32::MIN, 0, 3] {
            let mut buf = BytesMut::from(&b"d"[..]);
            buf.put_i32(len);
            assert_eq!(
                Framer::default().parse(&mut buf),
                Err(ProtocolError::InvalidLength {
                    kind: 'd',
                    len: i64::from(len)
                })
            );
        }
    }

    #[test]
    fn unknown_type_byte() {
        for tag in [b'x', 0, 0xff, b'Q', b'X'] {
            let mut buf = BytesMut::from(&[tag][..]);
            assert_eq!(
                Framer::default().parse(&mut buf),
                Err(ProtocolError::UnexpectedMessage {
                    kind: char::from(tag),
                    context: "unknown backend message type"
                })
            );
        }
    }

    #[test]
    fn kind_and_name_round_trip() {
        let msgs = [
            parse_one(b'I', b""),
            parse_one(b'c', b""),
            parse_one(b'Z', b"T"),
            parse_one(b'd', b"x"),
        ];
        for m in msgs {
            let tag = u8::try_from(m.kind()).unwrap();
            assert_eq!(Some(m.name()), message_name(tag));
        }
    }

    #[test]
    fn copy_data_of_five_megabytes() {
        const SIZE: usize = 5 * 1024 * 1024;
        let payload: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        let bytes = frame(b'd', &payload);
        let mut framer = Framer::default();
        let mut buf = BytesMut::new();
        let mut out = None;
        for chunk in bytes.chunks(64 * 1024) {
            assert!(out.is_none(), "message before its last chunk");
            buf.put_slice(chunk);
            out = framer.parse(&mut buf).unwrap();
        }
        assert_eq!(out, Some(BackendMessage::CopyData(Bytes::from(payload))));
        assert!(buf.is_empty());
    }
}
