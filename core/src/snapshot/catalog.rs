//! The snapshot import statement and the table list query, and the parsing of its result.

use crate::pgoutput::{Column, Oid, RelationBody, ReplicaIdentity};
use crate::query::QueryResult;
use crate::replication::quote_literal;
use crate::source_config::TableName;
use crate::value::Json;

use super::{SnapshotError, SnapshotTable, SnapshotType};

/// `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '<name>'`: one
/// simple-query string that makes the connection's transaction read the exported snapshot.
///
/// # Errors
///
/// A name that is empty, longer than 64 bytes, or holds anything but ASCII letters, digits,
/// `-` and `_` (PostgreSQL's names look like `00000003-0000001B-1`).
pub fn import_snapshot_sql(snapshot_name: &str) -> Result<String, SnapshotError> {
    let invalid = |reason| SnapshotError::InvalidName {
        what: "snapshot name",
        value: snapshot_name.to_owned(),
        reason,
    };
    if snapshot_name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if snapshot_name.len() > 64 {
        return Err(invalid("it is longer than 64 bytes"));
    }
    if !snapshot_name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "only ASCII letters, digits, '-' and '_' are expected",
        ));
    }
    Ok(format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot_name}'"
    ))
}

/// The columns of the [`tables_query`] result, in order (what [`parse_tables_rows`] expects).
pub const TABLE_COLUMNS: [&str; 10] = [
    "oid",
    "schema",
    "name",
    "relkind",
    "replident",
    "reltuples",
    "relpages",
    "rowfilter",
    "columns",
    "primary_key",
];

/// The SELECT list and joins; the WHERE clause is appended.
///
/// Version-independent from PostgreSQL 10: the columns that newer servers added
/// (`pg_publication_tables.attnames` and `rowfilter` in 15, `pg_attribute.attgenerated` in
/// 12, `pg_publication.pubgencols` in 18: generated columns the publication publishes are
/// copied too) are read through `to_jsonb(row)`, which gives NULL where they do not exist instead of
/// failing to parse.
const TABLES_SQL: &str = "\
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name, \
c.relkind::text AS relkind, c.relreplident::text AS replident, \
sz.tuples AS reltuples, sz.pages AS relpages, \
to_jsonb(p) ->> 'rowfilter' AS rowfilter, cols.columns AS columns, pk.columns AS primary_key \
FROM pg_catalog.pg_publication_tables p \
JOIN pg_catalog.pg_publication pub ON pub.pubname = p.pubname \
JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname \
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
CROSS JOIN LATERAL (\
WITH RECURSIVE tree(relid) AS (SELECT c.oid UNION ALL \
SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.relid \
WHERE c.relkind = 'p') \
SELECT coalesce(sum(greatest(k.reltuples, 0)), 0)::int8 AS tuples, \
coalesce(sum(greatest(k.relpages, 0)), 0)::int8 AS pages \
FROM tree JOIN pg_catalog.pg_class k ON k.oid = tree.relid) sz \
CROSS JOIN LATERAL (SELECT coalesce((\
SELECT i.indkey::int2[] FROM pg_catalog.pg_index i \
WHERE i.indrelid = c.oid AND i.indisvalid AND i.indisunique AND i.indimmediate \
AND i.indpred IS NULL AND CASE c.relreplident WHEN 'd' THEN i.indisprimary \
WHEN 'i' THEN i.indisreplident ELSE false END LIMIT 1), '{}'::int2[]) AS key) ri \
CROSS JOIN LATERAL (SELECT json_agg(json_build_array(a.attname, a.atttypid::int8, \
a.atttypmod, c.relreplident = 'f' OR a.attnum = ANY (ri.key), ty.nsp, ty.typ) \
ORDER BY a.attnum)::text AS columns \
FROM pg_catalog.pg_attribute a \
LEFT JOIN LATERAL (\
WITH RECURSIVE base(typ, depth) AS (SELECT a.atttypid, 0 UNION ALL \
SELECT t.typbasetype, base.depth + 1 FROM base JOIN pg_catalog.pg_type t ON t.oid = base.typ \
WHERE t.typtype = 'd' AND base.depth < 64) \
SELECT CASE WHEN bn.nspname = 'pg_catalog' THEN '' ELSE bn.nspname::text END AS nsp, \
bt.typname::text AS typ \
FROM base JOIN pg_catalog.pg_type bt ON bt.oid = base.typ \
JOIN pg_catalog.pg_namespace bn ON bn.oid = bt.typnamespace \
WHERE a.atttypid >= 10000 ORDER BY base.depth DESC LIMIT 1) ty ON true \
WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
AND (coalesce(to_jsonb(a) ->> 'attgenerated', '') = '' \
OR (to_jsonb(pub) ? 'pubgencols' AND (to_jsonb(p) -> 'attnames') @> to_jsonb(a.attname::text))) \
AND (to_jsonb(p) -> 'attnames' IS NULL \
OR (to_jsonb(p) -> 'attnames') @> to_jsonb(a.attname::text))) cols \
CROSS JOIN LATERAL (SELECT json_agg(a.attname ORDER BY k.ord)::text AS columns \
FROM pg_catalog.pg_index i \
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
WHERE i.indrelid = c.oid AND i.indisprimary) pk";

