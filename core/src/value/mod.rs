//! Lossless column values: decoding PostgreSQL's text and binary formats into [`Value`].
//!
//! pgoutput sends each column as text (`'t'`) or, with `binary 'true'`, in the type's binary
//! send format (`'b'`). [`decode_text`] and [`decode_binary`] turn either into a [`Value`]
//! that keeps everything the server sent:
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
//! use pgcdc_core::value::{Value, Oid, TypeRegistry, decode_text};
//!
//! let reg = TypeRegistry::new();
//! let v = decode_text(Oid::INT4_ARRAY, -1, b"{1,NULL,3}", &reg).unwrap();
//! assert_eq!(v.to_string(), "{1,NULL,3}");
//! let t = decode_text(Oid::TIMESTAMPTZ, -1, b"2024-02-29 08:15:01.5+00", &reg).unwrap();
//! let Value::TimestampTz(ts) = t else { unreachable!() };
//! assert_eq!(ts.to_unix_nanos(), Some(1_709_194_501_500_000_000));
//! ```
//!
//! # Layout
//!
//! Each file uses only files listed above it in this table (`mod.rs` itself only re-exports
//! and defines [`MAX_NESTING`]), so the imports between the files have no cycles:
//!
//! | Layer | File | Holds |
//! |---|---|---|
//! | building blocks | `scan.rs` | byte cursors over text and binary input |
//! | | `text_value.rs` | [`PgText`], the inline-or-heap string of text values |
//! | | `oid.rs` | [`Oid`], the [`TypeRegistry`], how a type decodes (its `Shape`) |
//! | | `json.rs` | [`Json`] and its parser |
//! | | `error.rs` | [`ValueError`] |
//! | | `datetime.rs` | dates, times, timestamps, intervals: types, parsers, output |
//! | | `misc.rs` | `inet`, `money`, bit strings, `bytea`, `uuid`, MACs, floats: same |
//! | | `numeric.rs` | [`Numeric`] from text and binary |
//! | types | `types.rs` | [`Value`], [`Array`], [`ArrayDim`], [`Range`], their `Display` |
//! | | `size.rs` | the heap size of a [`Value`] |
//! | scalar codecs | `text.rs` | the built-in scalars from text |
//! | | `binary.rs` | the built-in scalars from binary |
//! | containers | `array.rs` | arrays from text and binary |
//! | | `range.rs` | ranges and multiranges from text and binary |
//! | dispatch | `codec.rs` | [`decode_text`], [`decode_binary`]; the per-column `Codec` |
//!
//! `codec.rs` is the only file that decodes "a value of type OID": it asks the registry for
//! the type's shape and calls a scalar codec or a container. A container decodes its own
//! syntax and gets each element from the decoder it is handed (a generic closure, so the
//! call is static), and the dispatcher hands it one that calls back into the dispatcher one
//! level deeper: the recursion through arrays of ranges of … runs through `codec.rs` alone.
//!
//! Names: `decode_*` (`decode_text`, `decode_binary`, `decode_multirange_text`,
//! `decode_scalar` …) turn bytes into a [`Value`] or part of one, failing with a
//! [`ValueError`]; `parse_*` are the leaf parsers of one scalar's text, failing with a
//! `&'static str` reason.

mod array;
mod binary;
mod codec;
pub(crate) mod datetime;
mod error;
mod json;
mod misc;
mod numeric;
mod oid;
mod range;
mod scan;
mod size;
mod text;
mod text_value;
mod types;

pub(crate) use codec::Codec;
pub use codec::{decode_binary, decode_text, decode_text_lossless};
pub use datetime::{Date, Interval, Time, TimeTz, Timestamp};
pub use error::ValueError;
pub use json::{Json, JsonError, write_json_string};
pub use misc::{BitString, Inet, Money};
pub use numeric::{Numeric, ParseNumericError};
pub use oid::{Oid, TypeDescription, TypeKind, TypeRegistry, UserType};
pub use text_value::PgText;
pub use types::{Array, ArrayDim, Range, Value};

/// How deeply values may nest: array dimensions, JSON arrays/objects, and element types
/// within element types (arrays of ranges …). Deeper input is refused with
/// [`ValueError::TooDeep`], so hostile input cannot overflow the stack.
pub const MAX_NESTING: usize = 64;
