//! The dispatch point: one value of any type OID, from text ([`decode_text`]) or binary
//! ([`decode_binary`]), and the per-column [`Codec`] that resolves the OID once.
//!
//! [`decode_text_at`] and [`decode_binary_at`] ask the [`TypeRegistry`] for the type's shape
//! and call the scalar codecs (`text.rs`, `binary.rs`) or a container (`array.rs`,
//! `range.rs`), handing the container a closure that decodes its elements here, one level
//! deeper. The containers import nothing of this file, so the recursion of nested types runs
//! through this file alone.
//!
//! [`decode_text`] and [`decode_binary`] match the type OID of every value against dozens of
//! built-ins. A replication stream decodes millions of values of a handful of columns, so the
//! assembly pipeline resolves each column's [`Codec`] once, when its Relation arrives, and
//! decodes each value straight into the row's value list. Built-in OIDs cannot be overridden
//! in a [`TypeRegistry`], so the result is exactly that of `decode_text`/`decode_binary` (the
//! tests check it).

use bytes::Bytes;

use super::MAX_NESTING;
use super::datetime::{self, Date, DateMemo, Timestamp};
use super::error::ValueError;
use super::numeric::BinaryNumeric;
use super::oid::{Oid, Shape, TypeRegistry};
use super::scan::exact;
use super::text_value::PgText;
use super::types::Value;
use super::{array, binary, misc, numeric, range, text};

/// Decodes a value from PostgreSQL's text output.
///
/// `typmod` is the column's type modifier from the Relation message; PostgreSQL's text output
/// already reflects it (scale, padding, precision), so it does not change decoding.
///
/// Domains decode as their base type; arrays, ranges and multiranges decode their elements
/// with the element type's rules. A type this module has no structured form for (unknown or
/// unregistered user types, composites, geometric types, `tsvector` …) becomes
/// [`Value::Unknown`] with its text, and an array of such elements an array of
/// [`Value::Unknown`].
///
/// # Errors
///
/// Text that is not valid for a known type gives a [`ValueError`]; the caller may then keep
/// the text instead (see [`decode_text_lossless`]).
pub fn decode_text(
    type_oid: Oid,
    typmod: i32,
    bytes: &[u8],
    registry: &TypeRegistry,
) -> Result<Value, ValueError> {
    let _ = typmod;
    decode_text_at(type_oid, bytes, registry, 0)
}