/// One SELECT listing the tables of `publication` to copy — restricted to `tables` when it is
/// not empty (a bare name means `public`) — with everything a [`SnapshotTable`] holds, in the
/// columns [`TABLE_COLUMNS`], ordered by schema and name. The columns of each table are
/// aggregated into one JSON text column. Plain SQL: run it on an ordinary or
/// `replication=database` connection, inside the imported snapshot. Works from PostgreSQL 10.
///
/// # Errors
///
/// A name holding a NUL byte.
pub fn tables_query(publication: &str, tables: &[TableName]) -> Result<String, SnapshotError> {
    let lit = |what: &'static str, v: &str| {
        quote_literal(v).map_err(|_| SnapshotError::InvalidName {
            what,
            value: v.to_owned(),
            reason: "it contains a NUL byte",
        })
    };
    let mut sql = String::with_capacity(TABLES_SQL.len() + 100 + 40 * tables.len());
    sql.push_str(TABLES_SQL);
    sql.push_str(" WHERE p.pubname = ");
    sql.push_str(&lit("publication", publication)?);
    if !tables.is_empty() {
        sql.push_str(" AND (n.nspname, c.relname) IN (");
        for (i, t) in tables.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&lit("table", t.schema_or_public())?);
            sql.push_str(", ");
            sql.push_str(&lit("table", &t.name)?);
            sql.push(')');
        }
        sql.push(')');
    }
    sql.push_str(" ORDER BY n.nspname, c.relname");
    Ok(sql)
}

/// Reads the result of [`tables_query`].
///
/// # Errors
///
/// A missing column, or a value that is not what the query produces; the error names the row,
/// table and column.
pub fn parse_tables(result: &QueryResult) -> Result<Vec<SnapshotTable>, SnapshotError> {
    let mut idx = [0usize; TABLE_COLUMNS.len()];
    for (slot, name) in idx.iter_mut().zip(TABLE_COLUMNS) {
        *slot = result
            .column_index(name)
            .ok_or_else(|| SnapshotError::TablesResult {
                row: 0,
                table: "?".to_owned(),
                column: name,
                reason: "the result has no such column".to_owned(),
            })?;
    }
    let mut out = Vec::with_capacity(result.rows.len());
    for (row, data) in result.rows.iter().enumerate() {
        let mut cells: [Option<&str>; TABLE_COLUMNS.len()] = [None; TABLE_COLUMNS.len()];
        for ((cell, &i), name) in cells.iter_mut().zip(&idx).zip(TABLE_COLUMNS) {
            *cell = match data.values.get(i).and_then(Option::as_ref) {
                None => None,
                Some(b) => {
                    Some(
                        std::str::from_utf8(b).map_err(|_| SnapshotError::TablesResult {
                            row,
                            table: "?".to_owned(),
                            column: name,
                            reason: "not UTF-8 text".to_owned(),
                        })?,
                    )
                }
            };
        }
        out.push(parse_row(row, &cells)?);
    }
    Ok(out)
}

/// Reads rows of the [`tables_query`] result given as text values in the order of
/// [`TABLE_COLUMNS`] (`None` for NULL) — for results that did not come as a [`QueryResult`].
///
/// # Errors
///
/// As [`parse_tables`]; a row with fewer columns is an error.
pub fn parse_tables_rows<I>(rows: I) -> Result<Vec<SnapshotTable>, SnapshotError>
where
    I: IntoIterator<Item = Vec<Option<String>>>,
{
    let mut out = Vec::new();
    for (row, values) in rows.into_iter().enumerate() {
        let mut cells: [Option<&str>; TABLE_COLUMNS.len()] = [None; TABLE_COLUMNS.len()];
        for (i, (cell, name)) in cells.iter_mut().zip(TABLE_COLUMNS).enumerate() {
            match values.get(i) {
                Some(v) => *cell = v.as_deref(),
                None => {
                    return Err(SnapshotError::TablesResult {
                        row,
                        table: "?".to_owned(),
                        column: name,
                        reason: format!("the row has only {} columns", values.len()),
                    });
                }
            }
        }
        out.push(parse_row(row, &cells)?);
    }
    Ok(out)
}

