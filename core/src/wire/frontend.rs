//! Encoders for every message a replication client sends.
//!
//! Each encoder appends one complete message to a caller-owned buffer. The length prefix is
//! written after the body, so no intermediate allocation is needed. Strings that the protocol
//! sends NUL-terminated are checked for embedded NUL bytes.

use bytes::{BufMut, BytesMut};

/// Protocol version 3.0, as sent in the startup packet.
pub const PROTOCOL_VERSION_3_0: i32 = 196_608;
/// The SSLRequest code (1234 << 16 | 5679).
pub const SSL_REQUEST_CODE: i32 = 80_877_103;

/// An encoder was given a string containing a NUL byte, which the protocol cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} contains a NUL byte, which PostgreSQL's protocol cannot carry")]
pub struct EncodeError {
    /// What contained the NUL byte.
    pub what: &'static str,
}

/// Appends a NUL-terminated string after checking it has no embedded NUL.
fn put_cstr(buf: &mut BytesMut, s: &[u8], what: &'static str) -> Result<(), EncodeError> {
    if s.contains(&0) {
        return Err(EncodeError { what });
    }
    buf.put_slice(s);
    buf.put_u8(0);
    Ok(())
}

/// Writes `tag`, a length placeholder, the body from `body`, then patches the length.
/// On error the buffer is restored to its previous length.
fn framed<E>(
    buf: &mut BytesMut,
    tag: Option<u8>,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    let start = buf.len();
    if let Some(t) = tag {
        buf.put_u8(t);
    }
    let len_at = buf.len();
    buf.put_i32(0);
    if let Err(e) = body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    let len = (buf.len() - len_at) as i32;
    if let Some(slot) = buf.get_mut(len_at..len_at + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn infallible(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    let _ = framed::<std::convert::Infallible>(buf, Some(tag), |b| {
        body(b);
        Ok(())
    });
}

/// StartupMessage (protocol 3.0) with the given parameters, in order.
pub fn startup<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    framed(buf, None, |b| {
        b.put_i32(PROTOCOL_VERSION_3_0);
        for (name, value) in params {
            put_cstr(b, name.as_bytes(), "startup parameter name")?;
            put_cstr(b, value.as_bytes(), "startup parameter value")?;
        }
        b.put_u8(0);
        Ok(())
    })
}

/// SSLRequest.
pub fn ssl_request(buf: &mut BytesMut) {
    buf.put_i32(8);
    buf.put_i32(SSL_REQUEST_CODE);
}

/// PasswordMessage carrying a cleartext password (or any other NUL-terminated response).
pub fn password(password: &[u8], buf: &mut BytesMut) -> Result<(), EncodeError> {
    framed(buf, Some(b'p'), |b| put_cstr(b, password, "password"))
}

/// SASLInitialResponse: the chosen mechanism and the client-first-message.
pub fn sasl_initial_response(
    mechanism: &str,
    data: &[u8],
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    framed(buf, Some(b'p'), |b| {
        put_cstr(b, mechanism.as_bytes(), "SASL mechanism")?;
        b.put_i32(data.len() as i32);
        b.put_slice(data);
        Ok(())
    })
}

/// SASLResponse: a later SASL message (client-final-message).
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) {
    infallible(buf, b'p', |b| b.put_slice(data));
}

/// Query (simple query protocol).
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<(), EncodeError> {
    framed(buf, Some(b'Q'), |b| put_cstr(b, sql.as_bytes(), "query"))
}

/// CopyData carrying `data`.
pub fn copy_data(data: &[u8], buf: &mut BytesMut) {
    infallible(buf, b'd', |b| b.put_slice(data));
}

/// CopyData whose payload is written by `body` straight into the buffer.
pub fn copy_data_with(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    infallible(buf, b'd', body);
}

/// CopyDone.
pub fn copy_done(buf: &mut BytesMut) {
    infallible(buf, b'c', |_| {});
}

/// Terminate.
pub fn terminate(buf: &mut BytesMut) {
    infallible(buf, b'X', |_| {});
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_layout() {
        let mut b = BytesMut::new();
        startup([("user", "u"), ("database", "d")], &mut b).unwrap();
        let expect: &[u8] = b"\0\0\0\x1b\0\x03\0\0user\0u\0database\0d\0\0";
        assert_eq!(&b[..], expect);
    }

    #[test]
    fn simple_messages() {
        let mut b = BytesMut::new();
        ssl_request(&mut b);
        assert_eq!(&b[..], &[0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]);
        b.clear();
        query("SELECT 1", &mut b).unwrap();
        assert_eq!(&b[..], b"Q\0\0\0\x0dSELECT 1\0");
        b.clear();
        copy_done(&mut b);
        terminate(&mut b);
        assert_eq!(&b[..], b"c\0\0\0\x04X\0\0\0\x04");
        b.clear();
        copy_data(b"xy", &mut b);
        assert_eq!(&b[..], b"d\0\0\0\x06xy");
        b.clear();
        sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", &mut b).unwrap();
        assert_eq!(&b[..5], b"p\0\0\0\x21");
        assert_eq!(&b[5..19], b"SCRAM-SHA-256\0");
        assert_eq!(&b[19..23], &11i32.to_be_bytes());
        b.clear();
        sasl_response(b"c=biws", &mut b);
        assert_eq!(&b[..], b"p\0\0\0\x0ac=biws");
        b.clear();
        password(b"pw", &mut b).unwrap();
        assert_eq!(&b[..], b"p\0\0\0\x07pw\0");
    }

    #[test]
    fn nul_is_refused_and_buffer_restored() {
        let mut b = BytesMut::new();
        copy_done(&mut b);
        assert!(query("a\0b", &mut b).is_err());
        assert!(startup([("user", "a\0")], &mut b).is_err());
        assert_eq!(&b[..], b"c\0\0\0\x04");
    }
}
