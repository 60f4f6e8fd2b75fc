//! [`PostgresSourceConfig::validate`] and table-name parsing.

use std::collections::HashSet;
use std::fmt;

use super::{
    BootstrapMode, ConfigError, DEFAULT_MAX_FRAME_LEN, MIN_MAX_FRAME_LEN,
    MIN_SPILL_THRESHOLD_BYTES, PostgresSourceConfig,
};
use crate::config::{ChannelBinding, SslMode};

/// PostgreSQL's identifier limit (NAMEDATALEN − 1).
const MAX_NAME_BYTES: usize = 63;

/// Accepted `status_interval_ms` values.
pub const STATUS_INTERVAL_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// A table named in the configuration: `table` or `schema.table`.
///
/// Names are taken as written, without case folding, because they are matched against the
/// relation names PostgreSQL reports (as drasi-source-postgres does). A part may be double-quoted to
/// contain dots or quotes (`"odd.name"`, `"say ""hi"""`); quotes are removed. Parts must be
/// non-empty, at most 63 bytes, without NUL characters or surrounding spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName {
    /// The schema, when qualified.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// Parses `table` or `schema.table`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<TableName, String> {
        let mut parts = split_parts(s)?.into_iter();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, None) => Ok(TableName { schema: None, name }),
            (Some(schema), Some(name), None) => Ok(TableName {
                schema: Some(schema),
                name,
            }),
            _ => Err("has more than two dot-separated parts".to_owned()),
        }
    }

    /// The schema, `public` when unqualified.
    pub fn schema_or_public(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// The same table with its schema always given (`public` for an unqualified name), as
    /// the server names it.
    pub fn resolved(self) -> TableName {
        TableName {
            schema: Some(self.schema_or_public().to_owned()),
            name: self.name,
        }
    }

    /// `"schema"."name"`, quoted for SQL (an unqualified name in `public`).
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            crate::replication::quote_ident_lossy(self.schema_or_public()),
            crate::replication::quote_ident_lossy(&self.name)
        )
    }

    /// The name [`KeyConfig`](crate::assemble::KeyConfig) is keyed by: `schema.table` or
    /// `table`, unquoted.
    pub fn to_key(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Whether a `table_keys` entry named `self` applies to the captured table `table`: a bare
    /// key name matches the table of that name in any schema, a bare table name means `public`.
    pub fn key_matches(&self, table: &TableName) -> bool {
        self.name == table.name
            && self
                .schema
                .as_deref()
                .is_none_or(|s| s == table.schema_or_public())
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

fn split_parts(s: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("has an unterminated quoted part".to_owned()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                match c {
                    '.' => break,
                    '"' => {
                        return Err(
                            "has a quote inside an unquoted part (quote the whole part)".to_owned()
                        );
                    }
                    _ => {
                        part.push(c);
                        chars.next();
                    }
                }
            }
            if part.trim() != part {
                return Err("has spaces around a part".to_owned());
            }
        }
        if part.is_empty() {
            return Err("has an empty part".to_owned());
        }
        if part.contains('\0') {
            return Err("contains a NUL character".to_owned());
        }
        if part.len() > MAX_NAME_BYTES {
            return Err(format!(
                "has a part longer than {MAX_NAME_BYTES} bytes (PostgreSQL would truncate it)"
            ));
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(_) => return Err("has characters after a closing quote".to_owned()),
        }
    }
}