/// One row, cells in the order of [`TABLE_COLUMNS`].
fn parse_row(
    row: usize,
    cells: &[Option<&str>; TABLE_COLUMNS.len()],
) -> Result<SnapshotTable, SnapshotError> {
    let [
        oid,
        schema,
        name,
        relkind,
        replident,
        tuples,
        pages,
        filter,
        columns,
        pk,
    ] = *cells;
    let table = format!("{}.{}", schema.unwrap_or("?"), name.unwrap_or("?"));
    let bad = |column: &'static str, reason: String| SnapshotError::TablesResult {
        row,
        table: table.clone(),
        column,
        reason,
    };
    let need = |column: &'static str, v: Option<&str>| -> Result<String, SnapshotError> {
        v.map(str::to_owned)
            .ok_or_else(|| bad(column, "NULL".to_owned()))
    };
    let number = |column: &'static str, v: Option<&str>| -> Result<i64, SnapshotError> {
        let t = v.ok_or_else(|| bad(column, "NULL".to_owned()))?;
        t.trim()
            .parse::<i64>()
            .map_err(|_| bad(column, format!("{t:?} is not an integer")))
    };
    let oid =
        u32::try_from(number("oid", oid)?).map_err(|_| bad("oid", "not an OID".to_owned()))?;
    let mut namespace = need("schema", schema)?;
    if namespace == "pg_catalog" {
        namespace.clear();
    }
    let name = need("name", name)?;
    let replica_identity = match replident {
        Some("d") => ReplicaIdentity::Default,
        Some("n") => ReplicaIdentity::Nothing,
        Some("f") => ReplicaIdentity::Full,
        Some("i") => ReplicaIdentity::Index,
        other => {
            return Err(bad(
                "replident",
                format!("unknown replica identity {other:?}"),
            ));
        }
    };
    let partitioned = relkind == Some("p");
    let estimated_rows = u64::try_from(number("reltuples", tuples)?).unwrap_or(0);
    let pages = u64::try_from(number("relpages", pages)?).unwrap_or(0);
    // NULL: a table without columns (json_agg of nothing).
    let (columns, types) = parse_columns(columns.unwrap_or("[]")).map_err(|r| bad("columns", r))?;
    let primary_key = match pk {
        None => Vec::new(),
        Some(t) => parse_names(t).map_err(|r| bad("primary_key", r))?,
    };
    Ok(SnapshotTable {
        relation: RelationBody {
            xid: None,
            oid: Oid(oid),
            namespace,
            name,
            replica_identity,
            columns,
        },
        primary_key,
        estimated_rows,
        pages,
        types,
        row_filter: filter.map(str::to_owned),
        partitioned,
    })
}

/// `[[name, type_oid, typmod, key, type_namespace, type_name], …]`.
fn parse_columns(text: &str) -> Result<(Vec<Column>, Vec<SnapshotType>), String> {
    let json = Json::parse(text).map_err(|e| e.to_string())?;
    let Json::Array(items) = json else {
        return Err("not a JSON array".to_owned());
    };
    let mut columns = Vec::with_capacity(items.len());
    let mut types = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let bad = |what: &str| format!("column #{}: {what}", i + 1);
        let Json::Array(f) = item else {
            return Err(bad("not an array"));
        };
        let [name, ty, typmod, key, nsp, tname] = f.as_slice() else {
            return Err(bad("expected 6 fields"));
        };
        let Json::String(name) = name else {
            return Err(bad("name is not a string"));
        };
        let int = |v: &Json| match v {
            Json::Number(n) => n.parse::<i64>().ok(),
            _ => None,
        };
        let type_oid = int(ty)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("type OID is not an OID"))?;
        let type_modifier = int(typmod)
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| bad("typmod is not an integer"))?;
        let Json::Bool(key) = key else {
            return Err(bad("key flag is not a boolean"));
        };
        match (nsp, tname) {
            (Json::String(namespace), Json::String(tname)) => types.push(SnapshotType {
                oid: Oid(type_oid),
                namespace: namespace.clone(),
                name: tname.clone(),
            }),
            (Json::Null, Json::Null) => {}
            _ => return Err(bad("type namespace and name are not strings")),
        }
        columns.push(Column {
            flags: if *key { Column::KEY_FLAG } else { 0 },
            name: name.clone(),
            type_oid: Oid(type_oid),
            type_modifier,
        });
    }
    Ok((columns, types))
}

/// `["a", "b"]`.
fn parse_names(text: &str) -> Result<Vec<String>, String> {
    match Json::parse(text).map_err(|e| e.to_string())? {
        Json::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Json::String(s) => Ok(s),
                _ => Err("not an array of strings".to_owned()),
            })
            .collect(),
        _ => Err("not a JSON array".to_owned()),
    }
}
