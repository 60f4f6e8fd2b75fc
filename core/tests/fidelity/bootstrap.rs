//! Bootstrap = stream: the fidelity tables copied the way the bootstrap copies them — described
//! by [`tables_query`], copied with the `COPY (…) TO STDOUT` statements of [`plan_copies`]
//! (through psql, under the same pinned session settings as the capture), every line fed to a
//! [`SnapshotAssembler`] — and each resulting element compared with the element the stream
//! holds for the same row: element id, labels, and every property value by its `Debug` text
//! (in which NaN equals NaN and `-0` differs from `0`).
//!
//! The stream side is a row's *final* state, as a consumer applying the changes in order holds
//! it: an insert sets the element, an update replaces its properties except those listed as
//! unchanged TOAST (absent from the update: the previous value still holds), a delete removes
//! it. The copy runs after every change was committed, so it reads the same final state.

use std::collections::BTreeMap;

use pgcdc_core::Lsn;
use pgcdc_core::assemble::PipelineConfig;
use pgcdc_core::model::{ElementPropertyMap, SourceChange};
use pgcdc_core::snapshot::{
    SnapshotAssembler, SnapshotEvent, SnapshotTable, parse_tables_rows, plan_copies, tables_query,
};
use pgcdc_core::value::TypeRegistry;

use super::{abbrev, psql, table_rows};

/// The consistent point and snapshot time given to the assembler (they only stamp the
/// transaction, which is not compared).
const CONSISTENT_POINT: Lsn = Lsn(0x0100_0000);
const SNAPSHOT_TIME_NS: u64 = 1_700_000_000_123_456_789;

/// One element as a consumer holds it.
#[derive(Clone, Debug)]
pub struct Row {
    pub labels: Vec<String>,
    pub properties: ElementPropertyMap,
}

/// Elements by element id.
pub type Rows = BTreeMap<String, Row>;

/// The tables of `publication`, as the bootstrap lists them: [`tables_query`] run through
/// psql, each row as JSON so that any text survives, read by [`parse_tables_rows`].
pub fn list_tables(db: &str, publication: &str) -> Vec<SnapshotTable> {
    let q = tables_query(publication, &[]).expect("table list query");
    let out = psql(db, &table_rows::as_json_lines(&q));
    let rows = table_rows::parse_json_lines(&out);
    parse_tables_rows(rows).expect("parse the table list")
}

/// What a bootstrap gave: the elements, and how many COPY parts and rows made them.
pub struct Bootstrap {
    pub rows: Rows,
    pub parts: usize,
    pub copied: u64,
}

