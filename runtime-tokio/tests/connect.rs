//! The crate's own entry point, `pgcdc_tokio::connect`, against a real PostgreSQL. The
//! connection tests themselves (authentication methods, every sslmode, channel binding,
//! IDENTIFY_SYSTEM) are in the shared suite (`driver/tests/suite/connect.rs`), run by
//! `tests/source.rs` as `connect::*`.

use pgcdc_core::SslMode;
use pgcdc_core::startup::ConnectParams;
use pgcdc_testkit::{Cluster, SCRAM_USER};
use pgcdc_tokio::{ConnectOptions, RootCerts};

#[tokio::test]
async fn connect_function() {
    let c = Cluster::shared();
    let p = ConnectParams::new(SCRAM_USER.name)
        .database("postgres")
        .password(SCRAM_USER.password.unwrap_or_default())
        .ssl_mode(SslMode::Require);
    let o = ConnectOptions::new("127.0.0.1", c.port(), p)
        .root_certs(RootCerts::File(c.ca_cert_path().to_path_buf()));
    let conn = pgcdc_tokio::connect(&o).await.unwrap();
    assert!(conn.is_tls());
    conn.close().await.unwrap();
}
