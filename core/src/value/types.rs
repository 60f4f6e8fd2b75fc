//! The decoded value types — [`Value`], [`Array`] with its [`ArrayDim`]s, [`Range`] — and
//! their PostgreSQL text output (`Display`).
//!
//! They are one file because they are one recursive type: arrays and ranges hold values,
//! values hold arrays and ranges. Decoding lives elsewhere (see the map in the module docs).

use std::fmt;

use bytes::Bytes;

use super::datetime::{Date, Interval, Time, TimeTz, Timestamp};
use super::json::Json;
use super::misc::{self, BitString, Inet, Money};
use super::numeric::Numeric;
use super::oid::Oid;
use super::scan::is_pg_space;
use super::text_value::PgText;
use crate::Lsn;

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
        type_oid: Oid,
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
        type_oid: Oid,
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
            Value::Multirange(rs) => write_multirange(f, rs),
            Value::Array(a) => a.fmt(f),
            Value::Unknown { text, .. } => f.write_str(text),
        }
    }
}

/// One dimension of an [`Array`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArrayDim {
    /// The index of the first element (1 unless the array was built otherwise).
    pub lower_bound: i32,
    /// The number of elements along this dimension.
    pub len: u32,
}

/// An array value: its dimensions and its elements in row-major order.
///
/// An empty array has no dimensions and no elements. Elements may be [`Value::Null`].
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The element type the elements were decoded as.
    pub element_type: Oid,
    /// The dimensions, outermost first.
    pub dims: Vec<ArrayDim>,
    /// The elements in row-major order; their count is the product of the dimension lengths.
    pub elements: Vec<Value>,
}

impl Array {
    /// A one-dimensional array with lower bound 1.
    pub fn from_elements(element_type: Oid, elements: Vec<Value>) -> Array {
        let dims = if elements.is_empty() {
            Vec::new()
        } else {
            vec![ArrayDim {
                lower_bound: 1,
                len: u32::try_from(elements.len()).unwrap_or(u32::MAX),
            }]
        };
        Array {
            element_type,
            dims,
            elements,
        }
    }

    /// The number of dimensions (0 for an empty array).
    pub fn ndim(&self) -> usize {
        self.dims.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The element delimiter PostgreSQL uses for this element type (`;` for `box`).
    fn delimiter(&self) -> char {
        if self.element_type == Oid::BOX {
            ';'
        } else {
            ','
        }
    }
}

impl fmt::Display for Array {
    /// PostgreSQL's `array_out`: `{1,NULL,3}`, `{{1,2},{3,4}}`, `[0:1]={1,2}`, with elements
    /// double-quoted when needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count: u64 = self.dims.iter().map(|d| u64::from(d.len)).product();
        if self.dims.is_empty() || count == 0 || count != self.elements.len() as u64 {
            if !self.elements.is_empty() {
                // Inconsistent dimensions: print as one dimension.
                return Array::from_elements(self.element_type, self.elements.clone()).fmt(f);
            }
            return f.write_str("{}");
        }
        if self.dims.iter().any(|d| d.lower_bound != 1) {
            for d in &self.dims {
                let ub = i64::from(d.lower_bound) + i64::from(d.len) - 1;
                write!(f, "[{}:{}]", d.lower_bound, ub)?;
            }
            f.write_str("=")?;
        }
        let delim = self.delimiter();
        let mut elems = self.elements.iter();
        write_level(f, &self.dims, &mut elems, delim)
    }
}

fn write_level<'a>(
    f: &mut fmt::Formatter<'_>,
    dims: &[ArrayDim],
    elems: &mut impl Iterator<Item = &'a Value>,
    delim: char,
) -> fmt::Result {
    let Some((d, inner)) = dims.split_first() else {
        return Ok(());
    };
    f.write_str("{")?;
    for i in 0..d.len {
        if i > 0 {
            write!(f, "{delim}")?;
        }
        if inner.is_empty() {
            match elems.next() {
                Some(Value::Null) | None => f.write_str("NULL")?,
                Some(v) => write_element(f, &v.to_string(), delim)?,
            }
        } else {
            write_level(f, inner, elems, delim)?;
        }
    }
    f.write_str("}")
}

/// Writes one element, double-quoted when it is empty, spells `NULL`, or contains a quote, a
/// backslash, a brace, the delimiter or whitespace.
fn write_element(f: &mut fmt::Formatter<'_>, s: &str, delim: char) -> fmt::Result {
    let needs_quotes = s.is_empty()
        || s.eq_ignore_ascii_case("NULL")
        || s.chars().any(|c| {
            matches!(c, '"' | '\\' | '{' | '}')
                || c == delim
                || (c.is_ascii() && is_pg_space(c as u8))
        });
    if !needs_quotes {
        return f.write_str(s);
    }
    f.write_str("\"")?;
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if c == '"' || c == '\\' {
            f.write_str(s.get(run..i).unwrap_or(""))?;
            f.write_str("\\")?;
            run = i;
        }
    }
    f.write_str(s.get(run..).unwrap_or(""))?;
    f.write_str("\"")
}

/// A range value.
///
/// A missing bound (`None`) is infinite; an infinite bound is never inclusive. An empty range
/// has no bounds and `empty` set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Range {
    /// The lower bound, `None` when unbounded.
    pub lower: Option<Box<Value>>,
    /// The upper bound, `None` when unbounded.
    pub upper: Option<Box<Value>>,
    /// Whether the lower bound is included (`[`).
    pub lower_inc: bool,
    /// Whether the upper bound is included (`]`).
    pub upper_inc: bool,
    /// Whether this is the empty range.
    pub empty: bool,
}

impl Range {
    /// The empty range.
    pub fn empty() -> Range {
        Range {
            empty: true,
            ..Range::default()
        }
    }
}

impl fmt::Display for Range {
    /// PostgreSQL's `range_out`: `[1,10)`, `(,6)`, `empty`, bounds double-quoted when needed
    /// (`["2024-01-01 00:00:00","2024-01-02 00:00:00")`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.empty {
            return f.write_str("empty");
        }
        f.write_str(if self.lower_inc { "[" } else { "(" })?;
        if let Some(v) = &self.lower {
            write_bound(f, &v.to_string())?;
        }
        f.write_str(",")?;
        if let Some(v) = &self.upper {
            write_bound(f, &v.to_string())?;
        }
        f.write_str(if self.upper_inc { "]" } else { ")" })
    }
}

/// Writes a bound, quoted (with `"` and `\` doubled) when empty or containing
/// `" \ ( ) [ ] ,` or whitespace.
fn write_bound(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let needs_quotes = s.is_empty()
        || s.chars().any(|c| {
            matches!(c, '"' | '\\' | '(' | ')' | '[' | ']' | ',')
                || (c.is_ascii() && is_pg_space(c as u8))
        });
    if !needs_quotes {
        return f.write_str(s);
    }
    f.write_str("\"")?;
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if c == '"' || c == '\\' {
            f.write_str(s.get(run..i).unwrap_or(""))?;
            run = i;
            f.write_str(if c == '"' { "\"" } else { "\\" })?;
        }
    }
    f.write_str(s.get(run..).unwrap_or(""))?;
    f.write_str("\"")
}

/// Writes a multirange: `{[1,3),[5,7)}`, `{}`.
fn write_multirange(f: &mut fmt::Formatter<'_>, ranges: &[Range]) -> fmt::Result {
    f.write_str("{")?;
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        fmt::Display::fmt(r, f)?;
    }
    f.write_str("}")
}
