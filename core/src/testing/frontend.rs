//! Frontend message parsing: what a client sends, read the way a walsender reads it.

use crate::lsn::Lsn;
use crate::pgoutput::StandbyStatusUpdate;

/// The longest frontend message accepted (queries of the catalog checks are a few KiB).
pub const MAX_FRONTEND_MESSAGE: usize = 1 << 20;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
const PROTOCOL_3_0: i32 = 196_608;

/// One message a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frontend {
    /// The startup packet (protocol 3.0) and its parameters, in order.
    Startup(Vec<(String, String)>),
    /// An SSLRequest.
    SslRequest,
    /// A GSSENCRequest.
    GssEncRequest,
    /// A CancelRequest.
    CancelRequest,
    /// A simple query (`Q`), without its terminating NUL.
    Query(String),
    /// `CopyData` and its payload.
    CopyData(Vec<u8>),
    /// `CopyDone`.
    CopyDone,
    /// `Terminate`.
    Terminate,
    /// Any other message, by tag.
    Other(u8),
}

/// Input that is no valid frontend message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed frontend message: {0}")]
pub struct FrontendError(pub String);

fn bad(what: impl Into<String>) -> FrontendError {
    FrontendError(what.into())
}

fn be_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Takes the next complete message off the front of `buf`; `Ok(None)` until one is complete.
/// `startup`: nothing was read on this connection yet but SSL/GSS requests, so the next
/// message is untagged (a startup packet or a request code).
///
/// # Errors
///
/// A length below the header's or above [`MAX_FRONTEND_MESSAGE`], an unknown protocol
/// version, a query that is not NUL-terminated UTF-8, a malformed startup parameter list.
pub fn take_frontend(buf: &mut Vec<u8>, startup: bool) -> Result<Option<Frontend>, FrontendError> {
    let (header, len_at) = if startup { (0, 0) } else { (1, 1) };
    let Some(len) = buf.get(len_at..).and_then(be_i32) else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| bad(format!("negative length {len}")))?;
    if !(4..=MAX_FRONTEND_MESSAGE).contains(&len) {
        return Err(bad(format!("length {len}")));
    }
    if buf.len() < header + len {
        return Ok(None);
    }
    let frame: Vec<u8> = buf.drain(..header + len).collect();
    let body = frame.get(header + 4..).unwrap_or_default();
    if startup {
        return parse_untagged(body).map(Some);
    }
    let tag = frame.first().copied().unwrap_or_default();
    Ok(Some(match tag {
        b'Q' => {
            let Some((0, text)) = body.split_last() else {
                return Err(bad("a query without its terminating NUL"));
            };
            Frontend::Query(
                String::from_utf8(text.to_vec()).map_err(|_| bad("a query that is not UTF-8"))?,
            )
        }
        b'd' => Frontend::CopyData(body.to_vec()),
        b'c' => Frontend::CopyDone,
        b'X' => Frontend::Terminate,
        t => Frontend::Other(t),
    }))
}

fn parse_untagged(body: &[u8]) -> Result<Frontend, FrontendError> {
    let code = be_i32(body).ok_or_else(|| bad("a startup packet without a code"))?;
    match code {
        SSL_REQUEST => return Ok(Frontend::SslRequest),
        GSSENC_REQUEST => return Ok(Frontend::GssEncRequest),
        CANCEL_REQUEST => return Ok(Frontend::CancelRequest),
        PROTOCOL_3_0 => {}
        other => return Err(bad(format!("protocol version {other:#x}"))),
    }
    let mut strings = body.get(4..).unwrap_or_default().split(|b| *b == 0);
    let mut params = Vec::new();
    loop {
        let name = strings
            .next()
            .ok_or_else(|| bad("unterminated startup parameters"))?;
        if name.is_empty() {
            return Ok(Frontend::Startup(params));
        }
        let value = strings
            .next()
            .ok_or_else(|| bad("a startup parameter without a value"))?;
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| bad("a startup parameter that is not UTF-8"))
        };
        params.push((text(name)?, text(value)?));
    }
}

/// Parses a buffer of whole tagged messages (what a client sends after startup).
///
/// # Errors
///
/// As [`take_frontend`], and a truncated last message.
pub fn parse_frontend(b: &[u8]) -> Result<Vec<Frontend>, FrontendError> {
    let mut buf = b.to_vec();
    let mut out = Vec::new();
    while let Some(m) = take_frontend(&mut buf, false)? {
        out.push(m);
    }
    if buf.is_empty() {
        Ok(out)
    } else {
        Err(bad(format!("{} bytes of a truncated message", buf.len())))
    }
}

/// Decodes a CopyData payload as a standby status update (`r`), if it is one.
pub fn decode_status(p: &[u8]) -> Option<StandbyStatusUpdate> {
    if p.len() != StandbyStatusUpdate::LEN || p.first() != Some(&b'r') {
        return None;
    }
    Some(StandbyStatusUpdate {
        write: Lsn(be_u64(p, 1)?),
        flush: Lsn(be_u64(p, 9)?),
        apply: Lsn(be_u64(p, 17)?),
        client_time: i64::from_be_bytes(p.get(25..33)?.try_into().ok()?),
        reply_requested: p.get(33).is_some_and(|b| *b != 0),
    })
}
