//! Bootstrap: an exact snapshot-to-stream handoff, providers, failure, restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use pgcdc_core::model::SourceChange;
use pgcdc_core::pgoutput::Xid;
use pgcdc_core::value::Value;
use pgcdc_driver::source::{
    BootstrapContext, BootstrapProvider, BootstrapStage, JsonlBootstrap, PostgresBootstrap,
};
use pgcdc_driver::{BootstrapError, BoxFuture, Runtime};

use super::{Ctx, collect, next_batch, render};

const T: Duration = Duration::from_secs(60);

/// 100,000 rows bootstrapped while writers insert, update and delete: the bootstrap plus the
/// stream reproduce the table's final contents, with no gap and no duplicate.
pub async fn exact_handoff_under_writes<R: Runtime + Default>() {
    let ctx = Ctx::new("bootexact");
    ctx.sql("CREATE TABLE acct (id int PRIMARY KEY, v bigint NOT NULL)");
    ctx.sql("INSERT INTO acct SELECT g, g FROM generate_series(1, 100000) g");
    ctx.sql("ANALYZE acct");
    ctx.publish(&["acct"]);
    let stop = Arc::new(AtomicBool::new(false));
    // Writers run throughout the bootstrap and after it.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let cluster = ctx.cluster;
            let db = ctx.db.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut i: i64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    let base = 200_000 + w * 1_000_000 + i * 3;
                    let victim = (i * 7919 + w * 13) % 100_000 + 1;
                    let sql = format!(
                        "BEGIN;
                         INSERT INTO acct VALUES ({base}, 1), ({}, 2);
                         UPDATE acct SET v = v + 1000 WHERE id = {victim};
                         DELETE FROM acct WHERE id = {};
                         COMMIT;",
                        base + 1,
                        (victim + 50_000) % 100_000 + 1
                    );
                    cluster.psql(&db, &sql).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let source = ctx
        .builder::<R>()
        .with_postgres_bootstrap()
        .with_dispatch_buffer_capacity(8)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    let start = {
        let source = source.clone();
        async move { source.start().await }
    };
    // Consume while starting: the bootstrap waits for room in the queue.
    let mut table: BTreeMap<i64, i64> = BTreeMap::new();
    let mut bootstrap_rows = 0u64;
    let mut streamed = 0u64;
    let mut start = Box::pin(start);
    let mut started = false;
    let mut done_marker = false;
    let rt = R::default();
    loop {
        if !started {
            match futures_util::future::select(start.as_mut(), Box::pin(sub.recv())).await {
                futures_util::future::Either::Left((r, _)) => {
                    r.unwrap();
                    started = true;
                    // Let the writers run on for a while, then stop them and mark the end.
                    let stop = Arc::clone(&stop);
                    let cluster = ctx.cluster;
                    let db = ctx.db.clone();
                    rt.spawn(Box::pin(async move {
                        R::default().sleep(Duration::from_millis(700)).await;
                        stop.store(true, Ordering::SeqCst);
                        // Writers finish their current transaction before the marker.
                        R::default().sleep(Duration::from_millis(300)).await;
                        cluster
                            // A marker row (not a logical message: those arrive from
                            // PostgreSQL 14 only).
                            .psql(&db, "INSERT INTO acct VALUES (-1, 0)")
                            .unwrap();
                    }));
                    continue;
                }
                futures_util::future::Either::Right((b, _)) => {
                    let b = b.expect("stream open");
                    apply(
                        &b,
                        &mut table,
                        &mut bootstrap_rows,
                        &mut streamed,
                        &mut done_marker,
                    );
                }
            }
        } else {
            let b = next_batch::<R>(&mut sub, T)
                .await
                .expect("changes until the marker");
            apply(
                &b,
                &mut table,
                &mut bootstrap_rows,
                &mut streamed,
                &mut done_marker,
            );
            if done_marker {
                break;
            }
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    let expected: BTreeMap<i64, i64> = ctx
        .sql("SELECT id, v FROM acct ORDER BY id")
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('|').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(
        bootstrap_rows >= 100_000 - 5_000,
        "bootstrap rows: {bootstrap_rows}"
    );
    assert!(streamed > 0, "the writers' changes must be streamed");
    assert_eq!(table.len(), expected.len(), "row count");
    assert!(table == expected, "bootstrap + stream must equal the table");
    let st = source.status();
    let progress = st.bootstrap.clone().unwrap();
    assert_eq!(progress.stage, BootstrapStage::Done);
    assert_eq!(progress.rows, bootstrap_rows);
    assert!(progress.tables[0].estimated_rows >= 90_000, "{progress:?}");
    eprintln!(
        "exact_handoff_under_writes: {bootstrap_rows} bootstrap rows, {streamed} streamed changes, {} final rows",
        expected.len()
    );
    source.stop().await.unwrap();
}

fn apply(
    b: &pgcdc_driver::ChangeBatch,
    table: &mut BTreeMap<i64, i64>,
    bootstrap_rows: &mut u64,
    streamed: &mut u64,
    done: &mut bool,
) {
    let bootstrap = b.xid == Xid(0);
    for c in &b.changes {
        match c {
            SourceChange::Insert { .. } => {
                let id = super::int_prop(c, "id").unwrap();
                let v = super::int_prop(c, "v").unwrap();
                *done |= id == -1;
                let prev = table.insert(id, v);
                assert!(
                    prev.is_none(),
                    "duplicate insert of id {id} (bootstrap: {bootstrap})"
                );
                if bootstrap {
                    *bootstrap_rows += 1;
                } else {
                    *streamed += 1;
                }
            }
            SourceChange::Update { .. } => {
                let id = super::int_prop(c, "id").unwrap();
                let v = super::int_prop(c, "v").unwrap();
                assert!(table.insert(id, v).is_some(), "update of a missing id {id}");
                *streamed += 1;
            }
            SourceChange::Delete { metadata, .. } => {
                let id: i64 = metadata
                    .reference
                    .element_id
                    .strip_prefix("acct:")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(table.remove(&id).is_some(), "delete of a missing id {id}");
                *streamed += 1;
            }
            other => panic!("unexpected change {other:?}"),
        }
    }
}

/// Bootstrap rows carry exactly the values, ids and labels the stream gives the same row.
pub async fn bootstrap_values_equal_stream<R: Runtime + Default>() {
    let ctx = Ctx::new("bootvals");
    ctx.sql(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE DOMAIN price AS numeric(12, 2) CHECK (VALUE >= 0);
         CREATE SCHEMA s;
         CREATE TABLE s.v (
            id int, k text, b bool, i2 int2, i8 int8, f4 float4, f8 float8, n numeric,
            t text, vc varchar(10), bp char(4), u uuid, d date, tm time, ttz timetz,
            ts timestamp, tstz timestamptz, iv interval, j json, jb jsonb, by bytea,
            inet inet, mac macaddr, m money, bits varbit, e mood, r int4range, a int[][],
            ta text[], pr price, ms mood[], PRIMARY KEY (id, k));
         INSERT INTO s.v VALUES (1, 'a_b:c', true, -32768, 9223372036854775807, 'NaN',
            '-Infinity', '123456789012345678901234567890.000100', E'tab\\there\\nnew \\\\ line',
            'vc', 'bp', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '0044-03-15 BC', '23:59:59.999999',
            '12:00+05:30', '2024-02-29 08:15:01.5', 'infinity', '1 year -2 days 03:00:00.000001',
            '{\"a\": [1, 2.50, null], \"a\": \"dup\"}', '{\"z\": 1, \"a\": {\"b\": [true]}}',
            '\\x00ff10', '2001:db8::1/64', '08:00:2b:01:02:03', '12.34', B'10110', 'happy',
            '[3,7)', '{{1,NULL},{3,4}}', '{\"\",NULL,\"x,y\",\"q\\\"\"}', '12.5',
            '{sad,NULL,happy}')",
    );
    ctx.publish(&["s.v"]);
    let source = ctx
        .builder::<R>()
        .with_postgres_bootstrap()
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let boot = collect::<R>(&mut sub, 1, T).await;
    ctx.sql("INSERT INTO s.v SELECT 2, k, b, i2, i8, f4, f8, n, t, vc, bp, u, d, tm, ttz, ts, tstz, iv, j, jb, by, inet, mac, m, bits, e, r, a, ta, pr, ms FROM s.v WHERE id = 1");
    let streamed = collect::<R>(&mut sub, 1, T).await;
    let (SourceChange::Insert { element: a, .. }, SourceChange::Insert { element: b, .. }) =
        (&boot[0].changes[0], &streamed[0].changes[0])
    else {
        panic!(
            "two inserts expected: {:?} {:?}",
            render(&boot),
            render(&streamed)
        );
    };
    assert_eq!(boot[0].xid, Xid(0));
    assert_eq!(&*a.metadata().reference.element_id, "s.v:1_a\\_b\\:c");
    assert_eq!(&*b.metadata().reference.element_id, "s.v:2_a\\_b\\:c");
    assert_eq!(a.metadata().labels, b.metadata().labels);
    assert_eq!(a.properties().len(), b.properties().len());
    let mut compared = 0;
    for (name, va) in a.properties().iter() {
        if &**name == "id" {
            continue;
        }
        let vb = b.properties().get(name).unwrap();
        // Debug, not ==: NaN is not equal to itself.
        assert_eq!(format!("{va:?}"), format!("{vb:?}"), "column {name}");
        compared += 1;
    }
    assert_eq!(compared, 30);
    // User types are typed in both, from the catalog: not `Value::Unknown` text.
    for (what, p) in [("bootstrap", a.properties()), ("stream", b.properties())] {
        let enum_label = |v: &Value| match v {
            Value::Enum { label, .. } => Some(label.clone()),
            _ => None,
        };
        let e = p.get("e").unwrap();
        assert_eq!(enum_label(e).as_deref(), Some("happy"), "{what}: {e:?}");
        let pr = p.get("pr").unwrap();
        assert!(
            matches!(pr, Value::Numeric(n) if n.to_string() == "12.50"),
            "{what}: {pr:?}"
        );
        let Some(Value::Array(ms)) = p.get("ms") else {
            panic!("{what}: {:?}", p.get("ms"))
        };
        let labels: Vec<_> = ms.elements.iter().map(enum_label).collect();
        assert_eq!(
            labels,
            [Some("sad".into()), None, Some("happy".into())],
            "{what}: {ms:?}"
        );
        assert_eq!(ms.elements[1], Value::Null, "{what}");
    }
    source.stop().await.unwrap();
}

/// A provider that delivers some rows and then fails.
struct FailingProvider;

impl<R: Runtime> BootstrapProvider<R> for FailingProvider {
    fn name(&self) -> &str {
        "failing"
    }

    fn bootstrap<'a>(
        &'a self,
        ctx: &'a BootstrapContext<R>,
    ) -> BoxFuture<'a, Result<(), BootstrapError>> {
        Box::pin(async move {
            let keys = ctx.config().key_config();
            let line = r#"{"table": "t", "id": "t:1", "properties": {"id": 1}}"#;
            let change =
                pgcdc_core::snapshot::jsonl_change(line, 1, ctx.source_id(), &keys, ctx.tx_info())
                    .map_err(|e| e.to_string())?
                    .unwrap();
            ctx.deliver("t", vec![change]).await;
            Err("the custom provider broke half-way".to_owned().into())
        })
    }
}

