//! The snapshot assembler gives exactly the stream's inserts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;

use super::super::{SnapshotAssembler, SnapshotError, SnapshotEvent, SnapshotTable, SnapshotType};
use super::{col, table};
use crate::assemble::{KeyConfig, Pipeline, PipelineConfig, PipelineEvent, TransactionBatch};
use crate::lsn::Lsn;
use crate::model::{ElementPropertyMap, SourceChange};
use crate::pgoutput::{ColumnValue, Oid, PgOutputMessage, ReplicaIdentity, TupleData, Xid, encode};

const CP: Lsn = Lsn(0x1_0000_2000);
/// 2023-11-14T22:13:20.123456789Z: sub-microsecond digits that pgoutput times cannot hold.
const TIME_NS: u64 = 1_700_000_000_123_456_789;

type Row<'a> = Vec<Option<&'a str>>;

/// What a consumer compares: element id, labels, properties.
#[derive(Debug, PartialEq)]
struct Insert {
    id: String,
    labels: Vec<String>,
    properties: ElementPropertyMap,
}

fn inserts(batches: &[TransactionBatch]) -> Vec<Insert> {
    batches
        .iter()
        .flat_map(|b| &b.changes)
        .map(|c| match c {
            SourceChange::Insert {
                element,
                unchanged_toast,
                ..
            } => {
                assert!(unchanged_toast.is_empty());
                let m = element.metadata();
                Insert {
                    id: m.reference.element_id.to_string(),
                    labels: m.labels.iter().map(|l| l.to_string()).collect(),
                    properties: element.properties().clone(),
                }
            }
            other => panic!("not an insert: {other:?}"),
        })
        .collect()
}

/// A counter as the id generator, so two pipelines generate the same ids.
fn counter() -> impl FnMut() -> u128 + Send + 'static {
    let n = Arc::new(AtomicU64::new(0));
    move || u128::from(n.fetch_add(1, Ordering::Relaxed)) * 0x1_0000_0001
}

/// The stream: what a walsender sends for one transaction inserting `rows`.
fn stream(config: &PipelineConfig, t: &SnapshotTable, rows: &[Row<'_>]) -> Vec<TransactionBatch> {
    let mut p = Pipeline::new("src", config.clone()).with_id_generator(counter());
    if !t.primary_key.is_empty() {
        p.set_primary_key(t.relation.oid, t.primary_key.clone());
    }
    let mut msgs = vec![PgOutputMessage::Begin {
        final_lsn: Lsn(0x5000),
        commit_time: 12345,
        xid: Xid(777),
    }];
    for ty in &t.types {
        msgs.push(PgOutputMessage::Type {
            xid: None,
            oid: ty.oid,
            namespace: ty.namespace.clone(),
            name: ty.name.clone(),
        });
    }
    msgs.push(PgOutputMessage::Relation(t.relation.clone()));
    for r in rows {
        msgs.push(PgOutputMessage::Insert {
            xid: None,
            rel: t.relation.oid,
            new: TupleData::from_values(r.iter().map(|v| match v {
                Some(s) => ColumnValue::Text(s.as_bytes()),
                None => ColumnValue::Null,
            }))
            .unwrap(),
        });
    }
    msgs.push(PgOutputMessage::Commit {
        flags: 0,
        commit_lsn: Lsn(0x5000),
        end_lsn: Lsn(0x5030),
        commit_time: 12345,
    });
    let mut out = Vec::new();
    for m in &msgs {
        let mut buf = BytesMut::new();
        encode::message(m, &mut buf).unwrap();
        p.handle_xlog(&buf.freeze(), Lsn(0x5000), Lsn(0x5000))
            .unwrap();
        while let Some(e) = p.poll_event() {
            if let PipelineEvent::Transaction(b) = e {
                out.push(b);
            }
        }
    }
    out
}

/// A row as `COPY … TO STDOUT` writes it.
fn copy_line(row: &[Option<&str>]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        match v {
            None => line.extend_from_slice(b"\\N"),
            Some(s) => {
                for b in s.bytes() {
                    match b {
                        b'\\' => line.extend_from_slice(b"\\\\"),
                        b'\t' => line.extend_from_slice(b"\\t"),
                        b'\n' => line.extend_from_slice(b"\\n"),
                        b'\r' => line.extend_from_slice(b"\\r"),
                        b => line.push(b),
                    }
                }
            }
        }
    }
    line.push(b'\n');
    line
}

