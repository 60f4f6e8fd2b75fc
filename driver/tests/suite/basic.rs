//! Change capture: operations, identities, keys, transactions, TOAST, truncate, schema
//! changes, messages, stop/start, acknowledgement and idle publications.

use std::time::Duration;

use pgcdc_core::Lsn;
use pgcdc_core::model::SourceChange;
use pgcdc_core::source_config::{AckMode, DispatchMode, StreamingMode, TableKeyConfig};
use pgcdc_driver::{ChangeBatch, Runtime, Subscription};

use super::{Ctx, assert_quiet, collect, eventually, int_prop, render};

const T: Duration = Duration::from_secs(30);

/// INSERT, UPDATE, DELETE under REPLICA IDENTITY DEFAULT and FULL.
pub async fn insert_update_delete<R: Runtime + Default>() {
    let ctx = Ctx::new("iud");
    ctx.sql("CREATE TABLE users (id int PRIMARY KEY, name text, age int)");
    ctx.sql("CREATE TABLE audit (id int PRIMARY KEY, note text)");
    ctx.sql("ALTER TABLE audit REPLICA IDENTITY FULL");
    ctx.publish(&["users", "audit"]);
    let source = ctx.builder::<R>().build().unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();

    ctx.sql("INSERT INTO users VALUES (1, 'ann', 30)");
    ctx.sql("UPDATE users SET age = 31 WHERE id = 1");
    ctx.sql("DELETE FROM users WHERE id = 1");
    ctx.sql("INSERT INTO audit VALUES (7, 'x')");
    ctx.sql("UPDATE audit SET note = 'y' WHERE id = 7");
    ctx.sql("DELETE FROM audit WHERE id = 7");
    let batches = collect::<R>(&mut sub, 6, T).await;
    assert_eq!(
        render(&batches),
        [
            "insert users:1 {age=30, id=1, name=ann}",
            "update users:1 {age=31, id=1, name=ann}",
            "delete users:1",
            "insert audit:7 {id=7, note=x}",
            "update audit:7 {id=7, note=y}",
            "delete audit:7",
        ]
    );
    // Old values: FULL sends the whole old row, DEFAULT only the key on delete.
    match &batches[4].changes[0] {
        SourceChange::Update { old: Some(old), .. } => {
            assert_eq!(old.get("note").map(|v| v.to_string()).as_deref(), Some("x"));
        }
        other => panic!("expected an update with the old row: {other:?}"),
    }
    match &batches[2].changes[0] {
        SourceChange::Delete { old, metadata, .. } => {
            assert_eq!(old.len(), 1, "DEFAULT identity sends only the key");
            assert_eq!(&*metadata.labels[0], "users");
            assert!(metadata.effective_from > 1_600_000_000_000_000_000);
        }
        other => panic!("expected a delete: {other:?}"),
    }
    for b in &batches {
        assert!(b.is_whole());
        let end = b.end_lsn.unwrap();
        assert!(end > b.commit_lsn);
        for c in &b.changes {
            assert_eq!(c.tx().end_lsn, Some(end));
            assert_eq!(c.tx().xid, b.xid);
        }
    }
    source.stop().await.unwrap();
}

/// A transaction touching two tables arrives as one batch, transactions in commit order;
/// composite keys, auto-detected keys and configured keys; labels outside `public`.
pub async fn transactions_and_keys<R: Runtime + Default>() {
    let ctx = Ctx::new("txkeys");
    ctx.sql(
        "CREATE TABLE a (id int PRIMARY KEY, v text);
         CREATE TABLE pairs (x int, y text, v int, PRIMARY KEY (x, y));
         CREATE TABLE nokey (code text NOT NULL, v int);
         CREATE UNIQUE INDEX nokey_code ON nokey (code);
         ALTER TABLE nokey REPLICA IDENTITY USING INDEX nokey_code;
         CREATE TABLE custom (id int PRIMARY KEY, email text);
         CREATE SCHEMA inv;
         CREATE TABLE inv.items (sku text PRIMARY KEY);",
    );
    ctx.publish(&["a", "pairs", "nokey", "custom", "inv.items"]);
    let source = ctx
        .builder::<R>()
        .add_table_key(TableKeyConfig {
            table: "custom".into(),
            key_columns: vec!["email".into()],
        })
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();

    ctx.sql(
        "BEGIN;
         INSERT INTO a VALUES (1, 'one'), (2, 'two');
         INSERT INTO pairs VALUES (1, 'a_b', 5);
         COMMIT;",
    );
    ctx.sql("INSERT INTO nokey VALUES ('k:1', 1)");
    ctx.sql("INSERT INTO custom VALUES (1, 'ann@example.com')");
    ctx.sql("INSERT INTO inv.items VALUES ('X-1')");
    ctx.sql("UPDATE a SET id = 3 WHERE id = 2");
    let batches = collect::<R>(&mut sub, 8, T).await;
    assert_eq!(batches[0].changes.len(), 3, "one transaction, one batch");
    let rendered = render(&batches);
    assert_eq!(
        rendered,
        [
            "insert a:1 {id=1, v=one}",
            "insert a:2 {id=2, v=two}",
            "insert pairs:1_a\\_b {v=5, x=1, y=a_b}",
            "insert nokey:k\\:1 {code=k:1, v=1}",
            "insert custom:ann@example.com {email=ann@example.com, id=1}",
            "insert inv.items:X-1 {sku=X-1}",
            "delete a:2",
            "insert a:3 {id=3, v=two}",
        ]
    );
    let lsns: Vec<Lsn> = batches.iter().map(|b| b.end_lsn.unwrap()).collect();
    let mut sorted = lsns.clone();
    sorted.sort();
    assert_eq!(lsns, sorted, "commit order");
    source.stop().await.unwrap();
}

