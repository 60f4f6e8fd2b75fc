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

use std::time::{Duration, Instant};

use pgcdc_testkit::{Cluster, SCRAM_USER};
use pgcdc_tokio::core::model::SourceChange;
use pgcdc_tokio::core::pgoutput::Xid;
use pgcdc_tokio::{PostgresReplicationSource, SslMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    eprintln!("starting a throwaway PostgreSQL …");
    let cluster = Cluster::builder().tls(false).start()?;
    cluster.create_database("speed")?;
    cluster.psql(
        "speed",
        &format!(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
               note text, created_at timestamptz, status varchar(20), paid bool);
             INSERT INTO orders SELECT g, g % 5000, (g % 100000) / 100.0, 'order number ' || g,
               timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
               CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'new' END, g % 2 = 0
             FROM generate_series(1, {rows}) g;
             ANALYZE orders;
             GRANT SELECT ON orders TO PUBLIC;
             CREATE PUBLICATION speed_pub FOR TABLE orders;"
        ),
    )?;

    // psql: COPY … TO STDOUT, the output read completely.
    let t = Instant::now();
    let out = cluster.psql("speed", "COPY orders TO STDOUT")?;
    let psql_secs = t.elapsed().as_secs_f64();
    let psql_lines = out.lines().count() as u64;
    drop(out);
    assert_eq!(psql_lines, rows);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (boot_secs, boot_rows) = rt.block_on(async {
        let source = PostgresReplicationSource::builder("speed")
            .with_host(cluster.host())
            .with_port(cluster.port())
            .with_database("speed")
            .with_user(SCRAM_USER.name)
            .with_password(SCRAM_USER.password.unwrap_or_default())
            .with_ssl_mode(SslMode::Disable)
            .with_slot_name("speed_slot")
            .with_publication_name("speed_pub")
            .with_postgres_bootstrap()
            .with_auto_start(false)
            .build()?;
        let mut sub = source.subscribe();
        let t = Instant::now();
        let starting = source.clone();
        let start = tokio::spawn(async move { starting.start().await });
        let mut n = 0u64;
        while n < rows {
            let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(120), sub.recv()).await
            else {
                return Err::<_, Box<dyn std::error::Error>>("bootstrap stalled".into());
            };
            if b.xid == Xid(0) {
                n += b
                    .changes
                    .iter()
                    .filter(|c| matches!(c, SourceChange::Insert { .. }))
                    .count() as u64;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        start.await??;
        source.stop().await?;
        Ok((secs, n))
    })?;
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
