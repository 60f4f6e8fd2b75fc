//! The library path, as `side_by_side` measures it: typed changes delivered to a subscriber
//! that drops them, in a process of its own so that its CPU time can be read alone.
//!
//! ```sh
//! lib_drain URL SLOT PUBLICATION --until LSN     # stream until a transaction ends at LSN
//! lib_drain URL SLOT PUBLICATION --snapshot      # create SLOT, copy its snapshot, stop
//! lib_drain URL SLOT PUBLICATION --latency N     # N transactions; print commit-to-delivery
//! ```
//!
//! `--latency` prints one line per transaction with the microseconds from its commit
//! timestamp to its delivery, for `side_by_side latency` to pool.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgcdc_core::Lsn;
use pgcdc_tokio::PostgresReplicationSource;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

enum Mode {
    Until(Lsn),
    Snapshot,
    Latency(u64),
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, slot, publication, mode, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: lib_drain URL SLOT PUBLICATION (--until LSN | --snapshot | --latency N)".into(),
        );
    };
    let mode = match (mode.as_str(), rest.first()) {
        ("--until", Some(lsn)) => Mode::Until(lsn.parse()?),
        ("--snapshot", None) => Mode::Snapshot,
        ("--latency", Some(n)) => Mode::Latency(n.parse()?),
        _ => return Err(format!("unknown mode {mode:?}").into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The consumer runs as a task of the runtime, beside the source's task, as applications
    // usually do: a batch handed over wakes it without a hop to the main thread.
    let (url, slot, publication) = (url.clone(), slot.clone(), publication.clone());
    rt.block_on(async move {
        tokio::spawn(async move { drain(&url, &slot, &publication, mode).await })
            .await
            .map_err(|e| format!("the drain task failed: {e}"))?
    })
}

async fn drain(url: &str, slot: &str, publication: &str, mode: Mode) -> Result<()> {
    let mut builder = PostgresReplicationSource::builder("lib_drain")
        .with_url(url)
        .with_slot_name(slot)
        .with_publication_name(publication)
        .with_auto_start(false);
    if matches!(mode, Mode::Snapshot) {
        builder = builder.with_create_slot(true).with_postgres_bootstrap();
    }
    let source = builder.build()?;
    let mut sub = source.subscribe();
    let starting = source.clone();
    // start() returns once a bootstrap is over: read meanwhile.
    let start = tokio::spawn(async move { starting.start().await });
    let mut stdout = std::io::stdout();
    let (mut rows, mut txs) = (0u64, 0u64);
    match mode {
        Mode::Snapshot => {
            // start() returns once every snapshot row is queued; the source leaves
            // Bootstrapping once the subscriber took them all (stopping earlier would
            // fail the bootstrap).
            let mut start = std::pin::pin!(start);
            loop {
                tokio::select! {
                    biased;
                    b = sub.recv() => {
                        let Some(b) = b else { return Err("the source stopped".into()) };
                        rows += b.changes.len() as u64;
                    }
                    r = &mut start => {
                        r??;
                        break;
                    }
                }
            }
            while source.status().state == pgcdc_tokio::SourceState::Bootstrapping {
                match tokio::time::timeout(Duration::from_millis(5), sub.recv()).await {
                    Ok(Some(b)) => rows += b.changes.len() as u64,
                    Ok(None) => return Err("the source stopped".into()),
                    Err(_) => {}
                }
            }
            source.stop().await?;
            eprintln!("lib_drain: {rows} changes");
            return Ok(());
        }
        Mode::Until(until) => loop {
            let Some(b) = tokio::time::timeout(Duration::from_secs(120), sub.recv()).await? else {
                return Err("the source stopped".into());
            };
            rows += b.changes.len() as u64;
            txs += 1;
            b.ack();
            if b.ack_lsn().is_some_and(|l| l >= until) {
                break;
            }
        },
        Mode::Latency(n) => {
            while txs < n {
                let Some(b) = tokio::time::timeout(Duration::from_secs(120), sub.recv()).await?
                else {
                    return Err("the source stopped".into());
                };
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
                let micros = (now.saturating_sub(u128::from(b.commit_time_ns))) / 1000;
                writeln!(stdout, "{micros}")?;
                rows += b.changes.len() as u64;
                txs += 1;
                b.ack();
            }
        }
    }
    start.await??;
    source.stop().await?;
    eprintln!("lib_drain: {rows} changes, {txs} transactions");
    Ok(())
}
