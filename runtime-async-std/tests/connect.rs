//! Connection tests against a real PostgreSQL on both runtimes of this crate: TLS with SCRAM
//! (and channel binding), sslmodes, errors. Each body is generic over the runtime and
//! instantiated for async-std and for smol, plus each runtime under the other's executor.

use pgcdc_async_std::{
    AsyncStdRuntime, ChannelBinding, ConnectOptions, Error, RootCerts, SmolRuntime, SslMode,
};
use pgcdc_core::startup::ConnectParams;
use pgcdc_driver::{PgConnection, Runtime};
use pgcdc_testkit::{Cluster, SCRAM_USER, User};

fn params(user: User) -> ConnectParams {
    let mut p = ConnectParams::new(user.name).database("postgres");
    if let Some(pw) = user.password {
        p = p.password(pw);
    }
    p
}

fn opts(host: &str, p: ConnectParams) -> ConnectOptions {
    let c = Cluster::shared();
    ConnectOptions::new(host, c.port(), p)
        .root_certs(RootCerts::File(c.ca_cert_path().to_path_buf()))
}

async fn connect<R: Runtime + Default>(o: ConnectOptions) -> Result<PgConnection<R>, Error> {
    PgConnection::connect(R::default(), &o).await
}

/// The error of a connection attempt that must fail.
async fn connect_err<R: Runtime + Default>(o: ConnectOptions) -> Error {
    match connect::<R>(o).await {
        Ok(_) => panic!("the connection should have failed"),
        Err(e) => e,
    }
}

async fn select_one<R: Runtime>(c: &mut PgConnection<R>, sql: &str) -> String {
    let r = c.simple_query(sql).await.unwrap();
    r[0].text(0, r[0].columns[0].name.as_str())
        .unwrap()
        .unwrap()
        .to_owned()
}

/// verify-full TLS, SCRAM-SHA-256-PLUS, a query and IDENTIFY_SYSTEM on a replication
/// connection.
async fn scram_plus_over_verified_tls<R: Runtime + Default>() {
    let p = params(SCRAM_USER)
        .replication(true)
        .ssl_mode(SslMode::VerifyFull)
        .channel_binding(ChannelBinding::Require);
    let mut conn = connect::<R>(opts("localhost", p)).await.unwrap();
    assert!(conn.is_tls());
    assert_eq!(conn.authentication_method(), Some("SCRAM-SHA-256-PLUS"));
    assert_eq!(
        select_one(&mut conn, "SELECT current_user").await,
        SCRAM_USER.name
    );
    let id = conn.identify_system().await.unwrap();
    assert_eq!(id.timeline, 1);
    assert_eq!(id.dbname.as_deref(), Some("postgres"));
    conn.close().await.unwrap();
}

/// Plain SCRAM-SHA-256 without TLS, and with TLS when channel binding is disabled.
async fn scram_without_channel_binding<R: Runtime + Default>() {
    let p = params(SCRAM_USER).ssl_mode(SslMode::Disable);
    let mut conn = connect::<R>(opts("127.0.0.1", p)).await.unwrap();
    assert!(!conn.is_tls());
    assert_eq!(conn.authentication_method(), Some("SCRAM-SHA-256"));
    assert_eq!(select_one(&mut conn, "SHOW TimeZone").await, "UTC");
    conn.close().await.unwrap();
    let p = params(SCRAM_USER)
        .ssl_mode(SslMode::Require)
        .channel_binding(ChannelBinding::Disable);
    let conn = connect::<R>(opts("127.0.0.1", p)).await.unwrap();
    assert!(conn.is_tls());
    assert_eq!(conn.authentication_method(), Some("SCRAM-SHA-256"));
}

async fn wrong_password_reports_28p01<R: Runtime + Default>() {
    let p = ConnectParams::new(SCRAM_USER.name)
        .database("postgres")
        .password("not-the-password")
        .ssl_mode(SslMode::Require);
    let err = connect_err::<R>(opts("127.0.0.1", p)).await;
    assert_eq!(
        err.sqlstate().map(|s| s.code().to_owned()).as_deref(),
        Some("28P01"),
        "{err}"
    );
}

async fn verify_full_fails_on_a_wrong_host_name<R: Runtime + Default>() {
    let o = opts(
        "wrong-name.example",
        params(SCRAM_USER).ssl_mode(SslMode::VerifyFull),
    )
    .hostaddr("127.0.0.1");
    let err = connect_err::<R>(o).await;
    assert!(matches!(err, Error::TlsHandshake { .. }), "{err}");
}

async fn connection_refused_is_a_clear_error<R: Runtime + Default>() {
    // Port 1 (tcpmux): nothing listens there, and unlike a free port picked and released,
    // no test running beside this one can take it in between (one did: a reset, not a
    // refusal).
    let o = ConnectOptions::new("127.0.0.1", 1, params(SCRAM_USER));
    let err = connect_err::<R>(o).await;
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}

macro_rules! on {
    ($module:ident, $block_on:path, $rt:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn scram_plus_over_verified_tls() {
                $block_on(super::scram_plus_over_verified_tls::<$rt>());
            }

            #[test]
            fn scram_without_channel_binding() {
                $block_on(super::scram_without_channel_binding::<$rt>());
            }

            #[test]
            fn wrong_password_reports_28p01() {
                $block_on(super::wrong_password_reports_28p01::<$rt>());
            }

            #[test]
            fn verify_full_fails_on_a_wrong_host_name() {
                $block_on(super::verify_full_fails_on_a_wrong_host_name::<$rt>());
            }

            #[test]
            fn connection_refused_is_a_clear_error() {
                $block_on(super::connection_refused_is_a_clear_error::<$rt>());
            }
        }
    };
}

on!(
    async_std_runtime,
    async_std::task::block_on,
    AsyncStdRuntime
);
on!(smol_runtime, smol::block_on, SmolRuntime);

/// Both runtimes sit on the `async-io` reactor, so each also works under the other's executor.
#[test]
fn async_std_runtime_under_smol_block_on() {
    smol::block_on(scram_plus_over_verified_tls::<AsyncStdRuntime>());
}

#[test]
fn smol_runtime_under_async_std_block_on() {
    async_std::task::block_on(scram_plus_over_verified_tls::<SmolRuntime>());
}

/// The crate's own entry points.
#[test]
fn connect_functions() {
    let o = opts("127.0.0.1", params(SCRAM_USER).ssl_mode(SslMode::Require));
    async_std::task::block_on(async {
        let conn = pgcdc_async_std::connect(&o).await.unwrap();
        assert!(conn.is_tls());
    });
    smol::block_on(async {
        let conn = pgcdc_async_std::smol_connect(&o).await.unwrap();
        assert!(conn.is_tls());
    });
}