/// Unchanged TOAST values: omitted and listed (DEFAULT), filled from the old row (FULL).
pub async fn unchanged_toast<R: Runtime + Default>() {
    let ctx = Ctx::new("toast");
    ctx.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, n int);
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
         CREATE TABLE docs_full (id int PRIMARY KEY, body text, n int);
         ALTER TABLE docs_full ALTER COLUMN body SET STORAGE EXTERNAL;
         ALTER TABLE docs_full REPLICA IDENTITY FULL;",
    );
    ctx.publish(&["docs", "docs_full"]);
    let source = ctx.builder::<R>().build().unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO docs SELECT 1, repeat('abc', 10000), 1");
    ctx.sql("INSERT INTO docs_full SELECT 1, repeat('xyz', 10000), 1");
    ctx.sql("UPDATE docs SET n = 2");
    ctx.sql("UPDATE docs_full SET n = 2");
    let batches = collect::<R>(&mut sub, 4, T).await;
    match &batches[2].changes[0] {
        SourceChange::Update {
            element,
            unchanged_toast,
            ..
        } => {
            assert!(
                element.properties().get("body").is_none(),
                "omitted, never NULL"
            );
            assert_eq!(unchanged_toast.len(), 1);
            assert_eq!(&*unchanged_toast[0], "body");
            assert_eq!(int_prop(&batches[2].changes[0], "n"), Some(2));
        }
        other => panic!("expected an update: {other:?}"),
    }
    match &batches[3].changes[0] {
        SourceChange::Update {
            element,
            unchanged_toast,
            ..
        } => {
            assert!(unchanged_toast.is_empty());
            let body = element.properties().get("body").unwrap().to_string();
            assert_eq!(body.len(), 30000);
            assert!(body.starts_with("xyzxyz"));
        }
        other => panic!("expected an update: {other:?}"),
    }
    source.stop().await.unwrap();
}

/// TRUNCATE, ALTER TABLE while streaming (no restart), logical messages.
pub async fn truncate_schema_messages<R: Runtime + Default>() {
    let ctx = Ctx::new("tsm");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY, a text)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().build().unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (1, 'x')");
    ctx.sql("ALTER TABLE t ADD COLUMN b int DEFAULT 7");
    ctx.sql("INSERT INTO t VALUES (2, 'y', 8)");
    ctx.sql("ALTER TABLE t DROP COLUMN a");
    ctx.sql("INSERT INTO t VALUES (3, 9)");
    ctx.sql("TRUNCATE t");
    ctx.sql("SELECT pg_logical_emit_message(true, 'app', 'in-tx')");
    ctx.sql("SELECT pg_logical_emit_message(false, 'app', 'now')");
    ctx.sql("INSERT INTO t VALUES (4, 10)");
    // TRUNCATE is replicated from PostgreSQL 11, logical messages from 14 (the source warns at
    // start on older servers).
    let mut want = vec![
        "insert t:1 {a=x, id=1}",
        "schema added b",
        "insert t:2 {a=y, b=8, id=2}",
        "schema dropped a",
        "insert t:3 {b=9, id=3}",
    ];
    if ctx.major() >= 11 {
        want.push("truncate [\"t\"]");
    }
    if ctx.major() >= 14 {
        want.extend(["message app in-tx", "message app now"]);
    }
    want.push("insert t:4 {b=10, id=4}");
    let batches = collect::<R>(&mut sub, want.len(), T).await;
    let r: Vec<String> = render(&batches)
        .into_iter()
        .map(|line| {
            if line.starts_with("schema t ") && line.contains("added: [\"b\"]") {
                "schema added b".to_owned()
            } else if line.starts_with("schema t ") && line.contains("dropped: [\"a\"]") {
                "schema dropped a".to_owned()
            } else {
                line
            }
        })
        .collect();
    assert_eq!(r, want);
    if ctx.major() >= 14 {
        // The non-transactional message: a batch of its own, nothing to acknowledge.
        assert!(batches[batches.len() - 2].ack_lsn().is_none());
    }
    assert_quiet::<R>(&mut sub, Duration::from_millis(300)).await;
    source.stop().await.unwrap();
}

/// Changes made while the source is stopped arrive after it starts again, exactly once;
/// a manual-ack source resends what was not acknowledged.
pub async fn stop_start_and_manual_ack<R: Runtime + Default>() {
    let ctx = Ctx::new("stopstart");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx
        .builder::<R>()
        .with_ack_mode(AckMode::Manual)
        .with_status_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (1)");
    ctx.sql("INSERT INTO t VALUES (2)");
    let b = collect::<R>(&mut sub, 2, T).await;
    b[0].ack(); // only the first
    let first_end = b[0].end_lsn.unwrap();
    eventually::<R>(T, "the ack to reach the slot", || {
        ctx.confirmed_flush().parse::<Lsn>().unwrap() >= first_end
    })
    .await;
    source.stop().await.unwrap();
    assert!(sub.recv().await.is_none(), "stop ends the subscription");
    assert!(
        ctx.confirmed_flush().parse::<Lsn>().unwrap() < b[1].end_lsn.unwrap(),
        "the unacknowledged transaction is not confirmed"
    );

    ctx.sql("INSERT INTO t VALUES (3)");
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let b = collect::<R>(&mut sub, 2, T).await;
    assert_eq!(render(&b), ["insert t:2 {id=2}", "insert t:3 {id=3}"]);
    b[1].ack();
    assert_quiet::<R>(&mut sub, Duration::from_millis(500)).await;
    source.stop().await.unwrap();
}

