//! Measures the memory one large streamed transaction takes, on a throwaway PostgreSQL:
//!
//! ```sh
//! cargo run --release -p pgcdc-tokio --example held_memory -- 1000000 67108864
//! cargo run --release -p pgcdc-tokio --example held_memory -- 1000000 0
//! ```
//!
//! The arguments are the rows (default 1,000,000) and `spill_threshold_bytes` (default 64 MiB;
//! `0` keeps everything in memory). A source with `streaming on` reads the orders-like table
//! while one transaction inserts every row (the server streams it in blocks, its
//! `logical_decoding_work_mem` being 64 kB); the subscriber drops each batch as it arrives.
//! Printed: the process's peak resident set size, the source's peak held memory and the
//! bytes it spilled.

#[path = "speed/mod.rs"]
#[allow(dead_code)]
mod speed;

use std::error::Error;
use std::time::{Duration, Instant};

use pgcdc_tokio::StreamingMode;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> speed::Result<()> {
    let rows = speed::rows_arg()?;
    let threshold: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(64 << 20);
    let cluster = speed::cluster_with_orders()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let source = speed::builder(&cluster, "held", "held_slot")
            .with_streaming(StreamingMode::On)
            .with_spill_threshold_bytes(threshold)
            .build()?;
        let mut sub = source.subscribe();
        source.start().await?;
        let before = peak_rss_kib();
        let t = Instant::now();
        // One statement, one transaction; the source receives its stream blocks meanwhile.
        cluster.psql("speed", &speed::insert_orders("1", &rows.to_string()))?;
        let mut n = 0u64;
        while n < rows {
            let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(300), sub.recv()).await
            else {
                return Err::<_, Box<dyn Error>>("the source stalled".into());
            };
            n += speed::inserts(&b);
        }
        let secs = t.elapsed().as_secs_f64();
        let st = source.status();
        println!("rows: {rows} in one streamed transaction, spill_threshold_bytes {threshold}");
        println!("insert and delivery: {secs:.1} s");
        println!(
            "peak RSS: {} MiB (before the transaction {} MiB)",
            peak_rss_kib() / 1024,
            before / 1024
        );
        println!(
            "peak held: {} MiB, spilled: {} MiB",
            st.peak_held_bytes >> 20,
            st.spilled_bytes >> 20
        );
        source.stop().await?;
        Ok(())
    })
}
