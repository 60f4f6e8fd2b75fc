//! pgcdc's values and changes as Drasi's `ElementValue`s and `SourceChange`s.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use drasi_core::models::{
    Element, ElementMetadata, ElementPropertyMap, ElementReference, ElementValue, SourceChange,
};
use ordered_float::OrderedFloat;
use pgcdc_tokio::pgcdc_core::model::{self, ElementPropertyMap as PgProperties};
use pgcdc_tokio::pgcdc_core::value::{Interval, Json, Numeric, Range, Value};

/// How `numeric` values become Drasi values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumericMapping {
    /// `Integer` when the value has no fractional digits and fits an `i64`, `Float`
    /// otherwise (the nearest `f64`); NaN and ±Infinity become `String`s.
    #[default]
    Auto,
    /// Every numeric is a `String` with every digit (`"123456789012345678901234567890.5"`).
    String,
}

/// How pgcdc's changes are mapped to Drasi's (see the crate docs for the table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MappingOptions {
    /// `numeric` values: [`NumericMapping::Auto`] by default.
    pub numeric: NumericMapping,
    /// `json`/`jsonb` as their text instead of `Object`/`List` values.
    pub json_as_text: bool,
    /// Labels `schema.table` for tables outside `public` (pgcdc's form) instead of Drasi's
    /// bare table name (`drasi_lib::schema::normalize_table_label`).
    pub qualified_labels: bool,
    /// A TRUNCATE becomes a `Delete` of every id the source has seen for the table (in the
    /// stream and in its bootstraps). Off by default: it keeps one id per live row in memory.
    pub truncate_as_deletes: bool,
}

/// The 16-byte source position of a change: its transaction's commit LSN, then its offset
/// in the transaction, both big-endian (drasi-source-postgres's format). Positions compare
/// as bytes in stream order.
pub fn position(commit_lsn: u64, offset: u64) -> Bytes {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&commit_lsn.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    Bytes::from(b)
}

/// The commit LSN of a 16-byte source position.
///
/// # Errors
///
/// The position is not 16 bytes long.
pub fn position_lsn(position: &[u8]) -> anyhow::Result<u64> {
    let lsn: [u8; 8] = position
        .get(..8)
        .filter(|_| position.len() == 16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "a PostgreSQL source position is 16 bytes (commit LSN, offset), got {}",
                position.len()
            )
        })?;
    Ok(u64::from_be_bytes(lsn))
}

/// The position a bootstrap from a snapshot exported at `consistent_point` returns: every
/// change of a transaction committed at or after the consistent point is past it, every
/// change before it is not (`[consistent_point - 1 | u64::MAX]`).
pub fn snapshot_boundary(consistent_point: u64) -> Bytes {
    position(consistent_point.saturating_sub(1), u64::MAX)
}

impl MappingOptions {
    /// The Drasi label of a pgcdc label (`table`, or `schema.table` outside `public`).
    pub fn label(&self, pg_label: &str) -> Arc<str> {
        if self.qualified_labels {
            Arc::from(pg_label)
        } else {
            Arc::from(drasi_lib::schema::normalize_table_label(pg_label))
        }
    }

    /// A pgcdc value as a Drasi value.
    pub fn value(&self, v: &Value) -> ElementValue {
        match v {
            Value::Null => ElementValue::Null,
            Value::Bool(b) => ElementValue::Bool(*b),
            Value::Int2(i) => ElementValue::Integer(i64::from(*i)),
            Value::Int4(i) => ElementValue::Integer(i64::from(*i)),
            Value::Int8(i) => ElementValue::Integer(*i),
            Value::Oid(i) => ElementValue::Integer(i64::from(*i)),
            Value::Float4(f) => float(f64::from(*f)),
            Value::Float8(f) => float(*f),
            Value::Numeric(n) => self.numeric(n),
            Value::Text(t) => ElementValue::String(Arc::from(t.as_str())),
            Value::Timestamp(ts) => ts
                .to_unix_micros()
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map_or_else(|| text(v), |d| ElementValue::LocalDateTime(d.naive_utc())),
            Value::TimestampTz(ts) => ts
                .to_unix_micros()
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map_or_else(
                    || text(v),
                    |d| ElementValue::ZonedDateTime(d.fixed_offset()),
                ),
            Value::Interval(i) => ElementValue::String(Arc::from(iso_interval(i))),
            Value::Json(j) | Value::Jsonb(j) => {
                if self.json_as_text {
                    text(v)
                } else {
                    json(j)
                }
            }
            Value::Bytea(b) => ElementValue::String(Arc::from(
                base64::engine::general_purpose::STANDARD.encode(b),
            )),
            Value::Array(a) => {
                let elements: Vec<ElementValue> =
                    a.elements.iter().map(|e| self.value(e)).collect();
                nest(&a.dims, elements)
            }
            Value::Range(r) => self.range(r),
            Value::Multirange(rs) => ElementValue::List(rs.iter().map(|r| self.range(r)).collect()),
            _ => text(v),
        }
    }