fn snapshot(
    config: &PipelineConfig,
    t: &SnapshotTable,
    rows: &[Row<'_>],
) -> (Vec<TransactionBatch>, Vec<String>) {
    let mut asm =
        SnapshotAssembler::new("src", config.clone(), CP, TIME_NS).with_id_generator(counter());
    let mut batches = Vec::new();
    let mut warnings = Vec::new();
    let mut drain = |asm: &mut SnapshotAssembler| {
        while let Some(e) = asm.poll_event() {
            match e {
                SnapshotEvent::Batch(b) => batches.push(b),
                SnapshotEvent::Warning(w) => warnings.push(w),
            }
        }
    };
    asm.handle_part_start(t).unwrap();
    drain(&mut asm);
    for r in rows {
        asm.handle_row(&copy_line(r)).unwrap();
        drain(&mut asm);
    }
    asm.handle_part_end().unwrap();
    drain(&mut asm);
    assert_eq!(asm.rows(), rows.len() as u64);
    (batches, warnings)
}

/// The next batch, skipping warnings.
fn next_batch(asm: &mut SnapshotAssembler) -> Option<TransactionBatch> {
    loop {
        if let SnapshotEvent::Batch(b) = asm.poll_event()? {
            return Some(b);
        }
    }
}

/// The next warning, skipping batches.
fn next_warning(asm: &mut SnapshotAssembler) -> Option<String> {
    loop {
        if let SnapshotEvent::Warning(w) = asm.poll_event()? {
            return Some(w);
        }
    }
}

fn assert_same(config: &PipelineConfig, t: &SnapshotTable, rows: &[Row<'_>]) -> Vec<Insert> {
    let expected = inserts(&stream(config, t, rows));
    let (batches, _) = snapshot(config, t, rows);
    let got = inserts(&batches);
    assert_eq!(got.len(), rows.len());
    assert_eq!(got, expected);
    for b in &batches {
        assert_eq!(b.xid, Xid(0));
        assert_eq!(b.commit_lsn, CP);
        assert_eq!(b.commit_time_ns, TIME_NS);
        assert_eq!(b.end_lsn, None, "nothing to acknowledge");
        for c in &b.changes {
            assert_eq!(c.tx().end_lsn, None);
            assert_eq!(c.effective_from(), TIME_NS);
            assert_eq!(c.metadata().unwrap().effective_from, TIME_NS);
            assert_eq!(c.tx().commit_lsn, CP);
        }
    }
    got
}

#[test]
fn primary_key_escaping_and_values_match_the_stream() {
    let t = table(
        16384,
        "public",
        "users",
        ReplicaIdentity::Default,
        vec![
            col("id", 25, true),
            col("name", 25, false),
            col("n", 1700, false),
            col("at", 1184, false),
            col("tags", 1009, false),
            col("doc", 3802, false),
            col("bin", 17, false),
            col("ok", 16, false),
        ],
        &["id"],
    );
    let rows: Vec<Row<'_>> = vec![
        vec![
            Some("a_b:c\\d"),
            Some("tab\there\nnew line \\ back"),
            Some("12345678901234567890.000100"),
            Some("2024-02-29 08:15:01.5+00"),
            Some("{a,\"b c\",NULL}"),
            Some("{\"k\": [1, 2.50]}"),
            Some("\\x00ff"),
            Some("t"),
        ],
        vec![Some("2"), None, None, None, None, None, None, None],
        vec![
            Some(""),
            Some(""),
            Some("NaN"),
            Some("infinity"),
            Some("{}"),
            Some("null"),
            Some("\\x"),
            Some("f"),
        ],
    ];
    let got = assert_same(&PipelineConfig::default(), &t, &rows);
    assert_eq!(got[0].id, "users:a\\_b\\:c\\\\d");
    assert_eq!(got[0].labels, ["users"]);
    assert_eq!(
        got[1].properties.get("name"),
        Some(&crate::value::Value::Null)
    );
}

#[test]
fn composite_keys_schemas_identity_and_configured_keys_match_the_stream() {
    // Composite primary key outside public.
    let mut t = table(
        16400,
        "app",
        "order_items",
        ReplicaIdentity::Default,
        vec![
            col("order_id", 20, true),
            col("sku", 25, true),
            col("qty", 23, false),
        ],
        &["order_id", "sku"],
    );
    let rows: Vec<Row<'_>> = vec![
        vec![Some("1"), Some("a_b"), Some("3")],
        vec![Some("2"), Some("x:y"), None],
    ];
    let config = PipelineConfig::default();
    let got = assert_same(&config, &t, &rows);
    assert_eq!(got[0].id, "app.order_items:1_a\\_b");
    assert_eq!(got[1].labels, ["app.order_items"]);

    // A configured key wins over the primary key.
    let keyed = config
        .clone()
        .with_keys(KeyConfig::new().with_table("app.order_items", ["sku"]));
    let got = assert_same(&keyed, &t, &rows);
    assert_eq!(got[1].id, "app.order_items:x\\:y");

    // No primary key: the replica-identity index's columns.
    t.primary_key.clear();
    t.relation.replica_identity = ReplicaIdentity::Index;
    t.relation.columns = vec![
        col("order_id", 20, false),
        col("sku", 25, true),
        col("qty", 23, false),
    ];
    let got = assert_same(&config, &t, &rows);
    assert_eq!(got[0].id, "app.order_items:a\\_b");
}

