//! A Drasi continuous query over PostgreSQL changes, printing its result diffs as JSON lines.
//!
//! ```text
//! cargo run -p pgcdc-drasi --example drasi_query
//! ```
//!
//! Without `PGDATABASE` it starts a throwaway PostgreSQL (the testkit's; as root it runs as
//! the `postgres` user), creates a `users` table and a publication, writes to it, prints the
//! diffs of `MATCH (u:users) WHERE u.active = true RETURN u.id, u.name` and exits. With
//! `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD` it follows that database's
//! `users` table through the publication `drasi_publication` until interrupted.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use drasi_lib::{DrasiLib, Query};
use drasi_reaction_application::ApplicationReaction;
use pgcdc_drasi::PostgresReplicationSource;

const QUERY: &str = "MATCH (u:users) WHERE u.active = true RETURN u.id, u.name";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let own = env("PGDATABASE");
    let cluster = match own {
        Some(_) => None,
        None => {
            eprintln!("starting a throwaway PostgreSQL …");
            let c = pgcdc_testkit::Cluster::start()?;
            c.create_database("demo")?;
            c.psql(
                "demo",
                "CREATE TABLE users (id int PRIMARY KEY, name text, active bool NOT NULL DEFAULT true);
                 INSERT INTO users VALUES (1, 'ann', true), (2, 'bob', false);
                 GRANT SELECT ON users TO pgcdc_scram;
                 CREATE PUBLICATION drasi_publication FOR TABLE users",
            )?;
            Some(c)
        }
    };
    let mut builder = PostgresReplicationSource::builder("pg").with_snapshot_bootstrap();
    builder = match &cluster {
        Some(c) => builder
            .with_host(c.host())
            .with_port(c.port())
            .with_database("demo")
            .with_user(pgcdc_testkit::SCRAM_USER.name)
            .with_password(pgcdc_testkit::SCRAM_USER.password.unwrap_or_default())
            .with_slot_name("drasi_demo"),
        None => builder
            .with_host(env("PGHOST").unwrap_or_else(|| "localhost".into()))
            .with_port(env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432))
            .with_database(own.clone().unwrap_or_default())
            .with_user(env("PGUSER").unwrap_or_else(|| "postgres".into()))
            .with_password(env("PGPASSWORD").unwrap_or_default()),
    };
    let source = builder.build()?;
    let (reaction, handle) = ApplicationReaction::builder("print")
        .with_query("active-users")
        .build();
    let core = DrasiLib::builder()
        .with_id("pgcdc-drasi-example")
        .with_source(source)
        .with_query(
            Query::cypher("active-users")
                .query(QUERY)
                .from_source("pg")
                .auto_start(true)
                .enable_bootstrap(true)
                .build(),
        )
        .with_reaction(reaction)
        .build()
        .await?;
    core.start().await?;
    let mut results = handle
        .as_stream()
        .await
        .ok_or_else(|| anyhow::anyhow!("the reaction has no result stream"))?;
    while core.get_query_status("active-users").await? != drasi_lib::ComponentStatus::Running {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{}",
        serde_json::json!({"bootstrapped": core.get_query_results("active-users").await?})
    );
    if let Some(c) = &cluster {
        for sql in [
            "INSERT INTO users VALUES (3, 'cy', true)",
            "UPDATE users SET name = 'anna' WHERE id = 1",
            "UPDATE users SET active = true WHERE id = 2",
            "UPDATE users SET id = 4 WHERE id = 3",
            "DELETE FROM users WHERE id = 1",
        ] {
            eprintln!("> {sql}");
            c.psql("demo", sql)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let idle = if cluster.is_some() {
        Duration::from_secs(2)
    } else {
        Duration::MAX
    };
    while let Ok(Some(r)) = tokio::time::timeout(idle, results.next()).await {
        for diff in &r.results {
            println!("{}", serde_json::to_string(diff)?);
        }
    }
    core.stop().await?;
    Ok(())
}
