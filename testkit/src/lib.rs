//! Throwaway PostgreSQL clusters and fault injection for pgcdc's integration tests.
//!
//! - [`Cluster`] runs a private PostgreSQL server in a temporary directory: `initdb`, a free
//!   port on `127.0.0.1`, `wal_level=logical` (configurable), TLS with a generated CA, and the
//!   test roles in [`USERS`] with a `pg_hba.conf` rule per authentication method. It is removed
//!   when dropped, or by a watcher process when the test process dies.
//! - [`FaultProxy`] sits between a client and the server and cuts, stalls, delays or refuses
//!   connections.
//! - [`Session`] ([`Cluster::open_session`]) keeps one `psql` connection open across
//!   statements, e.g. to hold a transaction open while a test does something else.
//!
//! The server binaries are found through `PGCDC_PG_BIN` (a directory), else the highest
//! `/usr/lib/postgresql/<version>/bin`, else `initdb` on `PATH`. PostgreSQL refuses to run as
//! root: when the process is root, the server programs and `psql` run as the `postgres` system
//! user through `runuser`.
//!
//! ```no_run
//! use pgcdc_testkit::{Cluster, FaultProxy, SCRAM_USER};
//!
//! let cluster = Cluster::shared();
//! cluster.create_database("orders").unwrap();
//! cluster.psql("orders", "CREATE TABLE t (id int primary key)").unwrap();
//! let proxy = FaultProxy::start(cluster.addr()).unwrap();
//! // Connect a client to 127.0.0.1:proxy.port() as SCRAM_USER, with cluster.ca_cert_path()
//! // as the TLS root; then proxy.cut_all(), cluster.restart_fast(), ...
//! # let _ = (proxy, SCRAM_USER);
//! ```
#![deny(missing_docs)]

mod cluster;
mod error;
mod nats;
mod proxy;
mod scram;
mod session;
mod sys;
mod tls;
mod users;

pub use cluster::{Cluster, ClusterBuilder, StopMode};
pub use error::TestkitError;
pub use nats::NatsServer;
pub use proxy::FaultProxy;
pub use scram::scram_verifier;
pub use session::Session;
pub use tls::generate_unrelated_ca;
pub use users::{
    AuthMethod, CLEARTEXT_USER, MD5_USER, NOREPL_USER, SCRAM_USER, TRUST_USER, USERS, User,
};
