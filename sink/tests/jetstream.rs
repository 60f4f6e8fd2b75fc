//! The JetStream sink against a real PostgreSQL and a real `nats-server -js`: every change
//! stored once, in order, on its subject; a broker restart, a killed walsender, a full stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use pgcdc_sink::nats::{JetStreamOptions, JetStreamSink};
use pgcdc_sink::{Encoder, Envelope, ForwardError, ForwardOptions, Naming, SinkError, forward};
use pgcdc_testkit::{NatsServer, SCRAM_USER};
use pgcdc_tokio::{AckMode, PostgresReplicationSource, PostgresSourceConfig};
use serde_json::Value as J;

const LIMIT: Duration = Duration::from_secs(90);

#[allow(dead_code)]
#[path = "../../driver/tests/suite/stress.rs"]
mod stress;
use stress::stressed_blocking as stressed;

#[path = "support/common.rs"]
mod support;
use support::{Db, Stored, context, count, lsn, read_all};

async fn wait_count(js: &jetstream::Context, name: &str, n: u64) {
    support::wait_count(js, name, n, LIMIT).await;
}

impl Db {
    fn config(&self) -> PostgresSourceConfig {
        PostgresSourceConfig {
            host: self.cluster.host().to_owned(),
            port: self.cluster.port(),
            database: self.name.clone(),
            user: SCRAM_USER.name.to_owned(),
            password: SCRAM_USER.password.unwrap_or_default().into(),
            slot_name: self.slot(),
            publication_name: "pub".to_owned(),
            create_slot: true,
            ack_mode: AckMode::Manual,
            ..Default::default()
        }
    }

    fn source(&self) -> PostgresReplicationSource {
        PostgresReplicationSource::new("sink-test", self.config()).unwrap()
    }
}

/// Subjects `pgcdc.t.<schema>.<table>`, ids `t:<slot>:…`.
fn naming(db: &Db) -> Naming {
    Naming {
        prefix: "pgcdc.t".into(),
        source: "t".into(),
        slot: db.slot(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn create_stream(js: &jetstream::Context, name: &str, prefix: &str) {
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .unwrap();
}

fn options(nats: &NatsServer, stream: &str) -> JetStreamOptions {
    let mut o = JetStreamOptions::new(nats.url(), stream);
    // Short, so that lost acknowledgements are sent again quickly in the tests.
    o.ack_timeout = Duration::from_secs(2);
    o
}

/// Runs `forward` on its own task until `stop` fires; returns its result.
fn spawn_forward(
    source: PostgresReplicationSource,
    mut sink: JetStreamSink,
    naming: Naming,
    fwd: ForwardOptions,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<pgcdc_sink::Outcome, ForwardError>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let mut sub = source.subscribe();
        source.start().await.unwrap();
        let mut encoder = Encoder::new(naming, Envelope::Native);
        let r = forward(&source, &mut sub, &mut sink, &mut encoder, &fwd, async {
            let _ = rx.await;
        })
        .await;
        if let Ok(pgcdc_sink::Outcome {
            last_acked: Some(l),
            ..
        }) = &r
        {
            source.ack(*l);
        }
        let _ = source.stop().await;
        r
    });
    (tx, handle)
}

/// Checks the `orders` messages: ids 1..=n once each, in order, every id unique.
fn assert_orders_once_in_order(msgs: &[Stored], n: i64) {
    let ids: HashSet<&str> = msgs.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), msgs.len(), "a message id is stored twice");
    let orders: Vec<i64> = msgs
        .iter()
        .filter(|m| m.subject == "pgcdc.t.public.orders" && m.json["op"] == "insert")
        .map(|m| m.json["props"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(orders.len() as i64, n, "orders stored");
    assert!(
        orders.iter().copied().eq(1..=n),
        "orders out of order or repeated (first differences: {:?})",
        orders
            .iter()
            .zip(1..)
            .filter(|(a, b)| **a != *b)
            .take(5)
            .collect::<Vec<_>>()
    );
}

fn insert_orders(db: &Db, from: i64, transactions: i64, per: i64) {
    for t in 0..transactions {
        let lo = from + t * per;
        db.sql(&format!(
            "INSERT INTO orders SELECT g, 'c' || g, g * 1.5 FROM generate_series({lo}, {}) g",
            lo + per - 1
        ));
    }
}

fn orders_db(name: &str) -> Db {
    let db = Db::new("sink", name);
    db.sql(
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer text, amount numeric);
         CREATE SCHEMA sales;
         CREATE TABLE sales.items (id int PRIMARY KEY, name text);
         CREATE PUBLICATION pub FOR TABLE orders, sales.items;",
    );
    db
}

