//! DrasiLib with a pgcdc-drasi source and continuous queries, end to end on a real PostgreSQL
//! (the testkit's cluster): exact result diffs, bootstraps with writers running, a query added
//! later, the walsender killed, numerics, a join across two tables, acknowledgement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use drasi_lib::channels::ResultDiff;
use drasi_lib::config::{QueryJoinConfig, QueryJoinKeyConfig};
use drasi_lib::{ComponentStatus, DrasiLib, Query};
use drasi_reaction_application::{ApplicationReaction, ApplicationReactionHandle};
use pgcdc_drasi::PostgresReplicationSource;
use pgcdc_testkit::{Cluster, SCRAM_USER};

const ACTIVE_USERS: &str = "MATCH (u:users) WHERE u.active = true RETURN u.id, u.name";

struct Db {
    cluster: &'static Cluster,
    name: String,
}

impl Db {
    /// A database with `users`, `customers`, `orders` and `other` (not published), and a
    /// publication of the first three.
    fn new(name: &str) -> Db {
        let cluster = Cluster::shared();
        cluster.create_database(name).unwrap();
        let db = Db {
            cluster,
            name: name.to_owned(),
        };
        db.sql(
            "CREATE TABLE users (id int PRIMARY KEY, name text, active bool NOT NULL DEFAULT true, \
               balance numeric);
             CREATE TABLE customers (id int PRIMARY KEY, name text);
             CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount int);
             CREATE TABLE other (id serial PRIMARY KEY, v text);
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO pgcdc_scram;
             CREATE PUBLICATION pub FOR TABLE users, customers, orders",
        );
        db
    }

    fn sql(&self, sql: &str) -> String {
        self.cluster.psql(&self.name, sql).unwrap()
    }

    fn source(&self, id: &str) -> pgcdc_drasi::PostgresSourceBuilder {
        PostgresReplicationSource::builder(id)
            .with_host(self.cluster.host())
            .with_port(self.cluster.port())
            .with_database(&self.name)
            .with_user(SCRAM_USER.name)
            .with_password(SCRAM_USER.password.unwrap())
            .with_slot_name(format!("{}_slot", self.name))
            .with_publication_name("pub")
            .with_pgcdc(|b| b.with_status_interval(Duration::from_millis(500)))
    }

    /// The active users as `id|name` rows.
    fn active_users(&self) -> BTreeSet<String> {
        self.sql("SELECT id || '|' || name FROM users WHERE active")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn slot_confirmed(&self) -> u64 {
        let t = self.sql(&format!(
            "SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = '{}_slot'",
            self.name
        ));
        t.parse().unwrap_or(0)
    }

    fn wal_now(&self) -> u64 {
        self.sql("SELECT pg_current_wal_lsn() - '0/0'")
            .parse()
            .unwrap()
    }

    fn kill_walsender(&self) -> bool {
        self.sql(&format!(
            "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots \
             WHERE slot_name = '{}_slot' AND active_pid IS NOT NULL",
            self.name
        )) == "1"
    }
}

/// DrasiLib with `source`, the queries and one application reaction reading all of them.
async fn drasi(
    source: PostgresReplicationSource,
    queries: Vec<drasi_lib::QueryConfig>,
) -> (DrasiLib, ApplicationReactionHandle) {
    let ids: Vec<String> = queries.iter().map(|q| q.id.clone()).collect();
    let (reaction, handle) = ApplicationReaction::builder("results")
        .with_queries(ids)
        .build();
    let mut b = DrasiLib::builder().with_id("test").with_source(source);
    for q in queries {
        b = b.with_query(q);
    }
    let core = b.with_reaction(reaction).build().await.unwrap();
    core.start().await.unwrap();
    (core, handle)
}

fn query(id: &str, cypher: &str) -> drasi_lib::QueryConfig {
    Query::cypher(id)
        .query(cypher)
        .from_source("pg")
        .auto_start(true)
        .enable_bootstrap(true)
        .build()
}

