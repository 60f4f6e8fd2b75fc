//! Lossless column values: decoding PostgreSQL's text and binary formats into [`Value`].
//!
//! pgoutput sends each column as text (`'t'`) or, with `binary 'true'`, in the type's binary
//! send format (`'b'`). [`decode_text`] and [`decode_binary`] turn either into a [`Value`]
//! that keeps everything the server sent (DESIGN.md §2, "Values are lossless"):
//!
//! | PostgreSQL | [`Value`] |
//! |---|---|
//! | `numeric` | [`Numeric`]: the exact decimal text, `NaN`, `±Infinity` |
//! | `float4`/`float8` | `f32`/`f64` (NaN, ±Infinity, −0 kept) |
//! | `timestamp(tz)`, `date` | microseconds / days since 2000-01-01, ±infinity kept |
//! | `time`, `timetz`, `interval` | microseconds, offset east of UTC, months/days/µs |
//! | `json`/`jsonb` | structured [`Json`], numbers as exact text, key order and duplicates kept |
//! | `bytea` | its bytes |
//! | arrays | [`Array`]: any dimension, bounds, `NULL` elements |
//! | ranges, multiranges | [`Range`] with decoded bounds |
//! | `uuid`, `inet`, `cidr`, `macaddr(8)`, `money`, `bit`, `pg_lsn`, enums | typed values |
//! | anything else | [`Value::Unknown`] with its text: a row is never dropped |
//!
//! User-defined types (enums, domains, ranges, arrays of them) are resolved through a
//! [`TypeRegistry`] fed from pgoutput Type messages. `Display` on a [`Value`] reproduces
//! PostgreSQL's text output under the pinned session settings where feasible.
//!
//! Decoding never panics on any input, never recurses more than [`MAX_NESTING`] levels and
//! never allocates more than a small multiple of its input (numeric's binary format aside,
//! whose weight can expand a few bytes into up to 131072 digits, as PostgreSQL allows).
//!
//! ```
//! use pgcdc_core::value::{Value, TypeOid, TypeRegistry, decode_text};
//!
//! let reg = TypeRegistry::new();
//! let v = decode_text(TypeOid::INT4_ARRAY, -1, b"{1,NULL,3}", &reg).unwrap();
//! assert_eq!(v.to_string(), "{1,NULL,3}");
//! let t = decode_text(TypeOid::TIMESTAMPTZ, -1, b"2024-02-29 08:15:01.5+00", &reg).unwrap();
//! let Value::TimestampTz(ts) = t else { unreachable!() };
//! assert_eq!(ts.to_unix_nanos(), Some(1_709_194_501_500_000_000));
//! ```

mod array;
mod binary;
mod codec;
pub(crate) mod datetime;
mod json;
mod misc;
mod numeric;
mod oid;
mod range;
mod scan;
mod size;
mod text;
mod text_value;

use std::fmt;

use bytes::Bytes;

pub use array::{Array, ArrayDim};
pub use binary::decode_binary;
pub(crate) use codec::Codec;
pub use datetime::{Date, Interval, Time, TimeTz, Timestamp};
pub use json::{Json, JsonError, write_json_string};
pub use misc::{BitString, Inet, Money};
pub use numeric::{Numeric, ParseNumericError};
pub use oid::{TypeKind, TypeOid, TypeRegistry, UserType};
pub use range::Range;
pub use text::{decode_text, decode_text_lossless};
pub use text_value::PgText;

use crate::Lsn;

/// How deeply values may nest: array dimensions, JSON arrays/objects, and element types
/// within element types (arrays of ranges …). Deeper input is refused with
/// [`ValueError::TooDeep`], so hostile input cannot overflow the stack.
pub const MAX_NESTING: usize = 64;

