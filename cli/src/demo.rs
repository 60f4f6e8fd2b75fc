//! `pgcdc demo`: a throwaway PostgreSQL, a small schema, a workload, and its changes streamed
//! to stdout.

use std::time::Duration;

use pgcdc_core::Password;
use pgcdc_testkit::{Cluster, SCRAM_USER, TestkitError};
use pgcdc_tokio::{
    AckMode, PgConnection, PostgresReplicationSource, PostgresSourceConfig, SslMode,
};

use crate::CliError;
use crate::args::{DemoArgs, Format};
use crate::db;
use crate::stream::{self, End, Rules, Signals};

/// The demo's database on the throwaway server.
const DATABASE: &str = "pgcdc_demo";
/// The schema used on a server given with `--url`.
const URL_SCHEMA: &str = "pgcdc_demo";
/// The demo's slot and publication.
const SLOT: &str = "pgcdc_demo_slot";
const PUBLICATION: &str = "pgcdc_demo_pub";
/// The prefix of the logical message that ends the workload.
const END_MARKER: &str = "pgcdc-demo";
/// The workload's changes: 6 inserts, 3 updates, 1 delete, 1 truncate, 1 message.
const EXPECTED_CHANGES: u64 = 12;
/// How long the demo waits for a change before giving up.
const IDLE_LIMIT: Duration = Duration::from_secs(20);

/// What to install when the server binaries are missing.
const INSTALL_HINT: &str = "the demo starts a throwaway PostgreSQL and needs its server programs \
(initdb, pg_ctl, postgres) and psql: install them (Debian/Ubuntu: `sudo apt-get install -y postgresql`; \
Fedora: `sudo dnf install postgresql-server`; macOS: `brew install postgresql`), set PGCDC_PG_BIN \
to the directory holding them, or run the demo on your own server with \
`pgcdc demo --url postgres://user:password@host:port/database`";

/// Runs `pgcdc demo`.
pub async fn run(a: DemoArgs) -> Result<(), CliError> {
    let format = a.format.unwrap_or(Format::Jsonl);
    match a.url {
        Some(url) => {
            let cfg = db::config(Some(&url))?;
            on_server(cfg, format).await
        }
        None => throwaway(format).await,
    }
}

/// The demo on a throwaway server, removed afterwards.
async fn throwaway(format: Format) -> Result<(), CliError> {
    note("starting a throwaway PostgreSQL server…");
    let cluster = tokio::task::spawn_blocking(|| -> Result<Cluster, TestkitError> {
        let cluster = Cluster::builder().tls(false).start()?;
        cluster.create_database(DATABASE)?;
        Ok(cluster)
    })
    .await
    .map_err(|e| CliError::failed(format!("starting PostgreSQL: {e}")))?
    .map_err(|e| match e {
        TestkitError::BinariesNotFound { .. } | TestkitError::ToolNotFound { .. } => {
            CliError::failed(format!("{e}\nhint: {INSTALL_HINT}"))
        }
        other => CliError::failed(format!("could not start a throwaway PostgreSQL: {other}")),
    })?;
    note(&format!(
        "PostgreSQL is up on {}:{} (database {DATABASE}, user {})",
        cluster.host(),
        cluster.port(),
        SCRAM_USER.name
    ));
    let mut cfg = PostgresSourceConfig::new(DATABASE, SCRAM_USER.name);
    cfg.host = cluster.host().to_owned();
    cfg.port = cluster.port();
    cfg.password = Password::from(SCRAM_USER.password.unwrap_or_default().to_owned());
    cfg.ssl_mode = SslMode::Disable;
    let result = demo(cfg, "", format).await;
    let _ = tokio::task::spawn_blocking(move || drop(cluster)).await;
    note("the throwaway server is stopped and removed");
    result
}