/// Like [`decode_text`], but never fails: text that does not parse as its type is kept as
/// [`Value::Unknown`] (invalid UTF-8 replaced with U+FFFD), so a row is never dropped.
pub fn decode_text_lossless(
    type_oid: Oid,
    typmod: i32,
    bytes: &[u8],
    registry: &TypeRegistry,
) -> Value {
    match decode_text(type_oid, typmod, bytes, registry) {
        Ok(v) => v,
        Err(_) => Value::Unknown {
            type_oid,
            text: String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

/// Decodes text output of type `oid` at nesting level `depth` (0 for a column).
pub(crate) fn decode_text_at(
    oid: Oid,
    bytes: &[u8],
    reg: &TypeRegistry,
    depth: usize,
) -> Result<Value, ValueError> {
    if let Some(r) = text::decode_scalar(oid, bytes) {
        return r;
    }
    if depth > MAX_NESTING {
        return Err(ValueError::TooDeep { type_oid: oid });
    }
    match reg.shape(oid) {
        Shape::Builtin(base) => match text::decode_scalar(base, bytes) {
            Some(r) => r,
            None => text::decode_unknown(oid, bytes),
        },
        Shape::Array(elem) => array::decode_text(oid, elem, bytes, move |t, b| {
            decode_text_at(t, b, reg, depth + 1)
        })
        .map(|a| Value::Array(Box::new(a))),
        Shape::Range(sub) => range::decode_text(oid, sub, bytes, move |t, b| {
            decode_text_at(t, b, reg, depth + 1)
        })
        .map(Value::Range),
        Shape::Multirange(sub) => range::decode_multirange_text(oid, sub, bytes, move |t, b| {
            decode_text_at(t, b, reg, depth + 1)
        })
        .map(Value::Multirange),
        Shape::Enum(type_oid) => Ok(Value::Enum {
            type_oid,
            label: text::utf8(oid, bytes)?,
        }),
        Shape::Opaque => text::decode_unknown(oid, bytes),
    }
}

/// Decodes a value in its type's binary send format.
///
/// Domains decode as their base type; arrays, ranges and multiranges recurse into their
/// elements (an array's element type is taken from the data when the registry knows it).
/// Built-ins kept as text ([`Value::Unknown`]) in text mode get the same text here when their
/// layout is simple (`xid`, `cid`, `xid8`, `tid`, `point`, `lseg`, `box`, `line`, `circle`);
/// other built-ins without a decoder (`tsvector`, `aclitem`, …) give
/// [`ValueError::NoBinaryDecoder`]. An unregistered user type is kept as [`Value::Unknown`]
/// when its bytes look like text — valid UTF-8 without control characters other than tab,
/// newline and carriage return, as an enum's label is — and refused otherwise.
pub fn decode_binary(
    type_oid: Oid,
    bytes: &[u8],
    registry: &TypeRegistry,
) -> Result<Value, ValueError> {
    decode_binary_at(type_oid, bytes, registry, 0)
}

/// Decodes the binary send format of type `oid` at nesting level `depth` (0 for a column).
pub(crate) fn decode_binary_at(
    oid: Oid,
    bytes: &[u8],
    reg: &TypeRegistry,
    depth: usize,
) -> Result<Value, ValueError> {
    if depth > MAX_NESTING {
        return Err(ValueError::TooDeep { type_oid: oid });
    }
    if let Some(r) = binary::decode_scalar(oid, bytes) {
        return r;
    }
    match reg.shape(oid) {
        Shape::Builtin(base) => match binary::decode_scalar(base, bytes) {
            Some(r) => r,
            None => binary::as_text(base, bytes)
                .map(|text| Value::Unknown {
                    type_oid: oid,
                    text,
                })
                .ok_or(ValueError::NoBinaryDecoder { type_oid: oid }),
        },
        Shape::Array(elem) => array::decode_binary(oid, Some(elem), bytes, reg, move |t, b| {
            decode_binary_at(t, b, reg, depth + 1)
        })
        .map(|a| Value::Array(Box::new(a))),
        Shape::Range(sub) => range::decode_binary(oid, sub, bytes, move |t, b| {
            decode_binary_at(t, b, reg, depth + 1)
        })
        .map(Value::Range),
        Shape::Multirange(sub) => range::decode_multirange_binary(oid, sub, bytes, move |t, b| {
            decode_binary_at(t, b, reg, depth + 1)
        })
        .map(Value::Multirange),
        Shape::Enum(type_oid) => Ok(Value::Enum {
            type_oid,
            label: binary::utf8(oid, bytes)?,
        }),
        Shape::Opaque => binary::decode_opaque(oid, bytes),
    }
}

/// How the values of one column are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    /// `text`, `varchar`, `bpchar`, `name`: UTF-8 in both formats.
    Text,
    Uuid,
    Date,
    Timestamp,
    TimestampTz,
    Bytea,
    /// Anything else: the general decoders.
    Other,
}

impl Codec {
    /// The codec of values of type `oid`.
    pub(crate) fn of(oid: Oid) -> Codec {
        match oid {
            Oid::BOOL => Codec::Bool,
            Oid::INT2 => Codec::Int2,
            Oid::INT4 => Codec::Int4,
            Oid::INT8 => Codec::Int8,
            Oid::FLOAT4 => Codec::Float4,
            Oid::FLOAT8 => Codec::Float8,
            Oid::NUMERIC => Codec::Numeric,
            Oid::TEXT | Oid::VARCHAR | Oid::BPCHAR | Oid::NAME => Codec::Text,
            Oid::UUID => Codec::Uuid,
            Oid::DATE => Codec::Date,
            Oid::TIMESTAMP => Codec::Timestamp,
            Oid::TIMESTAMPTZ => Codec::TimestampTz,
            Oid::BYTEA => Codec::Bytea,
            _ => Codec::Other,
        }
    }

    /// Decodes text output of type `oid` (whose codec this is) and appends the value to
    /// `out`: the same value [`decode_text`] gives. On error nothing is
    /// appended.
    #[inline]
    pub(crate) fn push_text(
        self,
        oid: Oid,
        b: &[u8],
        reg: &TypeRegistry,
        dates: &mut DateMemo,
        out: &mut Vec<Value>,
    ) -> Result<(), ValueError> {
        let bad = |reason: &'static str| ValueError::InvalidText {
            type_oid: oid,
            reason,
        };
        // Each variant is appended by its own function, so the value is written straight into
        // the list instead of being built on the stack and copied (a copy that stalls on store
        // forwarding, for a value of 56 bytes written piecewise).
        match self {
            Codec::Bool => push::bool(out, text::parse_bool(b).map_err(bad)?),
            Codec::Int2 => push::int2(
                out,
                text::parse_i64(b)
                    .and_then(|v| i16::try_from(v).map_err(|_| "out of range"))
                    .map_err(bad)?,
            ),
            Codec::Int4 => push::int4(
                out,
                text::parse_i64(b)
                    .and_then(|v| i32::try_from(v).map_err(|_| "out of range"))
                    .map_err(bad)?,
            ),
            Codec::Int8 => push::int8(out, text::parse_i64(b).map_err(bad)?),
            Codec::Float4 => push::float4(out, misc::parse_f32(b).map_err(bad)?),
            Codec::Float8 => push::float8(out, misc::parse_f64(b).map_err(bad)?),
            Codec::Numeric if numeric::is_canonical(b) => push::numeric_ascii(out, b),
            Codec::Numeric => {
                push::value(out, Value::Numeric(numeric::parse_text(b).map_err(bad)?))
            }
            Codec::Text => push::text(out, b).ok_or(ValueError::InvalidText {
                type_oid: oid,
                reason: "not valid UTF-8",
            })?,
            Codec::Uuid => push::uuid(out, misc::parse_uuid(b).map_err(bad)?),
            Codec::Date => push::date(out, datetime::parse_date_memo(b, dates).map_err(bad)?.0),
            Codec::Timestamp => push::timestamp(
                out,
                datetime::parse_timestamp_memo(b, false, dates)
                    .map_err(bad)?
                    .0,
            ),
            Codec::TimestampTz => push::timestamptz(
                out,
                datetime::parse_timestamp_memo(b, true, dates)
                    .map_err(bad)?
                    .0,
            ),
            Codec::Bytea => push::value(
                out,
                Value::Bytea(Bytes::from(misc::parse_bytea(b).map_err(bad)?)),
            ),
            Codec::Other => push::value(out, decode_text_at(oid, b, reg, 0)?),
        }
        Ok(())
    }

    /// Decodes the binary send format of type `oid` (whose codec this is) and appends the
    /// value to `out`: the same value [`decode_binary`] gives. On error
    /// nothing is appended.
    #[inline]
    pub(crate) fn push_binary(
        self,
        oid: Oid,
        b: &[u8],
        reg: &TypeRegistry,
        out: &mut Vec<Value>,
    ) -> Result<(), ValueError> {
        let len = || ValueError::InvalidBinary {
            type_oid: oid,
            reason: "wrong length",
        };
        match self {
            Codec::Bool => match b {
                [x] => push::bool(out, *x != 0),
                _ => return Err(len()),
            },
            Codec::Int2 => push::int2(out, i16::from_be_bytes(exact(b).ok_or_else(len)?)),
            Codec::Int4 => push::int4(out, i32::from_be_bytes(exact(b).ok_or_else(len)?)),
            Codec::Int8 => push::int8(out, i64::from_be_bytes(exact(b).ok_or_else(len)?)),
            Codec::Float4 => push::float4(out, f32::from_be_bytes(exact(b).ok_or_else(len)?)),
            Codec::Float8 => push::float8(out, f64::from_be_bytes(exact(b).ok_or_else(len)?)),
            Codec::Numeric => match numeric::decode_binary_parts(b)? {
                BinaryNumeric::Special(n) => push::numeric(out, n),
                BinaryNumeric::Finite(f) => push::numeric_binary(out, &f),
            },
            Codec::Text => push::text(out, b).ok_or(ValueError::InvalidBinary {
                type_oid: oid,
                reason: "not valid UTF-8",
            })?,
            Codec::Uuid => push::uuid(out, exact(b).ok_or_else(len)?),
            Codec::Date => push::date(out, i32::from_be_bytes(exact(b).ok_or_else(len)?)),
            Codec::Timestamp => {
                push::timestamp(out, i64::from_be_bytes(exact(b).ok_or_else(len)?));
            }
            Codec::TimestampTz => {
                push::timestamptz(out, i64::from_be_bytes(exact(b).ok_or_else(len)?));
            }
            Codec::Bytea => push::value(out, Value::Bytea(Bytes::copy_from_slice(b))),
            Codec::Other => push::value(out, decode_binary_at(oid, b, reg, 0)?),
        }
        Ok(())
    }
}

/// One function per variant, never inlined into the codecs' `match`, each storing its value
/// straight into the list.
///
/// `out.push(Value::Int8(v))` builds the 56-byte value in a stack slot and copies it; the
/// copy reads back bytes just written piecewise, which stalls on store forwarding. Instead a
/// constant of the variant is pushed (copied from read-only data) and its payload is then
/// set in place, which drops nothing.
mod push {
    use super::super::numeric::{FiniteBinary, Numeric};
    use super::*;

    /// Pushes the constant `$empty` (a `Value::$variant(..)`), then sets its payload to `$v`.
    macro_rules! put {
        ($out:ident, $variant:ident, $empty:expr, $v:expr) => {{
            const EMPTY: Value = $empty;
            $out.push(EMPTY);
            if let Some(Value::$variant(slot)) = $out.last_mut() {
                *slot = $v;
            }
        }};
    }

    #[inline(never)]
    pub(super) fn bool(out: &mut Vec<Value>, v: bool) {
        put!(out, Bool, Value::Bool(false), v);
    }

    #[inline(never)]
    pub(super) fn int2(out: &mut Vec<Value>, v: i16) {
        put!(out, Int2, Value::Int2(0), v);
    }

    #[inline(never)]
    pub(super) fn int4(out: &mut Vec<Value>, v: i32) {
        put!(out, Int4, Value::Int4(0), v);
    }

    #[inline(never)]
    pub(super) fn int8(out: &mut Vec<Value>, v: i64) {
        put!(out, Int8, Value::Int8(0), v);
    }

    #[inline(never)]
    pub(super) fn float4(out: &mut Vec<Value>, v: f32) {
        put!(out, Float4, Value::Float4(0.0), v);
    }

    #[inline(never)]
    pub(super) fn float8(out: &mut Vec<Value>, v: f64) {
        put!(out, Float8, Value::Float8(0.0), v);
    }

    /// A canonical numeric's text, known to be ASCII.
    #[inline(never)]
    pub(super) fn numeric_ascii(out: &mut Vec<Value>, v: &[u8]) {
        const EMPTY: Value = Value::Numeric(Numeric::Finite(PgText::new()));
        out.push(EMPTY);
        if let Some(Value::Numeric(Numeric::Finite(s))) = out.last_mut() {
            s.set_utf8(v);
        }
    }

    #[inline(never)]
    pub(super) fn numeric_binary(out: &mut Vec<Value>, v: &FiniteBinary<'_>) {
        const EMPTY: Value = Value::Numeric(Numeric::Finite(PgText::new()));
        out.push(EMPTY);
        if let Some(Value::Numeric(Numeric::Finite(s))) = out.last_mut() {
            *s = v.to_text();
        }
    }

    #[inline(never)]
    pub(super) fn numeric(out: &mut Vec<Value>, v: Numeric) {
        put!(out, Numeric, Value::Numeric(Numeric::NaN), v);
    }

    /// UTF-8 text; `None` (and nothing pushed) when `v` is not UTF-8.
    #[inline(never)]
    pub(super) fn text(out: &mut Vec<Value>, v: &[u8]) -> Option<()> {
        const EMPTY: Value = Value::Text(PgText::new());
        out.push(EMPTY);
        if let Some(Value::Text(s)) = out.last_mut()
            && s.set_utf8(v)
        {
            return Some(());
        }
        out.pop();
        None
    }

    #[inline(never)]
    pub(super) fn uuid(out: &mut Vec<Value>, v: [u8; 16]) {
        put!(out, Uuid, Value::Uuid([0; 16]), v);
    }

    #[inline(never)]
    pub(super) fn date(out: &mut Vec<Value>, v: i32) {
        put!(out, Date, Value::Date(Date(0)), Date(v));
    }

    #[inline(never)]
    pub(super) fn timestamp(out: &mut Vec<Value>, v: i64) {
        put!(out, Timestamp, Value::Timestamp(Timestamp(0)), Timestamp(v));
    }

    #[inline(never)]
    pub(super) fn timestamptz(out: &mut Vec<Value>, v: i64) {
        put!(
            out,
            TimestampTz,
            Value::TimestampTz(Timestamp(0)),
            Timestamp(v)
        );
    }

    #[inline(never)]
    pub(super) fn value(out: &mut Vec<Value>, v: Value) {
        out.push(v);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::value::{decode_binary, decode_text};

    /// Every built-in with a codec of its own, and some without.
    const OIDS: [Oid; 18] = [
        Oid::BOOL,
        Oid::INT2,
        Oid::INT4,
        Oid::INT8,
        Oid::FLOAT4,
        Oid::FLOAT8,
        Oid::NUMERIC,
        Oid::TEXT,
        Oid::VARCHAR,
        Oid::BPCHAR,
        Oid::NAME,
        Oid::UUID,
        Oid::DATE,
        Oid::TIMESTAMP,
        Oid::TIMESTAMPTZ,
        Oid::BYTEA,
        Oid::CHAR,
        Oid::INT4_ARRAY,
    ];

    fn check(oid: Oid, bytes: &[u8]) -> Result<(), TestCaseError> {
        let reg = TypeRegistry::new();
        let codec = Codec::of(oid);
        let mut out = vec![Value::Null];
        let got = codec.push_text(oid, bytes, &reg, &mut DateMemo::default(), &mut out);
        let want = decode_text(oid, -1, bytes, &reg);
        match (got, want) {
            (Ok(()), Ok(w)) => {
                prop_assert_eq!(format!("{:?}", out.get(1)), format!("{:?}", Some(&w)))
            }
            (Err(g), Err(w)) => {
                prop_assert_eq!(g, w);
                prop_assert_eq!(out.len(), 1);
            }
            (g, w) => prop_assert!(false, "text {oid} {bytes:?}: {g:?} vs {w:?}"),
        }
        let mut out = vec![Value::Null];
        let got = codec.push_binary(oid, bytes, &reg, &mut out);
        let want = decode_binary(oid, bytes, &reg);
        match (got, want) {
            (Ok(()), Ok(w)) => {
                prop_assert_eq!(format!("{:?}", out.get(1)), format!("{:?}", Some(&w)))
            }
            (Err(g), Err(w)) => {
                prop_assert_eq!(g, w);
                prop_assert_eq!(out.len(), 1);
            }
            (g, w) => prop_assert!(false, "binary {oid} {bytes:?}: {g:?} vs {w:?}"),
        }
        Ok(())
    }

    /// Text in the shape of the values of the codecs' types, mutated a little.
    fn texty() -> impl Strategy<Value = Vec<u8>> {
        let shapes = prop_oneof![
            "-?[0-9]{1,20}",
            "[-+]?[0-9]{0,6}(\\.[0-9]{0,6})?",
            "(t|f|true|false|x)",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,7})?)?([-+][0-9]{2}(:[0-9]{2})?)?( BC)?",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "\\\\x[0-9a-f]{0,8}",
            ".{0,12}",
        ];
        (
            shapes,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..2),
        )
            .prop_map(|(s, edits)| {
                let mut b = s.into_bytes();
                for (i, x) in edits {
                    if !b.is_empty() {
                        let i = i.index(b.len());
                        b[i] = x;
                    }
                }
                b
            })
    }

    proptest! {
        #[test]
        fn codecs_decode_like_the_general_decoders(
            oid in prop::sample::select(&OIDS[..]),
            bytes in prop_oneof![texty(), prop::collection::vec(any::<u8>(), 0..20)],
        ) {
            check(oid, &bytes)?;
        }
    }

    #[test]
    fn examples() {
        for oid in OIDS {
            for b in [
                &b""[..],
                b"1",
                b"-32768",
                b"2147483648",
                b"t",
                b"12.50",
                b"-0.0",
                b"2024-02-29",
                b"2024-02-29 08:15:01.5+00",
                b"2024-02-29 08:15:01",
                b"infinity",
                b"NaN",
                b"\0\0\0\0\0\0\0\x01",
                b"\0\x01",
                b"\0\0\0\x07",
                b"\xff",
            ] {
                check(oid, b).unwrap();
            }
        }
    }
}