    fn numeric(&self, n: &Numeric) -> ElementValue {
        match (self.numeric, n) {
            (NumericMapping::Auto, Numeric::Finite(_)) => {
                if n.scale() == Some(0)
                    && let Some(i) = n.to_i128().and_then(|i| i64::try_from(i).ok())
                {
                    return ElementValue::Integer(i);
                }
                float(n.to_f64())
            }
            _ => ElementValue::String(Arc::from(n.to_string())),
        }
    }

    fn range(&self, r: &Range) -> ElementValue {
        let mut m = ElementPropertyMap::new();
        let bound =
            |b: &Option<Box<Value>>| b.as_deref().map_or(ElementValue::Null, |v| self.value(v));
        m.insert("lower", bound(&r.lower));
        m.insert("upper", bound(&r.upper));
        m.insert("lower_inc", ElementValue::Bool(r.lower_inc));
        m.insert("upper_inc", ElementValue::Bool(r.upper_inc));
        m.insert("empty", ElementValue::Bool(r.empty));
        ElementValue::Object(m)
    }

    /// A row's properties.
    pub fn properties(&self, p: &PgProperties) -> ElementPropertyMap {
        let mut m = ElementPropertyMap::new();
        for (k, v) in p.iter() {
            m.insert(k, self.value(v));
        }
        m
    }

    fn metadata(&self, m: &model::ElementMetadata, effective_from: u64) -> ElementMetadata {
        let labels: Vec<Arc<str>> = m.labels.iter().map(|l| self.label(l)).collect();
        ElementMetadata {
            reference: ElementReference {
                source_id: Arc::clone(&m.reference.source_id),
                element_id: Arc::clone(&m.reference.element_id),
            },
            labels: Arc::from(labels),
            effective_from,
        }
    }

    fn node(&self, e: &model::Element, effective_from: u64) -> Element {
        Element::Node {
            metadata: self.metadata(e.metadata(), effective_from),
            properties: self.properties(e.properties()),
        }
    }
}

fn text(v: &Value) -> ElementValue {
    ElementValue::String(Arc::from(v.to_string()))
}

fn float(f: f64) -> ElementValue {
    if f.is_finite() {
        ElementValue::Float(OrderedFloat(f))
    } else if f.is_nan() {
        ElementValue::String(Arc::from("NaN"))
    } else if f > 0.0 {
        ElementValue::String(Arc::from("Infinity"))
    } else {
        ElementValue::String(Arc::from("-Infinity"))
    }
}

fn json(j: &Json) -> ElementValue {
    match j {
        Json::Null => ElementValue::Null,
        Json::Bool(b) => ElementValue::Bool(*b),
        Json::Number(n) => match n.parse::<i64>() {
            Ok(i) => ElementValue::Integer(i),
            Err(_) => match n.parse::<f64>() {
                Ok(f) if f.is_finite() => ElementValue::Float(OrderedFloat(f)),
                _ => ElementValue::String(Arc::from(n.as_str())),
            },
        },
        Json::String(s) => ElementValue::String(Arc::from(s.as_str())),
        Json::Array(a) => ElementValue::List(a.iter().map(json).collect()),
        Json::Object(members) => {
            let mut m = ElementPropertyMap::new();
            for (k, v) in members {
                m.insert(k, json(v));
            }
            ElementValue::Object(m)
        }
    }
}

