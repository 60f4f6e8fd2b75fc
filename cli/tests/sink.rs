//! `pgcdc stream --sink nats://…` against a real PostgreSQL and a real `nats-server -js`:
//! killed with SIGKILL mid-stream and started again, every row is in the stream once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use pgcdc_testkit::NatsServer;
use serde_json::Value as J;

const LIMIT: Duration = Duration::from_secs(120);

#[allow(dead_code)]
#[path = "../../driver/tests/suite/stress.rs"]
mod stress;
use stress::stressed_blocking as stressed;

#[path = "../../sink/tests/support/common.rs"]
mod support;
use support::{Db, context, read_all};

async fn wait_count(js: &jetstream::Context, name: &str, n: u64) {
    support::wait_count(js, name, n, LIMIT).await;
}

fn pgcdc(args: &[String]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgcdc"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") && k != "PGCDC_PG_BIN" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Waits for the process to exit; its status and stderr.
fn finish(child: Child) -> (std::process::ExitStatus, String) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("pgcdc did not end within {LIMIT:?}");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sink_args(db: &Db, nats: &NatsServer, stream: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "stream",
        "--url",
        &db.url(),
        "--publication",
        "pub",
        "--slot",
        &db.slot(),
        "--sink",
        &nats.url(),
        "--stream",
        stream,
        "--create-stream",
        "--source-name",
        "shop",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The fault test, run again under load by `.ci/run` (filter `faults::`).
mod faults {
    #[test]
    fn sigkill_mid_stream_and_restart_store_every_row_once() {
        super::stressed("kill", |name| super::sigkill_and_restart(&name));
    }
}

fn sigkill_and_restart(name: &str) {
    let db = Db::new("clisink", name);
    db.sql(
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer text, amount numeric);
         CREATE PUBLICATION pub FOR TABLE orders;",
    );
    db.create_slot();
    let nats = NatsServer::start().unwrap();
    let rt = runtime();
    let writer = {
        let db = db.handle();
        std::thread::spawn(move || {
            for t in 0..200 {
                let lo = 1 + t * 100;
                db.sql(&format!(
                    "INSERT INTO orders SELECT g, 'c' || g, g * 0.25 FROM generate_series({lo}, {}) g",
                    lo + 99
                ));
            }
        })
    };
    let first = pgcdc(&sink_args(&db, &nats, "ORDERS", &[]));
    rt.block_on(async {
        let js = context(&nats).await;
        wait_count(&js, "ORDERS", 3000).await;
    });
    // Mid-stream, without a chance to clean up.
    signal(&first, "-KILL");
    let (status, _) = finish(first);
    assert!(!status.success());
    let second = pgcdc(&sink_args(&db, &nats, "ORDERS", &[]));
    writer.join().unwrap();
    let msgs = rt.block_on(async {
        let js = context(&nats).await;
        wait_count(&js, "ORDERS", 20_000).await;
        // Nothing more comes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        read_all(&js, "ORDERS").await
    });
    signal(&second, "-TERM");
    let (status, stderr) = finish(second);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("publishing ended: SIGTERM"), "{stderr}");
    // How many of the second run's records were copies the stream dropped.
    if let Some(line) = stderr.lines().find(|l| l.contains("publishing ended")) {
        eprintln!("second run: {line}");
    }
    assert_eq!(msgs.len(), 20_000);
    let ids: HashSet<&str> = msgs.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 20_000, "a message id is stored twice");
    let rows: Vec<i64> = msgs
        .iter()
        .map(|m| m.json["props"]["id"].as_i64().unwrap())
        .collect();
    assert!(
        rows.iter().copied().eq(1..=20_000),
        "rows out of order or repeated"
    );
    assert!(msgs.iter().all(|m| m.subject == "pgcdc.shop.public.orders"));
    assert!(msgs[0].id.starts_with(&format!("shop:{}:", db.slot())));
    // Everything stored is acknowledged: the slot is at the last commit.
    let pending = db.sql(&format!(
        "SELECT pg_current_wal_insert_lsn() - confirmed_flush_lsn < 16384 \
         FROM pg_replication_slots WHERE slot_name = '{}'",
        db.slot()
    ));
    assert_eq!(pending, "t");
}

