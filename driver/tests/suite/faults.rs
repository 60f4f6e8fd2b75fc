//! Faults during a workload: the walsender killed, the connection cut, PostgreSQL restarted,
//! a consumer stalled past wal_sender_timeout. Every row must arrive exactly once, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use pgcdc_driver::{Runtime, Source, Subscription};
use pgcdc_testkit::{Cluster, FaultProxy};

use super::{Ctx, int_prop, next_batch};

/// Rows per workload transaction; with `max_batch_changes` 100 a transaction spans chunks,
/// so faults land inside transactions whose first chunks were already delivered.
const TX_ROWS: i64 = 250;

/// Inserts `txs` transactions of [`TX_ROWS`] rows with ids 1.. in a background thread.
fn workload(ctx: &Ctx, txs: i64, pause: Duration) -> thread::JoinHandle<()> {
    let cluster = ctx.cluster;
    let db = ctx.db.clone();
    thread::spawn(move || {
        for t in 0..txs {
            let lo = t * TX_ROWS + 1;
            let hi = lo + TX_ROWS - 1;
            // A failed statement (the server restarting) is retried: the row set stays exact.
            let sql = format!(
                "INSERT INTO w SELECT g, 'row ' || g FROM generate_series({lo}, {hi}) g ON CONFLICT DO NOTHING"
            );
            let mut tries = 0;
            while let Err(e) = cluster.psql(&db, &sql) {
                tries += 1;
                assert!(tries < 100, "workload statement keeps failing: {e}");
                thread::sleep(Duration::from_millis(200));
            }
            thread::sleep(pause);
        }
    })
}

/// Reads until every id 1..=`total` arrived; asserts exactly once and in order.
async fn expect_all<R: Runtime + Default>(sub: &mut Subscription, total: i64) {
    let mut next = 1i64;
    while next <= total {
        let Some(b) = next_batch::<R>(sub, Duration::from_secs(60)).await else {
            panic!("stream ended or stalled at id {next} of {total}");
        };
        for c in &b.changes {
            let id = int_prop(c, "id").expect("an insert with an id");
            assert_eq!(id, next, "ids must arrive exactly once and in order");
            next += 1;
        }
    }
}

fn setup(ctx: &Ctx) {
    ctx.sql("CREATE TABLE w (id bigint PRIMARY KEY, note text)");
    ctx.publish(&["w"]);
}

/// Runs `txs` workload transactions through `source` while `fault` (started with the
/// workload) breaks the connection; every row must arrive exactly once, in order, and the
/// source must have reconnected.
async fn exactly_once_despite<R: Runtime + Default>(
    ctx: &Ctx,
    source: Source<R>,
    txs: i64,
    fault: thread::JoinHandle<()>,
) {
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let w = workload(ctx, txs, Duration::from_millis(20));
    expect_all::<R>(&mut sub, txs * TX_ROWS).await;
    w.join().unwrap();
    fault.join().unwrap();
    assert!(source.status().reconnects >= 1, "{:?}", source.status());
    source.stop().await.unwrap();
}

/// The walsender is killed with pg_terminate_backend several times mid-workload.
pub async fn walsender_killed<R: Runtime + Default>() {
    let ctx = Ctx::new("killed");
    setup(&ctx);
    let source = ctx
        .builder::<R>()
        .with_max_batch_changes(100)
        .build()
        .unwrap();
    let killer = {
        let cluster = ctx.cluster;
        let db = ctx.db.clone();
        let slot = ctx.slot.clone();
        thread::spawn(move || {
            for _ in 0..4 {
                thread::sleep(Duration::from_millis(400));
                let _ = cluster.psql(
                    &db,
                    &format!(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active_pid IS NOT NULL"
                    ),
                );
            }
        })
    };
    exactly_once_despite(&ctx, source, 40, killer).await;
}

/// The TCP connection is cut by the fault proxy several times mid-workload.
pub async fn connection_cut<R: Runtime + Default>() {
    let ctx = Ctx::new("cut");
    setup(&ctx);
    let proxy = FaultProxy::start(ctx.cluster.addr()).unwrap();
    let source = ctx
        .builder::<R>()
        .with_host("127.0.0.1")
        .with_port(proxy.port())
        .with_max_batch_changes(100)
        .build()
        .unwrap();
    // The proxy must outlive the cutter: the source reconnects through it.
    let proxy = Arc::new(proxy);
    let cutter = {
        let proxy = Arc::clone(&proxy);
        thread::spawn(move || {
            for _ in 0..4 {
                thread::sleep(Duration::from_millis(450));
                proxy.cut_all();
            }
        })
    };
    exactly_once_despite(&ctx, source, 40, cutter).await;
    drop(proxy);
}

/// PostgreSQL restarts (fast mode) mid-workload, on a cluster of its own.
pub async fn server_restarted<R: Runtime + Default>() {
    let cluster: &'static Cluster = Box::leak(Box::new(Cluster::start().unwrap()));
    let ctx = Ctx::on(cluster, "restart");
    setup(&ctx);
    let source = ctx
        .builder::<R>()
        .with_max_batch_changes(100)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let txs = 30;
    let w = workload(&ctx, txs, Duration::from_millis(30));
    let restarter = thread::spawn(move || {
        thread::sleep(Duration::from_millis(400));
        cluster.restart_fast().unwrap();
    });
    expect_all::<R>(&mut sub, txs * TX_ROWS).await;
    w.join().unwrap();
    restarter.join().unwrap();
    assert!(source.status().reconnects >= 1, "{:?}", source.status());
    source.stop().await.unwrap();
}

/// A consumer that does not read for three times wal_sender_timeout: the source keeps
/// sending status updates while it holds the socket back, so the server does not cut it.
pub async fn stalled_consumer<R: Runtime + Default>() {
    let cluster: &'static Cluster = Box::leak(Box::new(
        Cluster::builder()
            .setting("wal_sender_timeout", "2s")
            .start()
            .unwrap(),
    ));
    let ctx = Ctx::on(cluster, "stalled");
    setup(&ctx);
    let source: Source<R> = ctx
        .builder::<R>()
        .with_dispatch_buffer_capacity(1)
        .with_max_batch_changes(100)
        .build()
        .unwrap();
    let mut sub = source.subscribe();
    source.start().await.unwrap();
    let txs = 20;
    let done = Arc::new(AtomicBool::new(false));
    let w = workload(&ctx, txs, Duration::from_millis(0));
    w.join().unwrap();
    done.store(true, Ordering::SeqCst);
    // Stall: nothing is read for 6 s (wal_sender_timeout is 2 s).
    R::default().sleep(Duration::from_secs(6)).await;
    expect_all::<R>(&mut sub, txs * TX_ROWS).await;
    let st = source.status();
    assert_eq!(
        st.reconnects, 0,
        "the server must not have cut the stalled source: {st:?}"
    );
    source.stop().await.unwrap();
}