/// An idle publication while a table outside it is busy: the slot's position still moves.
pub async fn idle_publication_advances<R: Runtime + Default>() {
    let ctx = Ctx::new("idlepub");
    ctx.sql("CREATE TABLE published (id int PRIMARY KEY); CREATE TABLE busy (id int)");
    ctx.publish(&["published"]);
    let source = ctx
        .builder::<R>()
        .with_status_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let before: Lsn = ctx.confirmed_flush().parse().unwrap();
    for i in 0..20 {
        ctx.sql(&format!(
            "INSERT INTO busy SELECT generate_series(1, 100) + {i}"
        ));
    }
    let wal: Lsn = ctx.sql("SELECT pg_current_wal_lsn()").parse().unwrap();
    eventually::<R>(
        T,
        "confirmed_flush_lsn to pass the busy table's WAL",
        || ctx.confirmed_flush().parse::<Lsn>().unwrap() >= wal,
    )
    .await;
    assert!(ctx.confirmed_flush().parse::<Lsn>().unwrap() > before);
    assert_quiet::<R>(&mut sub, Duration::from_millis(300)).await;
    let st = source.status();
    assert!(st.flush_lsn >= wal, "{st:?}");
    source.stop().await.unwrap();
}

/// `auto_start`: the first subscription starts the source.
pub async fn auto_start_on_subscribe<R: Runtime + Default>() {
    let ctx = Ctx::new("autostart");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().with_auto_start(true).build().unwrap();
    assert!(!source.is_running());
    let mut sub = source.subscribe();
    eventually::<R>(T, "the source to stream", || {
        source.status().state == pgcdc_driver::SourceState::Running
    })
    .await;
    ctx.sql("INSERT INTO t VALUES (1)");
    let b = collect::<R>(&mut sub, 1, T).await;
    assert_eq!(render(&b), ["insert t:1 {id=1}"]);
    // The counters and the acknowledgement (OnDelivery) follow the delivery a moment after
    // the subscriber has the batch.
    let end = b[0].end_lsn.unwrap();
    eventually::<R>(T, "the delivery to be counted and acknowledged", || {
        let st = source.status();
        (st.changes, st.transactions) == (1, 1) && st.acked_lsn >= end
    })
    .await;
    source.stop().await.unwrap();
    assert_eq!(source.status().state, pgcdc_driver::SourceState::Stopped);
}

/// Broadcast dispatch: every subscriber sees every batch.
pub async fn broadcast_two_subscribers<R: Runtime + Default>() {
    let ctx = Ctx::new("bcast");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx
        .builder::<R>()
        .with_dispatch_mode(DispatchMode::Broadcast)
        .with_dispatch_buffer_capacity(2)
        .build()
        .unwrap();
    let mut a = source.subscribe();
    let mut b = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t SELECT generate_series(1, 5)");
    let ra = collect::<R>(&mut a, 5, T).await;
    let rb = collect::<R>(&mut b, 5, T).await;
    assert_eq!(render(&ra), render(&rb));
    assert_eq!(source.status().subscribers, 2);
    source.stop().await.unwrap();
}

/// Manual acks per subscriber, in both dispatch modes: the slot's flush is the minimum of
/// what the subscribers acknowledged; a subscriber that leaves no longer holds it back.
pub async fn manual_acks_per_subscriber<R: Runtime + Default>() {
    for (mode, name) in [
        (DispatchMode::Channel, "acks2ch"),
        (DispatchMode::Broadcast, "acks2bc"),
    ] {
        let ctx = Ctx::new(name);
        ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
        ctx.publish(&["t"]);
        let source = ctx
            .builder::<R>()
            .with_dispatch_mode(mode)
            .with_ack_mode(AckMode::Manual)
            .with_status_interval(Duration::from_millis(200))
            .build()
            .unwrap();
        let mut fast = source.subscribe();
        let mut slow = source.subscribe();
        source.start().await.unwrap();
        let start: Lsn = ctx.confirmed_flush().parse().unwrap();
        ctx.sql("INSERT INTO t VALUES (1)");
        ctx.sql("INSERT INTO t VALUES (2)");
        let f = collect::<R>(&mut fast, 2, T).await;
        let s = collect::<R>(&mut slow, 2, T).await;
        assert_eq!(render(&f), render(&s));
        let (first, second) = (f[0].end_lsn.unwrap(), f[1].end_lsn.unwrap());
        // The fast one acknowledges both, the slow one only the first.
        f[1].ack();
        s[0].ack();
        eventually::<R>(T, "the common acknowledgement to reach the slot", || {
            ctx.confirmed_flush().parse::<Lsn>().unwrap() >= first
        })
        .await;
        // Several status updates later the slot is still held at the slow one's position.
        R::default().sleep(Duration::from_millis(800)).await;
        let held: Lsn = ctx.confirmed_flush().parse().unwrap();
        assert!(
            held < second,
            "{mode:?}: the slot passed what the slow subscriber acknowledged (start {start}, \
             held {held}, second {second})"
        );
        // The slow one leaves: the fast one's acknowledgement counts alone.
        drop(slow);
        drop(s);
        eventually::<R>(
            T,
            "the fast subscriber's acknowledgement to reach the slot",
            || ctx.confirmed_flush().parse::<Lsn>().unwrap() >= second,
        )
        .await;
        source.stop().await.unwrap();
    }
}

