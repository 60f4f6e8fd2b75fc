//! Fatal errors end the source at once with an actionable message; invalid configurations
//! are refused by `build()` naming the field.

use std::time::{Duration, Instant};

use pgcdc_driver::api::SslMode;
use pgcdc_driver::{Error, Runtime, SourceState};
use pgcdc_testkit::{CLEARTEXT_USER, Cluster, NOREPL_USER};

use super::Ctx;

async fn expect_fatal<R: Runtime + Default>(
    source: pgcdc_driver::Source<R>,
    needles: &[&str],
) -> String {
    let err = source.start().await.expect_err("start must fail");
    let msg = err.to_string();
    for n in needles {
        assert!(msg.contains(n), "error {msg:?} lacks {n:?}");
    }
    let st = source.status();
    assert!(matches!(st.state, SourceState::Failed(_)), "{st:?}");
    // Not retried: no reconnect was made (a count, not a time, so load cannot fail it).
    assert_eq!(
        st.reconnects, 0,
        "a fatal error must not be retried: {st:?}"
    );
    assert!(!source.is_running());
    msg
}

/// A cleartext password is not sent without TLS unless `require_auth` allows it.
pub async fn cleartext_needs_tls_or_require_auth<R: Runtime + Default>() {
    let ctx = Ctx::new("cleartext");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let cleartext = |b: pgcdc_driver::SourceBuilder<R>| {
        b.with_user(CLEARTEXT_USER.name)
            .with_password(CLEARTEXT_USER.password.unwrap_or_default())
            .with_ssl_mode(SslMode::Disable)
    };
    let source = cleartext(ctx.builder::<R>()).build().unwrap();
    expect_fatal(source, &["cleartext", "require_auth=password"]).await;
    let source = cleartext(ctx.builder::<R>())
        .with_require_auth("password".parse().unwrap())
        .build()
        .unwrap();
    source.start().await.unwrap();
    source.stop().await.unwrap();
}

/// A wrong password is fatal and says so.
pub async fn wrong_password<R: Runtime + Default>() {
    let ctx = Ctx::new("badpw");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().with_password("nope").build().unwrap();
    expect_fatal(source.clone(), &["28P01", "password"]).await;
    // The failure itself reaches the caller, typed: SQLSTATE, not transient.
    match source.start().await {
        Err(Error::Start(e)) => {
            assert_eq!(
                e.sqlstate().map(|s| s.code().to_owned()).as_deref(),
                Some("28P01")
            );
            assert!(!e.is_transient(), "{e}");
            assert!(
                matches!(e.cause(), pgcdc_driver::StartCause::Driver(_)),
                "{:?}",
                e.cause()
            );
        }
        other => panic!("expected a start error, got {other:?}"),
    }
}

/// A missing publication is fatal, with the statement that creates it.
pub async fn missing_publication<R: Runtime + Default>() {
    let ctx = Ctx::new("nopub");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    let source = ctx.builder::<R>().build().unwrap();
    expect_fatal(source, &["pub_nopub", "CREATE PUBLICATION"]).await;
}

/// A configured table outside the publication is fatal, with the fix.
pub async fn table_not_in_publication<R: Runtime + Default>() {
    let ctx = Ctx::new("notinpub");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx
        .builder::<R>()
        .with_tables(vec!["t".into(), "other".into()])
        .build()
        .unwrap();
    expect_fatal(source, &["other", "ALTER PUBLICATION"]).await;
}

/// A user without the REPLICATION attribute is fatal, with the fix.
pub async fn user_without_replication<R: Runtime + Default>() {
    let ctx = Ctx::new("norepl");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx
        .builder::<R>()
        .with_user(NOREPL_USER.name)
        .with_password(NOREPL_USER.password.unwrap_or_default())
        .build()
        .unwrap();
    expect_fatal(source, &["REPLICATION"]).await;
}