#[test]
fn ten_thousand_rows_once_in_order_on_their_subjects() {
    let db = orders_db("once");
    let nats = NatsServer::start().unwrap();
    runtime().block_on(async {
        let js = context(&nats).await;
        let naming = naming(&db);
        let mut o = options(&nats, "ONCE");
        o.create_stream = true;
        o.subjects = vec![naming.stream_subject()];
        let sink = JetStreamSink::connect(&o).await.unwrap();
        let fwd = ForwardOptions {
            max_in_flight: 512,
            ..ForwardOptions::default()
        };
        let (stop, task) = spawn_forward(db.source(), sink, naming, fwd);
        // Wait for the slot, then write: 100 transactions of 100 rows, and other changes.
        let deadline = Instant::now() + LIMIT;
        while db.sql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}' AND active",
            db.slot()
        )) != "1"
        {
            assert!(Instant::now() < deadline, "the source never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let writer = {
            let db = Db { cluster: db.cluster, name: db.name.clone() };
            tokio::task::spawn_blocking(move || {
                insert_orders(&db, 1, 100, 100);
                db.sql(
                    "BEGIN; INSERT INTO sales.items VALUES (1, 'a.b'); UPDATE orders SET customer = 'x' WHERE id = 5; \
                     DELETE FROM orders WHERE id = 6; COMMIT;",
                );
                db.sql("SELECT pg_logical_emit_message(false, 'app.note', 'hello')");
                let before = db.sql("SELECT pg_current_wal_insert_lsn()");
                db.sql("TRUNCATE sales.items");
                before
            })
        };
        let before_truncate = lsn(&writer.await.unwrap());
        // 10,000 inserts + 3 + the message + the truncate.
        wait_count(&js, "ONCE", 10_005).await;
        // Acknowledged to PostgreSQL once stored.
        let deadline = Instant::now() + LIMIT;
        while db.confirmed_flush() <= before_truncate {
            assert!(Instant::now() < deadline, "the slot was not flushed past the last commit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(()).unwrap();
        let outcome = task.await.unwrap().unwrap();
        assert_eq!(outcome.records, 10_005);
        assert_eq!(outcome.duplicates, 0);
        let msgs = read_all(&js, "ONCE").await;
        assert_eq!(msgs.len(), 10_005);
        assert_orders_once_in_order(&msgs, 10_000);
        let tail: Vec<(&str, &J)> = msgs[10_000..]
            .iter()
            .map(|m| (m.subject.as_str(), &m.json["op"]))
            .collect();
        assert_eq!(
            tail,
            [
                ("pgcdc.t.sales.items", &J::from("insert")),
                ("pgcdc.t.public.orders", &J::from("update")),
                ("pgcdc.t.public.orders", &J::from("delete")),
                ("pgcdc.t.$message.app%2Enote", &J::from("message")),
                ("pgcdc.t.sales.items", &J::from("truncate")),
            ]
        );
        // The payload is the CLI's line; ids are slot, commit LSN and place in the transaction.
        let first = &msgs[0];
        assert_eq!(first.json["table"], "orders");
        assert_eq!(first.json["props"]["amount"].to_string(), "1.5");
        let commit = first.json["commit_lsn"].as_str().unwrap();
        assert_eq!(first.id, format!("t:{}:{commit}:0", db.slot()));
        assert_eq!(msgs[99].id, format!("t:{}:{commit}:99", db.slot()));
        assert_ne!(msgs[100].json["commit_lsn"].as_str().unwrap(), commit);
        assert_eq!(msgs[10_001].id.rsplit(':').next(), Some("1"));
        assert!(msgs[10_003].id.contains(":m:"), "{}", msgs[10_003].id);
    });
}

/// The fault tests, run again under load by `.ci/run` (filter `faults::`).
mod faults {
    #[test]
    fn nats_restart_mid_stream_loses_and_repeats_nothing() {
        super::stressed("natsrestart", |name| super::nats_restart(&name));
    }

    #[test]
    fn walsender_killed_mid_stream_loses_and_repeats_nothing() {
        super::stressed("walsender", |name| super::walsender_killed(&name));
    }

    #[test]
    fn full_stream_is_an_error_and_nothing_past_it_is_acknowledged() {
        super::stressed("full", |name| super::full_stream(&name));
    }
}

/// Waits until the stream holds `n` messages, from a blocking test body.
fn block_until(rt: &tokio::runtime::Runtime, nats: &NatsServer, stream: &str, n: u64) {
    rt.block_on(async {
        let js = context(nats).await;
        wait_count(&js, stream, n).await;
    });
}

/// 5,000 rows in 100 transactions, written while they are published to `stream`, with
/// `fault` injected mid-stream: afterwards every row is stored once, in order.
fn once_in_order_despite(
    name: &str,
    stream: &str,
    fault: impl FnOnce(&Db, &mut NatsServer, &tokio::runtime::Runtime),
) {
    let db = orders_db(name);
    let mut nats = NatsServer::start().unwrap();
    let rt = runtime();
    let naming = naming(&db);
    let (stop, task) = rt.block_on(async {
        let js = context(&nats).await;
        create_stream(&js, stream, "pgcdc.t").await;
        let sink = JetStreamSink::connect(&options(&nats, stream))
            .await
            .unwrap();
        spawn_forward(db.source(), sink, naming, ForwardOptions::default())
    });
    let writer = {
        let db = db.handle();
        std::thread::spawn(move || {
            // Let the source start first.
            std::thread::sleep(Duration::from_millis(500));
            insert_orders(&db, 1, 100, 50);
        })
    };
    fault(&db, &mut nats, &rt);
    writer.join().unwrap();
    rt.block_on(async {
        let js = context(&nats).await;
        wait_count(&js, stream, 5000).await;
        // Nothing more comes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(()).unwrap();
        let outcome = task.await.unwrap().unwrap();
        let msgs = read_all(&js, stream).await;
        assert_eq!(msgs.len(), 5000, "outcome {outcome:?}");
        assert_orders_once_in_order(&msgs, 5000);
    });
}

