//! Property tests for the incremental backend-message framer (`pgcdc_core::wire::Framer`).
//!
//! A test-only encoder turns generated messages into wire bytes; the stream is then fed to the
//! framer split at arbitrary boundaries, and arbitrary bytes are thrown at it to prove it never
//! panics.
#![allow(missing_docs)]

use bytes::{BufMut, Bytes, BytesMut};
use pgcdc_core::wire::{
    Authentication, BackendMessage, CopyResponse, DataRow, FieldDescription, Framer,
    RowDescription, TransactionStatus,
};
use pgcdc_core::{ProtocolError, ServerError, SqlState};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Test-only encoder.

fn put_cstr(b: &mut BytesMut, s: &str) {
    assert!(!s.contains('\0'));
    b.put_slice(s.as_bytes());
    b.put_u8(0);
}

fn put_error_fields(b: &mut BytesMut, e: &ServerError) {
    put_field(b, b'S', Some(&e.severity));
    put_field(b, b'V', e.severity_nonlocalized.as_ref());
    if let Some(code) = &e.code {
        put_field(b, b'C', Some(&code.code().to_owned()));
    }
    put_field(b, b'M', Some(&e.message));
    for (code, value) in [
        (b'D', &e.detail),
        (b'H', &e.hint),
        (b'P', &e.position),
        (b'p', &e.internal_position),
        (b'q', &e.internal_query),
        (b'W', &e.where_),
        (b's', &e.schema),
        (b't', &e.table),
        (b'c', &e.column),
        (b'd', &e.datatype),
        (b'n', &e.constraint),
        (b'F', &e.file),
        (b'L', &e.line),
        (b'R', &e.routine),
    ] {
        put_field(b, code, value.as_ref());
    }
    b.put_u8(0);
}

fn put_field(b: &mut BytesMut, code: u8, value: Option<&String>) {
    if let Some(v) = value {
        b.put_u8(code);
        put_cstr(b, v);
    }
}

fn put_copy_response(b: &mut BytesMut, c: &CopyResponse) {
    b.put_u8(c.format);
    b.put_i16(c.column_formats.len() as i16);
    for f in &c.column_formats {
        b.put_i16(*f);
    }
}