/// A 1,000,000-row transaction arrives in chunks of `max_batch_changes`, with bounded memory.
pub async fn million_row_transaction<R: Runtime + Default>() {
    let ctx = Ctx::new("million");
    ctx.sql("CREATE TABLE big (id bigint PRIMARY KEY, v int, note text)");
    ctx.publish(&["big"]);
    let source = ctx
        .builder::<R>()
        .with_max_batch_changes(5000)
        .with_dispatch_buffer_capacity(4)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let rss_before = super::peak_rss_kib();
    ctx.sql("INSERT INTO big SELECT g, g % 97, 'row ' || g FROM generate_series(1, 1000000) g");
    let mut seen = 0u64;
    let mut chunks = 0u32;
    let mut expect_id = 1i64;
    loop {
        let b = super::next_batch::<R>(&mut sub, Duration::from_secs(120))
            .await
            .expect("chunks keep coming");
        assert_eq!(b.chunk_index, chunks);
        assert_eq!(b.first_chunk, chunks == 0);
        for c in &b.changes {
            assert_eq!(int_prop(c, "id"), Some(expect_id));
            expect_id += 1;
        }
        seen += b.changes.len() as u64;
        chunks += 1;
        assert!(b.changes.len() <= 5000);
        if b.last_chunk {
            assert!(b.end_lsn.is_some());
            break;
        }
        assert!(b.ack_lsn().is_none());
    }
    assert_eq!(seen, 1_000_000);
    assert_eq!(chunks, 200);
    let peak = super::peak_rss_kib();
    eprintln!(
        "million_row_transaction: {seen} changes in {chunks} chunks; peak RSS {:?} KiB (before the workload {:?} KiB)",
        peak, rss_before
    );
    source.stop().await.unwrap();
}

/// The byte budget of a subscriber's queue: with a stalled consumer and wide rows, the queue
/// holds at most `dispatch_buffer_bytes` (plus one batch) however many batches it could
/// hold; without a budget it grows past it. Every row arrives afterwards, in order.
pub async fn byte_budget_bounds_a_stalled_queue<R: Runtime + Default>() {
    const BUDGET: usize = 512 << 10;
    let ctx = Ctx::new("bytebudget");
    ctx.sql("CREATE TABLE wide (id int PRIMARY KEY, pad text)");
    ctx.sql("ALTER TABLE wide ALTER COLUMN pad SET STORAGE PLAIN");
    ctx.publish(&["wide"]);
    for (budget, name) in [(BUDGET, "bounded"), (0, "unbounded")] {
        ctx.sql("TRUNCATE wide");
        let source = ctx
            .builder::<R>()
            .with_slot_name(format!("{}_{name}", ctx.slot))
            .with_dispatch_buffer_capacity(1000)
            .with_dispatch_buffer_bytes(budget)
            .with_max_batch_changes(10)
            .build()
            .unwrap();
        let mut sub = source.subscribe();
        source.start().await.unwrap();
        // 200 rows of about 4 KB in 20 transactions: about 800 KB of values.
        for t in 0..20 {
            ctx.sql(&format!(
                "INSERT INTO wide SELECT g, repeat(md5(g::text), 128) FROM generate_series({}, {}) g",
                t * 10 + 1,
                t * 10 + 10
            ));
        }
        // Stalled: nothing is read while the source queues what it may.
        let mut peak = 0;
        for _ in 0..30 {
            R::default().sleep(Duration::from_millis(100)).await;
            peak = peak.max(source.status().queued_bytes);
        }
        let mut next = 1i64;
        let mut largest_batch = 0;
        while next <= 200 {
            let b = super::next_batch::<R>(&mut sub, Duration::from_secs(30))
                .await
                .expect("every row arrives");
            largest_batch = largest_batch.max(b.approx_bytes());
            for c in &b.changes {
                assert_eq!(int_prop(c, "id"), Some(next));
                next += 1;
            }
        }
        if budget > 0 {
            assert!(
                peak <= BUDGET + largest_batch,
                "queued {peak} bytes, budget {BUDGET} + one batch of {largest_batch}"
            );
        } else {
            assert!(
                peak > BUDGET + largest_batch,
                "without a budget the stalled queue holds more ({peak} bytes)"
            );
        }
        source.stop().await.unwrap();
        ctx.sql(&format!(
            "SELECT pg_drop_replication_slot('{}_{name}')",
            ctx.slot
        ));
    }
}

