//! The bootstrap plan: which tables to copy, the SQL that copies
//! them inside the slot's exported snapshot, and the turning of copied rows into
//! [`SourceChange::Insert`](crate::model::SourceChange::Insert)s — sans-IO, so a driver runs
//! the statements and feeds the rows.
//!
//! # The PostgreSQL snapshot, step by step
//!
//! 1. On the replication connection, `CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT
//!    'export')` returns the slot's `consistent_point` and a `snapshot_name`. The snapshot
//!    stays importable while that connection runs nothing else.
//! 2. On each copying connection (ordinary or `replication=database`), run
//!    [`import_snapshot_sql`]: `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET
//!    TRANSACTION SNAPSHOT '…'`. Every statement of that transaction then sees exactly the
//!    rows committed before the consistent point.
//! 3. Run [`tables_query`] inside the snapshot and read it with [`parse_tables`] (or
//!    [`parse_tables_rows`]): one [`SnapshotTable`] per published table, with what pgoutput's
//!    Relation (and Type) messages would say about it.
//! 4. [`plan_copies`] gives the `COPY (SELECT …) TO STDOUT` statements, large tables split
//!    over ctid ranges so several connections can copy them in parallel.
//! 5. For each [`CopyPart`]: [`SnapshotAssembler::handle_part_start`], one
//!    [`SnapshotAssembler::handle_row`] per CopyData row,
//!    [`SnapshotAssembler::handle_part_end`], draining [`SnapshotAssembler::poll_event`] after
//!    each call (batches to deliver, warnings to report).
//! 6. Commit the copying transactions and `START_REPLICATION` at the consistent point: every
//!    row is then delivered exactly once, by the snapshot or by the stream.
//!
//! # Same rows, same changes
//!
//! [`SnapshotAssembler`] does not build changes itself. It drives an ordinary
//! [`Pipeline`](crate::assemble::Pipeline) with synthetic pgoutput messages — Begin, Type,
//! Relation, one text-format Insert per row, Commit — encoded with
//! [`pgoutput::encode`](crate::pgoutput::encode). COPY's text format carries each value as
//! its type's output function prints it, which is what pgoutput sends, so element ids (keys
//! from [`KeyConfig`](crate::assemble::KeyConfig) > primary key > replica identity > UUID
//! fallback, escaping), labels and decoded values are those of the stream for the same row,
//! by construction. Each part is one transaction with xid 0, commit LSN and end LSN the
//! slot's consistent point and commit time the snapshot time, chunked by
//! [`PipelineConfig::max_batch_changes`](crate::assemble::PipelineConfig::max_batch_changes)
//! like any other transaction.
//!
//! # The JSONL bootstrap format
//!
//! A JSON Lines file holds one row per line, read by [`jsonl_change`]:
//!
//! ```text
//! # comment lines and blank lines are skipped
//! {"table": "users", "properties": {"id": 1, "name": "Ann", "tags": ["a", "b"]}}
//! {"table": "app.orders", "properties": {"id": 7, "total": 19.90}, "id": "app.orders:7"}
//! ```
//!
//! * `"table"` (required, string): `table` (schema `public`) or `schema.table`; a part may be
//!   double-quoted to hold a dot (`"my.schema".t`). The element's label is the table name as
//!   the stream labels it: bare in `public`, `schema.table` elsewhere.
//! * `"properties"` (optional object, default empty): the row's properties in order. A repeated
//!   name keeps its last value. Values map as follows:
//!
//!   | JSON | [`Value`](crate::value::Value) |
//!   |---|---|
//!   | string | `Text` |
//!   | integer literal (no `.`, no exponent) within `i64` | `Int8` |
//!   | any other number | `Numeric`, exact: every digit kept, an exponent expanded (`1.50` → `1.50`, `2e3` → `2000`) |
//!   | `true` / `false` | `Bool` |
//!   | `null` | `Null` |
//!   | array, object | `Json` |
//!
//! * `"id"` (optional string): the element id, used verbatim. Without it the id is computed
//!   from the table's configured key columns ([`KeyConfig`](crate::assemble::KeyConfig), looked
//!   up like the stream looks it up) as `label:v1_v2…` with the stream's escaping
//!   ([`model`](crate::model#element-ids)); each key value is printed as PostgreSQL prints the
//!   value (`t`/`f` for booleans, the canonical digits for numbers, `\N` for null). A table
//!   without a configured key and a row without `"id"` is an error naming the line.
//!
//! Any other member is an error (a misspelt `"properties"` would otherwise lose the row's
//! values). Changes carry the [`TxInfo`](crate::model::TxInfo) the caller gives.

mod assembler;
mod catalog;
mod copy_text;
mod jsonl;
mod plan;

#[cfg(test)]
mod tests;

pub use assembler::{SnapshotAssembler, SnapshotEvent};
pub use catalog::{
    TABLE_COLUMNS, import_snapshot_sql, parse_tables, parse_tables_rows, tables_query,
};
pub use copy_text::{CopyRow, CopyTextError, parse_copy_text_row};
pub use jsonl::jsonl_change;
pub use plan::{CopyPart, plan_copies};

