//! The bootstrap plan against a real PostgreSQL (started by `pgcdc-testkit`): the table list
//! query describes each table exactly as pgoutput's Relation and Type messages do, and rows
//! copied with the planned `COPY … TO STDOUT` statements and turned into inserts by
//! [`SnapshotAssembler`] equal — ids, labels, every property value — the inserts the stream
//! gives for the same rows (captured with `pg_logical_slot_peek_binary_changes`, pgoutput
//! proto 1, assembled by a [`Pipeline`]).
//!
//! Needs the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`; found through
//! `PGCDC_PG_BIN`, `/usr/lib/postgresql/*/bin` or `PATH`): `apt-get install -y postgresql`.
//! Without them every test fails with the testkit's message saying so.
#![allow(missing_docs)]

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::{KeyConfig, Pipeline, PipelineConfig, PipelineEvent};
use pgcdc_core::model::{ElementPropertyMap, SourceChange};
use pgcdc_core::pgoutput::{Decoder, PgOutputMessage, RelationBody};
use pgcdc_core::snapshot::{
    SnapshotAssembler, SnapshotEvent, SnapshotTable, import_snapshot_sql, parse_tables_rows,
    plan_copies, tables_query,
};
use pgcdc_core::source_config::TableName;
use pgcdc_core::value::Value;
use pgcdc_testkit::Cluster;

mod table_rows;

/// pgcdc's pinned output settings (the decoding functions and COPY run the output functions
/// in the calling session), and synchronous commits so a peek sees what was just written
/// (the testkit server runs `synchronous_commit=off`).
const SESSION: &str = "SET DateStyle = 'ISO'; SET TimeZone = 'UTC'; \
    SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'; \
    SET synchronous_commit = on; ";

const CONSISTENT_POINT: Lsn = Lsn(0x0100_0000);
const SNAPSHOT_TIME_NS: u64 = 1_700_000_000_123_456_789;

fn psql(db: &str, sql: &str) -> String {
    Cluster::shared()
        .psql(db, &format!("{SESSION}{sql}"))
        .unwrap_or_else(|e| panic!("psql failed in {db}: {e}\nSQL: {sql}"))
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The table list, through psql: each row as JSON so that any text survives.
fn list_tables(db: &str, publication: &str, tables: &[TableName]) -> Vec<SnapshotTable> {
    let q = tables_query(publication, tables).expect("query");
    let out = psql(db, &table_rows::as_json_lines(&q));
    let rows = table_rows::parse_json_lines(&out);
    parse_tables_rows(rows).expect("parse tables")
}

/// What pgoutput sent: `(lsn, payload)` of every message of the slot.
fn peek(db: &str, slot: &str, publication: &str) -> Vec<(Lsn, Bytes)> {
    let out = psql(
        db,
        &format!(
            "SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('{slot}', \
             NULL, NULL, 'proto_version', '1', 'publication_names', '{publication}')"
        ),
    );
    out.lines()
        .map(|line| {
            let (lsn, data) = line.split_once('|').expect("lsn|data");
            (lsn.parse().expect("lsn"), Bytes::from(unhex(data.trim())))
        })
        .collect()
}

/// One insert as a consumer sees it.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: String,
    properties: ElementPropertyMap,
}

/// Inserts by label.
type Inserts = BTreeMap<String, Vec<Row>>;
/// Relation messages by OID.
type Relations = HashMap<u32, RelationBody>;
/// Type messages: OID → (namespace, name).
type Types = HashMap<u32, (String, String)>;

fn collect(changes: impl IntoIterator<Item = SourceChange>, out: &mut Inserts) {
    for c in changes {
        let SourceChange::Insert { element, .. } = c else {
            panic!("not an insert: {c:?}")
        };
        let m = element.metadata();
        assert_eq!(m.labels.len(), 1);
        out.entry(m.labels[0].to_string()).or_default().push(Row {
            id: m.reference.element_id.to_string(),
            properties: element.properties().clone(),
        });
    }
}