/// Appends one backend message, framed, to `out`.
fn encode(msg: &BackendMessage, out: &mut BytesMut) {
    let mut b = BytesMut::new();
    match msg {
        BackendMessage::Authentication(a) => match a {
            Authentication::Ok => b.put_i32(0),
            Authentication::CleartextPassword => b.put_i32(3),
            Authentication::Md5Password { salt } => {
                b.put_i32(5);
                b.put_slice(salt);
            }
            Authentication::Sasl { mechanisms } => {
                b.put_i32(10);
                for m in mechanisms {
                    put_cstr(&mut b, m);
                }
                b.put_u8(0);
            }
            Authentication::SaslContinue(d) => {
                b.put_i32(11);
                b.put_slice(d);
            }
            Authentication::SaslFinal(d) => {
                b.put_i32(12);
                b.put_slice(d);
            }
            Authentication::Other(code) => b.put_i32(*code),
            other => unreachable!("encoder does not know {other:?}"),
        },
        BackendMessage::ParameterStatus { name, value } => {
            put_cstr(&mut b, name);
            put_cstr(&mut b, value);
        }
        BackendMessage::BackendKeyData {
            process_id,
            secret_key,
        } => {
            b.put_i32(*process_id);
            b.put_slice(secret_key);
        }
        BackendMessage::ReadyForQuery(s) => b.put_u8(s.as_byte()),
        BackendMessage::RowDescription(rd) => {
            b.put_i16(rd.fields.len() as i16);
            for f in &rd.fields {
                put_cstr(&mut b, &f.name);
                b.put_u32(f.table_oid);
                b.put_i16(f.column_id);
                b.put_u32(f.type_oid);
                b.put_i16(f.type_size);
                b.put_i32(f.type_modifier);
                b.put_i16(f.format);
            }
        }
        BackendMessage::DataRow(row) => {
            b.put_i16(row.values.len() as i16);
            for v in &row.values {
                match v {
                    None => b.put_i32(-1),
                    Some(v) => {
                        b.put_i32(v.len() as i32);
                        b.put_slice(v);
                    }
                }
            }
        }
        BackendMessage::CommandComplete { tag } => put_cstr(&mut b, tag),
        BackendMessage::EmptyQueryResponse | BackendMessage::CopyDone => {}
        BackendMessage::ErrorResponse(e) | BackendMessage::NoticeResponse(e) => {
            put_error_fields(&mut b, e)
        }
        BackendMessage::CopyBothResponse(c)
        | BackendMessage::CopyOutResponse(c)
        | BackendMessage::CopyInResponse(c) => put_copy_response(&mut b, c),
        BackendMessage::CopyData(d) => b.put_slice(d),
        BackendMessage::NegotiateProtocolVersion {
            newest_version,
            unrecognized,
        } => {
            b.put_i32(*newest_version);
            b.put_i32(unrecognized.len() as i32);
            for o in unrecognized {
                put_cstr(&mut b, o);
            }
        }
        BackendMessage::NotificationResponse {
            process_id,
            channel,
            payload,
        } => {
            b.put_i32(*process_id);
            put_cstr(&mut b, channel);
            put_cstr(&mut b, payload);
        }
        other => unreachable!("encoder does not know {other:?}"),
    }
    out.put_u8(u8::try_from(msg.kind()).expect("ASCII type byte"));
    out.put_i32(b.len() as i32 + 4);
    out.put_slice(&b);
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Strings without NUL, including some non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ .,:\"é€-]{0,16}"
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn server_error() -> impl Strategy<Value = ServerError> {
    (
        (
            text(),
            opt_text(),
            prop::option::of("[0-9A-Z]{5}"),
            text(),
            opt_text(),
            opt_text(),
        ),
        prop::collection::vec(opt_text(), 12),
    )
        .prop_map(|((severity, sev_nl, code, message, detail, hint), rest)| {
            let mut e = ServerError::default();
            e.severity = severity;
            e.severity_nonlocalized = sev_nl;
            e.code = code.as_deref().and_then(SqlState::from_code);
            e.message = message;
            e.detail = detail;
            e.hint = hint;
            let mut it = rest.into_iter();
            for slot in [
                &mut e.position,
                &mut e.internal_position,
                &mut e.internal_query,
                &mut e.where_,
                &mut e.schema,
                &mut e.table,
                &mut e.column,
                &mut e.datatype,
                &mut e.constraint,
                &mut e.file,
                &mut e.line,
                &mut e.routine,
            ] {
                *slot = it.next().flatten();
            }
            e
        })
}

fn copy_response() -> impl Strategy<Value = CopyResponse> {
    (any::<u8>(), prop::collection::vec(any::<i16>(), 0..8)).prop_map(|(format, column_formats)| {
        CopyResponse {
            format,
            column_formats,
        }
    })
}

fn authentication() -> impl Strategy<Value = Authentication> {
    prop_oneof![
        Just(Authentication::Ok),
        Just(Authentication::CleartextPassword),
        any::<[u8; 4]>().prop_map(|salt| Authentication::Md5Password { salt }),
        prop::collection::vec("[A-Z0-9-]{1,20}", 0..4)
            .prop_map(|mechanisms| Authentication::Sasl { mechanisms }),
        payload().prop_map(Authentication::SaslContinue),
        payload().prop_map(Authentication::SaslFinal),
        // Codes without data that the parser reports as Other.
        prop_oneof![Just(2), Just(6), Just(7), Just(9), 13..1000i32]
            .prop_map(Authentication::Other),
    ]
}

fn field_description() -> impl Strategy<Value = FieldDescription> {
    (
        text(),
        any::<u32>(),
        any::<i16>(),
        any::<u32>(),
        any::<i16>(),
        any::<i32>(),
        0..2i16,
    )
        .prop_map(
            |(name, table_oid, column_id, type_oid, type_size, type_modifier, format)| {
                FieldDescription {
                    name,
                    table_oid,
                    column_id,
                    type_oid,
                    type_size,
                    type_modifier,
                    format,
                }
            },
        )
}

fn backend_message() -> impl Strategy<Value = BackendMessage> {
    prop_oneof![
        authentication().prop_map(BackendMessage::Authentication),
        (text(), text()).prop_map(|(name, value)| BackendMessage::ParameterStatus { name, value }),
        (any::<i32>(), prop::collection::vec(any::<u8>(), 4..=256)).prop_map(|(pid, key)| {
            BackendMessage::BackendKeyData {
                process_id: pid,
                secret_key: Bytes::from(key),
            }
        }),
        prop_oneof![
            Just(TransactionStatus::Idle),
            Just(TransactionStatus::InTransaction),
            Just(TransactionStatus::Failed),
        ]
        .prop_map(BackendMessage::ReadyForQuery),
        prop::collection::vec(field_description(), 0..5)
            .prop_map(|fields| BackendMessage::RowDescription(RowDescription { fields })),
        prop::collection::vec(prop::option::of(payload()), 0..6)
            .prop_map(|values| BackendMessage::DataRow(DataRow { values })),
        text().prop_map(|tag| BackendMessage::CommandComplete { tag }),
        Just(BackendMessage::EmptyQueryResponse),
        server_error().prop_map(BackendMessage::ErrorResponse),
        server_error().prop_map(BackendMessage::NoticeResponse),
        copy_response().prop_map(BackendMessage::CopyBothResponse),
        copy_response().prop_map(BackendMessage::CopyOutResponse),
        copy_response().prop_map(BackendMessage::CopyInResponse),
        payload().prop_map(BackendMessage::CopyData),
        Just(BackendMessage::CopyDone),
        (
            any::<i32>(),
            prop::collection::vec("_pq_\\.[a-z_]{1,10}", 0..4)
        )
            .prop_map(|(newest_version, unrecognized)| {
                BackendMessage::NegotiateProtocolVersion {
                    newest_version,
                    unrecognized,
                }
            }),
        (any::<i32>(), text(), text()).prop_map(|(process_id, channel, payload)| {
            BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }),
    ]
}

/// Every backend type byte the framer knows.
const TYPE_BYTES: &[u8] = b"RSKZTDCIENWHGdcvA";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Calls `parse` until it returns `None`, collecting messages; stops at the first error.
fn drain(
    framer: &mut Framer,
    buf: &mut BytesMut,
    out: &mut Vec<BackendMessage>,
) -> Result<(), ProtocolError> {
    while let Some(m) = framer.parse(buf)? {
        out.push(m);
    }
    Ok(())
}

/// Parses a stream fed in chunks of the given sizes (cycled), returning every message.
fn parse_chunked(stream: &[u8], sizes: &[usize]) -> Result<Vec<BackendMessage>, ProtocolError> {
    let mut framer = Framer::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        buf.put_slice(chunk);
        rest = tail;
        drain(&mut framer, &mut buf, &mut out)?;
    }
    assert!(buf.is_empty(), "bytes left over: {buf:?}");
    Ok(out)
}