use crate::assemble::AssembleError;
use crate::pgoutput::{EncodeError, Oid, RelationBody};

/// One table to copy, as the catalog describes it inside the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotTable {
    /// What pgoutput's Relation message says for this table: OID, namespace (`""` for
    /// `pg_catalog`), name, replica identity, and the published columns (the publication's
    /// column list if it has one; no generated or dropped columns) in attnum order, with type
    /// OID, typmod and the key flag set as pgoutput sets it — DEFAULT: the primary key's
    /// columns, INDEX: the identity index's columns, FULL: every column, NOTHING: none.
    pub relation: RelationBody,
    /// The primary key's columns in key order (empty without a primary key).
    pub primary_key: Vec<String>,
    /// `pg_class.reltuples` (summed over the partitions of a partitioned table); 0 when
    /// unknown.
    pub estimated_rows: u64,
    /// `pg_class.relpages` (summed over the partitions of a partitioned table).
    pub pages: u64,
    /// The Type messages pgoutput sends before the Relation: one per column whose type OID is
    /// 10000 or more, in column order.
    pub types: Vec<SnapshotType>,
    /// The publication's row filter for the table (PostgreSQL 15+), as SQL; the copy applies
    /// it as pgoutput does.
    pub row_filter: Option<String>,
    /// A partitioned table published through its root (`publish_via_partition_root`): copied
    /// with its partitions, never split by ctid.
    pub partitioned: bool,
}

impl SnapshotTable {
    /// A table described by `relation` alone: no primary key, no size, no user types, no row
    /// filter, not partitioned (set the public fields as needed).
    pub fn new(relation: RelationBody) -> Self {
        SnapshotTable {
            relation,
            primary_key: Vec::new(),
            estimated_rows: 0,
            pages: 0,
            types: Vec::new(),
            row_filter: None,
            partitioned: false,
        }
    }

    /// The table's label: its name, `schema.table` outside `public` (as the stream labels it).
    pub fn label(&self) -> String {
        crate::model::table_label(&self.relation)
    }
}

/// A pgoutput Type message's content: a user-defined type used by a published column.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotType {
    /// The column's type OID (a domain's own OID).
    pub oid: Oid,
    /// The namespace of the type, or of a domain's ultimate base type; `""` for `pg_catalog`.
    pub namespace: String,
    /// The type's name, or a domain's ultimate base type's name.
    pub name: String,
}

/// Why a bootstrap step failed. Each message says what and where: the table, the row or line
/// number, the column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A name or value that cannot be put into SQL.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What it names (`snapshot name`, `publication`, `table`).
        what: &'static str,
        /// The name.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The result of [`tables_query`] could not be read.
    #[error(
        "unexpected result of the snapshot table list query, row {row} (table {table}), column \
         {column:?}: {reason}"
    )]
    TablesResult {
        /// The row, from 0.
        row: usize,
        /// The table of the row, as far as known.
        table: String,
        /// The column.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A COPY text row does not parse.
    #[error("COPY text row: {0}")]
    CopyText(#[from] CopyTextError),
    /// A COPY text row of a table does not parse.
    #[error("COPY of table {table}, row {row}{}: {error}", column_suffix(.column))]
    CopyRow {
        /// The table's label.
        table: String,
        /// The row within the part, from 1.
        row: u64,
        /// The column's name, when the problem is in one column.
        column: Option<String>,
        /// What is wrong.
        error: CopyTextError,
    },
    /// The pipeline refused a synthetic message (a bug, or a table description that does not
    /// match the rows).
    #[error("bootstrap of table {table}: {error}")]
    Assemble {
        /// The table's label.
        table: String,
        /// The pipeline's error.
        error: AssembleError,
    },
    /// A synthetic message could not be encoded (a name holding NUL, more than 32767
    /// columns).
    #[error("bootstrap of table {table}: {error}")]
    Encode {
        /// The table's label.
        table: String,
        /// The encoder's error.
        error: EncodeError,
    },
    /// The [`SnapshotAssembler`] was called out of order.
    #[error("snapshot assembler: {0}")]
    Misuse(&'static str),
    /// A line of a JSONL bootstrap file is not a valid row.
    #[error("bootstrap JSONL line {line}: {reason}")]
    Jsonl {
        /// The line number (as given to [`jsonl_change`], normally from 1).
        line: usize,
        /// What is wrong, naming the table and column where there is one.
        reason: String,
    },
}

fn column_suffix(column: &Option<String>) -> String {
    match column {
        Some(c) => format!(", column {c:?}"),
        None => String::new(),
    }
}

/// Quotes an SQL identifier (`"a""b"`); NUL bytes, which no identifier can hold, are dropped.
fn quote_ident(name: &str) -> String {
    crate::replication::quote_ident_lossy(name)
}