/// The stream's inserts, with the primary keys the catalog gives; also the Relation and Type
/// messages it sent.
fn stream(
    messages: &[(Lsn, Bytes)],
    config: &PipelineConfig,
    tables: &[SnapshotTable],
) -> (Inserts, Relations, Types) {
    let mut pipeline = Pipeline::new("pg", config.clone());
    for t in tables {
        if !t.primary_key.is_empty() {
            pipeline.set_primary_key(t.relation.oid, t.primary_key.clone());
        }
    }
    let mut decoder = Decoder::new();
    let mut relations = HashMap::new();
    let mut types = HashMap::new();
    let mut inserts = Inserts::new();
    for (lsn, payload) in messages {
        match decoder.decode(payload.clone()).expect("decodes") {
            PgOutputMessage::Relation(body) => {
                relations.insert(body.oid.0, body);
            }
            PgOutputMessage::Type {
                oid,
                namespace,
                name,
                ..
            } => {
                types.insert(oid.0, (namespace, name));
            }
            _ => {}
        }
        pipeline.handle_xlog(payload, *lsn, *lsn).expect("pipeline");
        while let Some(ev) = pipeline.poll_event() {
            if let PipelineEvent::Transaction(b) = ev {
                collect(b.changes, &mut inserts);
            }
        }
    }
    (inserts, relations, types)
}

/// The snapshot's inserts: every planned COPY run through psql, its rows fed to an assembler.
fn snapshot(
    db: &str,
    config: &PipelineConfig,
    tables: &[SnapshotTable],
    split_pages: u64,
    max_parts: usize,
) -> (Inserts, usize) {
    let parts = plan_copies(tables, split_pages, max_parts);
    let mut asm = SnapshotAssembler::new("pg", config.clone(), CONSISTENT_POINT, SNAPSHOT_TIME_NS);
    let mut inserts = Inserts::new();
    let mut rows = 0;
    for part in &parts {
        asm.handle_part_start(&tables[part.table]).expect("begin");
        let out = psql(db, &part.sql);
        if !out.is_empty() {
            for line in out.split('\n') {
                asm.handle_row(line.as_bytes())
                    .unwrap_or_else(|e| panic!("{}: {e}", part.sql));
                rows += 1;
            }
        }
        asm.handle_part_end().expect("finish");
        while let Some(e) = asm.poll_event() {
            let SnapshotEvent::Batch(b) = e else {
                continue;
            };
            assert_eq!(b.commit_lsn, CONSISTENT_POINT);
            assert_eq!(b.commit_time_ns, SNAPSHOT_TIME_NS);
            collect(b.changes, &mut inserts);
        }
    }
    assert_eq!(asm.rows(), rows as u64);
    (inserts, parts.len())
}

/// A row's properties for comparison: `Debug` text, in which NaN equals NaN (and -0 differs
/// from 0).
fn same(r: &Row) -> String {
    format!("{:?}", r.properties)
}

/// The same rows: equal ids and properties in order for keyed tables; for tables with
/// generated ids, the same label prefix and the same multiset of properties.
fn assert_same_rows(label: &str, snap: &[Row], stream: &[Row], generated: bool) {
    assert_eq!(snap.len(), stream.len(), "{label}: row count");
    if !generated {
        let mut a = snap.to_vec();
        let mut b = stream.to_vec();
        a.sort_by(|x, y| x.id.cmp(&y.id));
        b.sort_by(|x, y| x.id.cmp(&y.id));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.id, y.id, "{label}");
            assert_eq!(same(x), same(y), "{label}");
        }
        return;
    }
    let mut left: Vec<&Row> = stream.iter().collect();
    for r in snap {
        assert!(r.id.starts_with(&format!("{label}:")), "{label}: {}", r.id);
        let i = left
            .iter()
            .position(|s| same(s) == same(r))
            .unwrap_or_else(|| panic!("{label}: {r:?} not in the stream"));
        left.remove(i);
    }
}

