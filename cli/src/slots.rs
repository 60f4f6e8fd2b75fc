//! `pgcdc slots`: the server's replication slots with their lag, and `--drop`.

use crate::CliError;
use crate::args::{SlotsArgs, SlotsFormat};
use crate::db;
use pgcdc_sink::json;

/// Every slot with the WAL it retains (from its confirmed position, logical slots, or restart
/// position, physical ones, to the server's current WAL position — the replay position on a
/// standby), its `wal_status` (PostgreSQL 13+), and how old its confirmed position is at
/// most: the time since its consumer's last status update (active slots, PostgreSQL 12+) or
/// since it became inactive (PostgreSQL 17+). Columns a server lacks are NULL.
fn list_sql(version_num: u32) -> String {
    let wal_status = if version_num >= 130_000 {
        "s.wal_status"
    } else {
        "NULL::text"
    };
    let reply = if version_num >= 120_000 {
        "r.reply_time"
    } else {
        "NULL::timestamptz"
    };
    let inactive = if version_num >= 170_000 {
        "s.inactive_since"
    } else {
        "NULL::timestamptz"
    };
    format!(
        "SELECT s.slot_name, s.plugin, s.slot_type, s.database, s.temporary, s.active, \
                s.active_pid, s.restart_lsn, s.confirmed_flush_lsn, {wal_status} AS wal_status, \
                pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                                     ELSE pg_current_wal_lsn() END, \
                                COALESCE(s.confirmed_flush_lsn, s.restart_lsn))::bigint AS lag_bytes, \
                {reply} AS reply_time, {inactive} AS inactive_since, \
                round(extract(epoch FROM now() - CASE WHEN s.active THEN {reply} \
                                                      ELSE {inactive} END)::numeric, 3) \
                  AS confirmed_age_s \
         FROM pg_catalog.pg_replication_slots s \
         LEFT JOIN pg_catalog.pg_stat_replication r ON r.pid = s.active_pid \
         ORDER BY s.slot_name"
    )
}

/// One slot.
struct Slot {
    name: String,
    plugin: Option<String>,
    kind: String,
    database: Option<String>,
    temporary: bool,
    active: bool,
    pid: Option<String>,
    wal_status: Option<String>,
    restart_lsn: Option<String>,
    confirmed_flush_lsn: Option<String>,
    lag_bytes: Option<i64>,
    reply_time: Option<String>,
    inactive_since: Option<String>,
    confirmed_age_s: Option<String>,
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
    let version = conn.server_params().server_version_num().unwrap_or(0);
    let r = db::query(&mut conn, &list_sql(version)).await?;
    let _ = conn.close().await;
    let slots: Vec<Slot> = (0..r.rows.len())
        .map(|i| {
            let t = |c: &str| db::text(&r, i, c).map(str::to_owned);
            Slot {
                name: t("slot_name").unwrap_or_default(),
                plugin: t("plugin"),
                kind: t("slot_type").unwrap_or_default(),
                database: t("database"),
                temporary: t("temporary").as_deref() == Some("t"),
                active: t("active").as_deref() == Some("t"),
                pid: t("active_pid"),
                wal_status: t("wal_status"),
                restart_lsn: t("restart_lsn"),
                confirmed_flush_lsn: t("confirmed_flush_lsn"),
                lag_bytes: t("lag_bytes").and_then(|s| s.parse().ok()),
                reply_time: t("reply_time"),
                inactive_since: t("inactive_since"),
                confirmed_age_s: t("confirmed_age_s").filter(|s| json::is_json_number(s)),
            }
        })
        .collect();
    let text = match a.format {
        SlotsFormat::Table => table(&slots),
        SlotsFormat::Json => json_array(&slots),
        SlotsFormat::Jsonl => {
            let mut out = String::new();
            for s in &slots {
                object(&mut out, s);
                out.push('\n');
            }
            out
        }
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
        "wal_status",
        "restart_lsn",
        "confirmed_flush_lsn",
        "lag_bytes",
        "lag",
        "confirmed_age",
    ];
    let dash = || "-".to_owned();
    let rows: Vec<[String; 12]> = slots
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.plugin.clone().unwrap_or_else(dash),
                if s.temporary {
                    format!("{} (temporary)", s.kind)
                } else {
                    s.kind.clone()
                },
                s.database.clone().unwrap_or_else(dash),
                if s.active { "yes" } else { "no" }.to_owned(),
                s.pid.clone().unwrap_or_else(dash),
                s.wal_status.clone().unwrap_or_else(dash),
                s.restart_lsn.clone().unwrap_or_else(dash),
                s.confirmed_flush_lsn.clone().unwrap_or_else(dash),
                s.lag_bytes.map_or_else(dash, |b| b.to_string()),
                s.lag_bytes.map_or_else(dash, human),
                s.confirmed_age_s
                    .as_deref()
                    .and_then(|a| a.parse::<f64>().ok())
                    .map_or_else(dash, age),
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

/// A duration in seconds, readable: `4.2s`, `3m 05s`, `2h 01m`, `3d 04h`.
fn age(secs: f64) -> String {
    let s = secs.max(0.0);
    let whole = s as u64;
    match whole {
        0..60 => format!("{s:.1}s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        3600..86_400 => format!("{}h {:02}m", whole / 3600, whole / 60 % 60),
        _ => format!("{}d {:02}h", whole / 86_400, whole / 3600 % 24),
    }
}

/// `[{…}, …]`, one object per slot.
fn json_array(slots: &[Slot]) -> String {
    let mut out = String::from("[");
    for (i, s) in slots.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        object(&mut out, s);
    }
    out.push_str(if slots.is_empty() { "]\n" } else { "\n]\n" });
    out
}

/// One slot as a JSON object.
fn object(out: &mut String, s: &Slot) {
    let opt = |out: &mut String, v: &Option<String>| match v {
        Some(s) => json::string(out, s),
        None => out.push_str("null"),
    };
    out.push_str("{\"slot_name\":");
    json::string(out, &s.name);
    out.push_str(",\"plugin\":");
    opt(out, &s.plugin);
    out.push_str(",\"type\":");
    json::string(out, &s.kind);
    out.push_str(",\"database\":");
    opt(out, &s.database);
    out.push_str(&format!(
        ",\"temporary\":{},\"active\":{},\"active_pid\":",
        s.temporary, s.active
    ));
    let pid = s.pid.as_deref().filter(|p| json::is_json_number(p));
    out.push_str(pid.unwrap_or("null"));
    out.push_str(",\"wal_status\":");
    opt(out, &s.wal_status);
    out.push_str(",\"restart_lsn\":");
    opt(out, &s.restart_lsn);
    out.push_str(",\"confirmed_flush_lsn\":");
    opt(out, &s.confirmed_flush_lsn);
    out.push_str(",\"lag_bytes\":");
    match s.lag_bytes {
        Some(b) => out.push_str(&b.to_string()),
        None => out.push_str("null"),
    }
    out.push_str(",\"last_reply\":");
    opt(out, &s.reply_time);
    out.push_str(",\"inactive_since\":");
    opt(out, &s.inactive_since);
    out.push_str(",\"confirmed_age_seconds\":");
    out.push_str(s.confirmed_age_s.as_deref().unwrap_or("null"));
    out.push('}');
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

    #[test]
    fn ages() {
        assert_eq!(age(4.25), "4.2s");
        assert_eq!(age(185.0), "3m 05s");
        assert_eq!(age(7260.0), "2h 01m");
        assert_eq!(age(3.0 * 86_400.0 + 4.0 * 3600.0), "3d 04h");
    }
}