/// wal_level=replica is fatal, with the fix (a cluster of its own).
pub async fn wal_level_replica<R: Runtime + Default>() {
    let cluster: &'static Cluster = Box::leak(Box::new(
        Cluster::builder().wal_level("replica").start().unwrap(),
    ));
    let ctx = Ctx::on(cluster, "walreplica");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().build().unwrap();
    expect_fatal(source, &["wal_level", "logical"]).await;
}

/// A slot the server invalidated (PostgreSQL 13+: it fell more than
/// `max_slot_wal_keep_size` behind while its consumer was stopped) ends the start with a
/// fatal error saying what was lost and how to recover, instead of retrying forever.
pub async fn slot_invalidated_is_fatal<R: Runtime + Default>() {
    if Cluster::default_major_version().unwrap() < 13 {
        // No max_slot_wal_keep_size before 13: a slot there keeps its WAL forever.
        return;
    }
    let cluster: &'static Cluster = Box::leak(Box::new(
        Cluster::builder()
            .setting("max_slot_wal_keep_size", "1MB")
            .start()
            .unwrap(),
    ));
    let ctx = Ctx::on(cluster, "slotlost");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY, pad text)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().build().unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (1, 'x')");
    assert_eq!(
        super::collect::<R>(&mut sub, 1, Duration::from_secs(30))
            .await
            .len(),
        1
    );
    source.stop().await.unwrap();
    // The consumer is away; the server writes far more than 1 MB of WAL and checkpoints.
    let status = |ctx: &Ctx| {
        ctx.sql(&format!(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{}'",
            ctx.slot
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&ctx) != "lost" {
        assert!(
            Instant::now() < deadline,
            "the slot was never invalidated: {}",
            status(&ctx)
        );
        ctx.sql("INSERT INTO t SELECT g, repeat('y', 500) FROM generate_series(2, 5001) g ON CONFLICT (id) DO UPDATE SET pad = excluded.pad || 'z'");
        ctx.sql("SELECT pg_switch_wal()");
        ctx.sql("CHECKPOINT");
    }
    let source = ctx.builder::<R>().build().unwrap();
    let msg = expect_fatal(
        source,
        &["invalidated", "bootstrap again", "pg_drop_replication_slot"],
    )
    .await;
    assert!(msg.contains(&ctx.slot), "{msg}");
}

/// `build()` names the invalid field.
pub async fn invalid_config<R: Runtime + Default>() {
    let ctx = Ctx::new("badcfg");
    let cases: Vec<(pgcdc_driver::SourceBuilder<R>, &str)> = vec![
        (ctx.builder::<R>().with_slot_name("Bad-Slot"), "slot_name"),
        (ctx.builder::<R>().with_port(0), "port"),
        (ctx.builder::<R>().with_host(""), "host"),
        (ctx.builder::<R>().with_database(""), "database"),
        (
            ctx.builder::<R>().with_publication_name(""),
            "publication_name",
        ),
        (
            ctx.builder::<R>().with_dispatch_buffer_capacity(0),
            "dispatch_buffer_capacity",
        ),
        (
            ctx.builder::<R>().with_max_batch_changes(0),
            "max_batch_changes",
        ),
        (
            ctx.builder::<R>()
                .add_table_key(pgcdc_core::source_config::TableKeyConfig {
                    table: "t".into(),
                    key_columns: vec![],
                }),
            "table_keys",
        ),
        (ctx.builder::<R>().with_url("mysql://x"), "url"),
    ];
    for (builder, field) in cases {
        match builder.build() {
            Err(Error::Config(msg)) => assert!(msg.contains(field), "{msg:?} should name {field}"),
            other => panic!("expected a config error naming {field}, got {other:?}"),
        }
    }
}

/// A slot that disappears once streaming has begun (a failover to a server without it, a
/// drop by hand) ends the source with an error naming the cause; it is never recreated,
/// which would skip every change made in between.
pub async fn slot_lost_while_streaming<R: Runtime + Default>() {
    let ctx = Ctx::new("slotlost");
    ctx.sql("CREATE TABLE t (id int PRIMARY KEY)");
    ctx.publish(&["t"]);
    let source = ctx.builder::<R>().build().unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    ctx.sql("INSERT INTO t VALUES (1)");
    super::collect::<R>(&mut sub, 1, Duration::from_secs(30)).await;
    // End the walsender and drop the slot before the source reconnects.
    ctx.sql(&format!(
        "DO $$ BEGIN
           FOR i IN 1..1000 LOOP
             PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots
               WHERE slot_name = '{slot}' AND active_pid IS NOT NULL;
             BEGIN
               PERFORM pg_drop_replication_slot('{slot}');
               RETURN;
             EXCEPTION WHEN object_in_use THEN PERFORM pg_sleep(0.005);
             END;
           END LOOP;
           RAISE 'the slot stayed in use';
         END $$",
        slot = ctx.slot
    ));
    ctx.sql("INSERT INTO t VALUES (2)");
    super::eventually::<R>(Duration::from_secs(30), "the source to fail", || {
        matches!(source.status().state, SourceState::Failed(_))
    })
    .await;
    let SourceState::Failed(msg) = source.status().state else {
        unreachable!()
    };
    assert!(msg.contains("disappeared"), "{msg}");
    assert!(msg.contains("bootstrap again"), "{msg}");
    assert_eq!(
        ctx.sql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{}'",
            ctx.slot
        )),
        "0",
        "the lost slot must not be recreated"
    );
    assert!(sub.recv().await.is_none(), "the subscription ends");
}