/// A bootstrap that fails half-way fails the start and drops its slot; the next start
/// bootstraps again. After a successful bootstrap, a restart does not bootstrap again unless
/// forced.
pub async fn failure_and_restart<R: Runtime + Default>() {
    let ctx = Ctx::new("bootfail");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.sql("INSERT INTO t SELECT generate_series(1, 10)");
    ctx.publish(&["t"]);
    let failing = ctx
        .builder::<R>()
        .with_bootstrap_provider(FailingProvider)
        .build()
        .unwrap();
    let mut sub = failing.subscribe();
    let err = failing.start().await.expect_err("the bootstrap fails");
    assert!(err.to_string().contains("broke half-way"), "{err}");
    let st = failing.status();
    assert!(matches!(
        st.bootstrap.unwrap().stage,
        BootstrapStage::Failed(_)
    ));
    assert_eq!(
        ctx.sql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}'",
            ctx.slot
        )),
        "0",
        "the failed bootstrap's slot is dropped"
    );
    let got = collect::<R>(&mut sub, 1, T).await;
    assert_eq!(render(&got), ["insert t:1 {id=1}"]);

    // A real bootstrap now.
    let source = ctx
        .builder::<R>()
        .with_postgres_bootstrap()
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let got = collect::<R>(&mut sub, 10, T).await;
    assert_eq!(got.iter().map(|b| b.changes.len()).sum::<usize>(), 10);
    ctx.sql("INSERT INTO t VALUES (11)");
    let got = collect::<R>(&mut sub, 1, T).await;
    assert_eq!(render(&got), ["insert t:11 {id=11}"]);
    source.stop().await.unwrap();

    // Restart: no second bootstrap; what was written meanwhile streams.
    ctx.sql("INSERT INTO t VALUES (12)");
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let got = collect::<R>(&mut sub, 1, T).await;
    assert_eq!(render(&got), ["insert t:12 {id=12}"]);
    assert_eq!(
        source.status().bootstrap.unwrap().stage,
        BootstrapStage::Skipped
    );
    source.stop().await.unwrap();

    // Forced: the slot is recreated and the table copied again.
    let forced = ctx
        .builder::<R>()
        .with_postgres_bootstrap()
        .with_force_bootstrap(true)
        .build()
        .unwrap();
    let mut sub = forced.subscribe();
    forced.start().await.unwrap();
    let got = collect::<R>(&mut sub, 12, T).await;
    assert!(got.iter().all(|b| b.xid == Xid(0)));
    assert_eq!(
        forced.status().bootstrap.unwrap().stage,
        BootstrapStage::Done
    );
    forced.stop().await.unwrap();
}