/// The bootstrap of `tables`: every part planned by `plan_copies(tables, split_pages,
/// max_parts)` run through psql, each line pushed to one [`SnapshotAssembler`] made with
/// `source_id` and `config` and whose type registry `register` filled first (as the stream's
/// pipeline was filled).
pub fn bootstrap(
    db: &str,
    source_id: &str,
    config: PipelineConfig,
    tables: &[SnapshotTable],
    (split_pages, max_parts): (u64, usize),
    register: impl FnOnce(&mut TypeRegistry),
) -> Bootstrap {
    let mut asm = SnapshotAssembler::new(source_id, config, CONSISTENT_POINT, SNAPSHOT_TIME_NS);
    register(asm.type_registry_mut());
    let parts = plan_copies(tables, split_pages, max_parts);
    let mut rows = Rows::new();
    let mut copied = 0u64;
    for part in &parts {
        let table = &tables[part.table];
        asm.handle_part_start(table)
            .unwrap_or_else(|e| panic!("handle_part_start {}: {e}", table.label()));
        let out = psql(db, &part.sql);
        // psql drops the last line's terminator; COPY's text format escapes line breaks
        // inside values (`\n`, `\r`), so every `\n` ends a row.
        if !out.is_empty() {
            for line in out.split('\n') {
                asm.handle_row(line.as_bytes())
                    .unwrap_or_else(|e| panic!("{}: {e}", part.sql));
                copied += 1;
            }
        }
        asm.handle_part_end()
            .unwrap_or_else(|e| panic!("handle_part_end {}: {e}", table.label()));
        while let Some(event) = asm.poll_event() {
            let batch = match event {
                SnapshotEvent::Batch(b) => b,
                SnapshotEvent::Warning(w) => panic!("unexpected bootstrap warning: {w}"),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(batch.commit_lsn, CONSISTENT_POINT);
            for change in batch.changes {
                let SourceChange::Insert {
                    element,
                    unchanged_toast,
                    ..
                } = change
                else {
                    panic!("the bootstrap gives only inserts, got {change:?}")
                };
                assert!(unchanged_toast.is_empty(), "copied rows are whole");
                let m = element.metadata();
                let id = m.reference.element_id.to_string();
                let row = Row {
                    labels: m.labels.iter().map(|l| l.to_string()).collect(),
                    properties: element.properties().clone(),
                };
                assert!(
                    rows.insert(id.clone(), row).is_none(),
                    "element id {id} bootstrapped twice"
                );
            }
        }
    }
    assert_eq!(asm.rows(), copied);
    assert_eq!(copied as usize, rows.len());
    Bootstrap {
        rows,
        parts: parts.len(),
        copied,
    }
}

/// The elements the stream's changes leave, each in its final state (see the module docs).
pub fn final_state<'a>(changes: impl IntoIterator<Item = &'a SourceChange>) -> Rows {
    let mut rows = Rows::new();
    for change in changes {
        match change {
            SourceChange::Insert {
                element,
                unchanged_toast,
                ..
            } => {
                assert!(unchanged_toast.is_empty(), "insert without values");
                let m = element.metadata();
                rows.insert(
                    m.reference.element_id.to_string(),
                    Row {
                        labels: m.labels.iter().map(|l| l.to_string()).collect(),
                        properties: element.properties().clone(),
                    },
                );
            }
            SourceChange::Update {
                element,
                unchanged_toast,
                ..
            } => {
                let m = element.metadata();
                let id = m.reference.element_id.to_string();
                let prev = rows
                    .remove(&id)
                    .unwrap_or_else(|| panic!("update of unknown element {id}"));
                let mut properties = element.properties().clone();
                for name in unchanged_toast {
                    let kept = prev
                        .properties
                        .get(name)
                        .unwrap_or_else(|| panic!("{id}: unchanged {name} never seen"));
                    properties.insert(name.clone(), kept.clone());
                }
                let labels = m.labels.iter().map(|l| l.to_string()).collect();
                rows.insert(id, Row { labels, properties });
            }
            SourceChange::Delete { metadata, .. } => {
                rows.remove(&*metadata.reference.element_id);
            }
            other => panic!("unexpected change {other:?}"),
        }
    }
    rows
}

/// Compares the bootstrap's elements with the stream's, returning the number of property
/// values compared and the differences. `ordered`: the properties must also come in the same
/// order (true where the stream's element is one insert; an update filled from unchanged TOAST
/// has its own order).
pub fn compare(ctx: &str, snap: &Rows, stream: &Rows, ordered: bool) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut values = 0;
    for id in stream.keys().filter(|id| !snap.contains_key(*id)) {
        failures.push(format!("{ctx}: element {id} streamed but not bootstrapped"));
    }
    for id in snap.keys().filter(|id| !stream.contains_key(*id)) {
        failures.push(format!("{ctx}: element {id} bootstrapped but not streamed"));
    }
    for (id, s) in stream {
        let Some(b) = snap.get(id) else { continue };
        if b.labels != s.labels {
            failures.push(format!(
                "{ctx} {id}: labels {:?} != stream {:?}",
                b.labels, s.labels
            ));
        }
        let mut names_b: Vec<&str> = b.properties.keys().map(|k| &**k).collect();
        let mut names_s: Vec<&str> = s.properties.keys().map(|k| &**k).collect();
        if !ordered {
            names_b.sort_unstable();
            names_s.sort_unstable();
        }
        if names_b != names_s {
            failures.push(format!(
                "{ctx} {id}: properties {names_b:?} != stream {names_s:?}"
            ));
        }
        for (name, vs) in s.properties.iter() {
            let Some(vb) = b.properties.get(name) else {
                continue;
            };
            values += 1;
            let (db, ds) = (format!("{vb:?}"), format!("{vs:?}"));
            if db != ds {
                failures.push(format!(
                    "{ctx} {id} {name}: bootstrap != stream\n  bootstrap: {}\n  stream:    {}",
                    abbrev(&db),
                    abbrev(&ds)
                ));
            }
        }
    }
    (values, failures)
}
