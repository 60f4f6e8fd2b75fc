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

use std::process::Command;
use std::time::{Duration, Instant};

use pgcdc_testkit::{Cluster, SCRAM_USER, TRUST_USER};
use pgcdc_tokio::core::model::SourceChange;
use pgcdc_tokio::{PostgresReplicationSource, SslMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let batches = rows.div_ceil(1000);
    eprintln!("starting a throwaway PostgreSQL …");
    let cluster = Cluster::builder().tls(false).start()?;
    cluster.create_database("speed")?;
    cluster.psql(
        "speed",
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
           note text, created_at timestamptz, status varchar(20), paid bool);
         CREATE PUBLICATION speed_pub FOR TABLE orders;",
    )?;
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
                 INSERT INTO orders
                 SELECT g, g % 5000, (g % 100000) / 100.0, 'order number ' || g,
                        timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
                        CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'new' END, g % 2 = 0
                 FROM generate_series(b * 1000 + 1::bigint, least(b * 1000 + 1000, {rows})) g;
                 COMMIT;
               END LOOP;
             END $$",
            last = batches - 1,
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

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (secs, n) = rt.block_on(async {
        let source = PostgresReplicationSource::builder("speed")
            .with_host(cluster.host())
            .with_port(cluster.port())
            .with_database("speed")
            .with_user(SCRAM_USER.name)
            .with_password(SCRAM_USER.password.unwrap_or_default())
            .with_ssl_mode(SslMode::Disable)
            .with_slot_name("pgcdc_slot")
            .with_publication_name("speed_pub")
            .with_auto_start(false)
            .build()?;
        let mut sub = source.subscribe();
        let t = Instant::now();
        source.start().await?;
        let mut n = 0u64;
        while n < rows {
            let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(120), sub.recv()).await
            else {
                return Err::<_, Box<dyn std::error::Error>>("the stream stalled".into());
            };
            n += b
                .changes
                .iter()
                .filter(|c| matches!(c, SourceChange::Insert { .. }))
                .count() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        source.stop().await?;
        Ok((secs, n))
    })?;
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
