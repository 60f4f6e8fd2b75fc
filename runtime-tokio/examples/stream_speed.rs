//! Measures streaming throughput end to end against `pg_recvlogical` reading the same changes
//! raw, on a throwaway PostgreSQL:
//!
//! ```sh
//! cargo run --release -p pgcdc-tokio --example stream_speed -- 1000000
//! ```
//!
//! Two slots are created on an orders-like table (bigint key, int, numeric(12,2), text,
//! timestamptz, varchar, bool), then the rows are inserted in transactions of 1000 while nobody
//! reads. Then `pg_recvlogical` reads the first slot to the end (pgoutput bytes written to
//! `/dev/null`: the server's decoding and the network alone), and a pgcdc source reads the
//! second (decoded, typed changes delivered to a subscriber, acknowledged).

#[path = "speed/mod.rs"]
mod speed;

use std::process::Command;
use std::time::Instant;

use pgcdc_testkit::TRUST_USER;

fn main() -> speed::Result<()> {
    let rows = speed::rows_arg()?;
    let cluster = speed::cluster_with_orders()?;
    // A slot cannot be created in a transaction that wrote: one statement each.
    for slot in ["raw_slot", "pgcdc_slot"] {
        cluster.psql(
            "speed",
            &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
        )?;
    }
    eprintln!("inserting {rows} rows in transactions of 1000 …");
    cluster.psql(
        "speed",
        &format!(
            "DO $$
             BEGIN
               FOR b IN 0..{last} LOOP
                 {insert};
                 COMMIT;
               END LOOP;
             END $$",
            last = rows.div_ceil(1000) - 1,
            insert = speed::insert_orders(
                "b * 1000 + 1::bigint",
                &format!("least(b * 1000 + 1000, {rows})")
            ),
        ),
    )?;
    let end_lsn = cluster.psql("speed", "SELECT pg_current_wal_lsn()")?;

    // pg_recvlogical: the raw stream to the end of the inserts.
    let t = Instant::now();
    let status = Command::new(cluster.bin_dir().join("pg_recvlogical"))
        .args(["-h", cluster.host(), "-p", &cluster.port().to_string()])
        .args(["-U", TRUST_USER.name, "-d", "speed", "--slot", "raw_slot"])
        .args(["--start", "--endpos", end_lsn.trim(), "-f", "/dev/null"])
        .args(["-o", "proto_version=1", "-o", "publication_names=speed_pub"])
        .status()?;
    let raw_secs = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("pg_recvlogical failed: {status}").into());
    }

    let (secs, n) = speed::read_rows(&cluster, "pgcdc_slot", false, rows, speed::inserts)?;
    println!("rows: {rows} (transactions of 1000)");
    println!(
        "pg_recvlogical, raw pgoutput to /dev/null: {raw_secs:.2} s, {:.0} rows/s",
        rows as f64 / raw_secs
    );
    println!(
        "pgcdc, typed changes to a subscriber:     {secs:.2} s, {:.0} rows/s ({n} inserts)",
        n as f64 / secs
    );
    Ok(())
}
