//! Arbitrary text as one line of a JSONL bootstrap file: never a panic; surrounding blanks
//! change nothing; a row read with a computed id reads the same with that id given; and a
//! row that reads, printed back as a JSONL line, reads to the same id, label and property
//! values.
//!
//! Input: one configuration byte (which keys are configured), then the line (bytes that are
//! not UTF-8 replaced).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::KeyConfig;
use pgcdc_core::model::{Element, SourceChange, TxInfo};
use pgcdc_core::pgoutput::Xid;
use pgcdc_core::snapshot::{SnapshotError, jsonl_change};
use pgcdc_core::value::{Json, Value};

const TX: TxInfo = TxInfo {
    xid: Xid(0),
    commit_lsn: Lsn(0x100),
    end_lsn: Some(Lsn(0x101)),
    commit_time_ns: 1_700_000_000_000_000_001,
};

fn keys(cfg: u8) -> KeyConfig {
    let mut k = KeyConfig::new();
    if cfg & 1 != 0 {
        k = k.with_table("t", ["id"]);
    }
    if cfg & 2 != 0 {
        k = k.with_table("app.t", ["b", "a"]);
    }
    if cfg & 4 != 0 {
        k = k.with_table("a", ["a"]);
    }
    if cfg & 8 != 0 {
        k = k.with_table("s.a.b", ["x"]);
    }
    k
}

fn read(line: &str, keys: &KeyConfig) -> Result<Option<SourceChange>, SnapshotError> {
    jsonl_change(line, 3, "fuzz", keys, TX)
}

/// A property value as JSON text.
fn print(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Text(s) => Json::String(s.to_string()).to_string(),
        Value::Int8(i) => i.to_string(),
        Value::Numeric(n) => n.to_string(),
        Value::Json(j) => j.to_string(),
        other => panic!("a JSONL property read as {other:?}"),
    }
}

/// What a property's value must keep through printing: numbers compare by their digits.
fn canonical(v: &Value) -> String {
    match v {
        Value::Int8(_) | Value::Numeric(_) => format!("number {v}"),
        Value::Json(j) => format!("json {j}"),
        other => format!("{other:?}"),
    }
}

fn parts(c: &SourceChange) -> (String, Vec<String>, Vec<(String, String)>) {
    let SourceChange::Insert {
        element,
        unchanged_toast,
        tx,
    } = c
    else {
        panic!("a JSONL row read as {c:?}");
    };
    assert!(unchanged_toast.is_empty());
    assert_eq!(*tx, TX);
    let Element::Node {
        metadata,
        properties,
    } = element
    else {
        panic!("a JSONL row read as {element:?}");
    };
    assert_eq!(&*metadata.reference.source_id, "fuzz");
    assert_eq!(metadata.effective_from, TX.commit_time_ns);
    assert_eq!(metadata.labels.len(), 1);
    (
        metadata.reference.element_id.to_string(),
        metadata.labels.iter().map(|l| l.to_string()).collect(),
        properties
            .iter()
            .map(|(k, v)| (k.to_string(), canonical(v)))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let line = String::from_utf8_lossy(rest);
    let keys = keys(cfg);
    let result = read(&line, &keys);
    let padded = format!(" \t{line}\t ");
    let again = read(&padded, &keys);
    match (&result, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("padding changed {result:?} into {again:?}"),
    }
    let change = match result {
        Err(e) => {
            let _ = e.to_string();
            assert!(matches!(e, SnapshotError::Jsonl { line: 3, .. }));
            return;
        }
        Ok(None) => {
            let t = line.trim();
            assert!(t.is_empty() || t.starts_with('#'));
            return;
        }
        Ok(Some(c)) => c,
    };
    let (id, labels, props) = parts(&change);
    assert!(!id.is_empty());

    // With its id given, the same row.
    let text = line.trim();
    let body = text.strip_prefix('{').expect("an object starts with {");
    let with_id = format!("{{\"id\": {}, {body}", Json::String(id.clone()).to_string());
    match read(&with_id, &keys) {
        Ok(Some(c)) => assert_eq!(c, change, "with the id given: {with_id}"),
        other => panic!("with the id given, {with_id} read as {other:?}"),
    }

    // Printed back.
    let Ok(Json::Object(members)) = Json::parse(text) else {
        panic!("a row read from something not a JSON object");
    };
    let table = members
        .iter()
        .rev()
        .find_map(|(k, v)| match (k.as_str(), v) {
            ("table", Json::String(s)) => Some(s.clone()),
            _ => None,
        })
        .expect("a row has a table");
    let SourceChange::Insert { element, .. } = &change else {
        unreachable!();
    };
    let Element::Node { properties, .. } = element else {
        unreachable!();
    };
    let printed_props: Vec<String> = properties
        .iter()
        .map(|(k, v)| format!("{}: {}", Json::String(k.to_string()), print(v)))
        .collect();
    let printed = format!(
        "{{\"table\": {}, \"properties\": {{{}}}, \"id\": {}}}",
        Json::String(table),
        printed_props.join(", "),
        Json::String(id.clone())
    );
    match read(&printed, &KeyConfig::new()) {
        Ok(Some(c)) => assert_eq!(parts(&c), (id, labels, props), "printed as {printed}"),
        other => panic!("printed as {printed}, read as {other:?}"),
    }
});