const SCHEMA: &str = "\
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE DOMAIN smallpos AS posint;
CREATE SCHEMA app;
CREATE TABLE users (id int8 PRIMARY KEY, name text, note varchar(40), balance numeric(20,4),
  ratio float8, seen timestamptz, born date, tags text[], grid int4[][], m mood, moods mood[],
  doc jsonb, raw json, bin bytea, p posint, sp smallpos, span interval, addr inet, u uuid,
  gen int8 GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE app.order_items (order_id int4, sku text, qty int4, price numeric,
  PRIMARY KEY (order_id, sku));
CREATE TABLE logs (msg text, at timestamp, lvl int2);
ALTER TABLE logs REPLICA IDENTITY FULL;
CREATE TABLE nokey (a text, b float8);
CREATE TABLE idx (a int4 NOT NULL, b text NOT NULL, c text);
CREATE UNIQUE INDEX idx_ba ON idx (b, a);
ALTER TABLE idx REPLICA IDENTITY USING INDEX idx_ba;
CREATE TABLE dropped (id int4 PRIMARY KEY, gone text, kept text);
ALTER TABLE dropped DROP COLUMN gone;
CREATE TABLE collist (id int4 PRIMARY KEY, secret text, visible text);
CREATE TABLE filtered (id int4 PRIMARY KEY, kind text);
CREATE TABLE big (id int4 PRIMARY KEY, pad text);
CREATE TABLE unpublished (id int4 PRIMARY KEY);
CREATE PUBLICATION pub FOR TABLE users, app.order_items, logs, nokey, idx, dropped,
  collist (id, visible), filtered WHERE (kind <> 'skip'), big;";

const ROWS: &str = r#"
INSERT INTO users VALUES
  (1, E'tab\there\nnew line \\ back\\slash', 'plain', 12345678901234.5678, 0.1,
   '2024-02-29 08:15:01.123456+01', '2000-01-01', ARRAY['a', 'b c', NULL, 'd"e', E'f\\g'],
   '{{1,2},{3,NULL}}', 'happy', '{sad,ok}', '{"k": [1, 2.50, null], "u": "\u00e9"}',
   '{"b": 1,  "a": 2}', '\x00ff0a09', 7, 8, '1 year 2 mons 3 days 04:05:06.789', '10.1.2.3/8',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  (2, '', NULL, 'NaN', '-Infinity', 'infinity', '-infinity', '{}', NULL, NULL, '{}', 'null',
   '[]', '\x', NULL, NULL, NULL, NULL, NULL),
  (3, NULL, E'\\N', -0.0001, -0, NULL, NULL, ARRAY[E'\t', E'\\N', ''], '{{7}}', 'sad', NULL,
   '"s"', '1', NULL, 1, 1, '-1 days', '::1', NULL),
  (-4611686018427387904, 'ünïcödé ✓ 🎉', E'a_b:c', 1e15, 1.5e-10, '1999-12-31 23:59:59.999999+00',
   '0001-01-01 BC', '{x}', '{{1},{2}}', 'ok', '{happy}', '{}', '{}', '\xdeadbeef', 2147483647,
   5, '00:00:00', '::ffff:1.2.3.4/128', '00000000-0000-0000-0000-000000000000');
INSERT INTO app.order_items VALUES (1, 'a_b', 2, 9.99), (1, 'x:y', 1, 0), (2, E'back\\slash', NULL, 1e-5),
  (3, E'new\nline\ttab', 7, -1);
INSERT INTO logs VALUES ('one', '2024-01-01 00:00:00', 1), ('two', NULL, NULL), ('one', '2024-01-01 00:00:00', 1),
  (E'multi\nline', 'infinity', -32768);
INSERT INTO nokey VALUES ('x', 1.5), (NULL, NULL), ('x', 1.5), (E'\\', 'NaN');
INSERT INTO idx VALUES (1, 'one', 'c1'), (2, 'two_2', NULL), (3, E'th:ree', 'c3');
INSERT INTO dropped VALUES (1, 'k1'), (2, NULL);
INSERT INTO collist VALUES (1, 'hidden', 'shown'), (2, NULL, NULL);
INSERT INTO filtered VALUES (1, 'keep'), (2, 'skip'), (3, NULL), (4, 'also');
INSERT INTO unpublished VALUES (1);
"#;

#[test]
fn bootstrap_inserts_equal_stream_inserts() {
    let cluster = Cluster::shared();
    let db = "snapshot_equivalence";
    cluster.create_database(db).expect("create database");
    psql(db, SCHEMA);
    psql(
        db,
        "SELECT pg_create_logical_replication_slot('snap', 'pgoutput')",
    );
    psql(db, ROWS);
    // A table large enough to split, its statistics read, then rows added on new pages (the
    // open-ended last part must copy them).
    psql(
        db,
        "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 3000) g",
    );
    cluster.psql(db, "VACUUM ANALYZE big").expect("vacuum");
    psql(
        db,
        "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(3001, 3600) g",
    );

    let tables = list_tables(db, "pub", &[]);
    let labels: Vec<String> = tables.iter().map(SnapshotTable::label).collect();
    assert_eq!(
        labels,
        [
            "app.order_items",
            "big",
            "collist",
            "dropped",
            "filtered",
            "idx",
            "logs",
            "nokey",
            "users"
        ]
    );
    let by_label = |l: &str| &tables[labels.iter().position(|x| x == l).unwrap()];
    assert_eq!(by_label("app.order_items").primary_key, ["order_id", "sku"]);
    assert!(by_label("logs").primary_key.is_empty());
    assert_eq!(
        by_label("filtered").row_filter.as_deref(),
        Some("(kind <> 'skip'::text)")
    );
    let big = by_label("big");
    assert!(big.pages >= 20, "big has {} pages", big.pages);
    assert!(
        big.estimated_rows >= 2900,
        "big has ~{} rows",
        big.estimated_rows
    );
    let user_cols: Vec<&str> = by_label("users")
        .relation
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        !user_cols.contains(&"gen"),
        "generated columns are not published"
    );

    // Restricted to some tables.
    let some = list_tables(
        db,
        "pub",
        &[
            TableName::parse("users").unwrap(),
            TableName::parse("app.order_items").unwrap(),
            TableName::parse("unpublished").unwrap(),
        ],
    );
    assert_eq!(
        some.iter().map(SnapshotTable::label).collect::<Vec<_>>(),
        ["app.order_items", "users"]
    );

    let messages = peek(db, "snap", "pub");
    for config in [
        PipelineConfig::default(),
        PipelineConfig::default()
            .with_max_batch_changes(3)
            .with_keys(
                KeyConfig::new()
                    .with_table("app.order_items", ["sku"])
                    .with_table("logs", ["msg", "lvl"]),
            ),
    ] {
        let (streamed, relations, types) = stream(&messages, &config, &tables);

        // The catalog query says what pgoutput says.
        for t in &tables {
            let rel = relations
                .get(&t.relation.oid.0)
                .unwrap_or_else(|| panic!("no Relation for {}", t.label()));
            assert_eq!(&t.relation, rel, "{}", t.label());
            for ty in &t.types {
                assert_eq!(
                    types.get(&ty.oid.0),
                    Some(&(ty.namespace.clone(), ty.name.clone())),
                    "{}: type {}",
                    t.label(),
                    ty.oid
                );
            }
        }
        assert_eq!(
            by_label("users").types.len(),
            4,
            "mood, _mood, posint, smallpos"
        );
        assert_eq!(by_label("users").types[2].name, "int4");
        assert_eq!(by_label("users").types[3].name, "int4");

        let keyed_logs = config.keys.get("logs").is_some();
        for (split, max_parts) in [(0, 1), (5, 4)] {
            let (snap, parts) = snapshot(db, &config, &tables, split, max_parts);
            if split > 0 {
                assert_eq!(parts, tables.len() + 3, "big in 4 parts");
            }
            assert_eq!(
                snap.keys().collect::<Vec<_>>(),
                streamed.keys().collect::<Vec<_>>()
            );
            for (label, rows) in &snap {
                let generated = label == "nokey" || (label == "logs" && !keyed_logs);
                assert_same_rows(label, rows, &streamed[label], generated);
            }
            assert_eq!(snap["big"].len(), 3600);
            assert_eq!(snap["filtered"].len(), 2, "NULL <> 'skip' is not true");
        }
    }

    // Spot checks of what equality covered.
    let (snap, _) = snapshot(db, &PipelineConfig::default(), &tables, 0, 1);
    let users = &snap["users"];
    let one = users.iter().find(|r| r.id == "users:1").unwrap();
    assert_eq!(
        one.properties.get("name"),
        Some(&Value::Text("tab\there\nnew line \\ back\\slash".into()))
    );
    assert!(users.iter().any(|r| r.id == "users:-4611686018427387904"));
    let items: Vec<&str> = snap["app.order_items"]
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert!(items.contains(&"app.order_items:1_a\\_b"), "{items:?}");
    assert!(items.contains(&"app.order_items:1_x\\:y"), "{items:?}");
    let idx: Vec<&str> = snap["idx"].iter().map(|r| r.id.as_str()).collect();
    // Replica-identity key columns come in column order (pgoutput flags columns; it does
    // not send the index's order).
    assert!(idx.contains(&"idx:2_two\\_2"), "{idx:?}");
    let collist = &snap["collist"][0];
    assert!(!collist.properties.contains_key("secret"));
    assert!(
        !snap["dropped"][0]
            .properties
            .keys()
            .any(|k| k.contains("dropped"))
    );
}

#[test]
fn snapshot_import_statement_is_accepted() {
    let cluster = Cluster::shared();
    let db = "snapshot_import";
    cluster.create_database(db).expect("create database");
    // The statement parses and reaches the snapshot lookup: this name was never exported.
    let sql = import_snapshot_sql("00000003-0000001B-1").unwrap();
    let err = cluster.psql(db, &sql).unwrap_err().to_string();
    assert!(err.contains("invalid snapshot identifier"), "{err}");
}

/// Partitioned tables (through the root or as leaves) and inheritance children: each row is
/// copied once, under the relation the stream names it by.
#[test]
fn partitions_and_inheritance() {
    let cluster = Cluster::shared();
    let db = "snapshot_partitions";
    cluster.create_database(db).expect("create database");
    psql(
        db,
        "CREATE TABLE parted (id int4, region text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
         CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
         CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (1000);
         CREATE TABLE parent (id int4 PRIMARY KEY, v text);
         CREATE TABLE child (extra text) INHERITS (parent);
         CREATE PUBLICATION pub_root FOR TABLE parted, parent
           WITH (publish_via_partition_root = true);
         CREATE PUBLICATION pub_leaf FOR TABLE parted, parent;",
    );
    psql(
        db,
        "SELECT pg_create_logical_replication_slot('snap_parts', 'pgoutput')",
    );
    psql(
        db,
        "INSERT INTO parted SELECT g, 'r' || g FROM generate_series(1, 300) g;
         INSERT INTO parent VALUES (1, 'p1'), (2, 'p2');
         INSERT INTO child VALUES (3, 'c3', 'x'), (4, NULL, NULL);",
    );
    cluster
        .psql(db, "ANALYZE parted_low; ANALYZE parted_high")
        .expect("analyze");
    let config = PipelineConfig::default();
    for (publication, expected) in [
        ("pub_root", vec!["child", "parent", "parted"]),
        (
            "pub_leaf",
            vec!["child", "parent", "parted_high", "parted_low"],
        ),
    ] {
        let tables = list_tables(db, publication, &[]);
        let labels: Vec<String> = tables.iter().map(SnapshotTable::label).collect();
        assert_eq!(labels, expected, "{publication}");
        if publication == "pub_root" {
            let parted = &tables[2];
            assert!(parted.partitioned);
            assert!(parted.estimated_rows >= 250, "{}", parted.estimated_rows);
            assert!(parted.pages >= 2, "{}", parted.pages);
        }
        let messages = peek(db, "snap_parts", publication);
        let (streamed, relations, _) = stream(&messages, &config, &tables);
        for t in &tables {
            assert_eq!(Some(&t.relation), relations.get(&t.relation.oid.0));
        }
        // Splitting asked for everywhere: the partitioned root is copied whole anyway.
        let (snap, _) = snapshot(db, &config, &tables, 1, 4);
        assert_eq!(
            snap.keys().collect::<Vec<_>>(),
            streamed.keys().collect::<Vec<_>>()
        );
        for (label, rows) in &snap {
            assert_same_rows(label, rows, &streamed[label], false);
        }
        let total: usize = snap.values().map(Vec::len).sum();
        assert_eq!(total, 304, "{publication}");
        assert_eq!(
            snap["parent"].len(),
            2,
            "ONLY: the child's rows are its own"
        );
    }
}