/// Feeds arbitrary bytes; the framer must return (not panic) and never report a message
/// without consuming bytes.
fn feed_garbage(framer: &mut Framer, bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.len();
        match framer.parse(&mut buf) {
            Ok(Some(_)) => assert!(buf.len() < before, "message without consuming bytes"),
            Ok(None) => {
                assert_eq!(buf.len(), before, "None must leave the buffer as it was");
                break;
            }
            Err(ProtocolError::Malformed { .. }) => {
                // The bad frame was removed whole: header plus announced body.
                let len = frame_len_at_front(bytes, before);
                assert_eq!(
                    buf.len(),
                    before - len,
                    "a malformed frame is removed whole"
                );
                break;
            }
            Err(_) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "a header error leaves the buffer as it was"
                );
                break;
            }
        }
    }
}

/// The total length (header included) of the frame at the front of the last `remaining` bytes
/// of `bytes`, or 0 when the framer refuses it from the header alone (fixed-size types).
fn frame_len_at_front(bytes: &[u8], remaining: usize) -> usize {
    let front = &bytes[bytes.len() - remaining..];
    let Some(&[tag, a, b, c, d]) = front.first_chunk::<5>() else {
        return 0;
    };
    let len = i32::from_be_bytes([a, b, c, d]);
    let total = 1 + len as usize;
    let refused_from_header = match tag {
        b'Z' => len != 5,
        b'I' | b'c' => len != 4,
        b'K' => !(12..=264).contains(&len),
        b'R' => len < 8,
        _ => false,
    };
    if refused_from_header || front.len() < total {
        0
    } else {
        total
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #[test]
    fn wire_split_stream_matches_whole(
        msgs in prop::collection::vec(backend_message(), 1..12),
        sizes in prop::collection::vec(1usize..48, 1..16),
    ) {
        let mut stream = BytesMut::new();
        for m in &msgs {
            encode(m, &mut stream);
        }
        let whole = parse_chunked(&stream, &[stream.len()]);
        prop_assert_eq!(whole.as_ref(), Ok(&msgs));
        let split = parse_chunked(&stream, &sizes);
        prop_assert_eq!(split, whole);
        // One byte at a time, the worst case for an incremental parser.
        let bytewise = parse_chunked(&stream, &[1]);
        prop_assert_eq!(bytewise.as_ref(), Ok(&msgs));
    }

    #[test]
    fn wire_arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        max in prop_oneof![Just(pgcdc_core::wire::DEFAULT_MAX_FRAME_LEN), 0usize..64],
    ) {
        feed_garbage(&mut Framer::new(max), &bytes);
    }

    #[test]
    fn wire_valid_header_arbitrary_body_never_panics(
        tag in prop::sample::select(TYPE_BYTES),
        body in prop::collection::vec(any::<u8>(), 0..300),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&tail);
        feed_garbage(&mut Framer::default(), &bytes);
    }

    #[test]
    fn wire_random_type_byte_with_valid_length_never_panics(
        tag in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        bytes.extend_from_slice(&body);
        feed_garbage(&mut Framer::default(), &bytes);
    }

    #[test]
    fn wire_data_row_with_arbitrary_counts_never_panics(
        count in any::<i16>(),
        lens in prop::collection::vec(prop_oneof![Just(-1i32), Just(-2), 0..8i32, Just(i32::MAX)], 0..8),
        filler in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut body = BytesMut::new();
        body.put_i16(count);
        for l in lens {
            body.put_i32(l);
        }
        body.put_slice(&filler);
        let mut bytes = BytesMut::new();
        bytes.put_u8(b'D');
        bytes.put_i32(body.len() as i32 + 4);
        bytes.put_slice(&body);
        feed_garbage(&mut Framer::default(), &bytes);
    }
}
