//! Value fidelity against a real PostgreSQL (15, started by `pgcdc-testkit`).
//!
//! Every type the value module supports is inserted with edge values, captured with
//! `pg_logical_slot_peek_binary_changes` (pgoutput proto 1, text and `binary 'true'`), fed
//! through [`Pipeline::handle_xlog`], and each decoded [`Value`] is compared with PostgreSQL's
//! own rendering of the same value, queried under the same pinned session settings:
//!
//! * `value.to_string()` equals the type's output function (`format('%s', col)`);
//! * type-specific structure: float bit patterns (`float8send`), numeric scale, bytea bytes,
//!   date/time/timestamp microseconds, interval fields, inet family/mask/host, money cents,
//!   bit lengths, LSN positions, JSON structure, range bounds and flags, multirange members,
//!   array dimensions, NULL positions and every element's text;
//! * binary-mode values equal text-mode values where a binary decoder exists, and otherwise
//!   fall back to `Value::Unknown` holding `\x` + hex, never dropping the row.
//!
//! Two pipelines decode every capture: one that learns user types only from pgoutput Type
//! messages (what the protocol alone gives), and one whose registry was filled from `pg_type`
//! first (what a runtime reading the catalog gives).
//!
//! The bootstrap path is checked against the stream for every row of the table: described by
//! the snapshot module's table query, copied with the planned `COPY … TO STDOUT`, turned into
//! inserts by a `SnapshotAssembler` configured and type-filled like each text-mode stream
//! pipeline, every element id, label and property value must equal the stream's
//! ([`bootstrap`]).
//!
//! Run with `--nocapture` to see the case counts.
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`; found through
//! `PGCDC_PG_BIN`, `/usr/lib/postgresql/*/bin` or `PATH`): `apt-get install -y postgresql`.
//! Without them every test fails with the testkit's message saying so.
#![allow(missing_docs)]

#[path = "fidelity/bootstrap.rs"]
mod bootstrap;
mod table_rows;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use bytes::Bytes;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::{Pipeline, PipelineConfig, PipelineEvent};
use pgcdc_core::model::{ElementPropertyMap, SourceChange};
use pgcdc_core::pgoutput::{ColumnValue, Decoder, OldTuple, PgOutputMessage, TupleData};
use pgcdc_core::value::{
    Date, Interval, Json, Numeric, Oid, Timestamp, TypeKind, TypeRegistry, Value,
};
use pgcdc_testkit::Cluster;

/// The settings pgcdc pins on its walsender sessions; the SQL decoding functions run the
/// output functions in the calling session, so the same settings apply to the capture.
///
/// The testkit runs the server with `synchronous_commit=off`, and the decoding functions only
/// read WAL that is flushed: commits here are synchronous so a peek right after sees them.
const SESSION: &str = "SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; \
    SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'; \
    SET synchronous_commit = on; ";

/// The suite must not silently shrink: the all-types test checks at least this many
/// (value, pipeline, format) cases.
const MIN_CASES: usize = 1400;
/// … over at least this many column types.
const MIN_TYPES: usize = 90;
/// … and the bootstrap of the table equals the stream for at least this many property values
/// (every column of every row, for both pipelines).
const MIN_BOOTSTRAP_VALUES: usize = 3600;

/// The source id and configuration of every pipeline (stream and bootstrap) of the suite.
const SOURCE: &str = "fidelity";
fn pipeline_config() -> PipelineConfig {
    PipelineConfig::default()
}

/// Separator used inside the structural renderings (ASCII unit separator).
const SEP: char = '\u{1f}';

// ---------------------------------------------------------------------------------------------
// Helpers: psql, hex, capture, assembly.

fn psql(db: &str, sql: &str) -> String {
    Cluster::shared()
        .psql(db, &format!("{SESSION}{sql}"))
        .unwrap_or_else(|e| {
            let shown: String = sql.chars().take(2000).collect();
            panic!("psql failed in {db}: {e}\nSQL: {shown}")
        })
}

fn setup_db(db: &str) {
    Cluster::shared()
        .create_database(db)
        .unwrap_or_else(|e| panic!("create database {db}: {e}"));
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s}")))
        .collect()
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A server cell rendered as `N` (NULL) or `V` + hex of the UTF-8 text.
fn cell(s: &str) -> Option<String> {
    match s.split_at(1) {
        ("N", "") => None,
        ("V", h) => Some(String::from_utf8(unhex(h)).expect("server text is UTF-8")),
        _ => panic!("bad cell {s:?}"),
    }
}

/// SQL rendering a value as `N` or `V` + hex, so any text survives psql's `|`-separated output.
fn cell_sql(col: &str, expr: &str) -> String {
    format!(
        "CASE WHEN {col} IS NULL THEN 'N' ELSE 'V' || encode(convert_to(({expr})::text, 'UTF8'), 'hex') END"
    )
}

/// The messages of a slot, as `(lsn, payload)`, in text or binary mode.
fn peek(db: &str, slot: &str, publication: &str, binary: bool) -> Vec<(Lsn, Bytes)> {
    let opt = if binary { ", 'binary', 'true'" } else { "" };
    let out = psql(
        db,
        &format!(
            "SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('{slot}', \
             NULL, NULL, 'proto_version', '1', 'publication_names', '{publication}'{opt})"
        ),
    );
    out.lines()
        .map(|line| {
            let (lsn, data) = line.split_once('|').expect("lsn|data");
            (
                lsn.parse::<Lsn>().expect("lsn"),
                Bytes::from(unhex(data.trim())),
            )
        })
        .collect()
}

/// One column of a raw tuple, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Raw {
    Null,
    Unchanged,
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

fn raw_tuple(t: &TupleData) -> Vec<Raw> {
    t.iter()
        .map(|c| match c {
            ColumnValue::Null => Raw::Null,
            ColumnValue::UnchangedToast => Raw::Unchanged,
            ColumnValue::Text(b) => Raw::Text(b.to_vec()),
            ColumnValue::Binary(b) => Raw::Binary(b.to_vec()),
        })
        .collect()
}

/// A row change exactly as pgoutput sent it (decoded independently of the pipeline).
#[derive(Debug)]
struct RawChange {
    kind: char,
    table: String,
    columns: Vec<String>,
    new: Vec<Raw>,
    /// `'K'` or `'O'` and the tuple.
    old: Option<(char, Vec<Raw>)>,
}

impl RawChange {
    fn new_col(&self, name: &str) -> &Raw {
        let i = self.columns.iter().position(|c| c == name).expect("column");
        &self.new[i]
    }
}

/// What pgoutput sent, decoded by the low-level decoder: row changes and Type messages.
fn raw_changes(messages: &[(Lsn, Bytes)]) -> (Vec<RawChange>, Vec<(u32, String, String)>) {
    let mut dec = Decoder::new();
    let mut rels: HashMap<u32, (String, Vec<String>)> = HashMap::new();
    let mut out = Vec::new();
    let mut types = Vec::new();
    for (_, payload) in messages {
        let msg = dec
            .decode(payload.clone())
            .expect("pgoutput message decodes");
        let mut push = |kind, rel: u32, new: Option<&TupleData>, old: Option<&OldTuple>| {
            let (table, columns) = rels.get(&rel).cloned().expect("relation before change");
            out.push(RawChange {
                kind,
                table,
                columns,
                new: new.map(raw_tuple).unwrap_or_default(),
                old: old.map(|o| (char::from(o.marker()), raw_tuple(o.tuple()))),
            });
        };
        match &msg {
            PgOutputMessage::Relation(body) => {
                rels.insert(
                    body.oid.0,
                    (
                        body.name.clone(),
                        body.columns.iter().map(|c| c.name.clone()).collect(),
                    ),
                );
            }
            PgOutputMessage::Type {
                oid,
                namespace,
                name,
                ..
            } => types.push((oid.0, namespace.clone(), name.clone())),
            PgOutputMessage::Insert { rel, new, .. } => push('I', rel.0, Some(new), None),
            PgOutputMessage::Update { rel, old, new, .. } => {
                push('U', rel.0, Some(new), old.as_ref());
            }
            PgOutputMessage::Delete { rel, old, .. } => push('D', rel.0, None, Some(old)),
            _ => {}
        }
    }
    (out, types)
}

/// The output of one pipeline over one capture.
struct Assembled {
    changes: Vec<SourceChange>,
    pipeline: Pipeline,
}

fn assemble(messages: &[(Lsn, Bytes)], setup: impl FnOnce(&mut Pipeline)) -> Assembled {
    let mut pipeline = Pipeline::new(SOURCE, pipeline_config());
    setup(&mut pipeline);
    let mut changes = Vec::new();
    for (lsn, payload) in messages {
        pipeline
            .handle_xlog(payload, *lsn, *lsn)
            .unwrap_or_else(|e| panic!("pipeline refused a message at {lsn}: {e}"));
        while let Some(ev) = pipeline.poll_event() {
            match ev {
                PipelineEvent::Transaction(batch) => {
                    assert!(batch.is_whole(), "small transactions come whole");
                    changes.extend(batch.changes);
                }
                PipelineEvent::Warning(w) => panic!("unexpected pipeline warning: {w}"),
                other => panic!("unexpected pipeline event: {other:?}"),
            }
        }
    }
    Assembled { changes, pipeline }
}

/// Fills a registry the way a runtime reading `pg_type` would: every type of schema `public`.
fn register_from_catalog(db: &str, reg: &mut TypeRegistry) -> usize {
    let rows = psql(
        db,
        "SELECT t.oid, t.typname, t.typtype, t.typbasetype, t.typelem, t.typcategory, \
         coalesce(r.rngsubtype, 0), coalesce(m.rngtypid, 0) \
         FROM pg_type t LEFT JOIN pg_range r ON r.rngtypid = t.oid \
         LEFT JOIN pg_range m ON m.rngmultitypid = t.oid \
         WHERE t.typnamespace = 'public'::regnamespace ORDER BY t.oid",
    );
    let mut n = 0;
    for line in rows.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let num = |i: usize| -> u32 { f[i].parse().expect("oid") };
        let oid = Oid(num(0));
        let kind = match (f[2], f[5]) {
            ("e", _) => TypeKind::Enum,
            ("d", _) => TypeKind::Domain { base: Oid(num(3)) },
            ("r", _) => TypeKind::Range {
                subtype: Oid(num(6)),
            },
            ("m", _) => TypeKind::Multirange { range: Oid(num(7)) },
            ("c", _) => TypeKind::Composite,
            (_, "A") if num(4) != 0 => TypeKind::Array {
                element: Oid(num(4)),
            },
            _ => continue,
        };
        assert!(reg.register_named(oid, "public", f[1], kind));
        n += 1;
    }
    n
}

fn props_by_id(changes: &[SourceChange]) -> BTreeMap<i32, ElementPropertyMap> {
    let mut out = BTreeMap::new();
    for ch in changes {
        let SourceChange::Insert { element, .. } = ch else {
            panic!("only inserts expected here, got {ch:?}");
        };
        let props = element.properties();
        let Some(Value::Int4(id)) = props.get("id") else {
            panic!("row without an int4 id: {props:?}");
        };
        out.insert(*id, props.clone());
    }
    out
}

/// Equality that also holds for NaN floats (compared through their exact `Debug` form).
fn same(a: &Value, b: &Value) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

fn variant(v: &Value) -> &'static str {
    match v {
        Value::Null => "Null",
        Value::Bool(_) => "Bool",
        Value::Int2(_) => "Int2",
        Value::Int4(_) => "Int4",
        Value::Int8(_) => "Int8",
        Value::Oid(_) => "Oid",
        Value::Float4(_) => "Float4",
        Value::Float8(_) => "Float8",
        Value::Numeric(_) => "Numeric",
        Value::Text(_) => "Text",
        Value::Uuid(_) => "Uuid",
        Value::Date(_) => "Date",
        Value::Time(_) => "Time",
        Value::TimeTz(_) => "TimeTz",
        Value::Timestamp(_) => "Timestamp",
        Value::TimestampTz(_) => "TimestampTz",
        Value::Interval(_) => "Interval",
        Value::Json(_) => "Json",
        Value::Jsonb(_) => "Jsonb",
        Value::Bytea(_) => "Bytea",
        Value::Inet(_) => "Inet",
        Value::Cidr(_) => "Cidr",
        Value::MacAddr(_) => "MacAddr",
        Value::MacAddr8(_) => "MacAddr8",
        Value::Money(_) => "Money",
        Value::Bit(_) => "Bit",
        Value::Lsn(_) => "Lsn",
        Value::Enum { .. } => "Enum",
        Value::Range(_) => "Range",
        Value::Multirange(_) => "Multirange",
        Value::Array(_) => "Array",
        Value::Unknown { .. } => "Unknown",
        _ => "other",
    }
}

/// An integer in numeric text (`123`, `-45.000000`); panics on a non-zero fraction.
fn int_text(s: &str) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.bytes().all(|b| b == b'0'), "not an integer: {s}");
    int.parse()
        .unwrap_or_else(|_| panic!("not an integer: {s}"))
}

// ---------------------------------------------------------------------------------------------
// The catalogue of types and values.

/// A row as PostgreSQL renders it: the id, then per column the output function's text and
/// the structural rendering (`None` for NULL, or when the column has no structure query).
type ServerRow = (i32, Vec<(Option<String>, Option<String>)>);

/// How a column's values are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    /// `Value::Text`: text, varchar, bpchar, name, "char", xml, text domains.
    Text,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Json,
    Jsonb,
    Bytea,
    Inet,
    Cidr,
    MacAddr,
    MacAddr8,
    Money,
    Bit,
    Lsn,
    /// The enum `mood` (or a domain over it).
    Enum,
    Range,
    Multirange,
    Array,
    /// A user-defined range type (`floatrange`): a `Range` once registered from the catalog.
    UserRange,
    /// A built-in kept as text whose binary layout is simple (`point`, `box`, `xid` …): the
    /// binary decoder reproduces the text.
    AsText,
    /// Kept as text, and no binary decoder (`tsvector`, `polygon`, composites): binary values
    /// fall back to `\x` + hex.
    NoBinary,
}

impl K {
    /// The variant the catalog-registered pipeline must produce (text and binary mode).
    fn variant(self) -> &'static str {
        match self {
            K::Bool => "Bool",
            K::Int2 => "Int2",
            K::Int4 => "Int4",
            K::Int8 => "Int8",
            K::Oid => "Oid",
            K::Float4 => "Float4",
            K::Float8 => "Float8",
            K::Numeric => "Numeric",
            K::Text => "Text",
            K::Uuid => "Uuid",
            K::Date => "Date",
            K::Time => "Time",
            K::TimeTz => "TimeTz",
            K::Timestamp => "Timestamp",
            K::TimestampTz => "TimestampTz",
            K::Interval => "Interval",
            K::Json => "Json",
            K::Jsonb => "Jsonb",
            K::Bytea => "Bytea",
            K::Inet => "Inet",
            K::Cidr => "Cidr",
            K::MacAddr => "MacAddr",
            K::MacAddr8 => "MacAddr8",
            K::Money => "Money",
            K::Bit => "Bit",
            K::Lsn => "Lsn",
            K::Enum => "Enum",
            K::Range | K::UserRange => "Range",
            K::Multirange => "Multirange",
            K::Array => "Array",
            K::AsText | K::NoBinary => "Unknown",
        }
    }

    /// SQL rendering the structure of column `c` (or `None` when the text is the whole value).
    fn structure(self, c: &str) -> Option<String> {
        let s = match self {
            K::Float4 => format!("encode(float4send({c}), 'hex')"),
            K::Float8 => format!("encode(float8send({c}), 'hex')"),
            K::Numeric => format!("coalesce(scale({c})::text, 'none')"),
            K::Uuid => format!("encode(uuid_send({c}), 'hex')"),
            K::Date => format!(
                "CASE WHEN isfinite({c}) THEN ({c} - date '2000-01-01')::text ELSE {c}::text END"
            ),
            K::Time => format!("extract(epoch from {c}) * 1000000"),
            K::TimeTz => format!(
                "concat(extract(epoch from {c}::time) * 1000000, chr(31), extract(timezone from {c}))"
            ),
            K::Timestamp | K::TimestampTz => format!(
                "CASE WHEN isfinite({c}) THEN concat({c}::date - date '2000-01-01', chr(31), \
                 extract(epoch from {c}::time) * 1000000, chr(31), \
                 extract(epoch from {c}) * 1000000) ELSE {c}::text END"
            ),
            K::Interval => format!(
                "concat(extract(year from {c}) * 12 + extract(month from {c}), chr(31), \
                 extract(day from {c}), chr(31), extract(hour from {c}) * 3600000000 \
                 + extract(minute from {c}) * 60000000 + extract(microseconds from {c}))"
            ),
            K::Json | K::Jsonb => format!("{c}::text"),
            K::Bytea => format!("encode({c}, 'hex')"),
            K::Inet | K::Cidr => {
                format!("concat(family({c}), chr(31), masklen({c}), chr(31), host({c}))")
            }
            K::MacAddr => format!("encode(macaddr_send({c}), 'hex')"),
            K::MacAddr8 => format!("encode(macaddr8_send({c}), 'hex')"),
            K::Money => format!("({c}::numeric * 100)::text"),
            K::Bit => format!("length({c})::text"),
            K::Lsn => format!("({c} - '0/0'::pg_lsn)::text"),
            K::Enum => "'mood'::regtype::oid::text".to_string(),
            K::Range | K::UserRange => format!(
                "concat(isempty({c}), chr(31), lower_inf({c}), chr(31), upper_inf({c}), chr(31), \
                 lower_inc({c}), chr(31), upper_inc({c}), chr(31), \
                 CASE WHEN lower({c}) IS NULL THEN 'N' ELSE 'V' || format('%s', lower({c})) END, \
                 chr(31), \
                 CASE WHEN upper({c}) IS NULL THEN 'N' ELSE 'V' || format('%s', upper({c})) END)"
            ),
            K::Multirange => format!(
                "(SELECT concat(count(*), chr(31), string_agg(format('%s', r), chr(31) ORDER BY n)) \
                 FROM unnest({c}) WITH ORDINALITY AS u(r, n))"
            ),
            K::Array => format!(
                "concat(coalesce(array_dims({c}), ''), chr(31), (SELECT string_agg(CASE WHEN e IS \
                 NULL THEN 'N' ELSE 'V' || encode(convert_to(format('%s', e), 'UTF8'), 'hex') END, \
                 ',' ORDER BY n) FROM unnest({c}) WITH ORDINALITY AS u(e, n)))"
            ),
            K::Bool | K::Int2 | K::Int4 | K::Int8 | K::Oid | K::Text | K::AsText | K::NoBinary => {
                return None;
            }
        };
        Some(s)
    }

    fn has_binary_decoder(self) -> bool {
        !matches!(self, K::NoBinary)
    }
}

/// One column: its name, SQL type, how it is checked, and its values as SQL expressions (row
/// `i` gets value `i`, NULL past the end).
struct Col {
    name: &'static str,
    ty: &'static str,
    kind: K,
    values: &'static [&'static str],
}

const fn col(
    name: &'static str,
    ty: &'static str,
    kind: K,
    values: &'static [&'static str],
) -> Col {
    Col {
        name,
        ty,
        kind,
        values,
    }
}

/// User types the table needs.
const TYPES_DDL: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad', 'ok ok', 'é😀', 'with,comma"quote', 'NULL');
CREATE DOMAIN mood_d AS mood;
CREATE DOMAIN posnum AS numeric(10,2) CHECK (VALUE > 0);
CREATE DOMAIN shorttext AS text;
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE TYPE textrange AS RANGE (subtype = text, collation = "C");
CREATE TYPE pair AS (a int, b text);
"#;

/// Columns whose text-mode values the Type-message-only pipeline cannot resolve (their
/// values stay `Unknown`, with the right text): enums, user ranges, and arrays of those or
/// of domains (a Type message names an array of a domain `_posnum`, and the domain itself
/// by its base type's name, so nothing ties the two together).
const UNRESOLVED_BY_TYPE_MESSAGES: &[&str] = &[
    "c_mood",
    "c_mood_d",
    "c_floatrange",
    "c_textrange",
    "c_mood_arr",
    "c_posnum_arr",
];

fn columns() -> Vec<Col> {
    vec![
        col("c_bool", "bool", K::Bool, &["true", "false"]),
        col("c_int2", "int2", K::Int2, &["-32768", "32767", "0", "-1"]),
        col(
            "c_int4",
            "int4",
            K::Int4,
            &["-2147483648", "2147483647", "0", "-1"],
        ),
        col(
            "c_int8",
            "int8",
            K::Int8,
            &["-9223372036854775808", "9223372036854775807", "0"],
        ),
        col("c_oid", "oid", K::Oid, &["0", "4294967295", "12345"]),
        col(
            "c_float4",
            "float4",
            K::Float4,
            &[
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'-0'",
                "'0'",
                "'3.4028235e+38'",
                "'1e-45'",
                "'1.17549435e-38'",
                "'0.1'",
                "'123456'",
                "'1234567'",
                "'1e-05'",
                "'0.0001'",
                "'-1.5'",
                "'1e+06'",
                "'999999'",
                "'9999999'",
                "'-0.00012345'",
            ],
        ),
        col(
            "c_float8",
            "float8",
            K::Float8,
            &[
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'-0'",
                "0.1::float8 + 0.2::float8",
                "'1e-300'",
                "'1e+300'",
                "'5e-324'",
                "'2.2250738585072014e-308'",
                "'1.7976931348623157e+308'",
                "'123456789012345'",
                "'1234567890123456'",
                "'0.0001'",
                "'1e-05'",
                "'-2.5e-10'",
                "'1e+15'",
                "'1e+14'",
                "'999999999999999'",
                "'0'",
                "'-1.2345678901234567e-100'",
            ],
        ),
        col(
            "c_numeric",
            "numeric",
            K::Numeric,
            &[
                "'NaN'",
                "'Infinity'",
                "'-Infinity'",
                "'0'",
                "'0.000'",
                "'-0.000'",
                "'1.500'",
                "'-1.500'",
                "'123456789012345678901234567890.123456789'",
                "repeat('9', 1000)::numeric",
                "('-0.' || repeat('0', 998) || '1')::numeric",
                "(repeat('12345', 200) || '.' || repeat('6789', 250))::numeric",
                "'1e-30'",
                "'1e30'",
                "'9999.9999'",
                "'10000'",
                "'0.0001'",
                "'-100000000.00000001'",
            ],
        ),
        // A negative scale rounds to tens, hundreds …: numeric(5,-2) holds 12345 as 12300.
        col(
            "c_num_negscale",
            "numeric(5,-2)",
            K::Numeric,
            &["12345", "-99949", "0", "50", "49"],
        ),
        col(
            "c_num_10_3",
            "numeric(10,3)",
            K::Numeric,
            &["1.5", "-0.0004", "1234567.891", "0"],
        ),
        col(
            "c_text",
            "text",
            K::Text,
            &[
                "''",
                "'plain'",
                "'é😀 e\u{301} ñ 中文 👩\u{200d}👩\u{200d}👧 \u{fe0f}'",
                r#"'back\slash "dq" ''sq'' , {braces} [brackets] (parens) |pipe|'"#,
                r"E'tab\there\nnewline\r\n'",
                "'NULL'",
                "' leading and trailing '",
                "repeat('x', 3000)",
                r"E'\x01\x1f control'",
            ],
        ),
        col(
            "c_varchar",
            "varchar(12)",
            K::Text,
            &["''", "'é😀 abc'", "'{a,b}'", "'123456789012'"],
        ),
        // char(n) pads with blanks; the padding is part of the value's output.
        col(
            "c_bpchar",
            "char(5)",
            K::Text,
            &["'ab'", "''", "'é😀'", "'abcde'", "' a'"],
        ),
        col(
            "c_name",
            "name",
            K::Text,
            &["'n'", "''", "'é😀 name'", "repeat('n', 63)"],
        ),
        // "char" keeps one byte: a non-ASCII first byte prints as an octal escape (\303).
        col(
            "c_char",
            "\"char\"",
            K::Text,
            &["'a'", "''", "'é'", r"'\'", "'\"'", "' '"],
        ),
        col(
            "c_uuid",
            "uuid",
            K::Uuid,
            &[
                "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
                "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12'",
                "'00000000-0000-0000-0000-000000000000'",
                "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
            ],
        ),
        col(
            "c_date",
            "date",
            K::Date,
            &[
                "'2024-02-29'",
                "'0001-01-01 BC'",
                "'4714-11-24 BC'",
                "'5874897-12-31'",
                "'infinity'",
                "'-infinity'",
                "'2000-01-01'",
                "'1999-12-31'",
                "'0044-03-15 BC'",
                "'1900-02-28'",
            ],
        ),
        col(
            "c_time",
            "time",
            K::Time,
            &[
                "'00:00:00'",
                "'24:00:00'",
                "'23:59:59.999999'",
                "'12:30:00.5'",
                "'01:02:03.000004'",
            ],
        ),
        col(
            "c_timetz",
            "timetz",
            K::TimeTz,
            &[
                "'00:00:00+15:59'",
                "'24:00:00-15:59'",
                "'12:00:00.123-03:30'",
                "'12:00:00+05:30:15'",
                "'13:14:15.000001+00'",
                "'00:00:00-00:30'",
                "'12:00:00-15:59:59'",
            ],
        ),
        col(
            "c_ts",
            "timestamp",
            K::Timestamp,
            &[
                "'2024-02-29 13:45:01.123456'",
                "'294276-12-31 23:59:59.999999'",
                "'4714-11-24 00:00:00 BC'",
                "'0001-01-01 00:00:00 BC'",
                "'0044-03-15 12:00:00 BC'",
                "'infinity'",
                "'-infinity'",
                "'1970-01-01 00:00:00'",
                "'1999-12-31 23:59:59.999999'",
                "'2000-01-01 00:00:00.000001'",
                "'10000-01-01 00:00:00'",
            ],
        ),
        col(
            "c_tstz",
            "timestamptz",
            K::TimestampTz,
            &[
                "'2024-02-29 13:45:01.5+05:30'",
                "'294276-12-31 23:59:59.999999+00'",
                "'4714-11-24 00:00:00+00 BC'",
                "'0001-01-01 00:00:00+00 BC'",
                "'infinity'",
                "'-infinity'",
                "'1969-12-31 23:59:59.999999+00'",
                "'2038-01-19 03:14:08+00'",
                "'1850-01-01 12:00:00-00:19:32'",
                "'2024-01-01 00:00:00.000001-08'",
            ],
        ),
        col(
            "c_interval",
            "interval",
            K::Interval,
            &[
                "'1 year 2 mons 3 days 04:05:06.789'",
                "'-1 days -00:00:01'",
                "'-1 mons +1 day -00:00:01.5'",
                "'1 mon -1 day'",
                "'00:00:00'",
                "'-178956970 years -8 mons'",
                "'178956970 years 7 mons'",
                "'2147483647 days'",
                "'-2147483648 days'",
                // i64::MIN microseconds is reachable only by arithmetic on PostgreSQL 15.
                "interval '-2562047788 hours' - interval '54.775808 sec'",
                "'2562047788:00:54.775807'",
                "'0.000001 sec'",
                "'1 day -00:00:00.000001'",
                "'-1 years +1 mons'",
                "'-1 years -2 mons +3 days -04:05:06'",
                "'-00:00:00.000001'",
                "'1 day 100:00:00'",
            ],
        ),
        col(
            "c_json",
            "json",
            K::Json,
            &[
                r#"'{"a": [1, 2.50, null], "b": "x"}'"#,
                r#"'  {"k":1,"k":2, "k" : [true,false]}  '"#,
                r#"'"\u00e9\ud83d\ude00 \"q\" \\ \/ \n"'"#,
                "'123456789012345678901234567890e-400'",
                "'[]'",
                "'{}'",
                "'null'",
                "'-0'",
                r#"'[[[[{"a":{"b":[1,{"c":null}]}}]]]]'"#,
                r#"'{"a":"\u0000"}'"#,
                r#"'{"é😀": "é😀", "": ""}'"#,
                "'-1.5E+300'",
            ],
        ),
        col(
            "c_jsonb",
            "jsonb",
            K::Jsonb,
            &[
                r#"'{"b": 1, "a": [1, 2.50, null], "long key": {"k":1,"k":2}}'"#,
                r#"'"\u00e9\ud83d\ude00"'"#,
                "'1e400'",
                "'-0'",
                "'3.0'",
                "'[]'",
                "'{}'",
                "'null'",
                r#"'[1, "two", {"three": [3.000]}, true, null]'"#,
                "'123456789012345678901234567890.123456789'",
                r#"'"tab\tquote\"back\\slash\u001f"'"#,
                r#"'{"é😀": {"": []}}'"#,
            ],
        ),
        col(
            "c_bytea",
            "bytea",
            K::Bytea,
            &[
                r"'\x'",
                r"'\xdeadbeef00'",
                "(SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') \
                 FROM generate_series(0, 255) i)",
                "convert_to('é😀', 'UTF8')",
            ],
        ),
        col(
            "c_inet",
            "inet",
            K::Inet,
            &[
                "'192.168.0.1/24'",
                "'10.1.2.3'",
                "'::1'",
                "'::ffff:1.2.3.4'",
                "'::1.2.3.4'",
                "'2001:db8::1/64'",
                "'0.0.0.0/0'",
                "'::/0'",
                "'2001:db8:0:0:1:0:0:1'",
                "'fe80::1:2:3:4/10'",
                "'255.255.255.255'",
                "'1:0:0:2:0:0:3:4'",
                "'::ffff:0.0.0.0/96'",
                "'::ffff:0:1.2.3.4'",
                "'1:2:3:4:5:6:7:0'",
                "'::0.0.1.1'",
                "'0:0:0:0:0:1:2:3'",
            ],
        ),
        col(
            "c_cidr",
            "cidr",
            K::Cidr,
            &[
                "'10.0.0.0/8'",
                "'0.0.0.0/0'",
                "'2001:db8::/32'",
                "'192.168.1.0/24'",
                "'::/0'",
                "'::ffff:1.2.3.0/120'",
                "'10.1.2.3/32'",
                "'2001:db8::1/128'",
            ],
        ),
        col(
            "c_macaddr",
            "macaddr",
            K::MacAddr,
            &[
                "'08:00:2b:01:02:03'",
                "'FF-FF-FF-FF-FF-FF'",
                "'00:00:00:00:00:00'",
            ],
        ),
        col(
            "c_macaddr8",
            "macaddr8",
            K::MacAddr8,
            &[
                "'08:00:2b:01:02:03:04:05'",
                "'08:00:2b:01:02:03'",
                "'ff:ff:ff:ff:ff:ff:ff:ff'",
            ],
        ),
        col(
            "c_money",
            "money",
            K::Money,
            &[
                "'12.34'",
                "'-0.50'",
                "'1000001'",
                "'92233720368547758.07'",
                "'-92233720368547758.08'",
                "'0'",
                "'0.01'",
            ],
        ),
        col(
            "c_bit",
            "bit(10)",
            K::Bit,
            &["B'1010101010'", "B'0000000000'", "B'1111111111'"],
        ),
        col(
            "c_varbit",
            "varbit",
            K::Bit,
            &["B''", "B'1'", "B'101010101'", "B'1111111100000000'"],
        ),
        col(
            "c_xml",
            "xml",
            K::Text,
            &[
                r#"'<a x="1">é😀 &amp; "q"</a>'"#,
                "'plain text content'",
                "''",
                r#"'<?xml version="1.0" standalone="yes"?><r/>'"#,
            ],
        ),
        col(
            "c_lsn",
            "pg_lsn",
            K::Lsn,
            &["'0/0'", "'16/B374D848'", "'FFFFFFFF/FFFFFFFF'"],
        ),
        col(
            "c_mood",
            "mood",
            K::Enum,
            &[
                "'happy'",
                "'sad'",
                "'ok ok'",
                "'é😀'",
                r#"'with,comma"quote'"#,
                "'NULL'",
            ],
        ),
        col("c_mood_d", "mood_d", K::Enum, &["'sad'", "'é😀'"]),
        col(
            "c_posnum",
            "posnum",
            K::Numeric,
            &["1.5", "'99999999.99'", "0.001 + 0.01"],
        ),
        col(
            "c_shorttext",
            "shorttext",
            K::Text,
            &["''", "'é😀'", "'a,b'"],
        ),
        col(
            "c_int4range",
            "int4range",
            K::Range,
            &[
                "'[1,10)'",
                "'empty'",
                "'(,5]'",
                "'[3,)'",
                "'(,)'",
                "'[-2147483648,2147483647)'",
                "'(1,2]'",
            ],
        ),
        col("c_int8range", "int8range", K::Range, &["'[1,2]'", "'(,)'"]),
        col(
            "c_numrange",
            "numrange",
            K::Range,
            &[
                "'[1.50,2.500]'",
                "'(,)'",
                "'empty'",
                "numrange('-Infinity', 'Infinity')",
                "'(0,0.000001)'",
            ],
        ),
        col(
            "c_tsrange",
            "tsrange",
            K::Range,
            &[
                r#"'["2024-01-01 00:00:00","2024-01-02 00:00:00.5")'"#,
                "'[-infinity,infinity]'",
                r#"'["0044-03-15 12:00:00 BC",)'"#,
            ],
        ),
        col(
            "c_tstzrange",
            "tstzrange",
            K::Range,
            &[
                r#"'["2024-01-01 00:00:00+00",infinity)'"#,
                "'empty'",
                "'(,)'",
                r#"'("4714-11-24 00:00:00+00 BC","2024-01-01 00:00:00+05")'"#,
            ],
        ),
        col(
            "c_daterange",
            "daterange",
            K::Range,
            &[
                "'[2024-01-01,2024-02-01)'",
                "'(,)'",
                "'empty'",
                "'[2024-01-01,2024-01-01]'",
                "'(-infinity,infinity)'",
                "'[0001-01-01 BC,0001-01-01)'",
            ],
        ),
        col(
            "c_int4multirange",
            "int4multirange",
            K::Multirange,
            &[
                "'{}'",
                "'{[1,3),[5,7)}'",
                "'{(,5),[10,)}'",
                "'{[1,3), [2,8)}'",
                "'{(,)}'",
            ],
        ),
        col(
            "c_nummultirange",
            "nummultirange",
            K::Multirange,
            &["'{[1.5,2.5], (3,)}'", "'{}'"],
        ),
        col(
            "c_datemultirange",
            "datemultirange",
            K::Multirange,
            &["'{[2024-01-01,2024-01-05), [2024-02-01,infinity)}'"],
        ),
        col(
            "c_floatrange",
            "floatrange",
            K::UserRange,
            &["'[1.5,2.5)'", "'empty'", "'(,0]'", "'[-Infinity,1e-300]'"],
        ),
        // Range bounds quoted and escaped by range_out: spaces, commas, parentheses, brackets,
        // quotes, backslashes, empty strings.
        col(
            "c_textrange",
            "textrange",
            K::UserRange,
            &[
                "textrange('a b', 'c,d')",
                r#"textrange('', 'x"y\z', '[]')"#,
                "textrange('(', ')')",
                r"textrange('[', '\')",
                "textrange(NULL, 'NULL')",
                "textrange(E'\\t', 'é😀')",
                "'empty'",
            ],
        ),
        col(
            "c_int4_arr",
            "int4[]",
            K::Array,
            &[
                "'{}'",
                "'{1,NULL,3}'",
                "'{{1,NULL},{NULL,4}}'",
                "'[2:3]={1,2}'",
                "'[-5:-4][0:1]={{1,2},{3,4}}'",
                "'{{{1},{2}},{{3},{NULL}}}'",
                "'{NULL}'",
                "'{-2147483648,2147483647}'",
            ],
        ),
        col(
            "c_text_arr",
            "text[]",
            K::Array,
            &[
                r#"ARRAY['a b', 'c,d', 'e"f', NULL, 'NULL', '', 'a\b', ' x ', '{x}', 'é😀', 'null', E'tab\there', 'plain', E'new\nline', 'semi;colon', ' ', E'\x0b', E'\f', E'a\u00a0b']"#,
                "'{}'",
                r#"'{{"a","b"},{NULL,"d"}}'"#,
                "'[0:0]={x}'",
            ],
        ),
        col(
            "c_varchar_arr",
            "varchar(5)[]",
            K::Array,
            &[r#"'{"x y",z,""}'"#],
        ),
        col(
            "c_bpchar_arr",
            "char(3)[]",
            K::Array,
            &["ARRAY['a', 'bb', '']::char(3)[]"],
        ),
        col(
            "c_name_arr",
            "name[]",
            K::Array,
            &["ARRAY['a b', 'é😀']::name[]"],
        ),
        col(
            "c_char_arr",
            "\"char\"[]",
            K::Array,
            &[r#"ARRAY['a', 'é', '\', '"', ',', '{', ' ']::"char"[]"#],
        ),
        col(
            "c_float4_arr",
            "float4[]",
            K::Array,
            &["ARRAY['NaN', '-0', '1e-45', '3.4028235e+38', '0.1']::float4[]"],
        ),
        col(
            "c_float8_arr",
            "float8[]",
            K::Array,
            &["ARRAY['NaN', 'Infinity', '-Infinity', '-0', '0.1', '1e-300', NULL]::float8[]"],
        ),
        col(
            "c_numeric_arr",
            "numeric[]",
            K::Array,
            &["ARRAY['NaN', '1.500', '-0.000', '1e-30', 'Infinity']::numeric[]"],
        ),
        col(
            "c_int2_arr",
            "int2[]",
            K::Array,
            &["'{{-32768,32767},{0,NULL}}'"],
        ),
        col(
            "c_int8_arr",
            "int8[]",
            K::Array,
            &["'{-9223372036854775808,9223372036854775807}'"],
        ),
        col("c_oid_arr", "oid[]", K::Array, &["'{0,4294967295}'"]),
        col("c_bool_arr", "bool[]", K::Array, &["'{t,f,NULL}'"]),
        col(
            "c_bytea_arr",
            "bytea[]",
            K::Array,
            &[r"ARRAY['\x'::bytea, '\xdeadbeef', NULL, '\x5c22']"],
        ),
        col(
            "c_tstz_arr",
            "timestamptz[]",
            K::Array,
            &[
                "ARRAY['2024-02-29 13:45:01.5+00', 'infinity', '0001-01-01 00:00:00+00 BC']::timestamptz[]",
            ],
        ),
        col(
            "c_ts_arr",
            "timestamp[]",
            K::Array,
            &["ARRAY['2024-02-29 13:45:01.5', '-infinity']::timestamp[]"],
        ),
        col(
            "c_date_arr",
            "date[]",
            K::Array,
            &["'{2024-02-29,infinity,-infinity,\"0044-03-15 BC\"}'"],
        ),
        col(
            "c_time_arr",
            "time[]",
            K::Array,
            &["'{00:00:00,24:00:00,12:30:00.5}'"],
        ),
        col(
            "c_timetz_arr",
            "timetz[]",
            K::Array,
            &["'{00:00:00+15:59,12:00:00.123-03:30}'"],
        ),
        col(
            "c_interval_arr",
            "interval[]",
            K::Array,
            &["ARRAY['1 year 2 mons', '-1 days -00:00:01', '00:00:00']::interval[]"],
        ),
        col(
            "c_uuid_arr",
            "uuid[]",
            K::Array,
            &["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'"],
        ),
        col(
            "c_inet_arr",
            "inet[]",
            K::Array,
            &["'{10.0.0.1/8,::1,::ffff:1.2.3.4}'"],
        ),
        col("c_cidr_arr", "cidr[]", K::Array, &["'{10.0.0.0/8,::/0}'"]),
        col(
            "c_macaddr_arr",
            "macaddr[]",
            K::Array,
            &["'{08:00:2b:01:02:03}'"],
        ),
        col(
            "c_money_arr",
            "money[]",
            K::Array,
            &["ARRAY['12.34', '-1000.50']::money[]"],
        ),
        col(
            "c_varbit_arr",
            "varbit[]",
            K::Array,
            &["ARRAY[B'', B'101']::varbit[]"],
        ),
        col(
            "c_lsn_arr",
            "pg_lsn[]",
            K::Array,
            &["'{0/0,FFFFFFFF/FFFFFFFF}'"],
        ),
        col(
            "c_xml_arr",
            "xml[]",
            K::Array,
            &[r#"ARRAY['<a x="1"/>', 'text, with comma']::xml[]"#],
        ),
        col(
            "c_jsonb_arr",
            "jsonb[]",
            K::Array,
            &[r#"ARRAY['{"a": 1}', '[1, "x"]', 'null', '"s"', '{"q": "\"\\"}']::jsonb[]"#],
        ),
        // json elements are written in the jsonb layout, so that the array's text (which
        // embeds each json element's original text) is what `Display` prints.
        col(
            "c_json_arr",
            "json[]",
            K::Array,
            &[r#"ARRAY['{"a": 1}', '[1, "x"]', NULL, '"é😀"']::json[]"#],
        ),
        col(
            "c_mood_arr",
            "mood[]",
            K::Array,
            &[
                "'{happy,sad}'",
                r#"'{"ok ok",NULL,"é😀","with,comma\"quote","NULL"}'"#,
            ],
        ),
        col(
            "c_posnum_arr",
            "posnum[]",
            K::Array,
            &["ARRAY[1.5, 2]::posnum[]"],
        ),
        col(
            "c_int4range_arr",
            "int4range[]",
            K::Array,
            &["ARRAY['[1,2)'::int4range, 'empty', '(,5]', NULL]"],
        ),
        col(
            "c_tstzrange_arr",
            "tstzrange[]",
            K::Array,
            &[r#"ARRAY['["2024-01-01 00:00:00+00",infinity)'::tstzrange, '(,)']"#],
        ),
        col(
            "c_int4mr_arr",
            "int4multirange[]",
            K::Array,
            &["ARRAY['{[1,3),[5,7)}'::int4multirange, '{}']"],
        ),
        col(
            "c_box_arr",
            "box[]",
            K::Array,
            &["ARRAY['(0,0),(2,2)'::box, '(1,1),(3,3)']"],
        ),
        col(
            "c_point",
            "point",
            K::AsText,
            &["'(1.5,-2)'", "'(1e+300,1e-300)'", "'(NaN,-0)'"],
        ),
        col(
            "c_box",
            "box",
            K::AsText,
            &["'(0,0),(2,2)'", "'(-1.5,0.1),(3,4)'"],
        ),
        col("c_circle", "circle", K::AsText, &["'<(1,2),3>'"]),
        col("c_line", "line", K::AsText, &["'{1,-1,0}'"]),
        col("c_lseg", "lseg", K::AsText, &["'[(1,2),(3,4)]'"]),
        col("c_xid", "xid", K::AsText, &["'12345'", "'4294967295'"]),
        col(
            "c_tsvector",
            "tsvector",
            K::NoBinary,
            &["'a fat:2 cat'", "''"],
        ),
        col(
            "c_polygon",
            "polygon",
            K::NoBinary,
            &["'((0,0),(1,1),(1,0))'"],
        ),
        col(
            "c_pair",
            "pair",
            K::NoBinary,
            &["ROW(1, 'x y')::pair", "ROW(NULL, '')::pair"],
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// The checks of one value against the server's rendering; errors are collected, not panicked.
struct Checker {
    failures: Vec<String>,
    cases: usize,
}

impl Checker {
    fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    /// `Display` against the type's output function. `json` keeps its input text (whitespace
    /// included), which `Value::Json` does not keep by design (module docs: `Display` prints
    /// the `jsonb` layout); for `json` the comparison is with the server text parsed and
    /// printed in that layout, and the structure is compared exactly by `structure`.
    fn display(&mut self, ctx: &str, kind: K, v: &Value, server: &str) {
        let shown = v.to_string();
        let expected = if kind == K::Json {
            match Json::parse(server) {
                Ok(j) => j.to_string(),
                Err(e) => return self.fail(format!("{ctx}: server json does not parse: {e}")),
            }
        } else {
            server.to_string()
        };
        if shown != expected {
            self.fail(format!(
                "{ctx}: Display mismatch\n  decoded: {}\n  server:  {}\n  value:   {}",
                abbrev(&shown),
                abbrev(&expected),
                abbrev(&format!("{v:?}"))
            ));
        }
    }

    /// Type-specific structure against the server's structural rendering.
    fn structure(&mut self, ctx: &str, kind: K, v: &Value, s: &str) {
        if let Err(e) = structure(kind, v, s) {
            self.fail(format!(
                "{ctx}: structure mismatch: {e}\n  server: {}\n  value:  {}",
                abbrev(s),
                abbrev(&format!("{v:?}"))
            ));
        }
    }
}

fn abbrev(s: &str) -> String {
    if s.chars().count() > 300 {
        let head: String = s.chars().take(300).collect();
        format!("{head}… ({} chars)", s.chars().count())
    } else {
        s.to_string()
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

fn structure(kind: K, v: &Value, s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(SEP).collect();
    match (kind, v) {
        (K::Float4, Value::Float4(x)) => {
            let bits = u32::from_be_bytes(unhex(s).try_into().map_err(|_| "float4send")?);
            ensure(x.to_bits() == bits, || {
                format!("bits {:08x} != float4send {bits:08x}", x.to_bits())
            })
        }
        (K::Float8, Value::Float8(x)) => {
            let bits = u64::from_be_bytes(unhex(s).try_into().map_err(|_| "float8send")?);
            ensure(x.to_bits() == bits, || {
                format!("bits {:016x} != float8send {bits:016x}", x.to_bits())
            })
        }
        (K::Numeric, Value::Numeric(n)) => {
            let scale = n.scale().map_or("none".to_string(), |x| x.to_string());
            ensure(scale == s, || format!("scale {scale} != {s}"))?;
            // Finite values also round-trip through the type's own parser.
            ensure(
                !n.is_finite() || n.as_str().parse::<Numeric>().as_ref() == Ok(n),
                || "does not re-parse to itself".into(),
            )
        }
        (K::Uuid, Value::Uuid(u)) => ensure(hex(u) == s, || format!("bytes {}", hex(u))),
        (K::Date, Value::Date(d)) => match s {
            "infinity" => ensure(*d == Date::INFINITY, || "not infinity".into()),
            "-infinity" => ensure(*d == Date::NEG_INFINITY, || "not -infinity".into()),
            _ => {
                let days: i32 = s.parse().map_err(|_| "days")?;
                ensure(d.days() == days && d.is_finite(), || {
                    format!("days {} != {days}", d.days())
                })
            }
        },
        (K::Time, Value::Time(t)) => {
            let us = int_text(s);
            ensure(i128::from(t.micros()) == us, || {
                format!("micros {} != {us}", t.micros())
            })
        }
        (K::TimeTz, Value::TimeTz(t)) => {
            let [us, tz] = parts[..] else {
                return Err("shape".into());
            };
            ensure(i128::from(t.micros) == int_text(us), || {
                format!("local micros {} != {us}", t.micros)
            })?;
            ensure(i128::from(t.offset_seconds) == int_text(tz), || {
                format!("offset east {} != {tz}", t.offset_seconds)
            })
        }
        (K::Timestamp, Value::Timestamp(ts)) | (K::TimestampTz, Value::TimestampTz(ts)) => {
            match s {
                "infinity" => return ensure(*ts == Timestamp::INFINITY, || "not infinity".into()),
                "-infinity" => {
                    return ensure(*ts == Timestamp::NEG_INFINITY, || "not -infinity".into());
                }
                _ => {}
            }
            let [days, tod, epoch] = parts[..] else {
                return Err("shape".into());
            };
            let days = int_text(days);
            let tod = int_text(tod);
            let micros = days * 86_400_000_000 + tod;
            ensure(i128::from(ts.micros()) == micros, || {
                format!("pg micros {} != {micros} (from date and time)", ts.micros())
            })?;
            ensure(ts.is_finite(), || "finite value decoded as infinite".into())?;
            // extract(epoch) is exact while the Unix-epoch microseconds fit in an int64; past
            // that PostgreSQL divides in numeric with a rounded scale (294276-12-31
            // 23:59:59.999999 gives …016000000000.000000), so it is not the value's identity
            // there and only the date/time decomposition above is compared.
            match ts.to_unix_micros() {
                Some(unix) => ensure(i128::from(unix) == int_text(epoch), || {
                    format!("unix micros {unix} != extract(epoch) {epoch}")
                }),
                None => ensure(
                    i128::from(ts.micros()) + 946_684_800_000_000 > i128::from(i64::MAX)
                        || i128::from(ts.micros()) + 946_684_800_000_000 < i128::from(i64::MIN),
                    || "to_unix_micros refused an in-range instant".into(),
                ),
            }
        }
        (
            K::Interval,
            Value::Interval(Interval {
                months,
                days,
                micros,
            }),
        ) => {
            let [m, d, us] = parts[..] else {
                return Err("shape".into());
            };
            ensure(
                i128::from(*months) == int_text(m)
                    && i128::from(*days) == int_text(d)
                    && i128::from(*micros) == int_text(us),
                || format!("fields {months}/{days}/{micros} != {m}/{d}/{us}"),
            )
        }
        (K::Json, Value::Json(j)) | (K::Jsonb, Value::Jsonb(j)) => {
            let server = Json::parse(s).map_err(|e| format!("server json: {e}"))?;
            ensure(&server == j, || "json structure differs".into())
        }
        (K::Bytea, Value::Bytea(b)) => ensure(unhex(s) == b[..], || "bytes differ".into()),
        (K::Inet, Value::Inet(i)) | (K::Cidr, Value::Cidr(i)) => {
            let [fam, mask, host] = parts[..] else {
                return Err("shape".into());
            };
            let f = match i.addr {
                IpAddr::V4(_) => "4",
                IpAddr::V6(_) => "6",
            };
            let host: IpAddr = host.parse().map_err(|_| format!("host {host}"))?;
            ensure(
                f == fam && i.prefix.to_string() == mask && i.addr == host,
                || format!("family/mask/host {f}/{}/{} != {s:?}", i.prefix, i.addr),
            )
        }
        (K::MacAddr, Value::MacAddr(m)) => ensure(hex(m) == s, || "bytes differ".into()),
        (K::MacAddr8, Value::MacAddr8(m)) => ensure(hex(m) == s, || "bytes differ".into()),
        (K::Money, Value::Money(m)) => {
            let cents = int_text(s);
            ensure(m.cents.map(i128::from) == Some(cents), || {
                format!("cents {:?} != {cents}", m.cents)
            })
        }
        (K::Bit, Value::Bit(b)) => ensure(b.len.to_string() == s, || format!("len {}", b.len)),
        (K::Lsn, Value::Lsn(l)) => ensure(i128::from(l.as_u64()) == int_text(s), || {
            format!("lsn {}", l.as_u64())
        }),
        (K::Enum, Value::Enum { type_oid, label: _ }) => {
            ensure(type_oid.0.to_string() == s, || {
                format!("enum oid {}", type_oid.0)
            })
        }
        (K::Range | K::UserRange, Value::Range(r)) => {
            let [empty, linf, uinf, linc, uinc, lo, up] = parts[..] else {
                return Err("shape".into());
            };
            let t = |b: bool| if b { "t" } else { "f" };
            ensure(t(r.empty) == empty, || "empty flag".into())?;
            if !r.empty {
                ensure(t(r.lower.is_none()) == linf, || "lower_inf".into())?;
                ensure(t(r.upper.is_none()) == uinf, || "upper_inf".into())?;
            }
            ensure(t(r.lower_inc) == linc, || "lower_inc".into())?;
            ensure(t(r.upper_inc) == uinc, || "upper_inc".into())?;
            let bound = |b: &Option<Box<Value>>| match b {
                None => "N".to_string(),
                Some(v) => format!("V{v}"),
            };
            ensure(bound(&r.lower) == lo, || {
                format!("lower {}", bound(&r.lower))
            })?;
            ensure(bound(&r.upper) == up, || {
                format!("upper {}", bound(&r.upper))
            })
        }
        (K::Multirange, Value::Multirange(rs)) => {
            let n: usize = parts[0].parse().map_err(|_| "count")?;
            ensure(rs.len() == n, || format!("{} ranges != {n}", rs.len()))?;
            let texts: Vec<String> = rs.iter().map(ToString::to_string).collect();
            let server: Vec<&str> = if n == 0 { vec![] } else { parts[1..].to_vec() };
            ensure(texts == server, || format!("ranges {texts:?}"))
        }
        (K::Array, Value::Array(a)) => {
            let (dims, elems) = s.split_once(SEP).ok_or("shape")?;
            let mine: String = a
                .dims
                .iter()
                .map(|d| {
                    format!(
                        "[{}:{}]",
                        d.lower_bound,
                        i64::from(d.lower_bound) + i64::from(d.len) - 1
                    )
                })
                .collect();
            ensure(mine == dims, || format!("dims {mine} != {dims}"))?;
            let server: Vec<Option<String>> = if elems.is_empty() {
                vec![]
            } else {
                elems.split(',').map(cell).collect()
            };
            ensure(a.elements.len() == server.len(), || {
                format!("{} elements != {}", a.elements.len(), server.len())
            })?;
            for (i, (e, srv)) in a.elements.iter().zip(&server).enumerate() {
                match (e, srv) {
                    (Value::Null, None) => {}
                    (Value::Null, Some(_)) | (_, None) => {
                        return Err(format!("element {i}: NULL position differs"));
                    }
                    (e, Some(srv)) => {
                        // Elements are compared like top-level values of their type; json
                        // elements by structure (see Checker::display).
                        let ok = match e {
                            Value::Json(j) => Json::parse(srv).as_ref() == Ok(j),
                            _ => e.to_string() == *srv,
                        };
                        ensure(ok, || format!("element {i}: {e} != {srv}"))?;
                    }
                }
            }
            Ok(())
        }
        _ => Err(format!("unexpected variant {}", variant(v))),
    }
}

// ---------------------------------------------------------------------------------------------
// The all-types test.

#[test]
fn every_type_matches_postgres_text_and_binary() {
    let db = "fidelity_types";
    setup_db(db);
    let cols = columns();
    let nrows = cols.iter().map(|c| c.values.len()).max().unwrap_or(0);

    // Schema, publication, slot.
    let mut ddl = String::from(TYPES_DDL);
    ddl.push_str("CREATE TABLE types (id int PRIMARY KEY");
    for c in &cols {
        let _ = write!(ddl, ", {} {}", c.name, c.ty);
    }
    ddl.push_str("); CREATE PUBLICATION pub FOR TABLE types;");
    psql(db, &ddl);
    psql(
        db,
        "SELECT pg_create_logical_replication_slot('fidelity_types', 'pgoutput')",
    );

    // One transaction inserting every row.
    let mut ins = String::new();
    for r in 0..nrows {
        let mut names = String::from("id");
        let mut vals = format!("{r}");
        for c in &cols {
            if let Some(v) = c.values.get(r) {
                let _ = write!(names, ", {}", c.name);
                let _ = write!(vals, ", {v}");
            }
        }
        let _ = write!(ins, "INSERT INTO types ({names}) VALUES ({vals});");
    }
    psql(db, &ins);

    // PostgreSQL's own renderings: the output function, and the structure.
    let mut q = String::from("SELECT id");
    for c in &cols {
        let _ = write!(
            q,
            ", {}",
            cell_sql(c.name, &format!("format('%s', {})", c.name))
        );
        match c.kind.structure(c.name) {
            Some(s) => {
                let _ = write!(q, ", {}", cell_sql(c.name, &s));
            }
            None => q.push_str(", '-'"),
        }
    }
    q.push_str(" FROM types ORDER BY id");
    let server_rows: Vec<ServerRow> = psql(db, &q)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 1 + 2 * cols.len(), "server row width");
            let id: i32 = f[0].parse().expect("id");
            let cells = (0..cols.len())
                .map(|i| {
                    let render = cell(f[1 + 2 * i]);
                    let st = match f[2 + 2 * i] {
                        "-" => None,
                        s => cell(s),
                    };
                    (render, st)
                })
                .collect();
            (id, cells)
        })
        .collect();
    assert_eq!(server_rows.len(), nrows);

    let oid_of = |ty: &str| -> u32 {
        psql(db, &format!("SELECT '{ty}'::regtype::oid"))
            .parse()
            .expect("oid")
    };
    let col_oids: Vec<u32> = cols.iter().map(|c| oid_of(c.ty)).collect();

    let text_msgs = peek(db, "fidelity_types", "pub", false);
    let bin_msgs = peek(db, "fidelity_types", "pub", true);
    let (raw_text, type_msgs) = raw_changes(&text_msgs);
    let (raw_bin, _) = raw_changes(&bin_msgs);
    assert_eq!(raw_text.len(), nrows);
    assert_eq!(raw_bin.len(), nrows);

    // Every value was sent in the requested format (the server falls back to text only for
    // types without a send function, and every type here has one).
    for (raw, want_binary) in [(&raw_text, false), (&raw_bin, true)] {
        for ch in raw.iter() {
            for (name, v) in ch.columns.iter().zip(&ch.new) {
                let ok = match v {
                    Raw::Null => true,
                    Raw::Text(_) => !want_binary,
                    Raw::Binary(_) => want_binary,
                    Raw::Unchanged => false,
                };
                assert!(
                    ok,
                    "{name}: {v:?} in a {} capture",
                    if want_binary { "binary" } else { "text" }
                );
            }
        }
    }

    // Two pipelines per capture: Type messages only, and a catalog-filled registry.
    let plain_text = assemble(&text_msgs, |_| {});
    let plain_bin = assemble(&bin_msgs, |_| {});
    let mut registered = 0;
    let cat_text = assemble(&text_msgs, |p| {
        registered = register_from_catalog(db, p.type_registry_mut());
    });
    let cat_bin = assemble(&bin_msgs, |p| {
        register_from_catalog(db, p.type_registry_mut());
    });
    assert!(
        registered >= 8,
        "user types registered from pg_type: {registered}"
    );

    // What Type messages alone make of the user types (PROTOCOL.md §5.2: a domain's Type
    // message names its base type).
    let reg = plain_text.pipeline.type_registry();
    let kind_of = |ty: &str| reg.get(Oid(oid_of(ty))).map(|t| t.kind.clone());
    assert_eq!(
        kind_of("posnum"),
        Some(TypeKind::Domain { base: Oid::NUMERIC })
    );
    assert_eq!(
        kind_of("shorttext"),
        Some(TypeKind::Domain { base: Oid::TEXT })
    );
    // An enum's Type message carries only its name, which does not say it is an enum: it
    // stays opaque (values are kept as text) until registered from the catalog.
    assert_eq!(kind_of("mood"), Some(TypeKind::Opaque));
    assert_eq!(
        kind_of("mood_d"),
        Some(TypeKind::Domain {
            base: Oid(oid_of("mood"))
        })
    );
    assert_eq!(
        kind_of("mood[]"),
        Some(TypeKind::Array {
            element: Oid(oid_of("mood"))
        })
    );
    assert_eq!(
        kind_of("posnum[]"),
        Some(TypeKind::Array {
            element: Oid::INVALID
        })
    );
    assert_eq!(kind_of("floatrange"), Some(TypeKind::Opaque));
    assert_eq!(kind_of("pair"), Some(TypeKind::Opaque));
    // Every user type got a Type message; no built-in did.
    for (oid, _, name) in &type_msgs {
        assert!(*oid >= 16384, "Type message for built-in {oid} {name}");
    }
    for ty in [
        "mood",
        "mood_d",
        "posnum",
        "shorttext",
        "floatrange",
        "pair",
        "mood[]",
        "posnum[]",
    ] {
        let oid = oid_of(ty);
        assert!(
            type_msgs.iter().any(|(o, _, _)| *o == oid),
            "no Type message for {ty}"
        );
    }

    // Text values always decode; binary values fall back only for types without a decoder.
    assert_eq!(plain_text.pipeline.stats().fallback_values, 0);
    assert_eq!(cat_text.pipeline.stats().fallback_values, 0);

    let rows = |a: &Assembled| props_by_id(&a.changes);
    let (pt, pb, ct, cb) = (
        rows(&plain_text),
        rows(&plain_bin),
        rows(&cat_text),
        rows(&cat_bin),
    );
    let raw_bin_by_id: HashMap<i32, &RawChange> = raw_bin
        .iter()
        .map(|ch| {
            let Raw::Binary(b) = ch.new_col("id") else {
                panic!("id not binary")
            };
            (i32::from_be_bytes(b[..].try_into().expect("int4")), ch)
        })
        .collect();

    let mut ck = Checker {
        failures: Vec::new(),
        cases: 0,
    };
    let mut expected_fallbacks_cat = 0u64;
    let mut expected_fallbacks_plain = 0u64;
    for (id, cells) in &server_rows {
        for ((c, (render, st)), &col_oid) in cols.iter().zip(cells).zip(&col_oids) {
            let ctx = |what: &str| format!("{} ({}) row {id} [{what}]", c.name, c.ty);
            let get = |m: &BTreeMap<i32, ElementPropertyMap>| {
                m.get(id)
                    .and_then(|p| p.get(c.name))
                    .cloned()
                    .unwrap_or_else(|| panic!("{}: property missing", ctx("")))
            };
            let (vpt, vpb, vct, vcb) = (get(&pt), get(&pb), get(&ct), get(&cb));
            let Some(server) = render else {
                for v in [&vpt, &vpb, &vct, &vcb] {
                    if !v.is_null() {
                        ck.fail(format!("{}: NULL decoded as {v:?}", ctx("null")));
                    }
                }
                continue;
            };
            let raw = raw_bin_by_id[id].new_col(c.name);
            let hex_fallback = || match raw {
                Raw::Binary(b) => Value::Unknown {
                    type_oid: Oid(col_oid),
                    text: format!("\\x{}", hex(b)),
                },
                other => panic!("{}: not binary: {other:?}", ctx("binary")),
            };

            // Catalog-registered pipeline, text mode: variant, Display, structure.
            ck.cases += 1;
            let want = c.kind.variant();
            if variant(&vct) != want {
                ck.fail(format!(
                    "{}: decoded as {} ({vct:?}), expected {want}",
                    ctx("catalog text"),
                    variant(&vct)
                ));
            } else {
                ck.display(&ctx("catalog text"), c.kind, &vct, server);
                if let Some(st) = st {
                    ck.structure(&ctx("catalog text"), c.kind, &vct, st);
                }
            }

            // Catalog-registered pipeline, binary mode: equal to text mode, or `\x` hex.
            ck.cases += 1;
            if c.kind.has_binary_decoder() {
                if !same(&vcb, &vct) {
                    ck.fail(format!(
                        "{}: binary {} != text {}",
                        ctx("catalog binary"),
                        abbrev(&format!("{vcb:?}")),
                        abbrev(&format!("{vct:?}"))
                    ));
                }
            } else {
                expected_fallbacks_cat += 1;
                if vcb != hex_fallback() {
                    ck.fail(format!(
                        "{}: expected the \\x fallback, got {vcb:?}",
                        ctx("catalog binary")
                    ));
                }
            }

            // Type-message-only pipeline, text mode: the same values, except for the types
            // it cannot resolve, which keep their exact text.
            ck.cases += 1;
            let unresolved = UNRESOLVED_BY_TYPE_MESSAGES.contains(&c.name);
            ck.display(&ctx("plain text"), c.kind, &vpt, server);
            if unresolved {
                let unknownish = match &vpt {
                    Value::Unknown { .. } => true,
                    Value::Array(a) => a
                        .elements
                        .iter()
                        .all(|e| matches!(e, Value::Null | Value::Unknown { .. })),
                    _ => false,
                };
                if !unknownish {
                    ck.fail(format!(
                        "{}: expected text kept as Unknown, got {vpt:?}",
                        ctx("plain text")
                    ));
                }
            } else if !same(&vpt, &vct) {
                ck.fail(format!("{}: {vpt:?} != catalog {vct:?}", ctx("plain text")));
            }

            // Type-message-only pipeline, binary mode.
            ck.cases += 1;
            let opaque_binary = !c.kind.has_binary_decoder() || c.kind == K::UserRange;
            if opaque_binary {
                // An unresolved user range's binary form is not text: `\x` hex.
                expected_fallbacks_plain += 1;
                if vpb != hex_fallback() {
                    ck.fail(format!(
                        "{}: expected the \\x fallback, got {vpb:?}",
                        ctx("plain binary")
                    ));
                }
            } else if c.name == "c_posnum_arr" {
                // The binary array names its element type (the domain, which a Type message
                // registered), so binary decodes the elements that text mode cannot.
                if !same(&vpb, &vct) {
                    ck.fail(format!(
                        "{}: {vpb:?} != catalog {vct:?}",
                        ctx("plain binary")
                    ));
                }
            } else if !same(&vpb, &vpt) {
                ck.fail(format!(
                    "{}: binary {vpb:?} != text {vpt:?}",
                    ctx("plain binary")
                ));
            }
        }
    }
    for (what, got, want) in [
        (
            "catalog binary",
            cat_bin.pipeline.stats().fallback_values,
            expected_fallbacks_cat,
        ),
        (
            "plain binary",
            plain_bin.pipeline.stats().fallback_values,
            expected_fallbacks_plain,
        ),
    ] {
        if got != want {
            ck.fail(format!(
                "{what}: {got} values fell back to \\x hex, expected {want}"
            ));
        }
    }

    // Bootstrap = stream, for every row and column. The table is only ever inserted into
    // (in one transaction), so a copy taken now reads exactly the rows the stream inserted;
    // `final_state` would fold later updates and unchanged TOAST in (see the TOAST test).
    // Each bootstrap pipeline is made like its text-mode stream pipeline: the same source id
    // and configuration, the registry left to Type messages (which the assembler sends from
    // the table query's type list, as pgoutput sends them) or filled from `pg_type` first.
    // The catalog bootstrap copies the table in ctid parts, as large tables are.
    psql(db, "ANALYZE types");
    let tables = bootstrap::list_tables(db, "pub");
    let labels: Vec<String> = tables.iter().map(|t| t.label()).collect();
    assert_eq!(labels, ["types"]);
    assert_eq!(tables[0].relation.columns.len(), 1 + cols.len());
    assert_eq!(tables[0].primary_key, ["id"]);
    let mut boot_values = 0usize;
    let mut boot_parts = Vec::new();
    for (what, stream, split, cat) in [
        ("plain", &plain_text, (0, 1), false),
        ("catalog", &cat_text, (1, 4), true),
    ] {
        let boot = bootstrap::bootstrap(db, SOURCE, pipeline_config(), &tables, split, |r| {
            if cat {
                register_from_catalog(db, r);
            }
        });
        assert_eq!(boot.copied, nrows as u64, "{what}: rows copied");
        boot_parts.push(boot.parts);
        let streamed = bootstrap::final_state(&stream.changes);
        assert_eq!(streamed.len(), nrows);
        let (n, failures) =
            bootstrap::compare(&format!("bootstrap ({what})"), &boot.rows, &streamed, true);
        boot_values += n;
        ck.failures.extend(failures);
    }
    assert!(
        boot_parts[1] >= 2,
        "the catalog bootstrap copies the table in ctid parts ({} pages)",
        tables[0].pages
    );

    let types = cols.len();
    eprintln!(
        "fidelity: {} cases checked ({types} types, text+binary); bootstrap = stream for \
         {boot_values} values ({nrows} rows, plain and catalog pipelines, {} + {} COPY parts)",
        ck.cases, boot_parts[0], boot_parts[1]
    );
    assert!(
        ck.failures.is_empty(),
        "{} of {} checks failed:\n{}",
        ck.failures.len(),
        ck.cases,
        ck.failures.join("\n")
    );
    assert!(
        ck.cases >= MIN_CASES,
        "only {} cases (floor {MIN_CASES})",
        ck.cases
    );
    assert!(types >= MIN_TYPES, "only {types} types (floor {MIN_TYPES})");
    assert!(
        boot_values >= MIN_BOOTSTRAP_VALUES,
        "bootstrap = stream for only {boot_values} values (floor {MIN_BOOTSTRAP_VALUES})"
    );
}

// ---------------------------------------------------------------------------------------------
// TOAST.

/// A 100 kB+ text and a large jsonb, stored out of line (STORAGE EXTERNAL, no compression),
/// then an UPDATE of another column: pgoutput sends them as unchanged TOAST (`'u'`). Under
/// REPLICA IDENTITY DEFAULT the pipeline leaves them out and lists them; under FULL it fills
/// them from the detoasted old row.
#[test]
fn toasted_values_and_unchanged_toast() {
    let db = "fidelity_toast";
    setup_db(db);
    let mut ddl = String::new();
    for t in ["toast_default", "toast_full"] {
        let _ = write!(
            ddl,
            "CREATE TABLE {t} (id int PRIMARY KEY, n int, big text, doc jsonb); \
             ALTER TABLE {t} ALTER big SET STORAGE EXTERNAL, ALTER doc SET STORAGE EXTERNAL;"
        );
    }
    ddl.push_str(
        "ALTER TABLE toast_full REPLICA IDENTITY FULL; \
         CREATE PUBLICATION pub FOR TABLE toast_default, toast_full;",
    );
    psql(db, &ddl);
    psql(
        db,
        "SELECT pg_create_logical_replication_slot('fidelity_toast', 'pgoutput')",
    );
    let big = r#"(SELECT string_agg(md5(i::text) || ' é😀 \"q\" ', '' ORDER BY i) FROM generate_series(1, 2500) i)"#;
    let doc = "(SELECT jsonb_object_agg('k' || i, jsonb_build_object('v', md5(i::text), 'n', \
               i * 1.5, 'a', jsonb_build_array(i, NULL, 'é😀'))) FROM generate_series(1, 1500) i)";
    let mut dml = String::new();
    for t in ["toast_default", "toast_full"] {
        let _ = write!(
            dml,
            "INSERT INTO {t} VALUES (1, 0, {big}, {doc}); \
             UPDATE {t} SET n = 1 WHERE id = 1; \
             UPDATE {t} SET n = 2, big = big || 'tail' WHERE id = 1;"
        );
    }
    psql(db, &dml);

    // The server's values, as text.
    let text_of = |expr: &str| -> String {
        let h = psql(
            db,
            &format!("SELECT encode(convert_to(({expr})::text, 'UTF8'), 'hex')"),
        );
        String::from_utf8(unhex(h.trim())).expect("UTF-8")
    };
    let big_text = text_of(big);
    assert!(
        big_text.len() > 100_000,
        "big text is {} bytes",
        big_text.len()
    );
    let doc_text = text_of(doc);
    assert!(doc_text.len() > 50_000, "doc is {} bytes", doc_text.len());
    let stored: String = psql(
        db,
        "SELECT count(*) FROM toast_default t, toast_full f WHERE t.big = f.big AND t.doc = f.doc",
    );
    assert_eq!(stored, "1");
    // Externally stored, uncompressed: pg_column_size is the full size.
    let sizes = psql(
        db,
        "SELECT pg_column_size(big) >= 100000 FROM toast_default",
    );
    assert_eq!(sizes, "t");

    let mut cases = 0usize;
    let mut boot_values = 0usize;
    for binary in [false, true] {
        let mode = if binary { "binary" } else { "text" };
        let msgs = peek(db, "fidelity_toast", "pub", binary);
        let (raw, _) = raw_changes(&msgs);
        let got = assemble(&msgs, |p| {
            p.set_primary_key("toast_full", vec!["id".to_string()])
        });
        assert_eq!(raw.len(), 6, "{mode}: 3 changes per table");
        assert_eq!(got.changes.len(), 6, "{mode}: 3 changes per table");
        let big_value = Value::Text(big_text.clone().into());
        let doc_value = Value::Jsonb(Json::parse(&doc_text).expect("doc parses"));
        for (i, table) in ["toast_default", "toast_full"].into_iter().enumerate() {
            let full = table == "toast_full";
            let ctx = format!("{table} ({mode})");
            let [r_ins, r_upd, r_upd2] = &raw[i * 3..i * 3 + 3] else {
                unreachable!()
            };
            assert!(
                r_ins.table == table && r_ins.kind == 'I',
                "{ctx}: {r_ins:?}"
            );
            assert!(r_upd.kind == 'U' && r_upd2.kind == 'U', "{ctx}");

            // The insert carries the whole values.
            let SourceChange::Insert { element, .. } = &got.changes[i * 3] else {
                panic!("{ctx}: not an insert")
            };
            let p = element.properties();
            assert_eq!(p.get("big"), Some(&big_value), "{ctx}: inserted big text");
            assert_eq!(p.get("doc"), Some(&doc_value), "{ctx}: inserted jsonb");
            assert_eq!(
                p.get("doc").map(ToString::to_string).as_deref(),
                Some(doc_text.as_str()),
                "{ctx}: jsonb Display"
            );
            cases += 2;

            // UPDATE of `n` only: the TOASTed columns are sent as 'u'.
            assert_eq!(
                r_upd.new_col("big"),
                &Raw::Unchanged,
                "{ctx}: big sent as 'u'"
            );
            assert_eq!(
                r_upd.new_col("doc"),
                &Raw::Unchanged,
                "{ctx}: doc sent as 'u'"
            );
            let SourceChange::Update {
                element,
                old,
                unchanged_toast,
                ..
            } = &got.changes[i * 3 + 1]
            else {
                panic!("{ctx}: not an update: {:?}", got.changes[i * 3 + 1])
            };
            let p = element.properties();
            assert_eq!(p.get("n"), Some(&Value::Int4(1)), "{ctx}");
            if full {
                // The old row ('O') is detoasted, and fills the 'u' columns.
                let Some((marker, old_raw)) = &r_upd.old else {
                    panic!("{ctx}: FULL sends the old row")
                };
                assert_eq!(*marker, 'O');
                assert!(
                    !old_raw.contains(&Raw::Unchanged),
                    "{ctx}: the old row is detoasted"
                );
                assert!(unchanged_toast.is_empty(), "{ctx}: {unchanged_toast:?}");
                assert_eq!(
                    p.get("big"),
                    Some(&big_value),
                    "{ctx}: big filled from old row"
                );
                assert_eq!(
                    p.get("doc"),
                    Some(&doc_value),
                    "{ctx}: doc filled from old row"
                );
                let old = old.as_ref().expect("old row decoded");
                assert_eq!(old.get("big"), Some(&big_value), "{ctx}: old big");
                assert_eq!(old.get("n"), Some(&Value::Int4(0)), "{ctx}: old n");
            } else {
                assert!(
                    r_upd.old.is_none(),
                    "{ctx}: no old key when the key is unchanged"
                );
                let names: Vec<&str> = unchanged_toast.iter().map(|s| &**s).collect();
                assert_eq!(names, ["big", "doc"], "{ctx}: unchanged TOAST listed");
                assert!(p.get("big").is_none(), "{ctx}: big left out, not NULL");
                assert!(p.get("doc").is_none(), "{ctx}: doc left out, not NULL");
                assert!(old.is_none(), "{ctx}");
            }
            cases += 2;

            // UPDATE of `big`: sent whole; `doc` still unchanged.
            let SourceChange::Update {
                element,
                unchanged_toast,
                ..
            } = &got.changes[i * 3 + 2]
            else {
                panic!("{ctx}: not an update")
            };
            let p = element.properties();
            assert_eq!(
                p.get("big"),
                Some(&Value::Text(format!("{big_text}tail").into())),
                "{ctx}: updated big"
            );
            assert_eq!(r_upd2.new_col("doc"), &Raw::Unchanged, "{ctx}");
            if full {
                assert_eq!(p.get("doc"), Some(&doc_value), "{ctx}");
                assert!(unchanged_toast.is_empty());
            } else {
                let names: Vec<&str> = unchanged_toast.iter().map(|s| &**s).collect();
                assert_eq!(names, ["doc"], "{ctx}");
                assert!(p.get("doc").is_none(), "{ctx}");
            }
            cases += 2;
        }
        assert_eq!(got.pipeline.stats().fallback_values, 0, "{mode}");

        // Bootstrap = stream: the copy reads each table's final state (after both updates),
        // detoasted; the stream's final state folds the updates in, keeping the previous
        // value of each column sent as unchanged TOAST (REPLICA IDENTITY DEFAULT), so the
        // whole values must come out equal.
        if !binary {
            let tables = bootstrap::list_tables(db, "pub");
            let labels: Vec<String> = tables.iter().map(|t| t.label()).collect();
            assert_eq!(labels, ["toast_default", "toast_full"]);
            let boot = bootstrap::bootstrap(db, SOURCE, pipeline_config(), &tables, (0, 1), |_| {});
            let streamed = bootstrap::final_state(&got.changes);
            assert_eq!(streamed.len(), 2);
            let final_big = Value::Text(format!("{big_text}tail").into());
            for row in streamed.values() {
                assert_eq!(row.properties.get("big"), Some(&final_big));
                assert_eq!(row.properties.get("n"), Some(&Value::Int4(2)));
            }
            let (n, failures) = bootstrap::compare("TOAST bootstrap", &boot.rows, &streamed, false);
            assert!(failures.is_empty(), "{}", failures.join("\n"));
            boot_values += n;
        }
    }
    eprintln!(
        "fidelity: {cases} TOAST cases checked (text, jsonb; DEFAULT and FULL identity, \
         text+binary); bootstrap = stream for {boot_values} values"
    );
    assert!(cases >= 24);
    assert_eq!(boot_values, 8, "2 rows of 4 columns");
}