/// A flat array's elements as nested lists, one level per dimension.
fn nest(
    dims: &[pgcdc_tokio::pgcdc_core::value::ArrayDim],
    elements: Vec<ElementValue>,
) -> ElementValue {
    if dims.len() <= 1 {
        return ElementValue::List(elements);
    }
    // Split from the innermost dimension outwards.
    let mut level = elements;
    for d in dims.iter().skip(1).rev() {
        let len = (d.len as usize).max(1);
        let mut grouped = Vec::with_capacity(level.len() / len + 1);
        let mut it = level.into_iter().peekable();
        while it.peek().is_some() {
            grouped.push(ElementValue::List(it.by_ref().take(len).collect()));
        }
        level = grouped;
    }
    ElementValue::List(level)
}

/// An interval as an ISO 8601 duration (`P1Y2M3DT4H5M6.789S`, `PT0S`), the form Cypher's
/// `duration()` reads; negative parts keep their sign (`P-1D`), which `duration()` does
/// not read. PostgreSQL 17's ±infinity stays `infinity`/`-infinity`.
pub fn iso_interval(i: &Interval) -> String {
    if *i == Interval::INFINITY {
        return "infinity".to_owned();
    }
    if *i == Interval::NEG_INFINITY {
        return "-infinity".to_owned();
    }
    let mut s = String::from("P");
    let (years, months) = (i.months / 12, i.months % 12);
    if years != 0 {
        let _ = write!(s, "{years}Y");
    }
    if months != 0 {
        let _ = write!(s, "{months}M");
    }
    if i.days != 0 {
        let _ = write!(s, "{}D", i.days);
    }
    if i.micros != 0 {
        s.push('T');
        let neg = i.micros < 0;
        let us = i.micros.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        let (h, m, sec, frac) = (
            us / 3_600_000_000,
            us / 60_000_000 % 60,
            us / 1_000_000 % 60,
            us % 1_000_000,
        );
        if h != 0 {
            let _ = write!(s, "{sign}{h}H");
        }
        if m != 0 {
            let _ = write!(s, "{sign}{m}M");
        }
        if sec != 0 || frac != 0 {
            let _ = write!(s, "{sign}{sec}");
            if frac != 0 {
                let f = format!("{frac:06}");
                let _ = write!(s, ".{}", f.trim_end_matches('0'));
            }
            s.push('S');
        }
    }
    if s == "P" {
        s.push_str("T0S");
    }
    s
}

/// The ids seen per pgcdc label, for TRUNCATE as deletes.
#[derive(Debug, Default)]
pub(crate) struct KnownIds(HashMap<Arc<str>, HashSet<Arc<str>>>);

impl KnownIds {
    pub(crate) fn insert(&mut self, m: &model::ElementMetadata) {
        if let Some(label) = m.labels.first() {
            self.0
                .entry(Arc::clone(label))
                .or_default()
                .insert(Arc::clone(&m.reference.element_id));
        }
    }

    fn remove(&mut self, m: &model::ElementMetadata) {
        if let Some(ids) = m.labels.first().and_then(|l| self.0.get_mut(l)) {
            ids.remove(&m.reference.element_id);
        }
    }

    fn take(&mut self, label: &str) -> HashSet<Arc<str>> {
        self.0.remove(label).unwrap_or_default()
    }
}

/// What one pgcdc change becomes.
pub(crate) enum Mapped {
    /// Drasi changes (several for a TRUNCATE as deletes).
    Changes(Vec<SourceChange>),
    /// Nothing for Drasi (a schema change, a message, a TRUNCATE when not mapped): logged.
    Skipped,
}