/// The demo in schema `pgcdc_demo` of the user's database; everything it creates is dropped
/// afterwards.
async fn on_server(cfg: PostgresSourceConfig, format: Format) -> Result<(), CliError> {
    let mut conn = db::connect(&cfg).await?;
    let existing = db::query(
        &mut conn,
        &format!(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = {s}) \
                  + (SELECT count(*) FROM pg_publication WHERE pubname = {p}) \
                  + (SELECT count(*) FROM pg_replication_slots WHERE slot_name = {l}) AS n",
            s = db::literal(URL_SCHEMA),
            p = db::literal(PUBLICATION),
            l = db::literal(SLOT)
        ),
    )
    .await?;
    if db::text(&existing, 0, "n") != Some("0") {
        return Err(CliError::failed(format!(
            "the schema {URL_SCHEMA}, the publication {PUBLICATION} or the slot {SLOT} already \
             exists (left over from an earlier demo?); remove them with: DROP SCHEMA \
             {URL_SCHEMA} CASCADE; DROP PUBLICATION IF EXISTS {PUBLICATION}; SELECT \
             pg_drop_replication_slot('{SLOT}');"
        )));
    }
    let result = demo(cfg, &format!("{URL_SCHEMA}."), format).await;
    // Remove what the demo created, whatever happened. The walsender releases the slot
    // shortly after the source disconnects: retry for a few seconds.
    let mut slot_gone = false;
    for _ in 0..50 {
        let state = db::query(
            &mut conn,
            &format!(
                "SELECT active FROM pg_replication_slots WHERE slot_name = {}",
                db::literal(SLOT)
            ),
        )
        .await;
        match state {
            Ok(r) if r.rows.is_empty() => {
                slot_gone = true;
                break;
            }
            Ok(r) if db::text(&r, 0, "active") == Some("t") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => {
                let sql = format!("SELECT pg_drop_replication_slot({})", db::literal(SLOT));
                match db::query(&mut conn, &sql).await {
                    Ok(_) => {
                        slot_gone = true;
                        break;
                    }
                    Err(e) => tracing::debug!("dropping the demo slot: {e}"),
                }
            }
            Err(e) => {
                tracing::warn!("dropping the demo slot failed: {e}");
                break;
            }
        }
    }
    let cleanup = format!(
        "DROP PUBLICATION IF EXISTS {PUBLICATION}; DROP SCHEMA IF EXISTS {URL_SCHEMA} CASCADE"
    );
    match db::query(&mut conn, &cleanup).await {
        Ok(_) if slot_gone => note(&format!(
            "removed the schema {URL_SCHEMA}, the publication {PUBLICATION} and the slot {SLOT}"
        )),
        Ok(_) => tracing::warn!(
            "the slot {SLOT} is still in use and was not dropped: drop it with `pgcdc slots --drop {SLOT}`"
        ),
        Err(e) => tracing::warn!("cleaning up the demo failed: {e}"),
    }
    let _ = conn.close().await;
    result
}