#[test]
fn tables_without_a_key_get_generated_ids_and_a_warning() {
    let t = table(
        16500,
        "public",
        "log",
        ReplicaIdentity::Full,
        vec![col("msg", 25, true), col("at", 1114, true)],
        &[],
    );
    let rows: Vec<Row<'_>> = vec![
        vec![Some("one"), Some("2024-01-01 00:00:00")],
        vec![Some("two"), None],
    ];
    let got = assert_same(&PipelineConfig::default(), &t, &rows);
    assert!(got[0].id.starts_with("log:"));
    assert_ne!(got[0].id, got[1].id);
    let (_, warnings) = snapshot(&PipelineConfig::default(), &t, &rows);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("table log has no element key")),
        "{warnings:?}"
    );
}

#[test]
fn user_types_come_through_type_messages() {
    let mut t = table(
        16600,
        "public",
        "moods",
        ReplicaIdentity::Default,
        vec![
            col("id", 23, true),
            col("m", 16390, false),
            col("ms", 16389, false),
            col("d", 16395, false),
        ],
        &["id"],
    );
    t.types = vec![
        SnapshotType {
            oid: Oid(16390),
            namespace: "public".into(),
            name: "mood".into(),
        },
        SnapshotType {
            oid: Oid(16389),
            namespace: "public".into(),
            name: "_mood".into(),
        },
        // A domain over int4: pgoutput names the base type.
        SnapshotType {
            oid: Oid(16395),
            namespace: String::new(),
            name: "int4".into(),
        },
    ];
    let rows: Vec<Row<'_>> = vec![vec![
        Some("1"),
        Some("happy"),
        Some("{happy,sad}"),
        Some("42"),
    ]];
    let got = assert_same(&PipelineConfig::default(), &t, &rows);
    assert_eq!(
        got[0].properties.get("d"),
        Some(&crate::value::Value::Int4(42))
    );
}