impl MappingOptions {
    /// Maps one change; `now_ms` stands in for a commit time the change does not have
    /// (bootstrap rows).
    pub(crate) fn change(
        &self,
        source_id: &str,
        c: &model::SourceChange,
        known: Option<&mut KnownIds>,
        now_ms: u64,
    ) -> Mapped {
        let ms = |tx: &model::TxInfo| match tx.commit_time_ns / 1_000_000 {
            0 => now_ms,
            ms => ms,
        };
        match c {
            model::SourceChange::Insert { element, tx, .. } => {
                if let Some(k) = known {
                    k.insert(element.metadata());
                }
                Mapped::Changes(vec![SourceChange::Insert {
                    element: self.node(element, ms(tx)),
                }])
            }
            model::SourceChange::Update { element, tx, .. } => {
                if let Some(k) = known {
                    k.insert(element.metadata());
                }
                Mapped::Changes(vec![SourceChange::Update {
                    element: self.node(element, ms(tx)),
                }])
            }
            model::SourceChange::Delete { metadata, tx, .. } => {
                if let Some(k) = known {
                    k.remove(metadata);
                }
                Mapped::Changes(vec![SourceChange::Delete {
                    metadata: self.metadata(metadata, ms(tx)),
                }])
            }
            model::SourceChange::Truncate { labels, tx, .. } => {
                let Some(k) = known.filter(|_| self.truncate_as_deletes) else {
                    tracing::warn!(
                        source = source_id,
                        tables = ?labels,
                        "TRUNCATE is not applied to the queries (enable truncate_as_deletes to turn it into deletes)"
                    );
                    return Mapped::Skipped;
                };
                let mut out = Vec::new();
                for l in labels {
                    let drasi_label = self.label(l);
                    let mut ids: Vec<Arc<str>> = k.take(l).into_iter().collect();
                    ids.sort();
                    tracing::info!(source = source_id, table = %l, deletes = ids.len(), "TRUNCATE as deletes");
                    out.extend(ids.into_iter().map(|id| SourceChange::Delete {
                        metadata: ElementMetadata {
                            reference: ElementReference {
                                source_id: Arc::from(source_id),
                                element_id: id,
                            },
                            labels: Arc::from(vec![Arc::clone(&drasi_label)]),
                            effective_from: ms(tx),
                        },
                    }));
                }
                Mapped::Changes(out)
            }
            model::SourceChange::SchemaChange { label, diff, .. } => {
                tracing::info!(source = source_id, table = %label, ?diff, "schema change");
                Mapped::Skipped
            }
            model::SourceChange::Message { message, .. } => {
                tracing::info!(
                    source = source_id,
                    prefix = %message.prefix,
                    bytes = message.content.len(),
                    transactional = message.transactional,
                    "logical message (not a graph change)"
                );
                Mapped::Skipped
            }
            other => {
                tracing::debug!(source = source_id, kind = other.kind(), "change not mapped");
                Mapped::Skipped
            }
        }
    }
}

