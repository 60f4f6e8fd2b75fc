//! The COPY statements of a snapshot: one per table, or several over ctid ranges.

use std::fmt::Write as _;

use super::{SnapshotTable, quote_ident};

/// One COPY to run inside the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyPart {
    /// The table: an index into the slice given to [`plan_copies`].
    pub table: usize,
    /// `COPY (SELECT … ) TO STDOUT`: text format, one CopyData per row.
    pub sql: String,
    /// For a part of a split table, the pages `[start, end)` it covers. The last part's SQL is
    /// open-ended (it also reads pages added since `relpages` was read); its `end` is the
    /// table's `pages`. `None` for a whole table.
    pub pages: Option<(u64, u64)>,
}

/// The COPY statements for `tables`: the parts of the biggest tables (by pages, then
/// estimated rows) first, so parallel copiers start on them.
///
/// A table is one `COPY (SELECT "c1", "c2" FROM ONLY "s"."t") TO STDOUT` (the published
/// columns; `ONLY`, as pgoutput publishes inheritance children as their own tables; the
/// publication's row filter in a WHERE clause). A table of more than `split_pages` pages
/// becomes up to `max_parts_per_table` parts of about equal page ranges, `WHERE ctid >=
/// '(a,0)'::tid AND ctid < '(b,0)'::tid`, the last one only `ctid >= '(a,0)'::tid`. A
/// partitioned table (copied through its root, partitions included) is never split.
/// `split_pages == 0` or `max_parts_per_table <= 1` turns splitting off.
pub fn plan_copies(
    tables: &[SnapshotTable],
    split_pages: u64,
    max_parts_per_table: usize,
) -> Vec<CopyPart> {
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| {
        let t = tables.get(i);
        (
            std::cmp::Reverse(t.map_or(0, |t| t.pages)),
            std::cmp::Reverse(t.map_or(0, |t| t.estimated_rows)),
            i,
        )
    });
    let mut parts = Vec::with_capacity(tables.len());
    for i in order {
        let Some(t) = tables.get(i) else { continue };
        let n = part_count(t, split_pages, max_parts_per_table);
        if n <= 1 {
            parts.push(CopyPart {
                table: i,
                sql: copy_sql(t, None),
                pages: None,
            });
            continue;
        }
        let bound = |k: u64| -> u64 {
            // pages * k / n without overflow.
            u64::try_from(u128::from(t.pages) * u128::from(k) / u128::from(n)).unwrap_or(u64::MAX)
        };
        for k in 0..n {
            let (start, end) = (bound(k), bound(k + 1));
            let last = k + 1 == n;
            parts.push(CopyPart {
                table: i,
                sql: copy_sql(t, Some((start, (!last).then_some(end)))),
                pages: Some((start, end)),
            });
        }
    }
    parts
}

/// How many parts table `t` is copied in.
fn part_count(t: &SnapshotTable, split_pages: u64, max_parts: usize) -> u64 {
    if t.partitioned || split_pages == 0 || max_parts <= 1 || t.pages <= split_pages {
        return 1;
    }
    let max = u64::try_from(max_parts).unwrap_or(u64::MAX);
    t.pages.div_ceil(split_pages).clamp(1, max)
}

/// The COPY statement of `t`, restricted to the pages `[start, end)` (`end` `None`: to the
/// end of the table) when `range` is given.
fn copy_sql(t: &SnapshotTable, range: Option<(u64, Option<u64>)>) -> String {
    let rel = &t.relation;
    let mut sql = String::with_capacity(64 + rel.columns.len() * 16);
    sql.push_str("COPY (SELECT ");
    for (i, c) in rel.columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_ident(&c.name));
    }
    sql.push_str(" FROM ");
    if !t.partitioned {
        sql.push_str("ONLY ");
    }
    sql.push_str(&quote_ident(rel.schema()));
    sql.push('.');
    sql.push_str(&quote_ident(&rel.name));
    let mut conditions = Vec::new();
    if let Some(filter) = &t.row_filter {
        conditions.push(format!("({filter})"));
    }
    if let Some((start, end)) = range {
        conditions.push(format!("ctid >= '({start},0)'::tid"));
        if let Some(end) = end {
            conditions.push(format!("ctid < '({end},0)'::tid"));
        }
    }
    for (i, c) in conditions.iter().enumerate() {
        let _ = write!(sql, "{}{c}", if i == 0 { " WHERE " } else { " AND " });
    }
    sql.push_str(") TO STDOUT");
    sql
}