/// Whether `name` is a valid replication slot name (PostgreSQL's rule: 1–63 bytes of
/// lower-case ASCII letters, digits and underscores).
pub fn is_valid_slot_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PostgresSourceConfig {
    /// Checks the whole configuration; the first problem found is returned. See
    /// [`validation_errors`](Self::validation_errors) for all of them.
    ///
    /// `verify-ca` and `verify-full` need `ssl_root_cert` (a PEM file, or `"system"`), as in
    /// libpq.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.validation_errors().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem in the configuration, in field order (empty when it is valid).
    pub fn validation_errors(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut err = |field: String, message: String, hint: &str| {
            errs.push(ConfigError::new(field, message, hint));
        };
        let f = |s: &'static str| s.to_owned();

        // Connection.
        if self.host.is_empty() {
            err(
                f("host"),
                "the host is empty".into(),
                "give a host name, an IP address or a Unix-socket directory",
            );
        } else if self.host.contains('\0') {
            err(
                f("host"),
                "the host contains a NUL character".into(),
                "remove it",
            );
        } else if self.host.contains(',') {
            err(
                f("host"),
                format!("{:?} names several hosts", self.host),
                "give a single host; multi-host lists are not supported",
            );
        }
        if self.port == 0 {
            err(
                f("port"),
                "port 0 is not valid".into(),
                "use a number from 1 to 65535 (PostgreSQL's default is 5432)",
            );
        }
        for (field, value, what) in [
            ("database", &self.database, "database name"),
            ("user", &self.user, "role name"),
        ] {
            if value.is_empty() {
                err(
                    f(field),
                    format!("the {what} is required"),
                    match field {
                        "database" => "set `database` (or the URL path, or PGDATABASE)",
                        _ => "set `user` (or the URL user, or PGUSER) to a role with REPLICATION",
                    },
                );
            } else if value.contains('\0') {
                err(
                    f(field),
                    format!("the {what} contains a NUL character"),
                    "remove it",
                );
            }
        }
        if self.password.expose().contains(&0) {
            err(
                f("password"),
                "the password contains a NUL character".into(),
                "PostgreSQL passwords cannot contain NUL",
            );
        }
        if self.application_name.contains('\0') {
            err(
                f("application_name"),
                "the application name contains a NUL character".into(),
                "remove it",
            );
        }
        match &self.ssl_root_cert {
            Some(path) if path.as_os_str().is_empty() => err(
                f("ssl_root_cert"),
                "the root-certificate path is empty".into(),
                "give a PEM file, or \"system\" for the platform's trusted roots",
            ),
            Some(_) if self.uses_system_roots() && self.ssl_mode == SslMode::Disable => err(
                f("ssl_root_cert"),
                "ssl_root_cert \"system\" (sslrootcert=system) checks the server certificate, \
                 but ssl_mode is \"disable\""
                    .into(),
                "set ssl_mode to verify-full, or remove ssl_root_cert",
            ),
            None if matches!(self.ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull) => err(
                f("ssl_root_cert"),
                format!(
                    "ssl_mode \"{}\" verifies the server certificate, but no root certificates \
                     are configured (ssl_root_cert, the URL's sslrootcert, PGSSLROOTCERT)",
                    self.ssl_mode
                ),
                "set ssl_root_cert to the PEM file of the CA that signed the server \
                 certificate, or to \"system\" for the platform's trusted roots (which also \
                 checks the host name, as verify-full)",
            ),
            _ => {}
        }
        if !(MIN_MAX_FRAME_LEN..=DEFAULT_MAX_FRAME_LEN).contains(&self.max_frame_len) {
            err(
                f("max_frame_len"),
                format!(
                    "{} bytes is outside {MIN_MAX_FRAME_LEN}..={DEFAULT_MAX_FRAME_LEN}",
                    self.max_frame_len
                ),
                "give the largest server message to accept, from 64 KiB to 1 GiB (the default)",
            );
        }
        if self.spill_threshold_bytes != 0 && self.spill_threshold_bytes < MIN_SPILL_THRESHOLD_BYTES
        {
            err(
                f("spill_threshold_bytes"),
                format!(
                    "{} bytes is below {MIN_SPILL_THRESHOLD_BYTES}: every change would be \
                     written to disk on its own",
                    self.spill_threshold_bytes
                ),
                "give at least 64 KiB (the default is 64 MiB), or 0 to keep held transactions \
                 in memory",
            );
        }
        if self
            .spill_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            err(
                f("spill_dir"),
                "the spill directory is empty".into(),
                "give an existing directory, or leave spill_dir unset for the system's \
                 temporary directory",
            );
        }
        if self.channel_binding == ChannelBinding::Require && self.ssl_mode == SslMode::Disable {
            err(
                f("channel_binding"),
                "channel_binding \"require\" needs TLS but ssl_mode is \"disable\"".into(),
                "set ssl_mode to require (or verify-full), or channel_binding to prefer",
            );
        }

        // Slot and publication.
        if !is_valid_slot_name(&self.slot_name) {
            err(
                f("slot_name"),
                format!("{:?} is not a valid replication slot name", self.slot_name),
                "use lower-case letters, digits and underscores (at most 63 bytes)",
            );
        }
        if self.publication_name.is_empty()
            || self.publication_name.len() > MAX_NAME_BYTES
            || self.publication_name.contains('\0')
        {
            err(
                f("publication_name"),
                format!(
                    "{:?} is not a valid publication name",
                    self.publication_name
                ),
                "use a non-empty name of at most 63 bytes without NUL characters",
            );
        }
        if self.temporary_slot && !self.create_slot {
            err(
                f("temporary_slot"),
                "a temporary slot must be created by every session but create_slot is false".into(),
                "set create_slot to true, or temporary_slot to false",
            );
        }
        if self.temporary_slot && self.failover {
            err(
                f("failover"),
                "a temporary slot cannot be a failover slot (it ends with its connection)".into(),
                "use a permanent slot, or set failover to false",
            );
        }
        if self.temporary_slot && self.start_lsn.is_some_and(|l| !l.is_zero()) {
            err(
                f("start_lsn"),
                "start_lsn cannot be used with a temporary slot, which never has older WAL".into(),
                "remove start_lsn, or use a permanent slot",
            );
        }

        // Tables.
        let mut tables = Vec::new();
        let mut seen = HashSet::new();
        for (i, t) in self.tables.iter().enumerate() {
            match TableName::parse(t) {
                Ok(name) => {
                    if !seen.insert((name.schema_or_public().to_owned(), name.name.clone())) {
                        err(
                            format!("tables[{i}]"),
                            format!("table {t:?} is listed twice"),
                            "remove the duplicate",
                        );
                    }
                    tables.push(name);
                }
                Err(why) => err(
                    format!("tables[{i}]"),
                    format!("table name {t:?} {why}"),
                    "write `table` or `schema.table`; double-quote a part that contains dots",
                ),
            }
        }
        let mut key_tables = HashSet::new();
        for (i, tk) in self.table_keys.iter().enumerate() {
            match TableName::parse(&tk.table) {
                Ok(name) => {
                    if !key_tables.insert(name.clone()) {
                        err(
                            format!("table_keys[{i}].table"),
                            format!("table {:?} has two key configurations", tk.table),
                            "keep one entry per table",
                        );
                    }
                    if !self.tables.is_empty()
                        && !tables.is_empty()
                        && !tables.iter().any(|t| name.key_matches(t))
                    {
                        err(
                            format!("table_keys[{i}].table"),
                            format!("table {:?} is not one of the captured tables", tk.table),
                            "add it to `tables`, or fix the name (a bare name means public.<name>)",
                        );
                    }
                }
                Err(why) => err(
                    format!("table_keys[{i}].table"),
                    format!("table name {:?} {why}", tk.table),
                    "write `table` or `schema.table`; double-quote a part that contains dots",
                ),
            }
            if tk.key_columns.is_empty() {
                err(
                    format!("table_keys[{i}].key_columns"),
                    format!("table {:?} has no key columns", tk.table),
                    "list at least one column, or remove the entry to use the primary key",
                );
            }
            let mut cols = HashSet::new();
            for c in &tk.key_columns {
                if c.is_empty() || c.contains('\0') {
                    err(
                        format!("table_keys[{i}].key_columns"),
                        format!(
                            "table {:?} has an empty or NUL-containing column name",
                            tk.table
                        ),
                        "give the column names as PostgreSQL reports them",
                    );
                } else if !cols.insert(c.as_str()) {
                    err(
                        format!("table_keys[{i}].key_columns"),
                        format!("column {c:?} is listed twice for table {:?}", tk.table),
                        "list each key column once",
                    );
                }
            }
        }

        // pgoutput options.
        let needed = [
            (self.streaming.min_proto_version(), "streaming"),
            (if self.two_phase { 3 } else { 1 }, "two_phase"),
        ];
        if let Some(v) = self.proto_version {
            if !(1..=4).contains(&v) {
                err(
                    f("proto_version"),
                    format!("protocol version {v} does not exist"),
                    "use 1 to 4, or leave it unset to pick the highest the server supports",
                );
            } else {
                for (min, why) in needed {
                    if v < min {
                        err(
                            f("proto_version"),
                            format!("protocol version {v} is too old for {why}"),
                            &format!(
                                "use proto_version {min} or higher, or leave it unset, or turn {why} off"
                            ),
                        );
                    }
                }
            }
        }
        if let Some(o) = &self.origin {
            if o != "any" && o != "none" {
                err(
                    f("origin"),
                    format!("{o:?} is not an origin filter"),
                    "use \"any\" or \"none\", or leave it unset",
                );
            }
        }
        // Session and delivery.
        if !STATUS_INTERVAL_RANGE_MS.contains(&self.status_interval_ms) {
            err(
                f("status_interval_ms"),
                format!(
                    "{} ms is outside the accepted range",
                    self.status_interval_ms
                ),
                "use 100 to 3600000 milliseconds (default 10000); keep it below the server's wal_sender_timeout",
            );
        }
        if self.max_batch_changes == 0 {
            err(
                f("max_batch_changes"),
                "max_batch_changes must be at least 1".into(),
                "use a positive number (default 1000)",
            );
        }
        if self.dispatch_buffer_capacity == 0 {
            err(
                f("dispatch_buffer_capacity"),
                "dispatch_buffer_capacity must be at least 1".into(),
                "use a positive number (default 1000)",
            );
        }
        let r = &self.reconnect;
        if r.initial_delay_ms == 0 {
            err(
                f("reconnect.initial_delay_ms"),
                "the first reconnect delay is 0".into(),
                "use a positive number of milliseconds (default 5000)",
            );
        }
        if r.max_delay_ms == 0 {
            err(
                f("reconnect.max_delay_ms"),
                "the longest reconnect delay is 0".into(),
                "use a positive number of milliseconds (default 60000)",
            );
        } else if r.initial_delay_ms > r.max_delay_ms {
            err(
                f("reconnect.initial_delay_ms"),
                format!(
                    "the first delay ({} ms) is longer than the longest ({} ms)",
                    r.initial_delay_ms, r.max_delay_ms
                ),
                "make initial_delay_ms at most max_delay_ms",
            );
        }
        if let BootstrapMode::Jsonl { paths } = &self.bootstrap {
            if paths.is_empty() || paths.iter().any(|p| p.as_os_str().is_empty()) {
                err(
                    f("bootstrap"),
                    "the JSON Lines bootstrap has no (or an empty) file path".into(),
                    "list the files to read in `paths`",
                );
            }
        }
        errs
    }
}
