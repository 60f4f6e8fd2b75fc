//! `pgcdc doctor`: checks a server before the first run, each check ok, a warning, or what is
//! wrong and the exact fix.

use pgcdc_core::query::QueryResult;
use pgcdc_tokio::{ConnectOptions, PgConnection};

use crate::CliError;
use crate::args::DoctorArgs;
use crate::db;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    lines: Vec<(Level, String, String)>,
}

impl Report {
    fn add(&mut self, level: Level, check: &str, detail: impl Into<String>) {
        self.lines.push((level, check.to_owned(), detail.into()));
    }

    fn failed(&self) -> usize {
        self.lines.iter().filter(|l| l.0 == Level::Fail).count()
    }

    fn print(&self) {
        for (level, check, detail) in &self.lines {
            let tag = match level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!("{tag} {check}: {detail}");
        }
    }
}

fn one<'a>(r: &'a QueryResult, column: &str) -> Option<&'a str> {
    db::text(r, 0, column)
}

/// Runs `pgcdc doctor`.
pub async fn run(a: DoctorArgs) -> Result<(), CliError> {
    let cfg = db::config(a.url.as_deref())?;
    let publication = a
        .publication
        .unwrap_or_else(|| cfg.publication_name.clone());
    let mut report = Report { lines: Vec::new() };
    let mut conn = match db::connect(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            report.add(Level::Fail, "connection", e.to_string());
            report.print();
            return Err(CliError::failed("the server cannot be reached: see above"));
        }
    };
    report.add(
        Level::Ok,
        "connection",
        format!(
            "{} as {:?} to {:?}, authentication {}",
            if conn.is_tls() { "TLS" } else { "no TLS" },
            cfg.user,
            cfg.database,
            conn.authentication_method().unwrap_or("none (trust)")
        ),
    );
    if !conn.is_tls() {
        report.add(
            Level::Warn,
            "tls",
            "the connection is not encrypted: enable ssl on the server and use sslmode=verify-full",
        );
    }
    let checks = checks(&mut conn, &mut report, &publication).await;
    let _ = conn.close().await;
    checks?;
    replication_connection(&cfg, &mut report).await;
    report.print();
    match report.failed() {
        0 => {
            println!("streaming would work");
            Ok(())
        }
        n => Err(CliError::failed(format!(
            "{n} check(s) failed: streaming would not work until they are fixed"
        ))),
    }
}