#[test]
fn debezium_envelope_and_subject_prefix() {
    let db = Db::new("clisink", "debezium");
    db.sql(
        "CREATE TABLE items (id int PRIMARY KEY, name text);
         ALTER TABLE items REPLICA IDENTITY FULL;
         CREATE PUBLICATION pub FOR TABLE items;",
    );
    db.create_slot();
    let nats = NatsServer::start().unwrap();
    db.sql("INSERT INTO items VALUES (1, 'a')");
    db.sql("UPDATE items SET name = 'b' WHERE id = 1");
    db.sql("DELETE FROM items WHERE id = 1");
    db.sql("TRUNCATE items");
    let child = pgcdc(&sink_args(
        &db,
        &nats,
        "DBZ",
        &["--envelope", "debezium", "--subject-prefix", "cdc.db1"],
    ));
    let msgs = runtime().block_on(async {
        let js = context(&nats).await;
        wait_count(&js, "DBZ", 4).await;
        read_all(&js, "DBZ").await
    });
    signal(&child, "-TERM");
    let (status, stderr) = finish(child);
    assert!(status.success(), "{stderr}");
    assert!(msgs.iter().all(|m| m.subject == "cdc.db1.public.items"));
    let ops: Vec<&J> = msgs.iter().map(|m| &m.json["op"]).collect();
    assert_eq!(ops, ["c", "u", "d", "t"]);
    let (c, u, d) = (&msgs[0].json, &msgs[1].json, &msgs[2].json);
    assert_eq!(c["before"], J::Null);
    assert_eq!(c["after"], serde_json::json!({"id": 1, "name": "a"}));
    assert_eq!(u["before"], serde_json::json!({"id": 1, "name": "a"}));
    assert_eq!(u["after"], serde_json::json!({"id": 1, "name": "b"}));
    assert_eq!(d["before"], serde_json::json!({"id": 1, "name": "b"}));
    assert_eq!(d["after"], J::Null);
    assert_eq!(c["source"]["connector"], "pgcdc");
    assert_eq!(c["source"]["name"], "shop");
    assert_eq!(c["source"]["schema"], "public");
    assert_eq!(c["source"]["table"], "items");
    assert_eq!(c["source"]["snapshot"], false);
    assert!(c["source"]["lsn"].as_u64().unwrap() > 0);
    assert!(c["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
}

#[test]
fn sink_usage_errors_exit_2() {
    let bad: &[&[&str]] = &[
        &["--sink", "nats://127.0.0.1:4222"],
        &["--stream", "S"],
        &["--create-stream"],
        &["--sink", "http://127.0.0.1:4222", "--stream", "S"],
        &["--sink", "nats://127.0.0.1:4222", "--stream", "a.b"],
        &[
            "--sink",
            "nats://127.0.0.1:4222",
            "--stream",
            "S",
            "--max-changes",
            "5",
        ],
        &[
            "--sink",
            "nats://127.0.0.1:4222",
            "--stream",
            "S",
            "--subject-prefix",
            "a.>",
        ],
        &[
            "--sink",
            "nats://127.0.0.1:4222",
            "--stream",
            "S",
            "--envelope",
            "avro",
        ],
    ];
    for extra in bad {
        let mut args: Vec<String> = ["stream", "--publication", "p", "--slot", "s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let (status, stderr) = finish(pgcdc(&args));
        assert_eq!(status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(!stderr.is_empty(), "{extra:?}");
    }
    // The server is checked before PostgreSQL is touched.
    let args: Vec<String> = [
        "stream",
        "--url",
        "postgres://nobody@127.0.0.1:1/x",
        "--publication",
        "p",
        "--slot",
        "s",
        "--sink",
        "nats://127.0.0.1:1",
        "--stream",
        "S",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (status, stderr) = finish(pgcdc(&args));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to nats://127.0.0.1:1"),
        "{stderr}"
    );
}

/// `--metrics-addr` with `--sink`: the sink's figures are scraped beside the source's.
#[test]
fn sink_metrics_are_scraped() {
    use std::io::{Read, Write};
    let db = Db::new("clisink", "metrics");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    db.create_slot();
    let nats = NatsServer::start().unwrap();
    db.sql("INSERT INTO t SELECT generate_series(1, 7)");
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = pgcdc(&sink_args(
        &db,
        &nats,
        "METRICS",
        &["--metrics-addr", &addr],
    ));
    runtime().block_on(async {
        let js = context(&nats).await;
        wait_count(&js, "METRICS", 7).await;
    });
    let scrape = || -> String {
        let Ok(mut c) = std::net::TcpStream::connect(&addr) else {
            return String::new();
        };
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut page = String::new();
        let _ = c.read_to_string(&mut page);
        page
    };
    let value = |page: &str, name: &str| -> Option<f64> {
        page.lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let deadline = Instant::now() + LIMIT;
    let page = loop {
        let page = scrape();
        if value(&page, "pgcdc_sink_batches_total") == Some(1.0) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    signal(&child, "-TERM");
    let (status, stderr) = finish(child);
    assert!(status.success(), "{stderr}");
    assert_eq!(
        value(&page, "pgcdc_sink_records_total"),
        Some(7.0),
        "{page}"
    );
    assert_eq!(
        value(&page, "pgcdc_sink_duplicates_total"),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        value(&page, "pgcdc_sink_in_flight_records"),
        Some(0.0),
        "{page}"
    );
    assert_eq!(value(&page, "pgcdc_changes_total"), Some(7.0), "{page}");
    assert!(
        page.contains(&format!("sink=\"{} stream METRICS\"", nats.url())),
        "{page}"
    );
}
