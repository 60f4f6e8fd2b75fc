//! Measures the bootstrap's throughput against `COPY … TO STDOUT` through psql on the same
//! table, on a throwaway PostgreSQL:
//!
//! ```sh
//! cargo run --release -p pgcdc-tokio --example bootstrap_speed -- 1000000
//! ```
//!
//! The table is orders-like (bigint key, int, numeric(12,2), text, timestamptz, varchar,
//! bool). The bootstrap figure is end to end: snapshot import, COPY, parsing, value decoding
//! into typed values, element ids, delivery to a subscriber.

#[path = "speed/mod.rs"]
mod speed;

use std::time::Instant;

use pgcdc_tokio::ChangeBatch;
use pgcdc_tokio::pgcdc_core::pgoutput::Xid;

fn main() -> speed::Result<()> {
    let rows = speed::rows_arg()?;
    let cluster = speed::cluster_with_orders()?;
    cluster.psql(
        "speed",
        &format!(
            "{}; ANALYZE orders;",
            speed::insert_orders("1", &rows.to_string())
        ),
    )?;

    // psql: COPY … TO STDOUT, the output read completely.
    let t = Instant::now();
    let out = cluster.psql("speed", "COPY orders TO STDOUT")?;
    let psql_secs = t.elapsed().as_secs_f64();
    let psql_lines = out.lines().count() as u64;
    drop(out);
    assert_eq!(psql_lines, rows);

    // The snapshot's batches carry xid 0.
    let snapshot_inserts = |b: &ChangeBatch| {
        if b.xid == Xid(0) {
            speed::inserts(b)
        } else {
            0
        }
    };
    let (boot_secs, boot_rows) =
        speed::read_rows(&cluster, "speed_slot", true, rows, snapshot_inserts)?;
    println!("rows: {rows}");
    println!(
        "psql COPY TO STDOUT: {psql_secs:.2} s, {:.0} rows/s",
        rows as f64 / psql_secs
    );
    println!(
        "pgcdc bootstrap:     {boot_secs:.2} s, {:.0} rows/s ({boot_rows} inserts delivered)",
        boot_rows as f64 / boot_secs
    );
    Ok(())
}
