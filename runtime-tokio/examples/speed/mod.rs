//! What the `*_speed` examples share: the orders-like table on a throwaway PostgreSQL, and a
//! pgcdc source read until a number of rows arrived.

use std::error::Error;
use std::time::{Duration, Instant};

use pgcdc_testkit::{Cluster, SCRAM_USER};
use pgcdc_tokio::pgcdc_core::model::SourceChange;
use pgcdc_tokio::{ChangeBatch, PostgresReplicationSource, PostgresSourceBuilder, SslMode};

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The number of rows asked for on the command line (1,000,000 by default).
pub fn rows_arg() -> Result<u64> {
    Ok(std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000))
}

/// A throwaway cluster with database `speed`, its empty `orders` table (bigint key, int,
/// numeric(12,2), text, timestamptz, varchar, bool) readable by every user, and publication
/// `speed_pub` for it.
pub fn cluster_with_orders() -> Result<Cluster> {
    eprintln!("starting a throwaway PostgreSQL …");
    let cluster = Cluster::builder().tls(false).start()?;
    cluster.create_database("speed")?;
    cluster.psql(
        "speed",
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
           note text, created_at timestamptz, status varchar(20), paid bool);
         GRANT SELECT ON orders TO PUBLIC;
         CREATE PUBLICATION speed_pub FOR TABLE orders;",
    )?;
    Ok(cluster)
}

/// `INSERT INTO orders` of the rows with ids `from` to `to` (SQL expressions).
pub fn insert_orders(from: &str, to: &str) -> String {
    format!(
        "INSERT INTO orders SELECT g, g % 5000, (g % 100000) / 100.0, 'order number ' || g,
           timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
           CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'new' END, g % 2 = 0
         FROM generate_series({from}, {to}) g"
    )
}

/// A builder for source `id` on slot `slot` of `cluster`'s `speed` database and `speed_pub`
/// publication (the SCRAM user, no TLS, no auto-start).
pub fn builder(cluster: &Cluster, id: &str, slot: &str) -> PostgresSourceBuilder {
    PostgresReplicationSource::builder(id)
        .with_host(cluster.host())
        .with_port(cluster.port())
        .with_database("speed")
        .with_user(SCRAM_USER.name)
        .with_password(SCRAM_USER.password.unwrap_or_default())
        .with_ssl_mode(SslMode::Disable)
        .with_slot_name(slot)
        .with_publication_name("speed_pub")
        .with_auto_start(false)
}

/// Starts a source on slot `slot` (bootstrapping from a snapshot or not) and reads until
/// `count` has found `rows` rows in the batches; returns the seconds that took and the rows.
pub fn read_rows(
    cluster: &Cluster,
    slot: &str,
    bootstrap: bool,
    rows: u64,
    count: fn(&ChangeBatch) -> u64,
) -> Result<(f64, u64)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut builder = builder(cluster, "speed", slot);
        if bootstrap {
            builder = builder.with_postgres_bootstrap();
        }
        let source = builder.build()?;
        let mut sub = source.subscribe();
        let t = Instant::now();
        let starting = source.clone();
        // start() returns once a bootstrap is over: read meanwhile.
        let start = tokio::spawn(async move { starting.start().await });
        let mut n = 0u64;
        while n < rows {
            let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(120), sub.recv()).await
            else {
                return Err::<_, Box<dyn Error>>("the source stalled".into());
            };
            n += count(&b);
        }
        let secs = t.elapsed().as_secs_f64();
        start.await??;
        source.stop().await?;
        Ok((secs, n))
    })
}

/// The inserts in `batch`.
pub fn inserts(batch: &ChangeBatch) -> u64 {
    batch
        .changes
        .iter()
        .filter(|c| matches!(c, SourceChange::Insert { .. }))
        .count() as u64
}