/// A server that asks for many SCRAM iterations (here a role whose verifier has 300,000; the
/// limit is 1,000,000) makes the key derivation take a while; it runs off the executor
/// thread, so another future on the same task keeps running meanwhile.
pub async fn scram_key_derivation_runs_off_the_executor<R: Runtime + Default>() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use futures_util::future::join;
    use pgcdc_core::startup::ConnectParams;
    use pgcdc_driver::{ConnectOptions, PgConnection};

    const ITERATIONS: u32 = 300_000;
    let ctx = Ctx::new("slowscram");
    let verifier = pgcdc_testkit::scram_verifier("slow-password", b"pgcdc-test-salt!", ITERATIONS);
    ctx.sql(&format!(
        "DROP ROLE IF EXISTS slow_scram; CREATE ROLE slow_scram LOGIN PASSWORD '{verifier}'"
    ));
    let opts = ConnectOptions::new(
        ctx.cluster.host(),
        ctx.cluster.port(),
        ConnectParams::new("slow_scram")
            .database(&ctx.db)
            .password("slow-password"),
    );
    let rt = R::default();
    let done = Arc::new(AtomicBool::new(false));
    let connecting = {
        let done = Arc::clone(&done);
        let rt = rt.clone();
        async move {
            let t = Instant::now();
            let result = PgConnection::<R>::connect(rt, &opts).await;
            done.store(true, Ordering::Release);
            (result.map(|c| c.authentication_method()), t.elapsed())
        }
    };
    // Polled by the same task as the connection: it can only run while the connection waits.
    let ticking = async {
        let mut last = Instant::now();
        let mut longest = Duration::ZERO;
        while !done.load(Ordering::Acquire) {
            rt.sleep(Duration::from_millis(5)).await;
            longest = longest.max(last.elapsed());
            last = Instant::now();
        }
        longest
    };
    let ((method, took), longest) = join(connecting, ticking).await;
    let method = method.expect("the slow role authenticates");
    assert!(
        method.is_some_and(|m| m.starts_with("SCRAM-SHA-256")),
        "{method:?}"
    );
    eprintln!(
        "scram_key_derivation_runs_off_the_executor: connect took {took:?}, the longest gap \
         of the other future {longest:?}"
    );
    assert!(
        longest < took / 2,
        "the key derivation stalled the task: the other future waited {longest:?} of the \
         connection's {took:?}"
    );
}