/// The JSONL provider delivers its file's rows before streaming.
pub async fn jsonl_provider<R: Runtime + Default>() {
    let ctx = Ctx::new("bootjsonl");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY, name text)");
    ctx.publish(&["t"]);
    let dir = std::env::temp_dir().join(format!("pgcdc-jsonl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seed.jsonl");
    std::fs::write(
        &path,
        "# seed\n{\"table\": \"t\", \"properties\": {\"id\": 1, \"name\": \"ann\"}}\n\n{\"table\": \"t\", \"id\": \"t:2\", \"properties\": {\"id\": 2, \"name\": null}}\n",
    )
    .unwrap();
    let source = ctx
        .builder::<R>()
        .add_table_key(pgcdc_core::TableKeyConfig {
            table: "t".into(),
            key_columns: vec!["id".into()],
        })
        .with_bootstrap_provider(JsonlBootstrap::new(vec![path]))
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (3, 'cy')");
    let got = collect::<R>(&mut sub, 3, T).await;
    assert_eq!(
        render(&got),
        [
            "insert t:1 {id=1, name=ann}",
            "insert t:2 {id=2, name=NULL}",
            "insert t:3 {id=3, name=cy}"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
    source.stop().await.unwrap();
}

/// PostgresBootstrap with several parts per table (ctid ranges) and parallel connections.
pub async fn parallel_split_copy<R: Runtime + Default>() {
    let ctx = Ctx::new("bootsplit");
    ctx.sql("CREATE TABLE big (id int PRIMARY KEY, pad text)");
    ctx.sql("CREATE TABLE small (id int PRIMARY KEY)");
    ctx.sql("INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g");
    ctx.sql("INSERT INTO small SELECT generate_series(1, 10)");
    ctx.sql("ANALYZE big; ANALYZE small");
    ctx.publish(&["big", "small"]);
    let source = ctx
        .builder::<R>()
        .with_bootstrap_provider(PostgresBootstrap {
            parallelism: 3,
            split_pages: 50,
            max_parts_per_table: 6,
        })
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let got = collect::<R>(&mut sub, 20010, T).await;
    let mut ids: Vec<(String, i64)> = got
        .iter()
        .flat_map(|b| b.changes.iter())
        .map(|c| {
            let label = c.metadata().unwrap().labels[0].to_string();
            (label, super::int_prop(c, "id").unwrap())
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20010, "every row exactly once");
    let p = source.status().bootstrap.unwrap();
    assert!(p.tables.iter().all(|t| t.done), "{p:?}");
    source.stop().await.unwrap();
}

/// `tables` narrower than the publication: the bootstrap copies only those tables and the
/// stream carries only their changes (a truncate of several tables keeps only theirs).
pub async fn tables_narrower_than_the_publication<R: Runtime + Default>() {
    let ctx = Ctx::new("narrow");
    ctx.sql(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
         CREATE SCHEMA other; CREATE TABLE other.a (id int PRIMARY KEY);
         INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO other.a VALUES (1);",
    );
    ctx.publish(&["a", "b", "other.a"]);
    let source = ctx
        .builder::<R>()
        .with_tables(vec!["a".into()])
        .with_postgres_bootstrap()
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let got = collect::<R>(&mut sub, 1, Duration::from_secs(30)).await;
    assert_eq!(render(&got), ["insert a:1 {id=1}"]);
    ctx.sql("INSERT INTO b VALUES (2); INSERT INTO other.a VALUES (2); INSERT INTO a VALUES (2)");
    ctx.sql("UPDATE b SET id = id + 10; DELETE FROM other.a");
    ctx.sql("TRUNCATE a, b");
    ctx.sql("INSERT INTO b VALUES (9); INSERT INTO a VALUES (9)");
    // TRUNCATE is replicated from PostgreSQL 11.
    let want: &[&str] = if ctx.major() >= 11 {
        &["insert a:2 {id=2}", "truncate [\"a\"]", "insert a:9 {id=9}"]
    } else {
        &["insert a:2 {id=2}", "insert a:9 {id=9}"]
    };
    let got = collect::<R>(&mut sub, want.len(), Duration::from_secs(30)).await;
    assert_eq!(render(&got), want);
    super::assert_quiet::<R>(&mut sub, Duration::from_millis(500)).await;
    source.stop().await.unwrap();
}

/// Role-level timeouts do not abort the bootstrap: the source's user has a 50 ms
/// `statement_timeout`, `idle_in_transaction_session_timeout` and `lock_timeout` in the test's
/// database, the COPY of 200,000 rows takes longer (and the planner connection waits idle in
/// its transaction while the other worker connects), and every row arrives.
pub async fn role_timeouts_do_not_abort_copy<R: Runtime + Default>() {
    let ctx = Ctx::new("boottimeouts");
    ctx.sql("CREATE TABLE big (id int PRIMARY KEY, pad text)");
    ctx.sql("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g");
    ctx.sql("ANALYZE big");
    ctx.publish(&["big"]);
    for setting in [
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "lock_timeout",
    ] {
        ctx.sql(&format!(
            "ALTER ROLE {} IN DATABASE {} SET {setting} = '50ms'",
            pgcdc_testkit::SCRAM_USER.name,
            ctx.db
        ));
    }
    let source = ctx
        .builder::<R>()
        .with_bootstrap_provider(PostgresBootstrap {
            parallelism: 2,
            split_pages: 500,
            max_parts_per_table: 4,
        })
        .with_dispatch_buffer_capacity(4)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    let starting = source.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    R::default().spawn(Box::pin(async move {
        let _ = started_tx.send(starting.start().await.map_err(|e| e.to_string()));
    }));
    let mut ids: Vec<i64> = Vec::new();
    while ids.len() < 200_000 {
        let Some(b) = next_batch::<R>(&mut sub, T).await else {
            panic!(
                "{} of 200000 rows; start: {:?}; status: {:?}",
                ids.len(),
                started_rx.try_recv(),
                source.status().last_error
            );
        };
        ids.extend(b.changes.iter().map(|c| super::int_prop(c, "id").unwrap()));
    }
    let deadline = std::time::Instant::now() + T;
    let started = loop {
        match started_rx.try_recv() {
            Ok(r) => break r,
            Err(_) if std::time::Instant::now() < deadline => {
                R::default().sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("start() did not return: {e}"),
        }
    };
    assert_eq!(started, Ok(()), "start");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200_000, "every row once");
    let st = source.status();
    assert!(st.last_error.is_none(), "{st:?}");
    source.stop().await.unwrap();
}

/// Generated columns: PostgreSQL 18 publishes stored ones with `publish_generated_columns`,
/// and then the bootstrap copies them as the stream carries them; before 18 neither does.
pub async fn generated_columns_bootstrapped_like_streamed<R: Runtime + Default>() {
    let ctx = Ctx::new("bootgen");
    if ctx.major() < 12 {
        // Generated columns exist from PostgreSQL 12.
        return;
    }
    ctx.sql("CREATE TABLE g (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED)");
    ctx.sql("INSERT INTO g (id, a) VALUES (1, 10)");
    let published = ctx.major() >= 18;
    if published {
        ctx.sql(&format!(
            "CREATE PUBLICATION {} FOR TABLE g WITH (publish_generated_columns = stored)",
            ctx.publication
        ));
    } else {
        ctx.publish(&["g"]);
    }
    let source = ctx
        .builder::<R>()
        .with_postgres_bootstrap()
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO g (id, a) VALUES (2, 5)");
    let got = render(&collect::<R>(&mut sub, 2, Duration::from_secs(30)).await);
    let want: [&str; 2] = if published {
        [
            "insert g:1 {a=10, b=20, id=1}",
            "insert g:2 {a=5, b=10, id=2}",
        ]
    } else {
        ["insert g:1 {a=10, id=1}", "insert g:2 {a=5, id=2}"]
    };
    assert_eq!(got, want);
    source.stop().await.unwrap();
}
