//! SQL and replication-command text, quoting, and the parsing of catalog query results.

use std::time::Duration;

use crate::lsn::Lsn;
use crate::pgoutput::Oid;
use crate::query::{QueryResult, ResultError};
use crate::value::{TypeKind, TypeRegistry};

use super::SessionError;
pub use crate::source_config::TableName;

// ------------------------------------------------------------------------------- quoting

/// Quotes `name` as an SQL identifier (`"name"`, inner `"` doubled). Also valid in
/// replication commands. Fails on a NUL byte, which no identifier can hold.
pub fn quote_ident(name: &str) -> Result<String, SessionError> {
    if name.contains('\0') {
        return Err(SessionError::InvalidOption {
            option: "identifier",
            reason: format!("{name:?} contains a NUL byte"),
        });
    }
    Ok(quote_ident_lossy(name))
}

/// [`quote_ident`] for messages: NUL bytes are dropped.
pub(crate) fn quote_ident_lossy(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars().filter(|&c| c != '\0') {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Quotes `value` as an SQL string literal, independent of `standard_conforming_strings`:
/// `'it''s'`, or `E'a\\b'` when it holds a backslash (as PostgreSQL's `quote_literal`). Fails
/// on a NUL byte.
pub fn quote_literal(value: &str) -> Result<String, SessionError> {
    reject_nul(value)?;
    let mut s = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        s.push('E');
    }
    s.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            s.push(c);
        }
        s.push(c);
    }
    s.push('\'');
    Ok(s)
}

/// Quotes `value` as a string constant of the replication command grammar, which knows only
/// `''` doubling (no backslash escapes, no `E''`).
pub(crate) fn quote_command_literal(value: &str) -> Result<String, SessionError> {
    reject_nul(value)?;
    Ok(format!("'{}'", value.replace('\'', "''")))
}