/// Schema, publication, source, workload, stream. `s` qualifies table names (`""` or
/// `"pgcdc_demo."`).
async fn demo(cfg: PostgresSourceConfig, s: &str, format: Format) -> Result<(), CliError> {
    let mut conn = db::connect(&cfg).await?;
    let schema = if s.is_empty() {
        String::new()
    } else {
        format!("CREATE SCHEMA {};", s.trim_end_matches('.'))
    };
    db::query(
        &mut conn,
        &format!(
            "{schema}
             CREATE TABLE {s}customers (
                 id int PRIMARY KEY,
                 name text NOT NULL,
                 email text,
                 balance numeric,
                 tags text[],
                 profile jsonb,
                 updated_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE {s}orders (
                 id bigint PRIMARY KEY,
                 customer_id int NOT NULL,
                 total numeric(10,2) NOT NULL,
                 note text);
             ALTER TABLE {s}orders REPLICA IDENTITY FULL;
             CREATE PUBLICATION {PUBLICATION} FOR TABLE {s}customers, {s}orders;"
        ),
    )
    .await?;
    note(&format!(
        "created tables {s}customers and {s}orders ({s}orders is REPLICA IDENTITY FULL: its \
         updates carry the old row) and publication {PUBLICATION}"
    ));

    let mut scfg = cfg;
    scfg.slot_name = SLOT.to_owned();
    scfg.publication_name = PUBLICATION.to_owned();
    scfg.create_slot = true;
    scfg.ack_mode = AckMode::Manual;
    scfg.auto_start = false;
    let source = PostgresReplicationSource::new("pgcdc-demo", scfg)
        .map_err(|e| CliError::failed(e.to_string()))?;
    let mut signals = Signals::new()?;
    let sub = source.subscribe();
    if !stream::start(&source, &mut signals).await? {
        return Ok(());
    }
    note(&format!(
        "streaming from slot {SLOT}; running the workload (one line per change on stdout)…"
    ));
    let rules = Rules {
        idle: Some(IDLE_LIMIT),
        max_changes: Some(EXPECTED_CHANGES),
        until_message: Some(END_MARKER),
        ..Rules::default()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let joined = tokio::try_join!(
        stream::pump(&source, sub, format, &rules, &mut signals, &mut out),
        workload(&mut conn, s),
    );
    let _ = conn.close().await;
    let (outcome, ()) = match joined {
        Ok(v) => v,
        Err(e) => {
            let _ = source.stop().await;
            return Err(e);
        }
    };
    let ops: Vec<String> = outcome
        .by_op
        .iter()
        .map(|(op, n)| format!("{n} {op}"))
        .collect();
    note(&format!(
        "{} changes in {} transactions ({}); slot confirmed up to {}",
        outcome.changes,
        outcome.transactions,
        ops.join(", "),
        outcome
            .last_acked
            .map_or_else(|| "-".to_owned(), |l| l.to_string())
    ));
    match outcome.end {
        End::Idle => Err(CliError::failed(format!(
            "only {} of the workload's {EXPECTED_CHANGES} changes arrived within {}s",
            outcome.changes,
            IDLE_LIMIT.as_secs()
        ))),
        _ => Ok(()),
    }
}

/// The workload: single-row inserts, an update, a delete, a multi-row transaction, an update
/// of a REPLICA IDENTITY FULL table, a truncate, and the end marker.
async fn workload(conn: &mut PgConnection, s: &str) -> Result<(), CliError> {
    let steps = [
        format!(
            "INSERT INTO {s}customers (id, name, email, balance, tags, profile) VALUES \
             (1, 'Ada Lovelace', 'ada@example.com', 1815.12, '{{math,engines}}', \
              '{{\"vip\": true, \"since\": 1843}}')"
        ),
        format!(
            "INSERT INTO {s}customers (id, name, email, balance, tags) VALUES \
             (2, 'Alan Turing', 'alan@example.com', 0.50, '{{}}')"
        ),
        format!(
            "INSERT INTO {s}customers (id, name, email, balance, tags, profile) VALUES \
             (3, 'Grace Hopper', 'grace@example.com', 12345678901234567890.123456789, \
              '{{cobol,NULL}}', '{{\"rank\": \"rear admiral\", \"ratio\": 1.10}}')"
        ),
        format!("UPDATE {s}customers SET balance = balance + 100, updated_at = now() WHERE id = 1"),
        format!("DELETE FROM {s}customers WHERE id = 2"),
        format!(
            "BEGIN; \
             INSERT INTO {s}orders VALUES (100, 1, 19.99, 'book'), (101, 3, 250.00, NULL), \
                                          (102, 3, 5.00, 'stickers'); \
             UPDATE {s}customers SET balance = balance - 19.99 WHERE id = 1; \
             COMMIT"
        ),
        format!("UPDATE {s}orders SET note = 'gift wrap' WHERE id = 101"),
        format!("TRUNCATE {s}orders"),
        format!("SELECT pg_logical_emit_message(true, '{END_MARKER}', 'workload done')"),
    ];
    for sql in &steps {
        db::query(conn, sql).await?;
    }
    Ok(())
}

/// A progress note on stderr (stdout carries only the changes).
fn note(message: &str) {
    eprintln!("pgcdc demo: {message}");
}