/// Tables renamed while streaming keep their keys: the primary key and a configured table key
/// follow the relation's OID (also across a reconnect), so REPLICA IDENTITY FULL tables keep
/// key-based element ids, labelled with the new name.
pub async fn renamed_tables_keep_keys<R: Runtime + Default>() {
    let ctx = Ctx::new("renamed");
    ctx.sql(
        "CREATE TABLE pk_full (id int PRIMARY KEY, v text);
         ALTER TABLE pk_full REPLICA IDENTITY FULL;
         CREATE TABLE cfg_full (code text NOT NULL, v int);
         ALTER TABLE cfg_full REPLICA IDENTITY FULL;
         CREATE TABLE late_full (code text NOT NULL, v int);
         ALTER TABLE late_full REPLICA IDENTITY FULL;",
    );
    ctx.publish(&["pk_full", "cfg_full", "late_full"]);
    let source = ctx
        .builder::<R>()
        .add_table_key(TableKeyConfig {
            table: "cfg_full".into(),
            key_columns: vec!["code".into()],
        })
        .add_table_key(TableKeyConfig {
            table: "public.late_full".into(),
            key_columns: vec!["code".into()],
        })
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();

    ctx.sql("INSERT INTO pk_full VALUES (1, 'one')");
    ctx.sql("INSERT INTO cfg_full VALUES ('a', 1)");
    // late_full is renamed before its first change: its Relation message never names it as
    // configured.
    ctx.sql(
        "ALTER TABLE pk_full RENAME TO pk_renamed;
         ALTER TABLE cfg_full RENAME TO cfg_renamed;
         ALTER TABLE late_full RENAME TO late_renamed;",
    );
    ctx.sql("INSERT INTO pk_renamed VALUES (2, 'two')");
    ctx.sql("UPDATE pk_renamed SET v = 'uno' WHERE id = 1");
    ctx.sql("INSERT INTO cfg_renamed VALUES ('b', 2)");
    ctx.sql("DELETE FROM cfg_renamed WHERE code = 'a'");
    ctx.sql("INSERT INTO late_renamed VALUES ('c', 3)");
    // The next change of a renamed table already described is preceded by a schema change
    // (`renamed`); late_renamed's first Relation message is new, not a change.
    let all = render(&collect::<R>(&mut sub, 9, T).await);
    let (schema, rendered): (Vec<String>, Vec<String>) =
        all.into_iter().partition(|c| c.starts_with("schema "));
    assert_eq!(schema.len(), 2, "{schema:?}");
    for (s, label) in schema.iter().zip(["pk_renamed", "cfg_renamed"]) {
        assert!(s.starts_with(&format!("schema {label} ")), "{s}");
        assert!(s.contains("renamed: true"), "{s}");
    }
    assert_eq!(
        rendered,
        [
            "insert pk_full:1 {id=1, v=one}",
            "insert cfg_full:a {code=a, v=1}",
            "insert pk_renamed:2 {id=2, v=two}",
            "update pk_renamed:1 {id=1, v=uno}",
            "insert cfg_renamed:b {code=b, v=2}",
            "delete cfg_renamed:a",
            "insert late_renamed:c {code=c, v=3}",
        ]
    );

    // After a reconnect the catalog names the tables by their new names; the keys still hold.
    let slot = &ctx.slot;
    ctx.sql(&format!(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
         WHERE slot_name = '{slot}' AND active_pid IS NOT NULL"
    ));
    eventually::<R>(T, "a reconnect", || source.status().reconnects >= 1).await;
    ctx.sql("INSERT INTO pk_renamed VALUES (3, 'three')");
    ctx.sql("INSERT INTO cfg_renamed VALUES ('d', 4)");
    ctx.sql("INSERT INTO late_renamed VALUES ('e', 5)");
    let rendered = render(&collect::<R>(&mut sub, 3, T).await);
    assert_eq!(
        rendered,
        [
            "insert pk_renamed:3 {id=3, v=three}",
            "insert cfg_renamed:d {code=d, v=4}",
            "insert late_renamed:e {code=e, v=5}",
        ]
    );
    source.stop().await.unwrap();
}

/// A host that is a directory connects through the server's Unix-domain socket there
/// (`<dir>/.s.PGSQL.<port>`), for the replication connection and the bootstrap alike, without
/// TLS: `prefer` goes without it, `require` fails at once with an error naming the socket.
pub async fn unix_socket_host<R: Runtime + Default>() {
    let ctx = Ctx::new("unixsock");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.sql("INSERT INTO t VALUES (1)");
    ctx.publish(&["t"]);
    let dir = ctx.cluster.socket_dir().to_string_lossy().into_owned();
    let source = ctx
        .builder::<R>()
        .with_host(&dir)
        .with_postgres_bootstrap()
        .with_start_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (2)");
    let rendered = render(&collect::<R>(&mut sub, 2, T).await);
    assert_eq!(rendered, ["insert t:1 {id=1}", "insert t:2 {id=2}"]);
    source.stop().await.unwrap();

    let required = ctx
        .builder::<R>()
        .with_host(&dir)
        .with_slot_name(format!("{}_req", ctx.slot))
        .with_ssl_mode(pgcdc_core::SslMode::Require)
        .with_start_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = required.start().await.unwrap_err().to_string();
    assert!(err.contains("Unix-domain socket"), "{err}");
    assert!(err.contains("sslmode=require"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fatal, not retried"
    );
}

/// The ids of the changes of `batches`' transaction `kind`, in order, checking the chunk
/// flags: consecutive indexes from 0, one last chunk with the end LSN.
fn held_ids(batches: &[ChangeBatch]) -> Vec<i64> {
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(b.chunk_index as usize, i, "chunks in order");
        assert_eq!(b.last_chunk, i + 1 == batches.len());
        assert_eq!(b.end_lsn.is_some(), b.last_chunk);
    }
    batches
        .iter()
        .flat_map(|b| b.changes.iter().filter_map(|c| int_prop(c, "id")))
        .collect()
}

/// Receives the chunks of one transaction (up to its last chunk).
async fn one_transaction<R: Runtime + Default>(sub: &mut Subscription) -> Vec<ChangeBatch> {
    let mut out = Vec::new();
    loop {
        let b = super::next_batch::<R>(sub, Duration::from_secs(60))
            .await
            .expect("the transaction's chunks keep coming");
        let last = b.last_chunk;
        out.push(b);
        if last {
            return out;
        }
    }
}

