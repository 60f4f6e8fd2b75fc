//! Integration tests: real PostgreSQL clusters and the fault proxy.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pgcdc_testkit::{
    CLEARTEXT_USER, Cluster, FaultProxy, MD5_USER, NOREPL_USER, SCRAM_USER, StopMode, TRUST_USER,
    USERS, User,
};

/// Runs `psql` as a TCP client (with the user's password) and returns its output.
fn psql_tcp(
    cluster: &Cluster,
    port: u16,
    user: &User,
    password: Option<&str>,
    conninfo: &str,
    sql: &str,
) -> Output {
    let conninfo = format!(
        "host=127.0.0.1 port={port} user={} connect_timeout=10 {conninfo}",
        user.name
    );
    let mut cmd = Command::new(cluster.psql_path());
    cmd.args([
        "-X",
        "-q",
        "-At",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        &conninfo,
        "-c",
        sql,
    ])
    .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PGCLIENTENCODING", "UTF8");
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    cmd.output().expect("run psql")
}

fn ok_stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string()
}

fn verify_full(cluster: &Cluster) -> String {
    format!(
        "dbname=postgres sslmode=verify-full sslrootcert={}",
        cluster.ca_cert_path().display()
    )
}

#[test]
fn cluster_lifecycle() {
    let started = Instant::now();
    let cluster = Cluster::start().expect("start cluster");
    eprintln!("cluster started in {:?}", started.elapsed());
    let root = cluster.socket_dir().to_path_buf();
    assert!(cluster.data_dir().starts_with(&root));
    assert!(cluster.is_running());
    assert_eq!(cluster.host(), "127.0.0.1");
    assert!(cluster.bin_dir().join("initdb").exists());

    assert_eq!(
        cluster.psql("postgres", "SHOW wal_level").unwrap(),
        "logical"
    );
    assert_eq!(cluster.psql("postgres", "SHOW ssl").unwrap(), "on");
    assert_eq!(
        cluster.psql("postgres", "SHOW wal_sender_timeout").unwrap(),
        "1min"
    );
    assert_eq!(
        cluster.psql("postgres", "SHOW port").unwrap(),
        cluster.port().to_string()
    );
    assert_eq!(
        cluster
            .psql(
                "postgres",
                "SELECT rolreplication FROM pg_roles WHERE rolname='pgcdc_norepl'"
            )
            .unwrap(),
        "f"
    );
    assert_eq!(
        cluster
            .psql(
                "postgres",
                "SELECT rolreplication FROM pg_roles WHERE rolname='pgcdc_scram'"
            )
            .unwrap(),
        "t"
    );
    let md5 = cluster
        .psql(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname='pgcdc_md5'",
        )
        .unwrap();
    assert!(md5.starts_with("md5"), "{md5}");
    let scram = cluster
        .psql(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname='pgcdc_scram'",
        )
        .unwrap();
    assert!(scram.starts_with("SCRAM-SHA-256$"), "{scram}");
    // Several statements and several rows.
    assert_eq!(
        cluster
            .psql(
                "postgres",
                "SELECT 1; SELECT x FROM generate_series(2, 3) x"
            )
            .unwrap(),
        "1\n2\n3"
    );
    let err = cluster
        .psql("postgres", "SELECT * FROM no_such_table")
        .unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");

    // Certificates.
    assert!(cluster.ca_cert_path().exists());
    assert!(cluster.server_cert_path().exists());
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(cluster.ca_cert_path())
        .arg(cluster.server_cert_path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let key = cluster.server_cert_path().with_file_name("server.key");
    let key_meta = std::fs::metadata(&key).unwrap();
    assert_eq!(key_meta.permissions().mode() & 0o777, 0o600);
    let server_pid_owner = std::fs::metadata(cluster.data_dir()).unwrap().uid();
    assert_eq!(key_meta.uid(), server_pid_owner);

    // Every user logs in over TCP with TLS verified against the generated CA.
    let tls = verify_full(&cluster);
    for user in USERS {
        let out = psql_tcp(
            &cluster,
            cluster.port(),
            &user,
            user.password,
            &tls,
            "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        );
        assert_eq!(ok_stdout(&out), format!("{}|t", user.name), "{user:?}");
    }
    // Wrong passwords are rejected, for every password method.
    for user in [SCRAM_USER, CLEARTEXT_USER, MD5_USER, NOREPL_USER] {
        let out = psql_tcp(
            &cluster,
            cluster.port(),
            &user,
            Some("wrong"),
            &tls,
            "SELECT 1",
        );
        assert!(
            !out.status.success(),
            "{user:?} logged in with a wrong password"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("password authentication failed"),
            "{stderr}"
        );
    }
    // Logical replication connections: allowed with REPLICATION, refused without.
    let repl = format!("{tls} replication=database");
    for user in [SCRAM_USER, CLEARTEXT_USER, MD5_USER, TRUST_USER] {
        let out = psql_tcp(
            &cluster,
            cluster.port(),
            &user,
            user.password,
            &repl,
            "IDENTIFY_SYSTEM",
        );
        assert!(ok_stdout(&out).contains("|postgres"), "{user:?}");
    }
    let out = psql_tcp(
        &cluster,
        cluster.port(),
        &NOREPL_USER,
        NOREPL_USER.password,
        &repl,
        "IDENTIFY_SYSTEM",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("replication"), "{stderr}");
    // Physical replication connections use the same methods.
    let physical = format!("{tls} replication=true");
    let out = psql_tcp(
        &cluster,
        cluster.port(),
        &MD5_USER,
        MD5_USER.password,
        &physical,
        "IDENTIFY_SYSTEM",
    );
    ok_stdout(&out);

    // A test database the users can work in.
    cluster.create_database("app").unwrap();
    let app = format!(
        "dbname=app sslmode=verify-full sslrootcert={}",
        cluster.ca_cert_path().display()
    );
    let out = psql_tcp(
        &cluster,
        cluster.port(),
        &CLEARTEXT_USER,
        CLEARTEXT_USER.password,
        &app,
        "CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION p FOR TABLE t; INSERT INTO t VALUES (1)",
    );
    ok_stdout(&out);
    assert_eq!(
        cluster
            .psql(
                "app",
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            )
            .unwrap(),
        "pgcdc_scram"
    );

    // Restart, stop, start again, reload.
    let restarted = Instant::now();
    cluster.restart_fast().unwrap();
    eprintln!("restart_fast took {:?}", restarted.elapsed());
    assert_eq!(cluster.psql("app", "SELECT count(*) FROM t").unwrap(), "1");
    cluster.stop(StopMode::Fast).unwrap();
    assert!(!cluster.is_running());
    assert!(cluster.psql("postgres", "SELECT 1").is_err());
    cluster.start_server().unwrap();
    assert!(cluster.is_running());
    cluster
        .psql("postgres", "ALTER SYSTEM SET wal_sender_timeout = '7s'")
        .unwrap();
    cluster.reload().unwrap();
    let mut timeout = String::new();
    for _ in 0..100 {
        timeout = cluster.psql("postgres", "SHOW wal_sender_timeout").unwrap();
        if timeout == "7s" {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(timeout, "7s");
    cluster.stop(StopMode::Immediate).unwrap();
    cluster.start_server().unwrap();
    assert_eq!(cluster.psql("app", "SELECT count(*) FROM t").unwrap(), "1");

    let port = cluster.port();
    drop(cluster);
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn replica_cluster_without_tls() {
    let cluster = Cluster::builder()
        .tls(false)
        .wal_level("replica")
        .setting("wal_sender_timeout", "5s")
        .setting("application_name", "it's quoted")
        .start()
        .expect("start cluster");
    assert!(!cluster.tls_enabled());
    assert!(!cluster.ca_cert_path().exists());
    assert_eq!(
        cluster.psql("postgres", "SHOW wal_level").unwrap(),
        "replica"
    );
    assert_eq!(cluster.psql("postgres", "SHOW ssl").unwrap(), "off");
    assert_eq!(
        cluster.psql("postgres", "SHOW wal_sender_timeout").unwrap(),
        "5s"
    );
    let out = psql_tcp(
        &cluster,
        cluster.port(),
        &SCRAM_USER,
        SCRAM_USER.password,
        "dbname=postgres sslmode=disable",
        "SELECT current_setting('application_name')",
    );
    assert_eq!(ok_stdout(&out), "psql");
    let out = psql_tcp(
        &cluster,
        cluster.port(),
        &SCRAM_USER,
        SCRAM_USER.password,
        "dbname=postgres sslmode=require",
        "SELECT 1",
    );
    assert!(!out.status.success());
    // Logical decoding is impossible at wal_level=replica.
    let err = cluster
        .psql(
            "postgres",
            "SELECT pg_create_logical_replication_slot('s', 'pgoutput')",
        )
        .unwrap_err();
    assert!(err.to_string().contains("wal_level"), "{err}");
}

#[test]
fn unrelated_ca_does_not_verify() {
    let cluster = Cluster::shared();
    let other = cluster.other_ca_cert_path().unwrap();
    assert_eq!(cluster.other_ca_cert_path().unwrap(), other);
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&other)
        .arg(cluster.server_cert_path())
        .output()
        .unwrap();
    assert!(!verify.status.success());
    for mode in ["verify-ca", "verify-full"] {
        let conninfo = format!(
            "dbname=postgres sslmode={mode} sslrootcert={}",
            other.display()
        );
        let out = psql_tcp(
            cluster,
            cluster.port(),
            &SCRAM_USER,
            SCRAM_USER.password,
            &conninfo,
            "SELECT 1",
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("certificate verify failed"), "{stderr}");
    }
    // The standalone helper.
    let dir = cluster.socket_dir().join("standalone-ca");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = pgcdc_testkit::generate_unrelated_ca(&dir).unwrap();
    assert!(ca.exists());
}

#[test]
fn shared_cluster_is_shared() {
    let a = Cluster::shared();
    let b = Cluster::shared();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.psql("postgres", "SELECT 1").unwrap(), "1");
}

#[test]
fn session_keeps_a_transaction_open() {
    let cluster = Cluster::shared();
    let mut session = cluster.open_session("postgres").unwrap();
    let xid = session
        .query("BEGIN; SELECT txid_current(); SET application_name = 'testkit_session'")
        .unwrap();
    assert!(xid.parse::<u64>().is_ok(), "{xid}");
    let open = "SELECT state, backend_xid FROM pg_stat_activity WHERE application_name = 'testkit_session'";
    assert_eq!(
        cluster.psql("postgres", open).unwrap(),
        format!("idle in transaction|{xid}")
    );
    assert_eq!(session.query("SELECT 1; SELECT 2").unwrap(), "1\n2");
    session.query("COMMIT").unwrap();
    assert_eq!(cluster.psql("postgres", open).unwrap(), "idle|");
    session.close().unwrap();
    assert_eq!(cluster.psql("postgres", open).unwrap(), "");
    // A failing statement ends the session with psql's message.
    let mut session = cluster.open_session("postgres").unwrap();
    let err = session.query("SELECT * FROM no_such_table").unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");
    assert!(session.query("SELECT 1").is_err());
    assert!(session.close().is_err());
    // Dropping a session ends its transaction.
    let mut session = cluster.open_session("postgres").unwrap();
    session
        .query("SET application_name = 'testkit_dropped'; BEGIN; SELECT txid_current()")
        .unwrap();
    drop(session);
    let left = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'testkit_dropped'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.psql("postgres", left).unwrap() != "0" {
        assert!(
            Instant::now() < deadline,
            "the dropped session's backend is still there"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Helper run in a child process by `watcher_cleans_up_after_abrupt_exit`.
#[test]
fn abrupt_exit_child() {
    if std::env::var_os("PGCDC_TESTKIT_ABRUPT_CHILD").is_none() {
        return;
    }
    let cluster = Cluster::builder().tls(false).start().unwrap();
    println!("ROOT={}", cluster.socket_dir().display());
    println!("PORT={}", cluster.port());
    std::io::stdout().flush().unwrap();
    // Exit without running any destructor.
    std::process::exit(0);
}

#[test]
fn watcher_cleans_up_after_abrupt_exit() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "abrupt_exit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PGCDC_TESTKIT_ABRUPT_CHILD", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let root = stdout
        .lines()
        .find_map(|l| l.split_once("ROOT=").map(|(_, v)| v))
        .unwrap_or_else(|| {
            panic!(
                "no ROOT= in child output: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let port: u16 = stdout
        .lines()
        .find_map(|l| l.split_once("PORT=").map(|(_, v)| v))
        .unwrap()
        .parse()
        .unwrap();
    let root = Path::new(root);
    let deadline = Instant::now() + Duration::from_secs(20);
    while root.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(!root.exists(), "{} was not removed", root.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// An echo server on a free port; returns its address.
fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn echo(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).unwrap();
    let mut buf = vec![0u8; payload.len()];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(buf, payload);
}

/// Whether the peer closed: read returns 0 or an error other than a timeout.
fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn proxy_forwards_cuts_stalls_delays_and_refuses() {
    let target = echo_server();
    let proxy = FaultProxy::start(target).unwrap();
    assert_eq!(proxy.target(), target);
    assert_eq!(proxy.addr().port(), proxy.port());

    // Bytes flow both ways, including large payloads.
    let mut a = connect(&proxy);
    let mut b = connect(&proxy);
    echo(&mut a, b"hello");
    echo(&mut b, &vec![7u8; 200_000]);
    assert_eq!(proxy.connections_accepted(), 2);
    assert_eq!(proxy.active_connections(), 2);

    // cut_all closes both clients.
    proxy.cut_all();
    assert!(is_closed(&mut a));
    assert!(is_closed(&mut b));
    assert_eq!(proxy.active_connections(), 0);

    // New connections work after a cut.
    let mut c = connect(&proxy);
    echo(&mut c, b"again");

    // Stalled: nothing arrives, the connection stays open; unstalled: it all arrives.
    proxy.set_stalled(true);
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.write_all(b"stalled").unwrap();
    let mut buf = [0u8; 7];
    let err = c.read(&mut buf).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    proxy.set_stalled(false);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"stalled");

    // Delay: each chunk waits (two hops: request and echo).
    proxy.set_delay(Duration::from_millis(100));
    let t = Instant::now();
    echo(&mut c, b"slow");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    proxy.set_delay(Duration::ZERO);
    echo(&mut c, b"fast");

    // Refuse: accepted, then closed at once.
    proxy.set_refuse(true);
    let before = proxy.connections_accepted();
    let mut d = connect(&proxy);
    let _ = d.write_all(b"x");
    assert!(is_closed(&mut d));
    assert_eq!(proxy.connections_accepted(), before + 1);
    proxy.set_refuse(false);
    let mut e = connect(&proxy);
    echo(&mut e, b"accepted");

    // The client closing its side ends the connection.
    e.shutdown(Shutdown::Write).unwrap();
    assert!(is_closed(&mut e));

    // Dropping the proxy stops the listener and cuts connections.
    let addr = proxy.addr();
    drop(proxy);
    assert!(is_closed(&mut c));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn proxy_in_front_of_postgres() {
    let cluster = Cluster::shared();
    let proxy = FaultProxy::start(cluster.addr()).unwrap();
    let out = psql_tcp(
        cluster,
        proxy.port(),
        &SCRAM_USER,
        SCRAM_USER.password,
        &verify_full(cluster),
        "SELECT inet_server_port()",
    );
    assert_eq!(ok_stdout(&out), cluster.port().to_string());
    assert_eq!(proxy.connections_accepted(), 1);
    proxy.set_refuse(true);
    let out = psql_tcp(
        cluster,
        proxy.port(),
        &SCRAM_USER,
        SCRAM_USER.password,
        &verify_full(cluster),
        "SELECT 1",
    );
    assert!(!out.status.success());
}