/// The Drasi label a Drasi change carries.
pub(crate) fn change_label(c: &SourceChange) -> Option<&str> {
    let m = match c {
        SourceChange::Insert { element } | SourceChange::Update { element } => {
            element.get_metadata()
        }
        SourceChange::Delete { metadata } => metadata,
        SourceChange::Future { .. } => return None,
    };
    m.labels.first().map(|l| &**l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgcdc_tokio::pgcdc_core::value::{Array, ArrayDim, Oid, Timestamp};

    fn s(v: &ElementValue) -> &str {
        match v {
            ElementValue::String(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn positions_order_as_bytes() {
        let a = position(100, 0);
        let b = position(100, 1);
        let c = position(101, 0);
        assert!(a < b && b < c);
        assert_eq!(position_lsn(&c).unwrap(), 101);
        assert!(position_lsn(&[0; 8]).is_err());
        // The boundary of a snapshot at 101: the transaction committed at 101 is after it,
        // the one at 100 is not.
        let boundary = snapshot_boundary(101);
        assert!(position(101, 0) > boundary);
        assert!(position(100, u64::MAX - 1) < boundary);
    }

    #[test]
    fn floats_never_nan() {
        let o = MappingOptions::default();
        assert_eq!(
            o.value(&Value::Float8(1.5)),
            ElementValue::Float(OrderedFloat(1.5))
        );
        assert_eq!(s(&o.value(&Value::Float8(f64::NAN))), "NaN");
        assert_eq!(s(&o.value(&Value::Float4(f32::INFINITY))), "Infinity");
        assert_eq!(s(&o.value(&Value::Float8(f64::NEG_INFINITY))), "-Infinity");
    }

    #[test]
    fn numerics() {
        let auto = MappingOptions::default();
        let exact = MappingOptions {
            numeric: NumericMapping::String,
            ..Default::default()
        };
        let n = |t: &str| Value::Numeric(t.parse().unwrap());
        assert_eq!(auto.value(&n("42")), ElementValue::Integer(42));
        assert_eq!(
            auto.value(&n("1.50")),
            ElementValue::Float(OrderedFloat(1.5))
        );
        let big = "123456789012345678901234567890";
        assert_eq!(
            auto.value(&n(big)),
            ElementValue::Float(OrderedFloat(1.2345678901234568e29))
        );
        assert_eq!(s(&exact.value(&n(big))), big);
        assert_eq!(s(&exact.value(&n("1.50"))), "1.50");
        assert_eq!(s(&auto.value(&n("NaN"))), "NaN");
    }

    #[test]
    fn timestamps() {
        let o = MappingOptions::default();
        // 2000-01-01 00:00:01 UTC
        match o.value(&Value::Timestamp(Timestamp(1_000_000))) {
            ElementValue::LocalDateTime(d) => assert_eq!(d.to_string(), "2000-01-01 00:00:01"),
            other => panic!("{other:?}"),
        }
        match o.value(&Value::TimestampTz(Timestamp(0))) {
            ElementValue::ZonedDateTime(d) => {
                assert_eq!(d.to_rfc3339(), "2000-01-01T00:00:00+00:00")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s(&o.value(&Value::Timestamp(Timestamp(i64::MAX)))),
            "infinity"
        );
    }

    #[test]
    fn intervals_are_iso() {
        let iv = |months, days, micros| Interval {
            months,
            days,
            micros,
        };
        assert_eq!(
            iso_interval(&iv(14, 3, 4 * 3_600_000_000 + 5 * 60_000_000 + 6_789_000)),
            "P1Y2M3DT4H5M6.789S"
        );
        assert_eq!(iso_interval(&iv(0, 0, 0)), "PT0S");
        assert_eq!(iso_interval(&iv(0, -1, 0)), "P-1D");
        assert_eq!(iso_interval(&iv(0, 0, 30_000_000)), "PT30S");
    }

    #[test]
    fn arrays_json_ranges_bytea() {
        let o = MappingOptions::default();
        let flat = Array::from_elements(Oid(23), vec![Value::Int4(1), Value::Null]);
        assert_eq!(
            o.value(&Value::Array(Box::new(flat))),
            ElementValue::List(vec![ElementValue::Integer(1), ElementValue::Null])
        );
        let two_d = Array {
            element_type: Oid(23),
            dims: vec![
                ArrayDim {
                    lower_bound: 1,
                    len: 2,
                },
                ArrayDim {
                    lower_bound: 1,
                    len: 2,
                },
            ],
            elements: (1..=4).map(Value::Int4).collect(),
        };
        assert_eq!(
            o.value(&Value::Array(Box::new(two_d))),
            ElementValue::List(vec![
                ElementValue::List(vec![ElementValue::Integer(1), ElementValue::Integer(2)]),
                ElementValue::List(vec![ElementValue::Integer(3), ElementValue::Integer(4)]),
            ])
        );
        let j = Json::Object(vec![
            (
                "a".into(),
                Json::Array(vec![Json::Number("1".into()), Json::Number("2.5".into())]),
            ),
            ("b".into(), Json::Null),
        ]);
        match o.value(&Value::Jsonb(j.clone())) {
            ElementValue::Object(m) => {
                assert_eq!(
                    m.get("a"),
                    Some(&ElementValue::List(vec![
                        ElementValue::Integer(1),
                        ElementValue::Float(OrderedFloat(2.5))
                    ]))
                );
            }
            other => panic!("{other:?}"),
        }
        let text_json = MappingOptions {
            json_as_text: true,
            ..Default::default()
        };
        assert_eq!(
            s(&text_json.value(&Value::Jsonb(j))),
            r#"{"a": [1, 2.5], "b": null}"#
        );
        let r = Range {
            lower: Some(Box::new(Value::Int4(1))),
            upper: Some(Box::new(Value::Int4(5))),
            lower_inc: true,
            upper_inc: false,
            empty: false,
        };
        match o.value(&Value::Range(r)) {
            ElementValue::Object(m) => {
                assert_eq!(m.get("lower"), Some(&ElementValue::Integer(1)));
                assert_eq!(m.get("upper_inc"), Some(&ElementValue::Bool(false)));
                assert_eq!(m.get("empty"), Some(&ElementValue::Bool(false)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s(&o.value(&Value::Bytea(Bytes::from_static(b"\x00\xff")))),
            "AP8="
        );
    }

    #[test]
    fn labels() {
        let bare = MappingOptions::default();
        let qualified = MappingOptions {
            qualified_labels: true,
            ..Default::default()
        };
        assert_eq!(&*bare.label("inventory.items"), "items");
        assert_eq!(&*bare.label("users"), "users");
        assert_eq!(&*qualified.label("inventory.items"), "inventory.items");
    }
}
