//! Backend message encoders: what a PostgreSQL server sends, byte for byte.
//!
//! Every function returns one or more complete messages (tag, length, body), ready to feed
//! to a [`Connection`](crate::connection::Connection) or to write to a socket.

use bytes::{BufMut, BytesMut};

/// One message: `tag`, the length (body + 4) and `body`.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let len = i32::try_from(body.len() + 4).expect("a test message fits an i32 length");
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
    b.push(0);
}

/// `AuthenticationOk`.
pub fn auth_ok() -> Vec<u8> {
    msg(b'R', &0i32.to_be_bytes())
}

/// `ParameterStatus`.
pub fn param(name: &str, value: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, value);
    msg(b'S', &b)
}

/// `BackendKeyData` with the process id and a fixed secret key.
pub fn backend_key(pid: i32) -> Vec<u8> {
    let mut b = pid.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 2, 3, 4]);
    msg(b'K', &b)
}

/// `ReadyForQuery`, idle.
pub fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

/// The server's answer to a startup packet under `trust`: AuthenticationOk, the
/// `server_version` ParameterStatus (and the usual others), BackendKeyData, ReadyForQuery.
pub fn startup_reply(version: &str, pid: i32) -> Vec<u8> {
    startup_messages(version, pid).concat()
}

/// [`startup_reply`] as separate messages.
pub fn startup_messages(version: &str, pid: i32) -> Vec<Vec<u8>> {
    let mut v = vec![auth_ok(), param("server_version", version)];
    for (name, value) in [
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("TimeZone", "UTC"),
        ("standard_conforming_strings", "on"),
    ] {
        v.push(param(name, value));
    }
    v.push(backend_key(pid));
    v.push(ready());
    v
}

/// `RowDescription` of text columns.
pub fn row_description(names: &[&str]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(i16::try_from(names.len()).expect("a test row has few columns"));
    for n in names {
        b.put_slice(n.as_bytes());
        b.put_u8(0);
        b.put_u32(0);
        b.put_i16(0);
        b.put_u32(25);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i16(0);
    }
    msg(b'T', &b)
}

/// `DataRow` of text values (`None`: NULL).
pub fn data_row(values: &[Option<&str>]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(i16::try_from(values.len()).expect("a test row has few columns"));
    for v in values {
        match v {
            None => b.put_i32(-1),
            Some(s) => {
                b.put_i32(i32::try_from(s.len()).expect("a test value fits an i32 length"));
                b.put_slice(s.as_bytes());
            }
        }
    }
    msg(b'D', &b)
}

/// `CommandComplete`.
pub fn complete(tag: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, tag);
    msg(b'C', &b)
}

/// `ErrorResponse` of severity ERROR with a SQLSTATE and a message.
pub fn error(code: &str, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', text)] {
        b.push(k);
        cstr(&mut b, v);
    }
    b.push(0);
    msg(b'E', &b)
}

/// `CopyBothResponse` (text, no columns): the start of a replication stream.
pub fn copy_both() -> Vec<u8> {
    msg(b'W', &[0, 0, 0])
}

/// `CopyData` carrying `payload`.
pub fn copy_data(payload: &[u8]) -> Vec<u8> {
    msg(b'd', payload)
}

/// `CopyDone`.
pub fn copy_done() -> Vec<u8> {
    msg(b'c', &[])
}

/// A result set: RowDescription, DataRows, CommandComplete, ReadyForQuery.
pub fn rows(names: &[&str], rows: &[Vec<Option<&str>>], tag: &str) -> Vec<u8> {
    let mut v = row_description(names);
    for r in rows {
        v.extend(data_row(r));
    }
    v.extend(complete(tag));
    v.extend(ready());
    v
}

/// Splits a byte string of whole backend messages into its messages (a truncated tail
/// stays one piece).
pub fn split_messages(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = b
            .get(1..5)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .and_then(|l| usize::try_from(i32::from_be_bytes(l)).ok())
            .map_or(b.len(), |l| (l + 1).min(b.len()));
        let (head, rest) = b.split_at(len);
        out.push(head.to_vec());
        b = rest;
    }
    out
}
