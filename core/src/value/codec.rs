//! Per-column decoders resolved once from the column's type OID.
//!
//! [`decode_text`](super::decode_text) and [`decode_binary`](super::decode_binary) match the
//! type OID of every value against dozens of built-ins. A replication stream decodes millions
//! of values of a handful of columns, so the assembly pipeline resolves each column's
//! [`Codec`] once, when its Relation arrives, and decodes each value straight into the row's
//! value list. Built-in OIDs cannot be overridden in a [`TypeRegistry`], so the result is
//! exactly that of `decode_text`/`decode_binary` (the tests check it).

use bytes::Bytes;

use super::datetime::{self, Date, DateMemo, Timestamp};
use super::numeric::BinaryNumeric;
use super::scan::exact;
use super::{PgText, TypeOid, TypeRegistry, Value, ValueError, binary, misc, numeric, text};

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
    pub(crate) fn of(oid: TypeOid) -> Codec {
        match oid {
            TypeOid::BOOL => Codec::Bool,
            TypeOid::INT2 => Codec::Int2,
            TypeOid::INT4 => Codec::Int4,
            TypeOid::INT8 => Codec::Int8,
            TypeOid::FLOAT4 => Codec::Float4,
            TypeOid::FLOAT8 => Codec::Float8,
            TypeOid::NUMERIC => Codec::Numeric,
            TypeOid::TEXT | TypeOid::VARCHAR | TypeOid::BPCHAR | TypeOid::NAME => Codec::Text,
            TypeOid::UUID => Codec::Uuid,
            TypeOid::DATE => Codec::Date,
            TypeOid::TIMESTAMP => Codec::Timestamp,
            TypeOid::TIMESTAMPTZ => Codec::TimestampTz,
            TypeOid::BYTEA => Codec::Bytea,
            _ => Codec::Other,
        }
    }

    /// Decodes text output of type `oid` (whose codec this is) and appends the value to
    /// `out`: the same value [`decode_text`](super::decode_text) gives. On error nothing is
    /// appended.
    #[inline]
    pub(crate) fn push_text(
        self,
        oid: TypeOid,
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
            Codec::Other => push::value(out, text::decode_at(oid, b, reg, 0)?),
        }
        Ok(())
    }

    /// Decodes the binary send format of type `oid` (whose codec this is) and appends the
    /// value to `out`: the same value [`decode_binary`](super::decode_binary) gives. On error
    /// nothing is appended.
    #[inline]
    pub(crate) fn push_binary(
        self,
        oid: TypeOid,
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
            Codec::Numeric => match numeric::parse_binary(b)? {
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
            Codec::Other => push::value(out, binary::decode_at(oid, b, reg, 0)?),
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
    use super::super::Numeric;
    use super::super::numeric::FiniteBinary;
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
    const OIDS: [TypeOid; 18] = [
        TypeOid::BOOL,
        TypeOid::INT2,
        TypeOid::INT4,
        TypeOid::INT8,
        TypeOid::FLOAT4,
        TypeOid::FLOAT8,
        TypeOid::NUMERIC,
        TypeOid::TEXT,
        TypeOid::VARCHAR,
        TypeOid::BPCHAR,
        TypeOid::NAME,
        TypeOid::UUID,
        TypeOid::DATE,
        TypeOid::TIMESTAMP,
        TypeOid::TIMESTAMPTZ,
        TypeOid::BYTEA,
        TypeOid::CHAR,
        TypeOid::INT4_ARRAY,
    ];

    fn check(oid: TypeOid, bytes: &[u8]) -> Result<(), TestCaseError> {
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