#[test]
fn large_parts_are_chunked_like_transactions() {
    let t = table(
        16700,
        "public",
        "t",
        ReplicaIdentity::Default,
        vec![col("id", 23, true)],
        &["id"],
    );
    let rows: Vec<Row<'_>> = (0..5)
        .map(|i| vec![Some(["0", "1", "2", "3", "4"][i])])
        .collect();
    let config = PipelineConfig::default().with_max_batch_changes(2);
    let (batches, _) = snapshot(&config, &t, &rows);
    let shape: Vec<(usize, bool, bool, u32, Option<Lsn>)> = batches
        .iter()
        .map(|b| {
            (
                b.changes.len(),
                b.first_chunk,
                b.last_chunk,
                b.chunk_index,
                b.end_lsn,
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (2, true, false, 0, None),
            (2, false, false, 1, None),
            (1, false, true, 2, None),
        ]
    );
    // Bootstrap rows precede the stream: nothing to acknowledge.
    assert_eq!(batches[2].ack_lsn(), None);
    // Chunks come out while rows are pushed, not at the end.
    let mut asm = SnapshotAssembler::new("src", config, CP, TIME_NS);
    asm.handle_part_start(&t).unwrap();
    for r in &rows[..3] {
        asm.handle_row(&copy_line(r)).unwrap();
    }
    assert_eq!(next_batch(&mut asm).map(|b| b.changes.len()), Some(2));
    assert!(next_batch(&mut asm).is_none());
    asm.handle_part_end().unwrap();
    let last = next_batch(&mut asm).unwrap();
    assert!(last.last_chunk);
    assert_eq!(last.changes.len(), 1);
    // An empty part emits nothing.
    asm.handle_part_start(&t).unwrap();
    asm.handle_part_end().unwrap();
    assert!(next_batch(&mut asm).is_none());
    assert_eq!(asm.rows(), 3);
}

#[test]
fn several_parts_and_tables_in_one_assembler() {
    let a = table(
        1,
        "public",
        "a",
        ReplicaIdentity::Default,
        vec![col("id", 23, true)],
        &["id"],
    );
    let b = table(
        2,
        "s",
        "b",
        ReplicaIdentity::Default,
        vec![col("k", 25, true)],
        &["k"],
    );
    let mut asm = SnapshotAssembler::new("src", PipelineConfig::default(), CP, TIME_NS);
    for (t, line) in [(&a, "1\n"), (&b, "x\n"), (&a, "2\n")] {
        asm.handle_part_start(t).unwrap();
        asm.handle_row(line.as_bytes()).unwrap();
        asm.handle_part_end().unwrap();
    }
    let batches: Vec<_> = std::iter::from_fn(|| next_batch(&mut asm)).collect();
    assert_eq!(batches.len(), 3);
    let ids: Vec<String> = inserts(&batches).into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["a:1", "s.b:x", "a:2"]);
    assert!(batches.iter().all(|b| b.is_whole() && b.changes.len() == 1));
    assert!(next_warning(&mut asm).is_none());
}

#[test]
fn misuse_and_bad_rows_are_errors_naming_table_row_and_column() {
    let t = table(
        3,
        "app",
        "t",
        ReplicaIdentity::Default,
        vec![col("id", 23, true), col("name", 25, false)],
        &["id"],
    );
    let mut asm = SnapshotAssembler::new("src", PipelineConfig::default(), CP, TIME_NS);
    assert!(matches!(
        asm.handle_row(b"1\tx\n"),
        Err(SnapshotError::Misuse(_))
    ));
    assert!(matches!(
        asm.handle_part_end(),
        Err(SnapshotError::Misuse(_))
    ));
    asm.handle_part_start(&t).unwrap();
    assert!(matches!(
        asm.handle_part_start(&t),
        Err(SnapshotError::Misuse(_))
    ));
    asm.handle_row(b"1\tx\n").unwrap();
    let e = asm.handle_row(b"2\tx\\").unwrap_err();
    assert_eq!(
        e.to_string(),
        "COPY of table app.t, row 2, column \"name\": column 2 ends inside a backslash escape \
         (byte 3)"
    );
    let e = asm.handle_row(b"3\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "COPY of table app.t, row 3: expected 2 tab-separated columns, found 1"
    );
    // The part goes on after a bad row.
    asm.handle_row(b"4\ty\n").unwrap();
    assert_eq!(asm.rows(), 2);
    assert!(asm.abort_part());
    assert!(!asm.in_part());
    assert!(next_batch(&mut asm).is_none());
    // After an abort, a new part starts cleanly.
    asm.handle_part_start(&t).unwrap();
    asm.handle_row(b"5\tz\n").unwrap();
    asm.handle_part_end().unwrap();
    let b = next_batch(&mut asm).unwrap();
    assert_eq!(inserts(&[b])[0].id, "app.t:5");

    // A name the encoder refuses.
    let mut bad = t.clone();
    bad.relation.name = "a\0b".into();
    let e = asm.handle_part_start(&bad).unwrap_err();
    assert!(matches!(e, SnapshotError::Encode { .. }), "{e:?}");
    assert!(!asm.in_part());
}