#[cfg(test)]
/// Arrays through the dispatcher (these were `array.rs`'s tests).
mod array_tests {
    use super::super::Json;
    use super::super::types::{Array, ArrayDim};
    use super::*;

    fn int_array(dims: &[(i32, u32)], elements: &[Option<i32>]) -> Value {
        Value::Array(Box::new(Array {
            element_type: Oid::INT4,
            dims: dims
                .iter()
                .map(|&(lower_bound, len)| ArrayDim { lower_bound, len })
                .collect(),
            elements: elements
                .iter()
                .map(|e| e.map_or(Value::Null, Value::Int4))
                .collect(),
        }))
    }

    /// `array_send` of an int4 array.
    fn int_array_binary(dims: &[(i32, u32)], elements: &[Option<i32>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((dims.len() as i32).to_be_bytes());
        b.extend(i32::from(elements.iter().any(Option::is_none)).to_be_bytes());
        b.extend(Oid::INT4.0.to_be_bytes());
        for &(lb, len) in dims {
            b.extend((len as i32).to_be_bytes());
            b.extend(lb.to_be_bytes());
        }
        for e in elements {
            match e {
                None => b.extend((-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend(4i32.to_be_bytes());
                    b.extend(v.to_be_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn lower_bounds_are_kept() {
        let reg = TypeRegistry::new();
        type Case = (&'static str, &'static [(i32, u32)], &'static [Option<i32>]);
        let cases: [Case; 4] = [
            ("{1,2}", &[(1, 2)], &[Some(1), Some(2)]),
            ("[5:6]={1,2}", &[(5, 2)], &[Some(1), Some(2)]),
            ("[-2:-2]={NULL}", &[(-2, 1)], &[None]),
            (
                "[0:1][-1:0]={{1,NULL},{3,4}}",
                &[(0, 2), (-1, 2)],
                &[Some(1), None, Some(3), Some(4)],
            ),
        ];
        for (text, dims, elements) in cases {
            let want = int_array(dims, elements);
            let got = decode_text(Oid::INT4_ARRAY, -1, text.as_bytes(), &reg);
            assert_eq!(got.as_ref(), Ok(&want), "text {text}");
            assert_eq!(want.to_string(), text, "array_out of {text}");
            let bin = int_array_binary(dims, elements);
            assert_eq!(
                decode_binary(Oid::INT4_ARRAY, &bin, &reg),
                Ok(want),
                "binary {text}"
            );
        }
        assert_ne!(
            decode_text(Oid::INT4_ARRAY, -1, b"[5:6]={1,2}", &reg),
            decode_text(Oid::INT4_ARRAY, -1, b"{1,2}", &reg)
        );
    }

    #[test]
    fn jsonb_null_is_not_sql_null() {
        let reg = TypeRegistry::new();
        // A column: jsonb 'null' (text, and binary with the version byte).
        assert_eq!(
            decode_text(Oid::JSONB, -1, b"null", &reg),
            Ok(Value::Jsonb(Json::Null))
        );
        assert_eq!(
            decode_binary(Oid::JSONB, b"\x01null", &reg),
            Ok(Value::Jsonb(Json::Null))
        );
        assert_ne!(Value::Jsonb(Json::Null), Value::Null);
        // Inside an array: {null,NULL} is a jsonb null, then an SQL NULL.
        let want = Value::Array(Box::new(Array {
            element_type: Oid::JSONB,
            dims: vec![ArrayDim {
                lower_bound: 1,
                len: 2,
            }],
            elements: vec![Value::Jsonb(Json::Null), Value::Null],
        }));
        assert_eq!(
            decode_text(Oid::JSONB_ARRAY, -1, br#"{"null",NULL}"#, &reg).as_ref(),
            Ok(&want)
        );
        let mut bin = Vec::new();
        bin.extend(1i32.to_be_bytes());
        bin.extend(1i32.to_be_bytes());
        bin.extend(Oid::JSONB.0.to_be_bytes());
        bin.extend(2i32.to_be_bytes());
        bin.extend(1i32.to_be_bytes());
        bin.extend(5i32.to_be_bytes());
        bin.extend(b"\x01null");
        bin.extend((-1i32).to_be_bytes());
        assert_eq!(decode_binary(Oid::JSONB_ARRAY, &bin, &reg), Ok(want));
    }
}

#[cfg(test)]
/// Binary values of unregistered types (these were `binary.rs`'s tests).
mod binary_tests {
    use super::*;

    #[test]
    fn unregistered_types_keep_only_text_like_bytes() {
        let reg = TypeRegistry::new();
        let oid = Oid(17000);
        for text in ["label", "", "tab\tnew\nline\r", "é😀 ok ok"] {
            assert_eq!(
                decode_binary(oid, text.as_bytes(), &reg),
                Ok(Value::Unknown {
                    type_oid: oid,
                    text: text.into()
                })
            );
        }
        // record_send of ROW(1, 'x y'), an empty range, a range with bounds, DEL.
        for bin in [
            &b"\0\0\0\x02\0\0\0\x17\0\0\0\x04\0\0\0\x01\0\0\0\x19\0\0\0\x03x y"[..],
            b"\x01",
            b"\x0c\0\0\0\x08\0\0\0\0\0\0\0\0",
            b"a\x7fb",
            b"\xff",
        ] {
            assert_eq!(
                decode_binary(oid, bin, &reg),
                Err(ValueError::NoBinaryDecoder { type_oid: oid })
            );
        }
    }
}