/// A streamed transaction (`streaming on`, which the server uses above its
/// `logical_decoding_work_mem` of 64 kB) far larger than the spill threshold: it spills to the
/// spill directory, held memory stays near the threshold, and at its commit every row of the
/// subtransactions that did not roll back arrives once, in order, in chunks. A streamed
/// transaction that aborts delivers nothing, and no spill file is left behind.
pub async fn streamed_transaction_spills<R: Runtime + Default>() {
    const THRESHOLD: usize = 256 << 10;
    let ctx = Ctx::new("streamspill");
    ctx.sql("CREATE TABLE s (id int PRIMARY KEY, pad text)");
    ctx.publish(&["s"]);
    let dir = std::env::temp_dir().join(format!("pgcdc-spill-{}-{}", ctx.name, std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = ctx
        .builder::<R>()
        .with_streaming(StreamingMode::On)
        .with_spill_threshold_bytes(THRESHOLD)
        .with_spill_dir(&dir)
        .with_max_batch_changes(1000)
        .with_dispatch_buffer_capacity(4)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    if !ctx.start_needing(&source, 14, "streaming 'on'").await {
        return;
    }
    // 30 000 rows of about 200 bytes (about 6 MB of row data); the rows 10 001–20 000 are
    // made in a subtransaction rolled back after the server streamed them.
    ctx.sql(
        "BEGIN;
         INSERT INTO s SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 10000) g;
         SAVEPOINT a;
         INSERT INTO s SELECT g, repeat(md5(g::text), 6) FROM generate_series(10001, 20000) g;
         ROLLBACK TO SAVEPOINT a;
         INSERT INTO s SELECT g, repeat(md5(g::text), 6) FROM generate_series(20001, 30000) g;
         COMMIT;",
    );
    let batches = one_transaction::<R>(&mut sub).await;
    let ids = held_ids(&batches);
    let want: Vec<i64> = (1..=10_000).chain(20_001..=30_000).collect();
    assert_eq!(ids.len(), want.len());
    assert!(
        ids == want,
        "every row of the committed subtransactions, once, in order"
    );
    let st = source.status();
    assert!(
        st.spilled_bytes > 2 * THRESHOLD as u64,
        "the transaction spilled: {st:?}"
    );
    // The threshold plus one record and the bookkeeping.
    assert!(
        st.peak_held_bytes < THRESHOLD + (64 << 10),
        "held memory stays near the threshold: {} bytes",
        st.peak_held_bytes
    );
    // A streamed transaction that aborts: nothing arrives, its spill file is gone.
    ctx.sql(
        "BEGIN;
         INSERT INTO s SELECT g, repeat(md5(g::text), 6) FROM generate_series(40001, 60000) g;
         ROLLBACK;",
    );
    ctx.sql("INSERT INTO s VALUES (0, 'after')");
    let after = one_transaction::<R>(&mut sub).await;
    assert_eq!(
        held_ids(&after),
        [0],
        "the aborted transaction delivered nothing"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "spill files are unlinked at once"
    );
    eprintln!(
        "streamed_transaction_spills: {} rows in {} chunks, {} bytes spilled, peak held {} bytes",
        ids.len(),
        batches.len(),
        st.spilled_bytes,
        st.peak_held_bytes
    );
    source.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// Two-phase transactions (`two_phase on`) larger than the spill threshold: held from PREPARE
/// to COMMIT PREPARED, spilled meanwhile, then delivered whole; one rolled back delivers
/// nothing. The slot's confirmed position stays before a prepared transaction until it is
/// delivered.
pub async fn prepared_transaction_spills<R: Runtime + Default>() {
    const THRESHOLD: usize = 128 << 10;
    let ctx = Ctx::new("prepspill");
    ctx.sql("CREATE TABLE p (id int PRIMARY KEY, pad text)");
    ctx.publish(&["p"]);
    let source = ctx
        .builder::<R>()
        .with_two_phase(true)
        .with_spill_threshold_bytes(THRESHOLD)
        .with_max_batch_changes(2000)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    if !ctx.start_needing(&source, 15, "two_phase").await {
        return;
    }
    ctx.sql(
        "BEGIN;
         INSERT INTO p SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 8000) g;
         PREPARE TRANSACTION 'big_one';",
    );
    ctx.sql(
        "BEGIN;
         INSERT INTO p SELECT g, 'gone' FROM generate_series(100001, 104000) g;
         PREPARE TRANSACTION 'rolled_back';",
    );
    // Nothing is delivered before the commit.
    eventually::<R>(T, "the prepares to be held", || {
        source.status().held_bytes > 0 || source.status().spilled_bytes > 0
    })
    .await;
    assert!(
        super::next_batch::<R>(&mut sub, Duration::from_millis(500))
            .await
            .is_none(),
        "a prepared transaction is not delivered before COMMIT PREPARED"
    );
    ctx.sql("ROLLBACK PREPARED 'rolled_back'");
    ctx.sql("COMMIT PREPARED 'big_one'");
    let batches = one_transaction::<R>(&mut sub).await;
    assert_eq!(held_ids(&batches), (1..=8000).collect::<Vec<i64>>());
    for b in &batches {
        assert_eq!(b.gid.as_deref(), Some("big_one"));
    }
    let st = source.status();
    assert!(
        st.spilled_bytes > 0,
        "the prepared transaction spilled: {st:?}"
    );
    assert!(st.peak_held_bytes < THRESHOLD + (64 << 10), "{st:?}");
    ctx.sql("INSERT INTO p VALUES (0, 'after')");
    let after = one_transaction::<R>(&mut sub).await;
    assert_eq!(
        held_ids(&after),
        [0],
        "the rolled-back prepare delivered nothing"
    );
    source.stop().await.unwrap();
}

/// Two sources on one slot never deliver in turns: a second one stands by while the first
/// streams (state `Standby`), a third with `slot_in_use = fail` fails at once, and when the
/// standby takes the slot during the first one's reconnect, the first one ends with
/// `SlotTakenOver` instead of taking it back.
pub async fn two_sources_on_one_slot<R: Runtime + Default>() {
    use pgcdc_core::source_config::SlotInUse;
    use pgcdc_driver::SourceState;
    let ctx = Ctx::new("oneslot");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let first = ctx
        .builder::<R>()
        .with_reconnect_delay(Duration::from_secs(3), Duration::from_secs(3))
        .with_status_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut first_sub = first.subscribe();
    first.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (1)");
    assert_eq!(
        render(&collect::<R>(&mut first_sub, 1, T).await),
        ["insert t:1 {id=1}"]
    );

    let failing = ctx
        .builder::<R>()
        .with_slot_in_use(SlotInUse::Fail)
        .build()
        .unwrap();
    let e = failing.start().await.expect_err("the slot is in use");
    assert!(e.to_string().contains("slot_in_use = fail"), "{e}");

    let standby = ctx
        .builder::<R>()
        .with_reconnect_delay(Duration::from_millis(100), Duration::from_millis(100))
        .with_start_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let mut standby_sub = standby.subscribe();
    let mut starting = Box::pin({
        let standby = standby.clone();
        async move { standby.start().await }
    });
    let standing_by = async {
        eventually::<R>(T, "the second source to stand by", || {
            matches!(standby.status().state, SourceState::Standby { .. })
        })
        .await;
        // A blip of the first source: the standby takes the slot while it waits to reconnect.
        ctx.sql(&format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{}'",
            ctx.slot
        ));
    };
    match futures_util::future::select(starting.as_mut(), Box::pin(standing_by)).await {
        futures_util::future::Either::Left((r, _)) => panic!("started on a busy slot: {r:?}"),
        futures_util::future::Either::Right(((), _)) => {}
    }
    starting.await.unwrap();
    ctx.sql("INSERT INTO t VALUES (2)");
    let got = render(&collect::<R>(&mut standby_sub, 1, T).await);
    let got = if got == ["insert t:1 {id=1}"] {
        // Re-delivered at the handover when the first one's ack had not reached the slot.
        render(&collect::<R>(&mut standby_sub, 1, T).await)
    } else {
        got
    };
    assert_eq!(got, ["insert t:2 {id=2}"]);
    eventually::<R>(T, "the first source to give the slot up", || {
        matches!(first.status().state, SourceState::Failed(_))
    })
    .await;
    let SourceState::Failed(message) = first.status().state else {
        unreachable!()
    };
    assert!(message.contains("taken over"), "{message}");
    // The first source delivered nothing after the handover, and its subscription ended.
    assert!(first_sub.recv().await.is_none());
    standby.stop().await.unwrap();
}

