//! The snapshot import, the table list query and its parsing.

use super::super::{
    SnapshotError, SnapshotType, TABLE_COLUMNS, import_snapshot_sql, parse_tables,
    parse_tables_rows, tables_query,
};
use super::col;
use crate::pgoutput::{Column, Oid, ReplicaIdentity};
use crate::query::QueryResult;
use crate::source_config::TableName;

#[test]
fn import_statement() {
    assert_eq!(
        import_snapshot_sql("00000003-0000001B-1").unwrap(),
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT \
         '00000003-0000001B-1'"
    );
    for bad in ["", "x'; DROP TABLE t; --", "a b", "é", &"1".repeat(65)] {
        let e = import_snapshot_sql(bad).unwrap_err();
        assert!(
            matches!(
                e,
                SnapshotError::InvalidName {
                    what: "snapshot name",
                    ..
                }
            ),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn query_text() {
    let q = tables_query("pub'x", &[]).unwrap();
    assert!(q.starts_with("SELECT c.oid::int8 AS oid, n.nspname::text AS schema"));
    assert!(q.contains("FROM pg_catalog.pg_publication_tables p "));
    assert!(q.ends_with(" WHERE p.pubname = 'pub''x' ORDER BY n.nspname, c.relname"));
    // Every column parse_tables reads is selected, in order.
    let mut at = 0;
    for c in TABLE_COLUMNS {
        let found = q[at..]
            .find(&format!(" AS {c}"))
            .unwrap_or_else(|| panic!("{c}"));
        at += found;
    }
    // PG 15 column lists, row filters and generated columns without failing on older servers.
    assert!(q.contains("to_jsonb(p) -> 'attnames'"));
    assert!(q.contains("to_jsonb(p) ->> 'rowfilter'"));
    assert!(q.contains("to_jsonb(a) ->> 'attgenerated'"));

    let tables = [
        TableName::parse("users").unwrap(),
        TableName::parse("App.\"we\\ird'\"").unwrap(),
    ];
    let q = tables_query("p", &tables).unwrap();
    assert!(
        q.ends_with(
            " WHERE p.pubname = 'p' AND (n.nspname, c.relname) IN (('public', 'users'), \
             ('App', E'we\\\\ird''')) ORDER BY n.nspname, c.relname"
        ),
        "{q}"
    );
    assert!(matches!(
        tables_query("a\0b", &[]),
        Err(SnapshotError::InvalidName {
            what: "publication",
            ..
        })
    ));
}

fn result(columns: &[&str], rows: &[Vec<Option<&str>>]) -> QueryResult {
    QueryResult::from_text_rows(columns, rows)
}

const USERS_COLUMNS: &str = r#"[["id", 23, -1, true, null, null], ["name", 1043, 36, false, null, null], ["mood", 16390, -1, false, "app", "mood"], ["amount", 16400, -1, false, "", "numeric"]]"#;

#[test]
fn parse_result() {
    // The columns in another order than the query's: found by name.
    let mut cols: Vec<&str> = TABLE_COLUMNS.to_vec();
    cols.reverse();
    let users: Vec<Option<&str>> = vec![
        Some("16384"),
        Some("public"),
        Some("users"),
        Some("r"),
        Some("d"),
        Some("1200"),
        Some("17"),
        None,
        Some(USERS_COLUMNS),
        Some(r#"["id"]"#),
    ];
    let events: Vec<Option<&str>> = vec![
        Some("16500"),
        Some("App"),
        Some("Ev\"ents"),
        Some("p"),
        Some("f"),
        Some("-1"),
        Some("0"),
        Some("(kind <> 'x'::text)"),
        Some(r#"[["k", 25, -1, true, null, null], ["b", 25, -1, true, null, null]]"#),
        None,
    ];
    let empty: Vec<Option<&str>> = vec![
        Some("16600"),
        Some("public"),
        Some("nothing"),
        Some("r"),
        Some("n"),
        Some("0"),
        Some("0"),
        None,
        None,
        None,
    ];
    let rows: Vec<Vec<Option<&str>>> = [users, events, empty]
        .into_iter()
        .map(|mut r| {
            r.reverse();
            r
        })
        .collect();
    let tables = parse_tables(&result(&cols, &rows)).unwrap();
    assert_eq!(tables.len(), 3);

    let u = &tables[0];
    assert_eq!(u.relation.oid, Oid(16384));
    assert_eq!(u.relation.namespace, "public");
    assert_eq!(u.relation.name, "users");
    assert_eq!(u.relation.replica_identity, ReplicaIdentity::Default);
    assert_eq!(
        u.relation.columns,
        [
            col("id", 23, true),
            Column {
                type_modifier: 36,
                ..col("name", 1043, false)
            },
            col("mood", 16390, false),
            col("amount", 16400, false),
        ]
    );
    assert_eq!(u.primary_key, ["id"]);
    assert_eq!((u.estimated_rows, u.pages), (1200, 17));
    assert_eq!(
        u.types,
        [
            SnapshotType {
                oid: Oid(16390),
                namespace: "app".into(),
                name: "mood".into()
            },
            SnapshotType {
                oid: Oid(16400),
                namespace: String::new(),
                name: "numeric".into()
            },
        ]
    );
    assert_eq!(u.row_filter, None);
    assert!(!u.partitioned);
    assert_eq!(u.label(), "users");

    let e = &tables[1];
    assert_eq!(e.relation.replica_identity, ReplicaIdentity::Full);
    assert!(e.relation.columns.iter().all(Column::is_key));
    assert!(e.primary_key.is_empty());
    assert_eq!(e.estimated_rows, 0, "negative reltuples means unknown");
    assert_eq!(e.row_filter.as_deref(), Some("(kind <> 'x'::text)"));
    assert!(e.partitioned);
    assert_eq!(e.label(), "App.Ev\"ents");

    let n = &tables[2];
    assert_eq!(n.relation.replica_identity, ReplicaIdentity::Nothing);
    assert!(n.relation.columns.is_empty());

    // The same rows through parse_tables_rows (query column order).
    let owned: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| r.iter().rev().map(|v| v.map(str::to_owned)).collect())
        .collect();
    assert_eq!(parse_tables_rows(owned).unwrap(), tables);
}

#[test]
fn parse_errors_name_row_table_and_column() {
    let row = |replident: &str, columns: &str| -> Vec<Option<String>> {
        [
            "16384", "s", "t", "r", replident, "0", "0", "\\N", columns, "\\N",
        ]
        .iter()
        .map(|v| (*v != "\\N").then(|| (*v).to_owned()))
        .collect()
    };
    let e = parse_tables_rows([row("d", "[]"), row("z", "[]")]).unwrap_err();
    let SnapshotError::TablesResult {
        row: 1,
        ref table,
        column: "replident",
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(table, "s.t");
    assert!(e.to_string().contains("row 1 (table s.t)"), "{e}");

    for bad in [
        "{}",
        "[1]",
        "[[\"a\", 23, -1, true]]",
        "[[\"a\", \"23\", -1, true, null, null]]",
        "[[\"a\", 23, -1, 1, null, null]]",
        "[[\"a\", 23, 99999999999, true, null, null]]",
        "[[\"a\", 23, -1, true, \"s\", null]]",
        "[[",
    ] {
        let e = parse_tables_rows([row("d", bad)]).unwrap_err();
        assert!(
            matches!(
                e,
                SnapshotError::TablesResult {
                    column: "columns",
                    ..
                }
            ),
            "{bad}: {e:?}"
        );
    }
    let short = vec![Some("1".to_owned())];
    assert!(parse_tables_rows([short]).is_err());
    let missing = result(&["oid"], &[]);
    assert!(matches!(
        parse_tables(&missing),
        Err(SnapshotError::TablesResult {
            column: "schema",
            ..
        })
    ));
    let mut r = row("d", "[]");
    r[0] = Some("x".into());
    assert!(matches!(
        parse_tables_rows([r]),
        Err(SnapshotError::TablesResult { column: "oid", .. })
    ));
}