/// Waits until the query has bootstrapped (DrasiLib sets it Running after its bootstrap).
async fn running(core: &DrasiLib, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if core.get_query_status(id).await.unwrap() == ComponentStatus::Running {
            return;
        }
        assert!(Instant::now() < deadline, "query {id} never became Running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A diff in short form: `+{..}`, `-{..}`, `~{before}->{after}`.
fn short(d: &ResultDiff) -> Option<String> {
    match d {
        ResultDiff::Add { data, .. } => Some(format!("+{data}")),
        ResultDiff::Delete { data, .. } => Some(format!("-{data}")),
        ResultDiff::Update { before, after, .. } => Some(format!("~{before}->{after}")),
        _ => None,
    }
}

struct Diffs(drasi_reaction_application::application::ResultStream);

impl Diffs {
    async fn open(h: &ApplicationReactionHandle) -> Diffs {
        Diffs(h.as_stream().await.expect("the reaction's stream"))
    }

    /// The next `n` diffs of query `q` (control results skipped), within 60 s.
    async fn take(&mut self, q: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while out.len() < n {
            let r = tokio::time::timeout_at(deadline, self.0.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {n} diffs of {q}: {out:?}", out.len()))
                .expect("the result stream ended");
            if r.query_id == q {
                out.extend(r.results.iter().filter_map(short));
            }
        }
        out
    }

    /// Asserts that nothing more arrives for `q` within `wait`.
    async fn none_for(&mut self, q: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, self.0.next()).await {
            let extra: Vec<String> = r.results.iter().filter_map(short).collect();
            assert!(
                r.query_id != q || extra.is_empty(),
                "unexpected diffs for {q}: {extra:?}"
            );
        }
    }
}

/// The current result set of `q` as `id|name` rows.
async fn result_rows(core: &DrasiLib, q: &str) -> BTreeSet<String> {
    core.get_query_results(q)
        .await
        .unwrap()
        .iter()
        .map(|v| format!("{}|{}", v["id"], v["name"].as_str().unwrap_or("?")))
        .collect()
}

/// Waits until the result set of `q` equals the table's active users.
async fn converges(core: &DrasiLib, db: &Db, q: &str) {
    let want = db.active_users();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = result_rows(core, q).await;
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = want.difference(&got).take(5).collect();
            let extra: Vec<_> = got.difference(&want).take(5).collect();
            panic!(
                "{q}: {} rows, the table has {}; missing {missing:?}, extra {extra:?}",
                got.len(),
                want.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_diffs() {
    let db = Db::new("drasi_diffs");
    let source = db.source("pg").with_snapshot_bootstrap().build().unwrap();
    let (core, h) = drasi(source, vec![query("q", ACTIVE_USERS)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;

    db.sql("INSERT INTO users (id, name) VALUES (1, 'ann')");
    assert_eq!(diffs.take("q", 1).await, [r#"+{"id":1,"name":"ann"}"#]);

    db.sql("UPDATE users SET name = 'anna' WHERE id = 1");
    assert_eq!(
        diffs.take("q", 1).await,
        [r#"~{"id":1,"name":"ann"}->{"id":1,"name":"anna"}"#]
    );

    db.sql("UPDATE users SET active = false WHERE id = 1");
    assert_eq!(diffs.take("q", 1).await, [r#"-{"id":1,"name":"anna"}"#]);

    db.sql("UPDATE users SET active = true WHERE id = 1");
    assert_eq!(diffs.take("q", 1).await, [r#"+{"id":1,"name":"anna"}"#]);

    db.sql("DELETE FROM users WHERE id = 1");
    assert_eq!(diffs.take("q", 1).await, [r#"-{"id":1,"name":"anna"}"#]);

    // A key change: the old node goes, the new one comes; no ghost of id 2 stays.
    db.sql("INSERT INTO users (id, name) VALUES (2, 'bob')");
    assert_eq!(diffs.take("q", 1).await, [r#"+{"id":2,"name":"bob"}"#]);
    db.sql("UPDATE users SET id = 3 WHERE id = 2");
    let mut key_change = diffs.take("q", 2).await;
    key_change.sort();
    assert_eq!(
        key_change,
        [r#"+{"id":3,"name":"bob"}"#, r#"-{"id":2,"name":"bob"}"#]
    );
    assert_eq!(
        result_rows(&core, "q").await,
        BTreeSet::from(["3|bob".to_owned()])
    );

    // Ten rows in one transaction.
    db.sql(
        "BEGIN; INSERT INTO users (id, name) SELECT g, 'u' || g FROM generate_series(10, 19) g; COMMIT",
    );
    let mut ten = diffs.take("q", 10).await;
    ten.sort();
    let mut want: Vec<String> = (10..20)
        .map(|i| format!(r#"+{{"id":{i},"name":"u{i}"}}"#))
        .collect();
    want.sort();
    assert_eq!(ten, want);
    diffs.none_for("q", Duration::from_millis(500)).await;
    converges(&core, &db, "q").await;
    core.stop().await.unwrap();
}

/// 10,000 rows exist, writers insert, update and delete while the query bootstraps: the
/// result set ends equal to the table (nothing lost, nothing applied twice); a second query
/// added later bootstraps from a snapshot of its own and ends equal too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_with_writers_and_a_later_query() {
    let db = Db::new("drasi_boot");
    db.sql("INSERT INTO users (id, name, active) SELECT g, 'n' || g, g % 3 <> 0 FROM generate_series(1, 10000) g");
    let writer = {
        let cluster = db.cluster;
        let name = db.name.clone();
        std::thread::spawn(move || {
            for i in 0..60 {
                let id = 20_000 + i;
                cluster
                    .psql(
                        &name,
                        &format!(
                            "INSERT INTO users (id, name) VALUES ({id}, 'w{id}');
                             UPDATE users SET name = name || 'x', active = NOT active WHERE id = {};
                             DELETE FROM users WHERE id = {}",
                            1 + i * 97,
                            2 + i * 89
                        ),
                    )
                    .unwrap();
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let source = db.source("pg").with_snapshot_bootstrap().build().unwrap();
    let (core, _h) = drasi(source, vec![query("q1", ACTIVE_USERS)]).await;
    running(&core, "q1").await;
    // A second query, added while the source runs and the writers write.
    core.add_query(query("q2", ACTIVE_USERS)).await.unwrap();
    running(&core, "q2").await;
    writer.join().unwrap();
    db.sql("INSERT INTO users (id, name) VALUES (30000, 'last')");
    converges(&core, &db, "q1").await;
    converges(&core, &db, "q2").await;
    assert!(db.active_users().len() > 6_000);
    core.stop().await.unwrap();
}

/// The walsender is killed while rows stream: every row arrives once (one ADD per insert),
/// none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walsender_killed_mid_stream() {
    let db = Db::new("drasi_kill");
    let source = db
        .source("pg")
        .with_snapshot_bootstrap()
        .with_pgcdc(|b| {
            b.with_status_interval(Duration::from_millis(500))
                .with_reconnect_delay(Duration::from_millis(100), Duration::from_millis(500))
        })
        .build()
        .unwrap();
    let (core, h) = drasi(source, vec![query("q", ACTIVE_USERS)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    let mut kills = 0;
    for batch in 0..20 {
        let from = batch * 10;
        db.sql(&format!(
            "INSERT INTO users (id, name) SELECT g, 'k' || g FROM generate_series({from}, {}) g",
            from + 9
        ));
        if batch % 4 == 1 && db.kill_walsender() {
            kills += 1;
        }
    }
    let got = diffs.take("q", 200).await;
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), 200, "a row arrived twice: {got:?}");
    assert!(got.iter().all(|d| d.starts_with('+')));
    diffs.none_for("q", Duration::from_secs(1)).await;
    assert!(kills >= 2, "the walsender was killed {kills} times");
    converges(&core, &db, "q").await;
    core.stop().await.unwrap();
}

/// A numeric of 30 digits: by default the nearest Float, exact with `with_numeric_as_string`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_with_30_digits() {
    let db = Db::new("drasi_numeric");
    let source = db
        .source("pg")
        .with_numeric_as_string(true)
        .build()
        .unwrap();
    let q = "MATCH (u:users) RETURN u.id, u.balance";
    let (core, h) = drasi(source, vec![query("q", q)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    db.sql("INSERT INTO users (id, name, balance) VALUES (1, 'n', 123456789012345678901234567890)");
    assert_eq!(
        diffs.take("q", 1).await,
        [r#"+{"balance":"123456789012345678901234567890","id":1}"#]
    );
    core.stop().await.unwrap();

    let db = Db::new("drasi_numeric_f");
    let source = db.source("pg").build().unwrap();
    let (core, h) = drasi(source, vec![query("q", q)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    db.sql("INSERT INTO users (id, name, balance) VALUES (1, 'n', 123456789012345678901234567890), (2, 'm', 42)");
    let mut got = diffs.take("q", 2).await;
    got.sort();
    assert_eq!(
        got,
        [
            r#"+{"balance":1.2345678901234568e+29,"id":1}"#,
            r#"+{"balance":42,"id":2}"#
        ]
    );
    core.stop().await.unwrap();
}

/// Orders joined to their customers on `orders.customer_id = customers.id` (a Drasi join on
/// properties: the source declares no relations).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_across_two_tables() {
    let db = Db::new("drasi_join");
    db.sql("INSERT INTO customers VALUES (1, 'acme'), (2, 'globex'); INSERT INTO orders VALUES (10, 1, 5)");
    let source = db.source("pg").with_snapshot_bootstrap().build().unwrap();
    let q = Query::cypher("q")
        .query("MATCH (o:orders)-[:BY]->(c:customers) RETURN o.id AS order, c.name AS customer")
        .from_source("pg")
        .with_joins(vec![QueryJoinConfig {
            id: "BY".into(),
            keys: vec![
                QueryJoinKeyConfig {
                    label: "orders".into(),
                    property: "customer_id".into(),
                },
                QueryJoinKeyConfig {
                    label: "customers".into(),
                    property: "id".into(),
                },
            ],
        }])
        .auto_start(true)
        .enable_bootstrap(true)
        .build();
    let (core, h) = drasi(source, vec![q]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    let bootstrapped = core.get_query_results("q").await.unwrap();
    assert_eq!(bootstrapped.len(), 1, "{bootstrapped:?}");
    assert_eq!(bootstrapped[0]["customer"], "acme");
    db.sql("INSERT INTO orders VALUES (11, 2, 7)");
    assert_eq!(
        diffs.take("q", 1).await,
        [r#"+{"customer":"globex","order":11}"#]
    );
    db.sql("UPDATE customers SET name = 'globex corp' WHERE id = 2");
    assert_eq!(
        diffs.take("q", 1).await,
        [r#"~{"customer":"globex","order":11}->{"customer":"globex corp","order":11}"#]
    );
    db.sql("UPDATE orders SET customer_id = 1 WHERE id = 11");
    // The order moves to another customer: Drasi reports the old pair gone, the new one
    // added.
    let mut moved = diffs.take("q", 2).await;
    moved.sort();
    assert_eq!(
        moved,
        [
            r#"+{"customer":"acme","order":11}"#,
            r#"-{"customer":"globex corp","order":11}"#
        ]
    );
    core.stop().await.unwrap();
}

/// With only volatile queries every batch is acknowledged once handed to the queries: the
/// slot follows the stream, and follows the server's position while nothing is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slot_follows_the_stream_and_idle_wal() {
    let db = Db::new("drasi_ack");
    let source = db.source("pg").build().unwrap();
    let (core, h) = drasi(source, vec![query("q", ACTIVE_USERS)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    db.sql("INSERT INTO users (id, name) VALUES (1, 'a')");
    diffs.take("q", 1).await;
    let after_change = db.wal_now();
    wait_confirmed(&db, after_change).await;
    // WAL the publication does not carry (another table): the slot still moves past it.
    db.sql("INSERT INTO other (v) SELECT 'x' FROM generate_series(1, 1000)");
    let idle = db.wal_now();
    wait_confirmed(&db, idle).await;
    core.stop().await.unwrap();
}

async fn wait_confirmed(db: &Db, lsn: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let confirmed = db.slot_confirmed();
        if confirmed >= lsn {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slot stays at {confirmed}, below {lsn}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// TRUNCATE as deletes (opt-in): the truncated rows leave the result set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_as_deletes() {
    let db = Db::new("drasi_truncate");
    db.sql("INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b')");
    let source = db
        .source("pg")
        .with_snapshot_bootstrap()
        .with_truncate_as_deletes(true)
        .build()
        .unwrap();
    let (core, h) = drasi(source, vec![query("q", ACTIVE_USERS)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    db.sql("INSERT INTO users (id, name) VALUES (3, 'c')");
    diffs.take("q", 1).await;
    db.sql("TRUNCATE users");
    if db.cluster.major_version() < 11 {
        // TRUNCATE is replicated from PostgreSQL 11 (the source warns at start): nothing
        // arrives, the rows stay in the result set.
        diffs.none_for("q", Duration::from_secs(1)).await;
        assert_eq!(core.get_query_results("q").await.unwrap().len(), 3);
        core.stop().await.unwrap();
        return;
    }
    let mut got = diffs.take("q", 3).await;
    got.sort();
    assert_eq!(
        got,
        [
            r#"-{"id":1,"name":"a"}"#,
            r#"-{"id":2,"name":"b"}"#,
            r#"-{"id":3,"name":"c"}"#
        ]
    );
    assert!(core.get_query_results("q").await.unwrap().is_empty());
    core.stop().await.unwrap();
}

/// A resume from before the slot's position is refused with `PositionUnavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_before_the_slot_is_unavailable() {
    use drasi_lib::Source as _;
    let db = Db::new("drasi_resume");
    let source = db.source("pg").build().unwrap();
    source.start().await.unwrap();
    db.sql("INSERT INTO users (id, name) VALUES (1, 'a')");
    let lsn = db.wal_now();
    wait_confirmed(&db, lsn).await;
    let settings = drasi_lib::config::SourceSubscriptionSettings {
        source_id: "pg".into(),
        enable_bootstrap: false,
        query_id: "q".into(),
        nodes: ["users".to_owned()].into(),
        relations: Default::default(),
        resume_from: Some(pgcdc_drasi::mapping::position(16, 0)),
        resume_sequence: None,
        request_position_handle: false,
    };
    let err = source.subscribe(settings).await.err().expect("refused");
    match err.downcast_ref::<drasi_lib::SourceError>() {
        Some(drasi_lib::SourceError::PositionUnavailable {
            earliest_available: Some(p),
            ..
        }) => assert!(pgcdc_drasi::mapping::position_lsn(p).unwrap() >= lsn),
        other => panic!("{other:?}: {err}"),
    }
    assert!(!source.supports_replay());
    source.stop().await.unwrap();
}

fn inserted_id(c: &drasi_core::models::SourceChange) -> Option<String> {
    match c {
        drasi_core::models::SourceChange::Insert { element } => {
            Some(element.get_reference().element_id.to_string())
        }
        _ => None,
    }
}

/// Exactly once across the boundary, seen at the source: rows are inserted without pause
/// while a subscriber bootstraps; every row reaches it once, from the snapshot or from the
/// stream, never from both (a final state could not tell a row applied twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_boundary_is_exact() {
    use drasi_lib::Source as _;
    let db = Db::new("drasi_exact");
    db.sql("INSERT INTO users (id, name) SELECT g, 'n' || g FROM generate_series(1, 2000) g");
    let source = db.source("pg").with_snapshot_bootstrap().build().unwrap();
    source.start().await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (cluster, name, stop) = (db.cluster, db.name.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut id = 100_000;
            let mut session = cluster.open_session(&name).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                session
                    .query(&format!("INSERT INTO users (id, name) VALUES ({id}, 'w')"))
                    .unwrap();
                id += 1;
            }
            session.close().unwrap();
            id
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settings = drasi_lib::config::SourceSubscriptionSettings {
        source_id: "pg".into(),
        enable_bootstrap: true,
        query_id: "q".into(),
        nodes: ["users".to_owned()].into(),
        relations: Default::default(),
        resume_from: None,
        resume_sequence: None,
        request_position_handle: false,
    };
    let mut sub = source.subscribe(settings).await.unwrap();
    let mut seen: Vec<String> = Vec::new();
    let mut boot = sub.bootstrap_receiver.take().expect("a bootstrap");
    while let Some(e) = boot.recv().await {
        seen.extend(inserted_id(&e.change));
    }
    let boot_rows = seen.len();
    let result = sub
        .bootstrap_result_receiver
        .take()
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.event_count, boot_rows);
    assert!(result.source_position.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let next_id = writer.join().unwrap();
    db.sql("INSERT INTO users (id, name) VALUES (999999, 'end')");
    let mut last_sequence = 0;
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), sub.receiver.recv())
            .await
            .expect("the stream stalled")
            .unwrap();
        assert!(e.sequence > last_sequence, "sequences must rise");
        last_sequence = e.sequence;
        let drasi_lib::channels::SourceEvent::Change(c) = &e.event else {
            continue;
        };
        let Some(id) = inserted_id(c) else { continue };
        if id == "users:999999" {
            break;
        }
        seen.push(id);
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "{} rows arrived twice",
        seen.len() - unique.len()
    );
    let rows: usize = db
        .sql("SELECT count(*) FROM users WHERE id <> 999999")
        .parse()
        .unwrap();
    assert_eq!(seen.len(), rows, "rows lost");
    assert!(
        next_id > 100_020,
        "the writer wrote only {} rows",
        next_id - 100_000
    );
    assert!(seen.len() > boot_rows, "no row came from the stream");
    assert!(boot_rows > 2000, "no concurrent row was in the snapshot");
    source.stop().await.unwrap();
}

/// An update that leaves a TOASTed column alone: the column is left out of the Update and the
/// query keeps its value (drasi-core merges the properties it was not sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_toast_keeps_the_value() {
    let db = Db::new("drasi_toast");
    let source = db.source("pg").with_snapshot_bootstrap().build().unwrap();
    let q = "MATCH (u:users) RETURN u.id, size(u.name) AS len, u.balance";
    let (core, h) = drasi(source, vec![query("q", q)]).await;
    let mut diffs = Diffs::open(&h).await;
    running(&core, "q").await;
    // About 96 kB of md5 text: too large to stay inline, too random to compress.
    db.sql(
        "INSERT INTO users (id, name, balance) \
         SELECT 1, string_agg(md5(g::text), ''), 1 FROM generate_series(1, 3000) g",
    );
    assert_eq!(
        diffs.take("q", 1).await,
        [r#"+{"balance":1,"id":1,"len":96000}"#]
    );
    db.sql("UPDATE users SET balance = 2 WHERE id = 1");
    assert_eq!(
        diffs.take("q", 1).await,
        [r#"~{"balance":1,"id":1,"len":96000}->{"balance":2,"id":1,"len":96000}"#]
    );
    core.stop().await.unwrap();
}
