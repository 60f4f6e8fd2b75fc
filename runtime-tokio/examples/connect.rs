//! Starts a throwaway PostgreSQL, connects to it as a logical replication client over TLS
//! (verify-full, SCRAM-SHA-256-PLUS) and prints what the server says about itself.
//!
//! `cargo run --release -p pgcdc-tokio --example connect`

use pgcdc_core::startup::ConnectParams;
use pgcdc_core::{ChannelBinding, SslMode};
use pgcdc_testkit::{Cluster, SCRAM_USER};
use pgcdc_tokio::{ConnectOptions, RootCerts};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    eprintln!("starting a throwaway PostgreSQL cluster…");
    let cluster = Cluster::start()?;
    eprintln!(
        "PostgreSQL listening on {}:{}",
        cluster.host(),
        cluster.port()
    );

    let params = ConnectParams::new(SCRAM_USER.name)
        .database("postgres")
        .password(SCRAM_USER.password.unwrap_or_default())
        .replication(true)
        .ssl_mode(SslMode::VerifyFull)
        .channel_binding(ChannelBinding::Require);
    let opts = ConnectOptions::new("localhost", cluster.port(), params)
        .root_certs(RootCerts::File(cluster.ca_cert_path().to_path_buf()));
    let mut conn = pgcdc_tokio::connect(&opts).await?;
    println!(
        "connected: tls={} auth={}",
        conn.is_tls(),
        conn.authentication_method().unwrap_or("trust")
    );
    for (name, value) in conn.server_params().iter() {
        println!("  {name} = {value}");
    }
    let id = conn.identify_system().await?;
    println!(
        "IDENTIFY_SYSTEM: systemid={} timeline={} xlogpos={} dbname={}",
        id.system_id,
        id.timeline,
        id.xlogpos,
        id.dbname.as_deref().unwrap_or("-")
    );
    conn.close().await?;
    Ok(())
}
