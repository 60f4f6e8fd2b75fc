//! `pgcdc slots`: the server's replication slots with their lag, and `--drop`.

use crate::CliError;
use crate::args::SlotsArgs;
use crate::{db, json};

/// Every slot with the WAL it retains: from its confirmed position (logical slots) or restart
/// position (physical ones) to the server's current WAL position (the replay position on a
/// standby).
const LIST_SQL: &str = "\
SELECT slot_name, plugin, slot_type, database, active, active_pid, restart_lsn, \
       confirmed_flush_lsn, \
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                            ELSE pg_current_wal_lsn() END, \
                       COALESCE(confirmed_flush_lsn, restart_lsn))::bigint AS lag_bytes \
FROM pg_replication_slots ORDER BY slot_name";

/// One slot.
struct Slot {
    name: String,
    plugin: Option<String>,
    kind: String,
    database: Option<String>,
    active: bool,
    pid: Option<String>,
    restart_lsn: Option<String>,
    confirmed_flush_lsn: Option<String>,
    lag_bytes: Option<i64>,
}

/// Runs `pgcdc slots`.
pub async fn run(a: SlotsArgs) -> Result<(), CliError> {
    let cfg = db::config(a.url.as_deref())?;
    let mut conn = db::connect(&cfg).await?;
    if let Some(name) = a.drop {
        let result = drop_slot(&mut conn, &name).await;
        let _ = conn.close().await;
        return result;
    }
    let r = db::query(&mut conn, LIST_SQL).await?;
    let _ = conn.close().await;
    let slots: Vec<Slot> = (0..r.rows.len())
        .map(|i| {
            let t = |c: &str| db::text(&r, i, c).map(str::to_owned);
            Slot {
                name: t("slot_name").unwrap_or_default(),
                plugin: t("plugin"),
                kind: t("slot_type").unwrap_or_default(),
                database: t("database"),
                active: t("active").as_deref() == Some("t"),
                pid: t("active_pid"),
                restart_lsn: t("restart_lsn"),
                confirmed_flush_lsn: t("confirmed_flush_lsn"),
                lag_bytes: t("lag_bytes").and_then(|s| s.parse().ok()),
            }
        })
        .collect();
    let text = if a.jsonl {
        jsonl(&slots)
    } else {
        table(&slots)
    };
    print!("{text}");
    Ok(())
}

async fn drop_slot(conn: &mut pgcdc_tokio::PgConnection, name: &str) -> Result<(), CliError> {
    let r = db::query(
        conn,
        &format!(
            "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = {}",
            db::literal(name)?
        ),
    )
    .await?;
    if r.rows.is_empty() {
        return Err(CliError::failed(format!(
            "there is no replication slot named {name:?}; `pgcdc slots` lists them"
        )));
    }
    if db::text(&r, 0, "active") == Some("t") {
        let pid = db::text(&r, 0, "active_pid").unwrap_or("?");
        return Err(CliError::failed(format!(
            "replication slot {name:?} is in use by server process {pid}: stop its consumer \
             first (or end it with SELECT pg_terminate_backend({pid})), then drop the slot"
        )));
    }
    db::query(
        conn,
        &pgcdc_core::replication::drop_slot_sql(name)
            .map_err(|e| CliError::failed(e.to_string()))?,
    )
    .await?;
    println!("dropped replication slot {name}");
    Ok(())
}

/// Bytes in a readable unit.
fn human(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {name}")
    }
}

fn table(slots: &[Slot]) -> String {
    if slots.is_empty() {
        return "no replication slots\n".to_owned();
    }
    let header = [
        "slot_name",
        "plugin",
        "type",
        "database",
        "active",
        "pid",
        "restart_lsn",
        "confirmed_flush_lsn",
        "lag_bytes",
        "lag",
    ];
    let dash = || "-".to_owned();
    let rows: Vec<[String; 10]> = slots
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.plugin.clone().unwrap_or_else(dash),
                s.kind.clone(),
                s.database.clone().unwrap_or_else(dash),
                if s.active { "yes" } else { "no" }.to_owned(),
                s.pid.clone().unwrap_or_else(dash),
                s.restart_lsn.clone().unwrap_or_else(dash),
                s.confirmed_flush_lsn.clone().unwrap_or_else(dash),
                s.lag_bytes.map_or_else(dash, |b| b.to_string()),
                s.lag_bytes.map_or_else(dash, human),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (cell, w) in cells.zip(&widths) {
            l.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn jsonl(slots: &[Slot]) -> String {
    let mut out = String::new();
    let opt = |out: &mut String, v: &Option<String>| match v {
        Some(s) => json::string(out, s),
        None => out.push_str("null"),
    };
    for s in slots {
        out.push_str("{\"slot_name\":");
        json::string(&mut out, &s.name);
        out.push_str(",\"plugin\":");
        opt(&mut out, &s.plugin);
        out.push_str(",\"type\":");
        json::string(&mut out, &s.kind);
        out.push_str(",\"database\":");
        opt(&mut out, &s.database);
        out.push_str(&format!(",\"active\":{},\"active_pid\":", s.active));
        let pid = s.pid.as_deref().filter(|p| json::is_json_number(p));
        out.push_str(pid.unwrap_or("null"));
        out.push_str(",\"restart_lsn\":");
        opt(&mut out, &s.restart_lsn);
        out.push_str(",\"confirmed_flush_lsn\":");
        opt(&mut out, &s.confirmed_flush_lsn);
        out.push_str(",\"lag_bytes\":");
        match s.lag_bytes {
            Some(b) => out.push_str(&b.to_string()),
            None => out.push_str("null"),
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024), "5.0 MiB");
    }
}
