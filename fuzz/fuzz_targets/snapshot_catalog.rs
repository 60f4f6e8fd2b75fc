//! Arbitrary rows of the snapshot table-list result through `parse_tables` and
//! `parse_tables_rows`: never a panic; both agree whatever the order of the result's columns;
//! a parsed table list printed back into cells parses to the same tables (user types aside);
//! and each parsed table plans copies and opens an assembler part without a panic.
//!
//! Input: one configuration byte, then cells separated by 0xFF, ten to a row in the order of
//! `TABLE_COLUMNS`; a cell that is exactly 0xFE is NULL. Bytes that are not UTF-8 are
//! replaced. The remaining cells, past the last full row, name a publication and tables for
//! `tables_query` and a snapshot for `import_snapshot_sql`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::PipelineConfig;
use pgcdc_core::pgoutput::{Column, ReplicaIdentity};
use pgcdc_core::query::QueryResult;
use pgcdc_core::snapshot::{
    SnapshotAssembler, SnapshotTable, TABLE_COLUMNS, import_snapshot_sql, parse_tables,
    parse_tables_rows, plan_copies, tables_query,
};
use pgcdc_core::source_config::TableName;
use pgcdc_core::value::Json;

fn json_string(s: &str) -> String {
    Json::String(s.to_owned()).to_string()
}

/// The cells the query would have produced for `t` (user types left out).
fn cells(t: &SnapshotTable) -> Vec<Option<String>> {
    let r = &t.relation;
    let columns: Vec<String> = r
        .columns
        .iter()
        .map(|c: &Column| {
            format!(
                "[{}, {}, {}, {}, null, null]",
                json_string(&c.name),
                c.type_oid.0,
                c.type_modifier,
                c.flags & Column::KEY_FLAG != 0
            )
        })
        .collect();
    let pk: Vec<String> = t.primary_key.iter().map(|s| json_string(s)).collect();
    vec![
        Some(r.oid.0.to_string()),
        Some(r.namespace.clone()),
        Some(r.name.clone()),
        Some(if t.partitioned { "p" } else { "r" }.to_owned()),
        Some(
            match r.replica_identity {
                ReplicaIdentity::Default => "d",
                ReplicaIdentity::Nothing => "n",
                ReplicaIdentity::Full => "f",
                ReplicaIdentity::Index => "i",
            }
            .to_owned(),
        ),
        Some(t.estimated_rows.to_string()),
        Some(t.pages.to_string()),
        t.row_filter.clone(),
        Some(format!("[{}]", columns.join(", "))),
        Some(format!("[{}]", pk.join(", "))),
    ]
}

/// The tables without their user types and flags the printing cannot keep.
fn comparable(tables: &[SnapshotTable]) -> Vec<SnapshotTable> {
    tables
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.types.clear();
            for c in &mut t.relation.columns {
                c.flags &= Column::KEY_FLAG;
            }
            t
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let all: Vec<Option<String>> = rest
        .split(|&b| b == 0xFF)
        .map(|c| (c != [0xFE]).then(|| String::from_utf8_lossy(c).into_owned()))
        .collect();
    let full = all.len() / TABLE_COLUMNS.len() * TABLE_COLUMNS.len();
    let (row_cells, names) = all.split_at(full);
    let rows: Vec<Vec<Option<String>>> = row_cells
        .chunks(TABLE_COLUMNS.len())
        .map(<[Option<String>]>::to_vec)
        .collect();

    let by_rows = parse_tables_rows(rows.clone());
    // The same rows as a result, its columns rotated (parse_tables finds them by name), with
    // an extra column the parser must ignore.
    let shift = usize::from(cfg) % (TABLE_COLUMNS.len() + 1);
    let mut names_rotated: Vec<&str> = TABLE_COLUMNS.to_vec();
    names_rotated.push("extra");
    names_rotated.rotate_left(shift);
    let rotated: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.push(Some("x".to_owned()));
            r.rotate_left(shift);
            r
        })
        .collect();
    let by_result = parse_tables(&QueryResult::from_text_rows(&names_rotated, &rotated));
    match (&by_rows, &by_result) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("parse_tables {by_result:?} but parse_tables_rows {by_rows:?}"),
    }

    if let Ok(tables) = &by_rows {
        assert_eq!(tables.len(), rows.len());
        // Printed back, the same tables.
        let printed: Vec<Vec<Option<String>>> = tables.iter().map(cells).collect();
        let again = parse_tables_rows(printed.clone())
            .unwrap_or_else(|e| panic!("printed tables {printed:?} do not parse: {e}"));
        assert_eq!(comparable(&again), comparable(tables));

        let parts = plan_copies(tables, u64::from(cfg & 7) + 1, usize::from(cfg >> 5) + 1);
        for p in &parts {
            assert!(p.table < tables.len());
            let _ = format!("{p:?}");
        }
        let mut asm = SnapshotAssembler::new(
            "fuzz",
            PipelineConfig::default(),
            Lsn(0x100),
            1_700_000_000_000_000_000,
        );
        for t in tables.iter().take(8) {
            let _ = t.label();
            match asm.handle_part_start(t) {
                Ok(()) => {
                    let _ = asm.handle_row(b"1");
                    let _ = asm.handle_part_end();
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
            while asm.poll_event().is_some() {}
        }
    } else if let Err(e) = &by_rows {
        let _ = e.to_string();
    }

    // The leftover cells: a publication, tables, a snapshot name.
    let mut names = names.iter().map(|c| c.as_deref().unwrap_or(""));
    let publication = names.next().unwrap_or("p");
    let snapshot = names.next().unwrap_or("00000003-0000001B-1");
    let tables: Vec<TableName> = names.filter_map(|n| TableName::parse(n).ok()).collect();
    if let Ok(sql) = tables_query(publication, &tables) {
        assert!(!sql.contains('\0'));
    }
    if let Ok(sql) = import_snapshot_sql(snapshot) {
        assert!(sql.contains(snapshot));
    }
});