async fn checks(
    conn: &mut PgConnection,
    report: &mut Report,
    publication: &str,
) -> Result<(), CliError> {
    let version: u32 = conn
        .server_params()
        .server_version_num()
        .unwrap_or_default();
    let (major, minor) = (version / 10_000, version % 10_000);
    if version < 100_000 {
        report.add(
            Level::Fail,
            "server version",
            format!("{version}: pgoutput logical replication needs PostgreSQL 10 or later"),
        );
        return Ok(());
    }
    let mut features = vec!["pgoutput"];
    for (min, f) in [
        (110_000, "TRUNCATE"),
        (140_000, "messages, streaming on, binary"),
        (150_000, "two_phase"),
        (160_000, "streaming parallel, origin"),
        (170_000, "failover slots"),
        (180_000, "generated columns"),
    ] {
        if version >= min {
            features.push(f);
        }
    }
    report.add(
        Level::Ok,
        "server version",
        format!("PostgreSQL {major}.{minor}: {}", features.join(", ")),
    );

    let s = db::query(
        conn,
        "SELECT current_setting('wal_level') AS wal_level, \
         current_setting('max_replication_slots')::int AS max_slots, \
         (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int AS slots, \
         current_setting('max_wal_senders')::int AS max_senders, \
         (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int AS senders, \
         current_setting('wal_sender_timeout') AS wal_sender_timeout, \
         (SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS replication",
    )
    .await?;
    match one(&s, "wal_level") {
        Some("logical") => report.add(Level::Ok, "wal_level", "logical"),
        other => report.add(
            Level::Fail,
            "wal_level",
            format!(
                "{}; logical decoding needs logical: ALTER SYSTEM SET wal_level = logical; then restart the server",
                other.unwrap_or("?")
            ),
        ),
    }
    let num = |c| one(&s, c).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let (max_slots, slots) = (num("max_slots"), num("slots"));
    if slots < max_slots {
        report.add(
            Level::Ok,
            "replication slots",
            format!("{slots} of {max_slots} in use"),
        );
    } else {
        report.add(
            Level::Fail,
            "replication slots",
            format!(
                "{slots} of {max_slots} in use, none free: drop unused ones (pgcdc slots --drop NAME) or raise max_replication_slots (restart)"
            ),
        );
    }
    let (max_senders, senders) = (num("max_senders"), num("senders"));
    if senders < max_senders {
        report.add(
            Level::Ok,
            "wal senders",
            format!("{senders} of {max_senders} in use"),
        );
    } else {
        report.add(
            Level::Fail,
            "wal senders",
            format!(
                "{senders} of {max_senders} in use, none free: raise max_wal_senders (restart)"
            ),
        );
    }
    if one(&s, "replication") == Some("t") {
        report.add(Level::Ok, "role", "has the REPLICATION attribute");
    } else {
        report.add(
            Level::Fail,
            "role",
            "lacks the REPLICATION attribute: ALTER ROLE <role> REPLICATION;",
        );
    }
    report.add(
        Level::Ok,
        "wal_sender_timeout",
        one(&s, "wal_sender_timeout").unwrap_or("?").to_owned(),
    );
    if version >= 130_000 {
        let k = db::query(
            conn,
            "SELECT current_setting('max_slot_wal_keep_size') AS keep",
        )
        .await?;
        match one(&k, "keep") {
            Some("-1") => report.add(
                Level::Warn,
                "max_slot_wal_keep_size",
                "unlimited: a stalled consumer makes its slot keep WAL until the disk is full",
            ),
            Some(v) => report.add(
                Level::Ok,
                "max_slot_wal_keep_size",
                format!(
                    "{v} (a slot further behind is invalidated and must be bootstrapped again)"
                ),
            ),
            None => {}
        }
    }

    let lit = db::literal(publication)?;
    let p = db::query(
        conn,
        &format!("SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = {lit}"),
    )
    .await?;
    if p.rows.is_empty() {
        report.add(
            Level::Fail,
            "publication",
            format!(
                "{publication:?} does not exist: CREATE PUBLICATION {publication} FOR TABLE <tables>;"
            ),
        );
    } else {
        let tables = db::query(
            conn,
            &format!(
                "SELECT n.nspname || '.' || c.relname AS name, c.relreplident::text AS identity, \
                 has_table_privilege(c.oid, 'SELECT') AS readable, \
                 EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk \
                 FROM pg_catalog.pg_publication_tables t \
                 JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname \
                 JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename \
                 WHERE t.pubname = {lit} ORDER BY 1"
            ),
        )
        .await?;
        let n = tables.rows.len();
        report.add(
            if n == 0 { Level::Warn } else { Level::Ok },
            "publication",
            format!(
                "{publication:?} holds {n} table(s){}",
                if one(&p, "puballtables") == Some("t") {
                    " (FOR ALL TABLES)"
                } else {
                    ""
                }
            ),
        );
        for i in 0..n {
            let t = |c: &str| db::text(&tables, i, c);
            let name = t("name").unwrap_or("?");
            let pk = t("pk") == Some("t");
            let identity = match t("identity") {
                Some("d") if pk => "default (primary key)",
                Some("d") => "default, but no primary key",
                Some("f") => "full",
                Some("i") => "index",
                Some("n") => "nothing",
                _ => "?",
            };
            if t("readable") != Some("t") {
                report.add(
                    Level::Fail,
                    name,
                    format!("not readable by this role (bootstrap needs SELECT): GRANT SELECT ON {name} TO <role>;"),
                );
            }
            let (level, detail) = match (pk, t("identity")) {
                (_, Some("n")) | (false, Some("d")) => (
                    Level::Warn,
                    format!(
                        "replica identity {identity}: UPDATE and DELETE fail on the server until it has one (ALTER TABLE {name} REPLICA IDENTITY FULL;), and rows get random ids unless table_keys names key columns"
                    ),
                ),
                (false, _) => (
                    Level::Warn,
                    format!(
                        "replica identity {identity}, no primary key: ids come from the identity columns, or random without table_keys"
                    ),
                ),
                _ => (Level::Ok, format!("replica identity {identity}")),
            };
            report.add(level, name, detail);
        }
    }

    let status = if version >= 130_000 {
        "wal_status"
    } else {
        "NULL::text AS wal_status"
    };
    let slots = db::query(
        conn,
        &format!(
            "SELECT slot_name, plugin, active, {status}, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), COALESCE(confirmed_flush_lsn, restart_lsn))::bigint AS lag \
             FROM pg_catalog.pg_replication_slots ORDER BY 1"
        ),
    )
    .await;
    if let Ok(slots) = slots {
        for i in 0..slots.rows.len() {
            let t = |c: &str| db::text(&slots, i, c);
            let name = t("slot_name").unwrap_or("?");
            let lost = matches!(t("wal_status"), Some("lost" | "unreserved"));
            report.add(
                if lost { Level::Warn } else { Level::Ok },
                &format!("slot {name}"),
                format!(
                    "{} {}, lag {} bytes{}",
                    t("plugin").unwrap_or("physical"),
                    if t("active") == Some("t") {
                        "active"
                    } else {
                        "inactive"
                    },
                    t("lag").unwrap_or("?"),
                    t("wal_status")
                        .map(|s| format!(", wal_status {s}"))
                        .unwrap_or_default()
                ),
            );
        }
    }
    Ok(())
}

/// A replication connection and IDENTIFY_SYSTEM: what pg_hba.conf allows for it.
async fn replication_connection(cfg: &pgcdc_tokio::PostgresSourceConfig, report: &mut Report) {
    let opts = ConnectOptions::from_config(cfg, true);
    match pgcdc_tokio::connect(&opts).await {
        Ok(mut c) => {
            match c.identify_system().await {
                Ok(id) => report.add(
                    Level::Ok,
                    "replication connection",
                    format!("system {} timeline {}", id.system_id, id.timeline),
                ),
                Err(e) => report.add(Level::Fail, "replication connection", e.to_string()),
            }
            let _ = c.close().await;
        }
        Err(e) => report.add(
            Level::Fail,
            "replication connection",
            format!("{e} (pg_hba.conf needs a `replication` line for this role and address)"),
        ),
    }
}
