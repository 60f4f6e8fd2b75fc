//! A small JSON writer for change lines: values are written losslessly (exact numeric and int8
//! digits, structured json/jsonb, bytea as hex), which a generic serializer would not do
//! without extra features.
//!
//! | PostgreSQL | JSON |
//! |---|---|
//! | NULL | `null` |
//! | bool | `true` / `false` |
//! | int2, int4, int8, oid | number, exact |
//! | numeric | number with every digit (`123.4500`); `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | float4, float8 | shortest round-trip number; `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | json, jsonb | embedded JSON (numbers exact, key order and duplicates kept); a JSON `null` as `{"$json":null}` (see below) |
//! | bytea | `"\\x0102ff"` (hex) |
//! | arrays | nested JSON arrays (one level per dimension), `null` elements; with a lower bound other than 1, `{"lower":[5],"values":[…]}` (one bound per dimension) |
//! | timestamptz | `"2024-02-29T08:15:01.500000Z"`; `"infinity"`, `"-infinity"` |
//! | timestamp | `"2024-02-29T08:15:01.500000"` (no zone) |
//! | date | `"2024-02-29"` (ISO 8601; years before 1 AD as `-0043`) |
//! | everything else | PostgreSQL's text output as a string |
//!
//! SQL NULL is always `null`. A json or jsonb value that is itself JSON `null` is written
//! `{"$json":null}`, and one that is an object whose only key is `"$json"` is wrapped the same
//! way (`{"$json":{"$json":1}}`), so a reader unwraps a one-key `"$json"` object and reads
//! everything else as it is: SQL NULL and jsonb `null` never look alike, as columns or as array
//! elements. JSON nested inside a document is written as it is.

use std::fmt::Write as _;

use pgcdc_core::assemble::TransactionBatch;
use pgcdc_core::model::{ElementPropertyMap, SourceChange};
use pgcdc_core::value::{Array, Date, Json, Numeric, Timestamp, Value};

/// Appends `s` as a JSON string (escaped as PostgreSQL's `escape_json`, by the core).
pub fn string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    // Most strings need no escape: copied whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    // Writing to a String cannot fail.
    let _ = pgcdc_core::value::write_json_string(out, s);
}

/// Appends the decimal digits of `n` (no `fmt` machinery: this runs for every number).
pub fn int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    uint(out, n.unsigned_abs());
}