fn reject_nul(value: &str) -> Result<(), SessionError> {
    if value.contains('\0') {
        return Err(SessionError::InvalidOption {
            option: "string value",
            reason: format!("{value:?} contains a NUL byte"),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------- table names

/// `"s"."t", "public"."u"` for `s.t, u` (the display form, split at the first dot).
pub(crate) fn quote_table_list(tables: &[String]) -> String {
    tables
        .iter()
        .map(|t| match t.split_once('.') {
            Some((s, n)) => format!("{}.{}", quote_ident_lossy(s), quote_ident_lossy(n)),
            None => quote_ident_lossy(t),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------------------ SQL text

/// `wal_level` and `wal_sender_timeout`.
pub(crate) const SETTINGS_QUERY: &str = "SELECT name, setting FROM pg_catalog.pg_settings \
     WHERE name IN ('wal_level', 'wal_sender_timeout')";

/// Which of `tables` exist (as tables or partitioned tables).
pub(crate) fn tables_exist_query(tables: &[TableName]) -> Result<String, SessionError> {
    let mut list = Vec::with_capacity(tables.len());
    for t in tables {
        list.push(format!(
            "({}, {})",
            quote_literal(t.schema_or_public())?,
            quote_literal(&t.name)?
        ));
    }
    Ok(format!(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND (n.nspname, c.relname) IN ({})",
        list.join(", ")
    ))
}

/// The publication, if it exists.
pub(crate) fn publication_query(publication: &str) -> Result<String, SessionError> {
    Ok(format!(
        "SELECT pubname, puballtables FROM pg_catalog.pg_publication WHERE pubname = {}",
        quote_literal(publication)?
    ))
}

/// `CREATE PUBLICATION` for `tables`, or `FOR ALL TABLES` when there are none.
pub(crate) fn create_publication(
    publication: &str,
    tables: &[TableName],
) -> Result<String, SessionError> {
    let target = if tables.is_empty() {
        "ALL TABLES".to_owned()
    } else {
        format!(
            "TABLE {}",
            tables
                .iter()
                .map(TableName::quoted)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(format!(
        "CREATE PUBLICATION {} FOR {target}",
        quote_ident(publication)?
    ))
}

/// The tables of the publication.
pub(crate) fn publication_tables_query(publication: &str) -> Result<String, SessionError> {
    Ok(format!(
        "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = {}",
        quote_literal(publication)?
    ))
}

/// The primary-key columns of the publication's tables, in key order.
pub(crate) fn primary_keys_query(publication: &str) -> Result<String, SessionError> {
    Ok(format!(
        "SELECT c.oid, n.nspname, c.relname, a.attname \
         FROM pg_catalog.pg_publication_tables p \
         JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname \
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
         LEFT JOIN (pg_catalog.pg_index i \
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) \
         ON i.indrelid = c.oid AND i.indisprimary \
         WHERE p.pubname = {} ORDER BY n.nspname, c.relname, k.ord",
        quote_literal(publication)?
    ))
}

/// The most user-defined types [`user_types_query`] starts from (the chains of their element,
/// base and range types come on top).
pub const USER_TYPES_LIMIT: usize = 10_000;

/// The user types query. The arguments are empty before PostgreSQL 14: `$mr_types` adds
/// multiranges to the types listed, `$mr_deps` the multirange → range edge to the chains,
/// `$mr_join` and `$mr_range` the multirange's range type to the result.
macro_rules! user_types_sql {
    ($mr_types:literal, $mr_deps:literal, $mr_join:literal, $mr_range:literal) => {
        concat!(
            "WITH RECURSIVE seed AS (SELECT t.oid FROM pg_catalog.pg_type t \
             WHERE t.oid >= 16384 AND t.typtype IN ('c', 'd', 'e', 'r'",
            $mr_types,
            ", 'b') AND (t.typtype <> 'b' OR t.typcategory = 'A') \
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
             WHERE c.oid = t.typrelid AND c.relkind <> 'c') \
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e \
             JOIN pg_catalog.pg_class c ON c.oid = e.typrelid \
             WHERE e.oid = t.typelem AND c.relkind <> 'c') \
             ORDER BY t.oid LIMIT 10000), \
             chain(oid) AS (SELECT oid FROM seed UNION \
             SELECT d.oid FROM chain k JOIN pg_catalog.pg_type t ON t.oid = k.oid \
             LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid",
            $mr_join,
            " CROSS JOIN LATERAL (VALUES (t.typelem), (t.typbasetype), (r.rngsubtype)",
            $mr_deps,
            ") AS d(oid) WHERE d.oid <> 0) \
             SELECT t.oid, n.nspname, t.typname, t.typtype, t.typcategory, t.typelem, \
             t.typbasetype, coalesce(r.rngsubtype, 0) AS rngsubtype, ",
            $mr_range,
            " AS rngtypid FROM chain k JOIN pg_catalog.pg_type t ON t.oid = k.oid \
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
             LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid",
            $mr_join,
            " ORDER BY t.oid LIMIT 20000"
        )
    };
}

/// [`user_types_query`] for PostgreSQL 14 and later (multiranges).
const USER_TYPES_QUERY_14: &str = user_types_sql!(
    ", 'm'",
    ", (m.rngtypid)",
    " LEFT JOIN pg_catalog.pg_range m ON m.rngmultitypid = t.oid",
    "coalesce(m.rngtypid, 0)"
);

/// [`user_types_query`] before PostgreSQL 14 (no multiranges, no `rngmultitypid`).
const USER_TYPES_QUERY_10: &str = user_types_sql!("", "", "", "0::pg_catalog.oid");

/// The columns [`user_types_query`] returns, in order (read by name by [`load_user_types`]).
pub const USER_TYPE_COLUMNS: [&str; 9] = [
    "oid",
    "nspname",
    "typname",
    "typtype",
    "typcategory",
    "typelem",
    "typbasetype",
    "rngsubtype",
    "rngtypid",
];

/// The catalog query that lists the database's user-defined types for [`load_user_types`],
/// in the SQL of a server of version `server_version_num` (`150018` for 15.18).
///
/// It lists every type with an OID of at least 16384 (`FirstNormalObjectId`: created after
/// `initdb`) that is an enum, a domain, a range, a multirange, a standalone composite type or
/// an array — not the row types of tables, views and sequences nor their arrays — at most
/// [`USER_TYPES_LIMIT`] of them, plus the chains of their element, base, range subtype and
/// multirange range types (which may be built in or older). Columns: `oid`, `nspname`,
/// `typname`, `typtype`, `typcategory`, `typelem`, `typbasetype`, `rngsubtype` (0 when not a
/// range) and `rngtypid` (the range type of a multirange, 0 otherwise).
///
/// It reads only `pg_type`, `pg_range`, `pg_class` and `pg_namespace`, which every role may
/// read, and works on replication connections (`replication=database`) as on ordinary ones;
/// run inside an imported snapshot it sees the types as of that snapshot.
pub fn user_types_query(server_version_num: u32) -> &'static str {
    if server_version_num >= 140_000 {
        USER_TYPES_QUERY_14
    } else {
        USER_TYPES_QUERY_10
    }
}

/// The slot, if it exists; with `wal_status` from PostgreSQL 13 and `invalidation_reason`
/// from 17.
pub(crate) fn slot_query(slot: &str, server_version: u32) -> Result<String, SessionError> {
    let extra = match server_version {
        v if v >= 170_000 => ", wal_status, invalidation_reason, synced",
        v if v >= 130_000 => ", wal_status",
        _ => "",
    };
    Ok(format!(
        "SELECT slot_name, plugin, slot_type, database, active, active_pid, confirmed_flush_lsn\
         {extra} FROM pg_catalog.pg_replication_slots WHERE slot_name = {}",
        quote_literal(slot)?
    ))
}

/// `CREATE_REPLICATION_SLOT` in the syntax of the server version: the parenthesized options
/// from PostgreSQL 15, the old keywords before.
pub(crate) fn create_slot_command(
    slot: &str,
    temporary: bool,
    export_snapshot: bool,
    two_phase: bool,
    failover: bool,
    server_version: u32,
) -> Result<String, SessionError> {
    let mut s = format!("CREATE_REPLICATION_SLOT {}", quote_ident(slot)?);
    if temporary {
        s.push_str(" TEMPORARY");
    }
    s.push_str(" LOGICAL pgoutput");
    if server_version >= 150_000 {
        s.push_str(if export_snapshot {
            " (SNAPSHOT 'export'"
        } else {
            " (SNAPSHOT 'nothing'"
        });
        if two_phase {
            s.push_str(", TWO_PHASE true");
        }
        // Refused before 17 (options check).
        if failover {
            s.push_str(", FAILOVER true");
        }
        s.push(')');
    } else {
        // two_phase is refused before 15 (options check), so only the snapshot keyword.
        s.push_str(if export_snapshot {
            " EXPORT_SNAPSHOT"
        } else {
            " NOEXPORT_SNAPSHOT"
        });
    }
    Ok(s)
}

/// The name of the temporary slot a bootstrap of `slot` exports its snapshot from:
/// `<slot>_boot`, cut to fit the 63-byte limit.
pub(crate) fn bootstrap_slot_name(slot: &str) -> String {
    const SUFFIX: &str = "_boot";
    let keep = 63usize.saturating_sub(SUFFIX.len()).min(slot.len());
    // Slot names are ASCII (validated), so any cut is a character boundary.
    let base = slot.get(..keep).unwrap_or(slot);
    format!("{base}{SUFFIX}")
}

/// Creates the permanent slot `slot` as a copy of the temporary `temp` (PostgreSQL 12+): the
/// same plugin, restart and confirmed positions.
pub(crate) fn copy_slot_command(temp: &str, slot: &str) -> Result<String, SessionError> {
    Ok(format!(
        "SELECT slot_name, lsn FROM pg_catalog.pg_copy_logical_replication_slot({}, {}, false)",
        quote_literal(temp)?,
        quote_literal(slot)?
    ))
}

/// The SQL that drops replication slot `slot` when no consumer is using it (and does nothing
/// when it is in use or missing), for an ordinary connection: `SELECT
/// pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE
/// slot_name = '…' AND active_pid IS NULL`. It returns one row per slot dropped. (On a
/// replication connection the session uses the `DROP_REPLICATION_SLOT` command instead.)
///
/// # Errors
///
/// A name holding a NUL byte.
pub fn drop_slot_sql(slot: &str) -> Result<String, SessionError> {
    Ok(format!(
        "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM \
         pg_catalog.pg_replication_slots WHERE slot_name = {} AND active_pid IS NULL",
        quote_literal(slot)?
    ))
}

/// `DROP_REPLICATION_SLOT` (without WAIT: the slot was seen inactive).
pub(crate) fn drop_slot_command(slot: &str) -> Result<String, SessionError> {
    Ok(format!("DROP_REPLICATION_SLOT {}", quote_ident(slot)?))
}

/// `START_REPLICATION SLOT "s" LOGICAL X/X (name 'value', …)`.
pub(crate) fn start_replication_command(
    slot: &str,
    lsn: Lsn,
    options: &[(&'static str, String)],
) -> Result<String, SessionError> {
    let mut s = format!(
        "START_REPLICATION SLOT {} LOGICAL {lsn}",
        quote_ident(slot)?
    );
    if !options.is_empty() {
        let mut parts = Vec::with_capacity(options.len());
        for (name, value) in options {
            parts.push(format!("{name} {}", quote_command_literal(value)?));
        }
        s.push_str(" (");
        s.push_str(&parts.join(", "));
        s.push(')');
    }
    Ok(s)
}

// -------------------------------------------------------------------------- result parsing

fn bad_result(what: &str, e: ResultError) -> SessionError {
    SessionError::Protocol(format!("unexpected result of the {what} query: {e}"))
}

/// `wal_level` and `wal_sender_timeout` as read from `pg_settings`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) wal_level: Option<String>,
    /// `None` when unknown; `Some(ZERO)` when disabled.
    pub(crate) wal_sender_timeout: Option<Duration>,
}

pub(crate) fn parse_settings(r: &QueryResult) -> Result<Settings, SessionError> {
    let mut s = Settings::default();
    for row in 0..r.rows.len() {
        let name = r.text(row, "name").map_err(|e| bad_result("settings", e))?;
        let value = r
            .text(row, "setting")
            .map_err(|e| bad_result("settings", e))?;
        match (name, value) {
            (Some("wal_level"), Some(v)) => s.wal_level = Some(v.to_owned()),
            (Some("wal_sender_timeout"), Some(v)) => {
                let ms: u64 = v.trim().parse().map_err(|_| {
                    SessionError::Protocol(format!(
                        "wal_sender_timeout setting {v:?} is not a number of milliseconds"
                    ))
                })?;
                s.wal_sender_timeout = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
    }
    Ok(s)
}

/// Rows of `(schema, table)` under the given column names.
pub(crate) fn parse_tables(
    r: &QueryResult,
    schema_col: &str,
    table_col: &str,
    what: &str,
) -> Result<Vec<TableName>, SessionError> {
    let mut out = Vec::with_capacity(r.rows.len());
    for row in 0..r.rows.len() {
        let schema = r.text(row, schema_col).map_err(|e| bad_result(what, e))?;
        let name = r.text(row, table_col).map_err(|e| bad_result(what, e))?;
        if let (Some(schema), Some(name)) = (schema, name) {
            out.push(TableName {
                schema: Some(schema.to_owned()),
                name: name.to_owned(),
            });
        }
    }
    Ok(out)
}

/// `Some(puballtables)` when the publication exists.
pub(crate) fn parse_publication(r: &QueryResult) -> Result<Option<bool>, SessionError> {
    if r.rows.is_empty() {
        return Ok(None);
    }
    let all = r
        .text(0, "puballtables")
        .map_err(|e| bad_result("publication", e))?;
    Ok(Some(all == Some("t")))
}

/// A table of the publication, from [`primary_keys_query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PublishedTable {
    /// The relation's OID (`None` when the result gives NULL: the table is then known by name
    /// only).
    pub(crate) oid: Option<Oid>,
    /// Its current name.
    pub(crate) table: TableName,
    /// Its primary-key columns in key order; empty without a primary key.
    pub(crate) primary_key: Vec<String>,
}

/// The publication's tables with their primary keys, columns in key order (rows are ordered
/// by table, then key position; a table without a primary key has one row with a NULL
/// `attname`).
pub(crate) fn parse_primary_keys(r: &QueryResult) -> Result<Vec<PublishedTable>, SessionError> {
    let mut out: Vec<PublishedTable> = Vec::new();
    for row in 0..r.rows.len() {
        let get = |col| {
            r.text(row, col)
                .map_err(|e| bad_result("primary key", e))
                .map(|v| v.map(str::to_owned))
        };
        let oid = match get("oid")? {
            None => None,
            Some(text) => Some(Oid(text.parse::<u32>().map_err(|_| {
                SessionError::Protocol(format!(
                    "unexpected result of the primary key query: oid {text:?}"
                ))
            })?)),
        };
        let table = TableName {
            schema: Some(get("nspname")?.unwrap_or_default()),
            name: get("relname")?.unwrap_or_default(),
        };
        let column = get("attname")?;
        match out.last_mut() {
            Some(t) if t.table == table && t.oid == oid => t.primary_key.extend(column),
            _ => out.push(PublishedTable {
                oid,
                table,
                primary_key: column.into_iter().collect(),
            }),
        }
    }
    Ok(out)
}

/// Fills `registry` with the user-defined types of a [`user_types_query`] result, with their
/// namespace, name and kind, and returns how many were registered.
///
/// Enums become [`TypeKind::Enum`], domains [`TypeKind::Domain`] over their base type,
/// ranges [`TypeKind::Range`] over their subtype, multiranges [`TypeKind::Multirange`] of
/// their range type, composites [`TypeKind::Composite`], and array types (category `A` with
/// an element type) [`TypeKind::Array`]. Other rows (base types such as extension types,
/// whose values stay text) and built-in types are skipped. A kind registered this way is
/// kept when a pgoutput Type message for the type arrives later, so stream values of enums,
/// domains, user ranges and arrays of them decode to typed values in text and binary mode.
///
/// # Errors
///
/// [`SessionError::Protocol`] when a column is missing or a value is not what the query
/// returns; the types of the rows before it are registered.
pub fn load_user_types(
    result: &QueryResult,
    registry: &mut TypeRegistry,
) -> Result<usize, SessionError> {
    let bad = |e| bad_result("user types", e);
    let mut registered = 0;
    for row in 0..result.rows.len() {
        let oid = |col: &'static str| -> Result<Oid, SessionError> {
            result
                .parse::<u32>(row, col, "type OID")
                .map(Oid)
                .map_err(bad)
        };
        let text = |col: &'static str| -> Result<&str, SessionError> {
            result
                .text(row, col)
                .map(Option::unwrap_or_default)
                .map_err(bad)
        };
        let kind = match (text("typtype")?, text("typcategory")?) {
            ("e", _) => TypeKind::Enum,
            ("d", _) => TypeKind::Domain {
                base: oid("typbasetype")?,
            },
            ("r", _) => TypeKind::Range {
                subtype: oid("rngsubtype")?,
            },
            ("m", _) => TypeKind::Multirange {
                range: oid("rngtypid")?,
            },
            ("c", _) => TypeKind::Composite,
            (_, "A") => TypeKind::Array {
                element: oid("typelem")?,
            },
            _ => continue,
        };
        let invalid = match &kind {
            TypeKind::Domain { base: t }
            | TypeKind::Range { subtype: t }
            | TypeKind::Multirange { range: t }
            | TypeKind::Array { element: t } => *t == Oid::INVALID,
            _ => false,
        };
        if invalid {
            continue;
        }
        if registry.register_named(oid("oid")?, text("nspname")?, text("typname")?, kind) {
            registered += 1;
        }
    }
    Ok(registered)
}

/// A row of `pg_replication_slots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotInfo {
    pub(crate) plugin: Option<String>,
    pub(crate) slot_type: String,
    pub(crate) database: Option<String>,
    pub(crate) active: bool,
    pub(crate) active_pid: Option<i32>,
    pub(crate) confirmed_flush: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub(crate) wal_status: Option<String>,
    /// Why the server invalidated the slot (PostgreSQL 17+).
    pub(crate) invalidation_reason: Option<String>,
    /// A failover slot synchronized from the primary onto this standby (PostgreSQL 17+).
    pub(crate) synced: bool,
}

impl SlotInfo {
    /// Why the slot can no longer stream, if the server invalidated it.
    pub(crate) fn invalidated(&self) -> Option<String> {
        match (&self.invalidation_reason, self.wal_status.as_deref()) {
            (Some(reason), _) => Some(reason.clone()),
            (None, Some("lost")) => Some("wal_status lost".to_owned()),
            _ => None,
        }
    }
}

pub(crate) fn parse_slot(r: &QueryResult) -> Result<Option<SlotInfo>, SessionError> {
    if r.rows.is_empty() {
        return Ok(None);
    }
    let text = |col| {
        r.text(0, col)
            .map_err(|e| bad_result("replication slot", e))
            .map(|v| v.map(str::to_owned))
    };
    let active_pid = match text("active_pid")? {
        Some(p) => Some(
            p.parse()
                .map_err(|_| SessionError::Protocol(format!("active_pid {p:?} is not a PID")))?,
        ),
        None => None,
    };
    let confirmed_flush = match text("confirmed_flush_lsn")? {
        Some(l) => Some(l.parse().map_err(|_| {
            SessionError::Protocol(format!("confirmed_flush_lsn {l:?} is not an LSN"))
        })?),
        None => None,
    };
    Ok(Some(SlotInfo {
        plugin: text("plugin")?,
        slot_type: text("slot_type")?.unwrap_or_default(),
        database: text("database")?,
        active: text("active")?.as_deref() == Some("t"),
        active_pid,
        confirmed_flush,
        // Absent before PostgreSQL 13 (17): not asked for.
        wal_status: text("wal_status").ok().flatten(),
        invalidation_reason: text("invalidation_reason").ok().flatten(),
        synced: text("synced").ok().flatten().as_deref() == Some("t"),
    }))
}

/// The result of `CREATE_REPLICATION_SLOT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CreatedSlot {
    pub(crate) slot_name: String,
    pub(crate) consistent_point: Lsn,
    pub(crate) snapshot_name: Option<String>,
}

pub(crate) fn parse_created_slot(r: &QueryResult) -> Result<CreatedSlot, SessionError> {
    let bad = |e| bad_result("CREATE_REPLICATION_SLOT", e);
    Ok(CreatedSlot {
        slot_name: r
            .text(0, "slot_name")
            .map_err(bad)?
            .unwrap_or_default()
            .to_owned(),
        consistent_point: r.parse(0, "consistent_point", "LSN").map_err(bad)?,
        snapshot_name: r.text(0, "snapshot_name").map_err(bad)?.map(str::to_owned),
    })
}

/// The PID in `replication slot "s" is active for PID 13852`.
pub(crate) fn pid_from_message(message: &str) -> Option<i32> {
    let tail = message.rsplit_once("PID ")?.1;
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(quote_ident("Slot").unwrap(), "\"Slot\"");
        assert!(quote_ident("a\0").is_err());
        assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(quote_literal("a\\b'").unwrap(), "E'a\\\\b'''");
        assert!(quote_literal("\0").is_err());
        assert_eq!(quote_command_literal("a'b\\").unwrap(), "'a''b\\'");
        assert!(quote_command_literal("x\0").is_err());
    }

    #[test]
    fn table_names() {
        let t = |s: &str| {
            TableName::parse(s)
                .map(TableName::resolved)
                .map(|t| (t.schema_or_public().to_owned(), t.name))
        };
        assert_eq!(t("users").unwrap(), ("public".into(), "users".into()));
        assert_eq!(t("s.Users").unwrap(), ("s".into(), "Users".into()));
        assert_eq!(
            t("\"a.b\".\"c\"\"d\"").unwrap(),
            ("a.b".into(), "c\"d".into())
        );
        for bad in ["", "a.", ".a", "a.b.c", "\"a", "\"a\"b", "a\0"] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            TableName::parse("s.t").unwrap().quoted(),
            "\"s\".\"t\"".to_owned()
        );
        assert_eq!(
            quote_table_list(&["s.t".into(), "u".into()]),
            "\"s\".\"t\", \"u\""
        );
    }

    #[test]
    fn slot_commands_by_version() {
        assert_eq!(
            create_slot_command("s", false, false, false, false, 160000).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" LOGICAL pgoutput (SNAPSHOT 'nothing')"
        );
        assert_eq!(
            create_slot_command("s", true, true, true, false, 150000).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export', TWO_PHASE true)"
        );
        assert_eq!(
            create_slot_command("s", false, false, false, false, 140010).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" LOGICAL pgoutput NOEXPORT_SNAPSHOT"
        );
        assert_eq!(
            create_slot_command("s", true, true, false, false, 130000).unwrap(),
            "CREATE_REPLICATION_SLOT \"s\" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT"
        );
    }

    fn user_types_result(rows: &[[&str; 9]]) -> QueryResult {
        let rows: Vec<Vec<Option<&str>>> = rows
            .iter()
            .map(|r| r.iter().map(|v| Some(*v)).collect())
            .collect();
        QueryResult::from_text_rows(&USER_TYPE_COLUMNS, &rows)
    }

    #[test]
    fn user_types_by_kind() {
        let r = user_types_result(&[
            // A built-in reached through a chain: skipped.
            [
                "1700",
                "pg_catalog",
                "numeric",
                "b",
                "N",
                "0",
                "0",
                "0",
                "0",
            ],
            // An extension's base type: nothing to register.
            ["16390", "public", "citext", "b", "S", "0", "0", "0", "0"],
            [
                "16391", "public", "_citext", "b", "A", "16390", "0", "0", "0",
            ],
            ["16400", "s", "mood", "e", "E", "0", "0", "0", "0"],
            ["16401", "s", "_mood", "b", "A", "16400", "0", "0", "0"],
            ["16402", "s", "moods", "d", "A", "0", "16401", "0", "0"],
            [
                "16403",
                "public",
                "floatrange",
                "r",
                "R",
                "0",
                "0",
                "701",
                "0",
            ],
            [
                "16404",
                "public",
                "floatmultirange",
                "m",
                "R",
                "0",
                "0",
                "0",
                "16403",
            ],
            ["16405", "public", "pair", "c", "C", "0", "0", "0", "0"],
            // Inconsistent rows: skipped.
            ["16406", "public", "broken", "d", "N", "0", "0", "0", "0"],
            ["16407", "public", "_broken", "b", "A", "0", "0", "0", "0"],
        ]);
        let mut reg = TypeRegistry::new();
        assert_eq!(load_user_types(&r, &mut reg).unwrap(), 7);
        assert_eq!(reg.len(), 7);
        let kind = |oid| reg.get(Oid(oid)).map(|t| t.kind.clone());
        assert_eq!(kind(16390), None);
        assert_eq!(
            kind(16391),
            Some(TypeKind::Array {
                element: Oid(16390)
            })
        );
        assert_eq!(kind(16400), Some(TypeKind::Enum));
        let mood = reg.get(Oid(16400)).unwrap();
        assert_eq!((mood.namespace.as_str(), mood.name.as_str()), ("s", "mood"));
        assert_eq!(
            kind(16401),
            Some(TypeKind::Array {
                element: Oid(16400)
            })
        );
        assert_eq!(kind(16402), Some(TypeKind::Domain { base: Oid(16401) }));
        assert_eq!(
            kind(16403),
            Some(TypeKind::Range {
                subtype: Oid::FLOAT8
            })
        );
        assert_eq!(
            kind(16404),
            Some(TypeKind::Multirange { range: Oid(16403) })
        );
        assert_eq!(kind(16405), Some(TypeKind::Composite));
        assert_eq!(kind(16406), None);
        assert_eq!(kind(16407), None);
    }

    #[test]
    fn user_types_errors() {
        let mut reg = TypeRegistry::new();
        let bad = user_types_result(&[
            ["16400", "s", "mood", "e", "E", "0", "0", "0", "0"],
            ["16401", "s", "_mood", "b", "A", "x", "0", "0", "0"],
        ]);
        let e = load_user_types(&bad, &mut reg).unwrap_err();
        assert!(matches!(e, SessionError::Protocol(_)), "{e}");
        assert!(e.to_string().contains("typelem"), "{e}");
        assert_eq!(reg.len(), 1, "the rows before are registered");
        let mut missing =
            user_types_result(&[["16400", "s", "mood", "e", "E", "0", "0", "0", "0"]]);
        missing.columns.truncate(3);
        assert!(load_user_types(&missing, &mut TypeRegistry::new()).is_err());
        assert_eq!(
            load_user_types(&QueryResult::default(), &mut reg).unwrap(),
            0
        );
    }

    #[test]
    fn pid_parsing() {
        assert_eq!(
            pid_from_message("replication slot \"s\" is active for PID 13852"),
            Some(13852)
        );
        assert_eq!(pid_from_message("no pid here"), None);
    }
}