/// A transaction the server streams while it is still open (`streaming`, above
/// `logical_decoding_work_mem`), with a rolled-back subtransaction, while small transactions
/// commit beside it: each small one arrives whole at its commit, in commit order, and the
/// large one at its own commit, every surviving row once.
async fn streamed_beside_small_transactions<R: Runtime + Default>(
    name: &str,
    mode: StreamingMode,
    min_major: u32,
    option: &str,
) {
    let ctx = Ctx::new(name);
    ctx.sql(
        "CREATE TABLE big (id int PRIMARY KEY, pad text); CREATE TABLE small (id int PRIMARY KEY)",
    );
    ctx.publish(&["big", "small"]);
    let source = ctx.builder::<R>().with_streaming(mode).build().unwrap();
    let mut sub = source.subscribe();
    if !ctx.start_needing(&source, min_major, option).await {
        return;
    }
    let mut open = ctx.cluster.open_session(&ctx.db).unwrap();
    open.query("BEGIN").unwrap();
    for (i, from) in [1, 5001, 10001].into_iter().enumerate() {
        if i == 1 {
            open.query("SAVEPOINT s").unwrap();
        }
        open.query(&format!(
            "INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series({from}, {}) g",
            from + 4999
        ))
        .unwrap();
        if i == 1 {
            open.query("ROLLBACK TO SAVEPOINT s").unwrap();
        }
        // A small transaction commits while the large one is open (and already streamed).
        ctx.sql(&format!("INSERT INTO small VALUES ({i})"));
    }
    open.query("COMMIT").unwrap();
    open.close().unwrap();
    let mut smalls = Vec::new();
    let big = loop {
        let batches = one_transaction::<R>(&mut sub).await;
        let small = batches[0]
            .changes
            .first()
            .and_then(|c| c.element_id())
            .is_some_and(|id| id.starts_with("small:"));
        if small {
            smalls.extend(held_ids(&batches));
            continue;
        }
        break batches;
    };
    assert_eq!(
        smalls,
        [0, 1, 2],
        "the small transactions, in commit order, before the large one"
    );
    let want: Vec<i64> = (1..=5000).chain(10001..=15000).collect();
    assert!(
        held_ids(&big) == want,
        "the large one: every surviving row once, in order"
    );
    assert!(
        source.status().peak_held_bytes > 0,
        "the large transaction was streamed (held until its commit)"
    );
    assert_quiet::<R>(&mut sub, Duration::from_millis(300)).await;
    source.stop().await.unwrap();
}