/// A decoded column value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL (an array element; pgoutput marks NULL columns itself).
    Null,
    /// `bool`.
    Bool(bool),
    /// `int2`.
    Int2(i16),
    /// `int4`.
    Int4(i32),
    /// `int8`.
    Int8(i64),
    /// `oid`.
    Oid(u32),
    /// `float4` (NaN, ±Infinity and −0 kept).
    Float4(f32),
    /// `float8` (NaN, ±Infinity and −0 kept).
    Float8(f64),
    /// `numeric`, exact.
    Numeric(Numeric),
    /// `text`, `varchar`, `bpchar` (padding kept), `name`, `"char"`, `xml`, `unknown`.
    ///
    /// Short strings are kept inline, without a heap allocation (see [`PgText`]).
    Text(PgText),
    /// `uuid`.
    Uuid([u8; 16]),
    /// `date`.
    Date(Date),
    /// `time`.
    Time(Time),
    /// `timetz`.
    TimeTz(TimeTz),
    /// `timestamp` (no zone).
    Timestamp(Timestamp),
    /// `timestamptz` (UTC).
    TimestampTz(Timestamp),
    /// `interval`.
    Interval(Interval),
    /// `json`.
    Json(Json),
    /// `jsonb`.
    Jsonb(Json),
    /// `bytea`.
    Bytea(Bytes),
    /// `inet`.
    Inet(Inet),
    /// `cidr`.
    Cidr(Inet),
    /// `macaddr`.
    MacAddr([u8; 6]),
    /// `macaddr8`.
    MacAddr8([u8; 8]),
    /// `money`.
    Money(Money),
    /// `bit` and `varbit`.
    Bit(BitString),
    /// `pg_lsn`.
    Lsn(Lsn),
    /// A value of a registered enum type.
    Enum {
        /// The enum type.
        type_oid: TypeOid,
        /// The label.
        label: String,
    },
    /// A range.
    Range(Range),
    /// A multirange: its ranges in order.
    Multirange(Vec<Range>),
    /// An array.
    Array(Box<Array>),
    /// A value kept as text: an unknown or unregistered type, a composite, or a built-in this
    /// module has no structured form for (geometric types, `tsvector`, `xid` …).
    Unknown {
        /// The column's type.
        type_oid: TypeOid,
        /// The text form.
        text: String,
    },
}

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value in PostgreSQL's text output form (the same as `to_string()`).
    pub fn to_display_string(&self) -> String {
        self.to_string()
    }

    /// The string of a text-like value (`Text`, `Enum` label, `Unknown` text, `Money` text).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s.as_str()),
            Value::Enum { label: s, .. } | Value::Unknown { text: s, .. } => Some(s),
            Value::Money(m) => Some(&m.text),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// PostgreSQL's text output under the pinned session settings (ISO dates, UTC, `postgres`
    /// intervals, shortest round-trip floats, hex `bytea`). `json` prints in the `jsonb`
    /// layout (the original whitespace is not kept) and [`Value::Null`] prints `NULL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => f.write_str(if *b { "t" } else { "f" }),
            Value::Int2(v) => write!(f, "{v}"),
            Value::Int4(v) => write!(f, "{v}"),
            Value::Int8(v) => write!(f, "{v}"),
            Value::Oid(v) => write!(f, "{v}"),
            Value::Float4(v) => misc::PgF32(*v).fmt(f),
            Value::Float8(v) => misc::PgF64(*v).fmt(f),
            Value::Numeric(n) => f.write_str(n.as_str()),
            Value::Text(s) => f.write_str(s),
            Value::Uuid(u) => misc::write_uuid(f, u),
            Value::Date(d) => d.fmt(f),
            Value::Time(t) => t.fmt(f),
            Value::TimeTz(t) => t.fmt(f),
            Value::Timestamp(t) => t.display(false).fmt(f),
            Value::TimestampTz(t) => t.display(true).fmt(f),
            Value::Interval(i) => i.fmt(f),
            Value::Json(j) | Value::Jsonb(j) => j.fmt(f),
            Value::Bytea(b) => misc::write_bytea(f, b),
            Value::Inet(i) => i.write(f, false),
            Value::Cidr(i) => i.write(f, true),
            Value::MacAddr(m) => misc::write_mac(f, m),
            Value::MacAddr8(m) => misc::write_mac(f, m),
            Value::Money(m) => m.fmt(f),
            Value::Bit(b) => b.fmt(f),
            Value::Lsn(l) => l.fmt(f),
            Value::Enum { label, .. } => f.write_str(label),
            Value::Range(r) => r.fmt(f),
            Value::Multirange(rs) => range::write_multirange(f, rs),
            Value::Array(a) => a.fmt(f),
            Value::Unknown { text, .. } => f.write_str(text),
        }
    }
}

/// Why a value could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The text is not valid for the type. The caller may keep it as text
    /// ([`decode_text_lossless`]).
    #[error("invalid text for type {type_oid}: {reason}")]
    InvalidText {
        /// The type being decoded (for a nested value, the innermost type that failed).
        type_oid: TypeOid,
        /// What is wrong.
        reason: &'static str,
    },
    /// The bytes are not valid for the type's binary format.
    #[error("invalid binary value for type {type_oid}: {reason}")]
    InvalidBinary {
        /// The type being decoded.
        type_oid: TypeOid,
        /// What is wrong.
        reason: &'static str,
    },
    /// The value nests deeper than [`MAX_NESTING`] levels.
    #[error("value of type {type_oid} nests deeper than {MAX_NESTING} levels")]
    TooDeep {
        /// The type being decoded.
        type_oid: TypeOid,
    },
    /// There is no binary decoder for this type and its bytes are not text; subscribe
    /// without `binary 'true'` to receive it as text.
    #[error(
        "no binary decoder for type {type_oid}; use text format (binary 'false') for this column"
    )]
    NoBinaryDecoder {
        /// The type.
        type_oid: TypeOid,
    },
}

fn json_error(oid: TypeOid, e: JsonError, binary: bool) -> ValueError {
    match e {
        JsonError::TooDeep => ValueError::TooDeep { type_oid: oid },
        JsonError::Syntax { reason, .. } if binary => ValueError::InvalidBinary {
            type_oid: oid,
            reason,
        },
        JsonError::Syntax { reason, .. } => ValueError::InvalidText {
            type_oid: oid,
            reason,
        },
    }
}