fn nats_restart(name: &str) {
    once_in_order_despite(name, "RESTART", |_, nats, rt| {
        block_until(rt, nats, "RESTART", 1000);
        // Mid-stream: the broker goes away for a while, then comes back with its store.
        nats.stop().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        nats.restart().unwrap();
    });
}

fn walsender_killed(name: &str) {
    once_in_order_despite(name, "WALSENDER", |db, nats, rt| {
        block_until(rt, nats, "WALSENDER", 1500);
        db.kill_walsender();
        block_until(rt, nats, "WALSENDER", 3000);
        db.kill_walsender();
    });
}

fn full_stream(name: &str) {
    let db = orders_db(name);
    let nats = NatsServer::start().unwrap();
    let rt = runtime();
    // Ten transactions of ten rows; the stream takes fifty messages and refuses the rest.
    db.create_slot();
    insert_orders(&db, 1, 5, 10);
    insert_orders(&db, 51, 1, 10);
    // The end of the sixth transaction (the insert position: with synchronous_commit off,
    // the testkit's, the write position can lag behind the commits).
    let after_sixth = lsn(&db.sql("SELECT pg_current_wal_insert_lsn()"));
    insert_orders(&db, 61, 4, 10);
    rt.block_on(async {
        let js = context(&nats).await;
        js.create_stream(stream::Config {
            name: "FULL".into(),
            subjects: vec!["pgcdc.t.>".into()],
            max_messages: 50,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .unwrap();
        let naming = naming(&db);
        let mut sink = JetStreamSink::connect(&options(&nats, "FULL"))
            .await
            .unwrap();
        let source = db.source();
        let mut sub = source.subscribe();
        source.start().await.unwrap();
        let mut encoder = Encoder::new(naming.clone(), Envelope::Native);
        let fwd = ForwardOptions::default();
        let run = forward(
            &source,
            &mut sub,
            &mut sink,
            &mut encoder,
            &fwd,
            std::future::pending(),
        );
        let err = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap_err();
        // The source stops with its last acknowledged position (the final status update).
        source.stop().await.unwrap();
        let text = err.to_string();
        match &err {
            ForwardError::Sink {
                error: SinkError::Refused { .. },
                ..
            } => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(
            text.contains("FULL is full") && text.contains("maximum messages"),
            "{text}"
        );
        assert_eq!(count(&js, "FULL").await, 50);
        // The sixth transaction is not acknowledged (an idle keepalive may move the slot
        // into it, before its commit: it is still sent again). The second run below shows
        // it: its rows come.
        let confirmed = db.confirmed_flush();
        assert!(
            confirmed < after_sixth,
            "confirmed {confirmed:X}, the sixth transaction ends at {after_sixth:X}"
        );

        // With room, the next run stores the rest, and only the rest.
        let mut info = js
            .get_stream("FULL")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .clone();
        info.max_messages = 1000;
        js.update_stream(info).await.unwrap();
        let sink = JetStreamSink::connect(&options(&nats, "FULL"))
            .await
            .unwrap();
        let (stop, task) = spawn_forward(db.source(), sink, naming, ForwardOptions::default());
        wait_count(&js, "FULL", 100).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        let msgs = read_all(&js, "FULL").await;
        assert_eq!(msgs.len(), 100);
        assert_orders_once_in_order(&msgs, 100);
    });
}

#[test]
fn missing_stream_and_uncaptured_subjects_are_clear_errors() {
    let db = orders_db("missing");
    let nats = NatsServer::start().unwrap();
    runtime().block_on(async {
        let err = JetStreamSink::connect(&options(&nats, "NOPE"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("stream NOPE does not exist") && text.contains("--create-stream"),
            "{text}"
        );

        let js = context(&nats).await;
        create_stream(&js, "OTHER", "elsewhere").await;
        db.create_slot();
        db.sql("INSERT INTO orders VALUES (1, 'a', 1)");
        let sink = JetStreamSink::connect(&options(&nats, "OTHER"))
            .await
            .unwrap();
        let naming = naming(&db);
        let (_stop, task) = spawn_forward(db.source(), sink, naming, ForwardOptions::default());
        let err = tokio::time::timeout(LIMIT, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("publishing pgcdc.t.public.orders")
                && text.contains("no stream captures"),
            "{text}"
        );
        assert_eq!(count(&js, "OTHER").await, 0);

        let err = JetStreamSink::connect(&JetStreamOptions::new("nats://127.0.0.1:1", "X"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot connect to nats://127.0.0.1:1"),
            "{err}"
        );
    });
}