/// `origin = none` (PostgreSQL 16+): changes applied under a replication origin (by another
/// replication, say) are left out, local ones arrive.
pub async fn origin_none_skips_replicated_changes<R: Runtime + Default>() {
    let ctx = Ctx::new("originnone");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let mut cfg = ctx.builder::<R>().config().clone();
    cfg.origin = Some("none".into());
    let source = ctx.builder::<R>().with_config(cfg).build().unwrap();
    let mut sub = source.subscribe();
    if !ctx.start_needing(&source, 16, "origin").await {
        return;
    }
    let mut other = ctx.cluster.open_session(&ctx.db).unwrap();
    other
        .query("SELECT pg_replication_origin_create('elsewhere')")
        .unwrap();
    other
        .query("SELECT pg_replication_origin_session_setup('elsewhere')")
        .unwrap();
    other.query("INSERT INTO t VALUES (1)").unwrap();
    other.close().unwrap();
    ctx.sql("INSERT INTO t VALUES (2)");
    assert_eq!(
        render(&collect::<R>(&mut sub, 1, T).await),
        ["insert t:2 {id=2}"]
    );
    assert_quiet::<R>(&mut sub, Duration::from_millis(300)).await;
    source.stop().await.unwrap();
}

/// `streaming = on` (PostgreSQL 14+) beside small transactions.
pub async fn streaming_on_beside_small_transactions<R: Runtime + Default>() {
    streamed_beside_small_transactions::<R>("streamon", StreamingMode::On, 14, "streaming 'on'")
        .await;
}

/// `streaming = parallel` (protocol 4, PostgreSQL 16+) beside small transactions.
pub async fn streaming_parallel_beside_small_transactions<R: Runtime + Default>() {
    streamed_beside_small_transactions::<R>(
        "streampar",
        StreamingMode::Parallel,
        16,
        "streaming 'parallel'",
    )
    .await;
}

/// A failover slot (PostgreSQL 17+): created with `FAILOVER`, and streamed from.
pub async fn failover_slot<R: Runtime + Default>() {
    let ctx = Ctx::new("failover");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().with_failover(true).build().unwrap();
    let mut sub = source.subscribe();
    if !ctx.start_needing(&source, 17, "failover").await {
        return;
    }
    assert_eq!(
        ctx.sql(&format!(
            "SELECT failover FROM pg_replication_slots WHERE slot_name = '{}'",
            ctx.slot
        )),
        "t"
    );
    ctx.sql("INSERT INTO t VALUES (1)");
    assert_eq!(
        render(&collect::<R>(&mut sub, 1, T).await),
        ["insert t:1 {id=1}"]
    );
    source.stop().await.unwrap();
}

/// The periodic slot check: a consumer that does not acknowledge makes the slot retain WAL
/// past `slot_lag_warn_bytes`, which the status reports (and the log warns about); once it
/// acknowledges, the warning clears.
pub async fn slot_lag_warning<R: Runtime + Default>() {
    let ctx = Ctx::new("slotlag");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY, pad text)");
    ctx.publish(&["t"]);
    let source = ctx
        .builder::<R>()
        .with_ack_mode(AckMode::Manual)
        .with_status_interval(Duration::from_millis(200))
        .with_slot_check_interval(Duration::from_millis(200))
        .with_slot_lag_warn_bytes(256 << 10)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 4000) g");
    let batches = one_transaction::<R>(&mut sub).await;
    eventually::<R>(T, "a lag warning", || {
        source.status().slot_warning.is_some()
    })
    .await;
    let st = source.status();
    assert!(st.retained_wal_bytes.unwrap_or(0) > 256 << 10, "{st:?}");
    assert!(
        st.slot_warning.as_deref().unwrap_or("").contains("retains"),
        "{st:?}"
    );
    if ctx.major() >= 13 {
        assert_eq!(st.wal_status.as_deref(), Some("reserved"));
    }
    batches.last().unwrap().ack();
    eventually::<R>(T, "the warning to clear", || {
        // The slot's restart point moves at the server's next running-transactions record.
        ctx.sql("CHECKPOINT");
        source.status().slot_warning.is_none()
    })
    .await;
    source.stop().await.unwrap();
}

/// A temporary slot (`temporary_slot`): created by the source, marked temporary, streamed
/// from, and gone with the source's connection.
pub async fn temporary_slot_lives_with_its_connection<R: Runtime + Default>() {
    let ctx = Ctx::new("tempslot");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let mut cfg = ctx.builder::<R>().config().clone();
    cfg.temporary_slot = true;
    let source = ctx.builder::<R>().with_config(cfg).build().unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let slot = |ctx: &Ctx| {
        ctx.sql(&format!(
            "SELECT temporary FROM pg_replication_slots WHERE slot_name = '{}'",
            ctx.slot
        ))
    };
    assert_eq!(slot(&ctx), "t");
    ctx.sql("INSERT INTO t VALUES (1)");
    assert_eq!(
        render(&collect::<R>(&mut sub, 1, T).await),
        ["insert t:1 {id=1}"]
    );
    source.stop().await.unwrap();
    eventually::<R>(T, "the temporary slot to go with its connection", || {
        slot(&ctx).is_empty()
    })
    .await;
}