/// Appends the decimal digits of `n`.
pub fn uint(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10` is below 10.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Appends `n` (below 100) as two digits.
fn two(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Whether `s` is a JSON number token (RFC 8259: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Appends `text` as a bare number when it is one, else as a string.
fn number_or_string(out: &mut String, text: &str) {
    if is_json_number(text) {
        out.push_str(text);
    } else {
        string(out, text);
    }
}

/// Appends a value (see the module documentation for the mapping).
pub fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int2(n) => int(out, i64::from(*n)),
        Value::Int4(n) => int(out, i64::from(*n)),
        Value::Int8(n) => int(out, *n),
        Value::Oid(n) => uint(out, u64::from(*n)),
        Value::Float4(_) | Value::Float8(_) => number_or_string(out, &v.to_string()),
        Value::Numeric(n) => match n {
            Numeric::Finite(s) => number_or_string(out, s),
            other => string(out, other.as_str()),
        },
        Value::Json(j) | Value::Jsonb(j) => json_value(out, j),
        Value::Bytea(bytes) => {
            out.reserve(bytes.len() * 2 + 5);
            out.push_str("\"\\\\x");
            for b in bytes.iter() {
                let _ = write!(out, "{b:02x}");
            }
            out.push('"');
        }
        Value::Array(a) => array(out, a),
        Value::TimestampTz(ts) => timestamp(out, *ts, true),
        Value::Timestamp(ts) => timestamp(out, *ts, false),
        Value::Date(d) => date_value(out, *d),
        Value::Text(s) => string(out, s),
        other => string(out, &other.to_string()),
    }
}

/// The key of the object that wraps a json value which would read as something else.
const JSON_WRAPPER: &str = "$json";

/// Appends a json or jsonb value: JSON `null`, and an object whose only key is
/// [`JSON_WRAPPER`], are wrapped in `{"$json":…}` so that neither reads as SQL NULL or as a
/// wrapper.
fn json_value(out: &mut String, j: &Json) {
    let wrap = match j {
        Json::Null => true,
        Json::Object(members) => matches!(members.as_slice(), [(k, _)] if k == JSON_WRAPPER),
        _ => false,
    };
    if wrap {
        out.push_str("{\"");
        out.push_str(JSON_WRAPPER);
        out.push_str("\":");
        json(out, j);
        out.push('}');
    } else {
        json(out, j);
    }
}

/// Appends structured JSON, numbers exactly as they were.
fn json(out: &mut String, j: &Json) {
    match j {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => number_or_string(out, n),
        Json::String(s) => string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, k);
                out.push(':');
                json(out, v);
            }
            out.push('}');
        }
    }
}

/// Appends an array as nested JSON arrays, one level per dimension; an array with a lower
/// bound other than 1 as `{"lower":[…],"values":[…]}`.
fn array(out: &mut String, a: &Array) {
    if a.dims.iter().any(|d| d.lower_bound != 1) {
        out.push_str("{\"lower\":[");
        for (i, d) in a.dims.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}", d.lower_bound);
        }
        out.push_str("],\"values\":");
        array_values(out, a);
        out.push('}');
    } else {
        array_values(out, a);
    }
}

/// Appends the elements of an array as nested JSON arrays, one level per dimension.
fn array_values(out: &mut String, a: &Array) {
    let count = a
        .dims
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(d.len as usize));
    if a.dims.len() <= 1 || count != Some(a.elements.len()) {
        flat(out, &a.elements);
        return;
    }
    let mut elems = a.elements.iter();
    let lens: Vec<usize> = a.dims.iter().map(|d| d.len as usize).collect();
    level(out, &lens, &mut elems);
}

fn flat(out: &mut String, elems: &[Value]) {
    out.push('[');
    for (i, e) in elems.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        value(out, e);
    }
    out.push(']');
}

fn level<'a>(out: &mut String, lens: &[usize], elems: &mut impl Iterator<Item = &'a Value>) {
    let Some((len, inner)) = lens.split_first() else {
        return;
    };
    out.push('[');
    for i in 0..*len {
        if i > 0 {
            out.push(',');
        }
        if inner.is_empty() {
            match elems.next() {
                Some(v) => value(out, v),
                None => out.push_str("null"),
            }
        } else {
            level(out, inner, elems);
        }
    }
    out.push(']');
}

/// Writes an ISO 8601 year: four digits within 0–9999, else signed.
fn year(out: &mut String, y: i32) {
    let _ = if (0..=9999).contains(&y) {
        let y = y.unsigned_abs();
        two(out, y / 100);
        two(out, y % 100);
        Ok(())
    } else if y < 0 {
        write!(out, "-{:04}", y.unsigned_abs())
    } else {
        write!(out, "+{y}")
    };
}

fn date_value(out: &mut String, d: Date) {
    match d.to_ymd() {
        Some((y, m, day)) => {
            out.push('"');
            year(out, y);
            out.push('-');
            two(out, m);
            out.push('-');
            two(out, day);
            out.push('"');
        }
        None => string(out, &d.to_string()),
    }
}

/// Appends a timestamp as an ISO 8601 string with microseconds (`Z` for timestamptz).
pub fn timestamp(out: &mut String, ts: Timestamp, utc: bool) {
    if !ts.is_finite() {
        string(out, &ts.to_string());
        return;
    }
    let Some((y, m, d)) = ts.date().to_ymd() else {
        string(out, &ts.to_string());
        return;
    };
    let (hh, mm, ss, us) = ts.time().hms_micro();
    out.push('"');
    year(out, y);
    out.push('-');
    two(out, m);
    out.push('-');
    two(out, d);
    out.push('T');
    two(out, hh);
    out.push(':');
    two(out, mm);
    out.push(':');
    two(out, ss);
    out.push('.');
    two(out, us / 10_000);
    two(out, us / 100 % 100);
    two(out, us % 100);
    if utc {
        out.push('Z');
    }
    out.push('"');
}

/// Appends a commit time (nanoseconds since the Unix epoch) as RFC 3339 with microseconds, or
/// `null` for 0 (no commit time: a non-transactional message).
pub fn commit_time(out: &mut String, ns: u64) {
    let micros = i64::try_from(ns / 1000).ok();
    match micros
        .filter(|_| ns > 0)
        .and_then(Timestamp::from_unix_micros)
    {
        Some(ts) => timestamp(out, ts, true),
        None => out.push_str("null"),
    }
}

/// Appends `{"name": value, …}` in column order.
pub fn properties(out: &mut String, props: &ElementPropertyMap) {
    out.push('{');
    for (i, (k, v)) in props.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, k);
        out.push(':');
        value(out, v);
    }
    out.push('}');
}

/// `,"name":` — the names are this module's constants, which need no escape.
fn key(out: &mut String, name: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
}

fn strings<S: AsRef<str>>(out: &mut String, items: &[S]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, s.as_ref());
    }
    out.push(']');
}

/// The `op` field of a change.
pub fn op_name(change: &SourceChange) -> &'static str {
    match change {
        SourceChange::Insert { .. } => "insert",
        SourceChange::Update { .. } => "update",
        SourceChange::Delete { .. } => "delete",
        SourceChange::Truncate { .. } => "truncate",
        SourceChange::SchemaChange { .. } => "schema",
        SourceChange::Message { .. } => "message",
        other => other.kind(),
    }
}

/// The first label of an element.
fn label(labels: &[std::sync::Arc<str>]) -> &str {
    labels.first().map_or("", |l| l)
}

/// The part of a change line (the JSON object documented in the README) that is the
/// change's own: from `{"op":` to its values; [`tx_tail`] completes it.
pub fn change_head(out: &mut String, change: &SourceChange) {
    out.push_str("{\"op\":");
    string(out, op_name(change));
    match change {
        SourceChange::Insert {
            element,
            unchanged_toast,
            ..
        }
        | SourceChange::Update {
            element,
            unchanged_toast,
            ..
        } => {
            let meta = element.metadata();
            key(out, "table");
            string(out, label(&meta.labels));
            key(out, "id");
            string(out, &meta.reference.element_id);
            key(out, "props");
            properties(out, element.properties());
            if let SourceChange::Update { old: Some(old), .. } = change {
                key(out, "old");
                properties(out, old);
            }
            if !unchanged_toast.is_empty() {
                key(out, "unchanged_toast");
                strings(out, unchanged_toast);
            }
        }
        SourceChange::Delete { metadata, old, .. } => {
            key(out, "table");
            string(out, label(&metadata.labels));
            key(out, "id");
            string(out, &metadata.reference.element_id);
            key(out, "old");
            properties(out, old);
        }
        SourceChange::Truncate {
            labels,
            cascade,
            restart_identity,
            ..
        } => {
            key(out, "tables");
            strings(out, labels);
            let _ = write!(
                out,
                ",\"cascade\":{cascade},\"restart_identity\":{restart_identity}"
            );
        }
        SourceChange::SchemaChange {
            label,
            diff,
            relation,
            ..
        } => {
            key(out, "table");
            string(out, label);
            key(out, "added");
            strings(out, &diff.added);
            key(out, "dropped");
            strings(out, &diff.dropped);
            key(out, "retyped");
            strings(
                out,
                &diff
                    .retyped
                    .iter()
                    .map(|(name, _, _)| name.as_str())
                    .collect::<Vec<_>>(),
            );
            key(out, "columns");
            out.push('[');
            for (i, c) in relation.columns.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"name\":");
                string(out, &c.name);
                let _ = write!(
                    out,
                    ",\"type_oid\":{},\"key\":{}}}",
                    c.type_oid.0,
                    c.flags & 1 == 1
                );
            }
            out.push(']');
        }
        SourceChange::Message { message, .. } => {
            key(out, "prefix");
            string(out, &message.prefix);
            key(out, "content");
            match std::str::from_utf8(&message.content) {
                Ok(text) => string(out, text),
                Err(_) => value(out, &Value::Bytea(message.content.clone())),
            }
            let _ = write!(out, ",\"transactional\":{}", message.transactional);
        }
        _ => {}
    }
}

/// The part of a change line that its transaction decides (the same for every change of a
/// batch): from `,"xid":` to the closing brace.
pub fn tx_tail(out: &mut String, batch: &TransactionBatch, tx: &pgcdc_core::model::TxInfo) {
    let _ = write!(
        out,
        ",\"xid\":{},\"commit_lsn\":\"{}\",\"end_lsn\":",
        tx.xid, tx.commit_lsn
    );
    match tx.end_lsn.or(batch.end_lsn) {
        Some(lsn) => {
            let _ = write!(out, "\"{lsn}\"");
        }
        None => out.push_str("null"),
    }
    key(out, "commit_time");
    commit_time(out, tx.commit_time_ns);
    let _ = write!(out, ",\"effective_from\":{}", tx.commit_time_ns);
    if !batch.is_whole() {
        let _ = write!(
            out,
            ",\"chunk\":{{\"index\":{},\"first\":{},\"last\":{}}}",
            batch.chunk_index, batch.first_chunk, batch.last_chunk
        );
    }
    if let Some(origin) = &batch.origin {
        key(out, "origin");
        string(out, origin);
    }
    if let Some(gid) = &batch.gid {
        key(out, "gid");
        string(out, gid);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(val: &Value) -> String {
        let mut s = String::new();
        value(&mut s, val);
        s
    }

    #[test]
    fn strings_escape() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn numbers() {
        for ok in ["0", "-0", "12", "-1.50", "1e+20", "2.5E-3"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "NaN", "Infinity", "1 ", "+1",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
        assert_eq!(
            v(&Value::Numeric(
                "12345678901234567890.1200".parse().unwrap()
            )),
            "12345678901234567890.1200"
        );
        assert_eq!(v(&Value::Numeric(Numeric::NaN)), "\"NaN\"");
        assert_eq!(v(&Value::Numeric(Numeric::NegInfinity)), "\"-Infinity\"");
        assert_eq!(v(&Value::Int8(i64::MIN)), "-9223372036854775808");
        assert_eq!(v(&Value::Float8(f64::NAN)), "\"NaN\"");
        assert_eq!(v(&Value::Float8(f64::INFINITY)), "\"Infinity\"");
        assert_eq!(v(&Value::Float4(1.5)), "1.5");
        let big = v(&Value::Float8(1e300));
        assert!(is_json_number(&big), "{big}");
    }

    #[test]
    fn structured() {
        let j = Json::parse(r#"{"a": [1, 2.50, null], "a": "x"}"#).unwrap();
        assert_eq!(v(&Value::Jsonb(j)), r#"{"a":[1,2.50,null],"a":"x"}"#);
        assert_eq!(
            v(&Value::Bytea(bytes::Bytes::from_static(&[1, 0xab]))),
            r#""\\x01ab""#
        );
        let reg = pgcdc_core::value::TypeRegistry::new();
        let arr = pgcdc_core::value::decode_text(
            pgcdc_core::value::Oid::INT4_ARRAY,
            -1,
            b"{{1,NULL},{3,4}}",
            &reg,
        )
        .unwrap();
        assert_eq!(v(&arr), "[[1,null],[3,4]]");
        let arr = pgcdc_core::value::decode_text(
            pgcdc_core::value::Oid::INT4_ARRAY,
            -1,
            b"[5:6]={1,2}",
            &reg,
        )
        .unwrap();
        assert_eq!(v(&arr), r#"{"lower":[5],"values":[1,2]}"#);
        assert_eq!(v(&Value::Jsonb(Json::Null)), r#"{"$json":null}"#);
        assert_eq!(v(&Value::Null), "null");
        let j = Json::parse(r#"{"$json": 1}"#).unwrap();
        assert_eq!(v(&Value::Json(j)), r#"{"$json":{"$json":1}}"#);
        let j = Json::parse(r#"{"$json": 1, "b": null}"#).unwrap();
        assert_eq!(v(&Value::Json(j)), r#"{"$json":1,"b":null}"#);
    }

    #[test]
    fn times() {
        let ts = Timestamp::from_unix_micros(1_709_194_501_500_000).unwrap();
        assert_eq!(
            v(&Value::TimestampTz(ts)),
            "\"2024-02-29T08:15:01.500000Z\""
        );
        assert_eq!(v(&Value::Timestamp(ts)), "\"2024-02-29T08:15:01.500000\"");
        assert_eq!(v(&Value::TimestampTz(Timestamp::INFINITY)), "\"infinity\"");
        assert_eq!(
            v(&Value::Date(Date::from_ymd(-43, 3, 15).unwrap())),
            "\"-0043-03-15\""
        );
        let mut s = String::new();
        commit_time(&mut s, 1_709_194_501_500_000_123);
        assert_eq!(s, "\"2024-02-29T08:15:01.500000Z\"");
        s.clear();
        commit_time(&mut s, 0);
        assert_eq!(s, "null");
    }
}
