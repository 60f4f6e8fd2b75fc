//! The JSONL bootstrap format.

use std::str::FromStr;

use super::super::{SnapshotError, jsonl_change};
use crate::assemble::KeyConfig;
use crate::lsn::Lsn;
use crate::model::{SourceChange, TxInfo};
use crate::pgoutput::Xid;
use crate::value::{Json, Numeric, Value};

const TX: TxInfo = TxInfo {
    xid: Xid(0),
    commit_lsn: Lsn(0x100),
    end_lsn: None,
    commit_time_ns: 1_700_000_000_000_000_001,
};

fn keys() -> KeyConfig {
    KeyConfig::new()
        .with_table("users", ["id"])
        .with_table("app.orders", ["region", "id"])
        .with_table("events", ["at"])
}

fn change(line: &str) -> Result<Option<SourceChange>, SnapshotError> {
    jsonl_change(line, 7, "src", &keys(), TX)
}

fn insert(line: &str) -> (String, Vec<String>, Vec<(String, Value)>) {
    match change(line) {
        Ok(Some(SourceChange::Insert {
            element,
            unchanged_toast,
            tx,
        })) => {
            assert!(unchanged_toast.is_empty());
            assert_eq!(tx, TX);
            let m = element.metadata();
            assert_eq!(&*m.reference.source_id, "src");
            assert_eq!(m.effective_from, TX.commit_time_ns);
            (
                m.reference.element_id.to_string(),
                m.labels.iter().map(|l| l.to_string()).collect(),
                element
                    .properties()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            )
        }
        other => panic!("{line}: {other:?}"),
    }
}

fn num(s: &str) -> Value {
    Value::Numeric(Numeric::from_str(s).unwrap())
}

#[test]
fn skipped_lines() {
    for line in ["", "   ", "\t", "# a comment", "  # indented comment"] {
        assert_eq!(change(line).unwrap(), None, "{line:?}");
    }
}

#[test]
fn values_and_keys() {
    let (id, labels, props) = insert(
        r#"{"table": "users", "properties": {"id": 42, "name": "Ann", "big": 123456789012345678901234567890, "price": 19.90, "e": 1.5e3, "small": -2.5E-3, "ok": true, "none": null, "tags": ["a", 1], "doc": {"k": "v"}}}"#,
    );
    assert_eq!(id, "users:42");
    assert_eq!(labels, ["users"]);
    let expect = [
        ("id", Value::Int8(42)),
        ("name", Value::Text("Ann".into())),
        ("big", num("123456789012345678901234567890")),
        ("price", num("19.90")),
        ("e", num("1500")),
        ("small", num("-0.0025")),
        ("ok", Value::Bool(true)),
        ("none", Value::Null),
        ("tags", Value::Json(Json::parse(r#"["a", 1]"#).unwrap())),
        ("doc", Value::Json(Json::parse(r#"{"k": "v"}"#).unwrap())),
    ];
    assert_eq!(
        props,
        expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Vec<_>>()
    );
    // Exponents keep every digit: scale from the mantissa.
    let (_, _, props) = insert(
        r#"{"table": "x", "properties": {"a": 1.50e1, "b": 2e0, "c": -0, "d": 9223372036854775808}, "id": "x:1"}"#,
    );
    assert_eq!(
        props.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        [
            num("15.0"),
            num("2"),
            Value::Int8(0),
            num("9223372036854775808")
        ]
    );

    // Composite configured key outside public, escaped as the stream escapes.
    let (id, labels, _) = insert(
        r#"{"table": "app.orders", "properties": {"id": "a_b", "region": "eu:west", "x": 1}}"#,
    );
    assert_eq!(id, "app.orders:eu\\:west_a\\_b");
    assert_eq!(labels, ["app.orders"]);
    // public.users is labelled users and finds the key configured for users.
    let (id, labels, _) = insert(r#"{"table": "public.users", "properties": {"id": "7"}}"#);
    assert_eq!((id.as_str(), labels), ("users:7", vec!["users".to_owned()]));
    // A bare configured name applies in any schema (as KeyConfig does); NULL and booleans
    // print as PostgreSQL prints them.
    let (id, _, _) = insert(r#"{"table": "s.events", "properties": {"at": null}}"#);
    assert_eq!(id, "s.events:\\N");
    let (id, _, _) = insert(r#"{"table": "events", "properties": {"at": false}}"#);
    assert_eq!(id, "events:f");
    let (id, _, _) = insert(r#"{"table": "events", "properties": {"at": 1.50}}"#);
    assert_eq!(id, "events:1.50");
    // A quoted part may hold a dot.
    let (id, labels, _) = insert(r#"{"table": "\"my.s\".t", "id": "explicit", "properties": {}}"#);
    assert_eq!(
        (id.as_str(), labels),
        ("explicit", vec!["my.s.t".to_owned()])
    );
    // An explicit id is used verbatim; properties may be left out.
    let (id, _, props) = insert(r#"{"id": "users:x_y", "table": "users"}"#);
    assert_eq!(id, "users:x_y");
    assert!(props.is_empty());
    // A repeated property keeps its last value.
    let (_, _, props) = insert(r#"{"table": "users", "properties": {"id": 1, "id": 2}}"#);
    assert_eq!(props, [("id".to_owned(), Value::Int8(2))]);
}

#[test]
fn errors_name_the_line_table_and_column() {
    let err = |line: &str| match change(line) {
        Err(e @ SnapshotError::Jsonl { line: 7, .. }) => e.to_string(),
        other => panic!("{line}: {other:?}"),
    };
    assert!(err("{").starts_with("bootstrap JSONL line 7: invalid JSON"));
    assert!(err("[1]").contains("not a JSON object"));
    assert!(err(r#"{"properties": {}}"#).contains("no \"table\""));
    assert!(err(r#"{"table": 1}"#).contains("\"table\" is not a string"));
    assert!(err(r#"{"table": "a.b.c"}"#).contains("table \"a.b.c\""));
    assert!(err(r#"{"table": ""}"#).contains("table \"\""));
    assert!(err(r#"{"table": "users", "properties": []}"#).contains("not an object"));
    assert!(err(r#"{"table": "users", "id": 5}"#).contains("\"id\""));
    assert!(err(r#"{"table": "users", "id": ""}"#).contains("\"id\""));
    assert!(err(r#"{"table": "users", "propertes": {}}"#).contains("unknown member \"propertes\""));
    let e = err(r#"{"table": "nokey", "properties": {"a": 1}}"#);
    assert!(e.contains("table nokey has no configured key"), "{e}");
    let e = err(r#"{"table": "app.orders", "properties": {"id": 1}}"#);
    assert!(
        e.contains("key column \"region\" of table app.orders is missing"),
        "{e}"
    );
    let e = err(r#"{"table": "users", "properties": {"id": 1, "n": 1e999999}}"#);
    assert!(e.contains("table users, property \"n\""), "{e}");
    assert!(e.contains("beyond the range of numeric"), "{e}");
    assert!(
        err(r#"{"table": "users", "properties": {"n": 1e99999999999999999999}}"#).contains("range")
    );
    assert!(err(r#"{"table": "users", "properties": {"n": 1e-20000}}"#).contains("range"));
}
