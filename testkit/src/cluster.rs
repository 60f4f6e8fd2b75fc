//! Throwaway PostgreSQL clusters.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::TestkitError;
use crate::session::Session;
use crate::sys::{self, PgBins, Runner, clean_env, describe, run, sh_quote};
use crate::tls::{self, ServerTls};
use crate::users::{self, quote_ident};

/// How many times the server is started on a fresh port when the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// `pg_ctl -t`: seconds to wait for start, stop and restart.
const PG_CTL_TIMEOUT: &str = "60";
/// The name of the configuration file the testkit includes from `postgresql.conf`.
const CONF_FILE: &str = "pgcdc_testkit.conf";

/// A `pg_ctl stop` shutdown mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopMode {
    /// Wait for all clients to disconnect.
    Smart,
    /// Disconnect clients, shut down cleanly (checkpoint).
    Fast,
    /// Abort without a checkpoint: crash recovery on the next start.
    Immediate,
}

impl StopMode {
    /// The mode's name for `pg_ctl -m`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Configures a [`Cluster`] before starting it; made by [`Cluster::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClusterBuilder {
    bin_dir: Option<PathBuf>,
    tls: bool,
    wal_level: String,
    settings: Vec<(String, String)>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            bin_dir: None,
            tls: true,
            wal_level: "logical".to_string(),
            settings: Vec::new(),
        }
    }
}

impl ClusterBuilder {
    /// The directory of the server binaries (`initdb`, `pg_ctl`, `postgres`) this cluster
    /// runs, for example one that `scripts/pg-versions` installed. Default: `PGCDC_PG_BIN`, else
    /// the highest `/usr/lib/postgresql/*/bin`, else `PATH`.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Whether the server accepts TLS (`ssl=on`) with a generated certificate (default `true`).
    ///
    /// Without TLS no certificates are generated and `openssl` is not needed.
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// The `wal_level` (default `"logical"`; use `"replica"` to test the error for a server that
    /// cannot do logical decoding). With `"minimal"`, `max_wal_senders` is set to 0.
    pub fn wal_level(mut self, level: &str) -> Self {
        self.wal_level = level.to_string();
        self
    }

    /// Adds a `postgresql.conf` setting, overriding the testkit's default for the same name
    /// (for example `setting("wal_sender_timeout", "5s")`). The value is written quoted, so
    /// pass it without quotes.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Creates and starts the cluster (same as [`ClusterBuilder::start`]).
    pub fn build(self) -> Result<Cluster, TestkitError> {
        Cluster::create(self)
    }

    /// Creates and starts the cluster.
    pub fn start(self) -> Result<Cluster, TestkitError> {
        Cluster::create(self)
    }
}

/// A throwaway PostgreSQL cluster in its own temporary directory, listening on 127.0.0.1 on a
/// free port and on a Unix socket in that directory.
///
/// Every cluster has the roles in [`USERS`](crate::USERS), a `pg_hba.conf` authenticating each
/// one with its [`AuthMethod`](crate::AuthMethod), and (unless disabled) TLS with a certificate
/// for `localhost`/`127.0.0.1` signed by a generated CA ([`Cluster::ca_cert_path`]).
///
/// Dropping the cluster stops the server (`pg_ctl stop -m immediate`) and removes the directory.
/// If the process dies without dropping it (a `static`, `SIGKILL`, the test harness exiting), a
/// detached watcher process does the same within about a second of the process's exit.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    tls_dir: PathBuf,
    ca_cert: PathBuf,
    server_cert: PathBuf,
    tls: Option<ServerTls>,
    port: u16,
    wal_level: String,
    settings: Vec<(String, String)>,
    bins: PgBins,
    major_version: u32,
    runner: Runner,
    reaper: Mutex<Option<Child>>,
    other_ca: Mutex<Option<PathBuf>>,
}

impl Cluster {
    /// Creates and starts a cluster with the default options (TLS on, `wal_level=logical`).
    pub fn start() -> Result<Cluster, TestkitError> {
        Self::builder().start()
    }

    /// The major version of the server binaries a default cluster would run (`PGCDC_PG_BIN`,
    /// else the highest `/usr/lib/postgresql/*/bin`, else `PATH`), without starting one: for
    /// settings that exist only from some version on.
    pub fn default_major_version() -> Result<u32, TestkitError> {
        PgBins::locate()?.major_version()
    }

    /// A builder for a cluster with non-default options.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// One default cluster shared by the whole test binary, started on first use.
    ///
    /// It is never dropped: the watcher process removes it after the test process exits.
    ///
    /// # Panics
    ///
    /// Panics with the error's message if the cluster cannot be started (this is a test helper).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            Cluster::start().unwrap_or_else(|e| {
                panic!("pgcdc-testkit: could not start the shared PostgreSQL cluster: {e}")
            })
        })
    }

    fn create(config: ClusterBuilder) -> Result<Cluster, TestkitError> {
        let bins = match &config.bin_dir {
            Some(dir) => PgBins::at(dir)?,
            None => PgBins::locate()?,
        };
        let major_version = bins.major_version()?;
        let runner = Runner::detect()?;
        let openssl = if config.tls {
            Some(tls::find_openssl()?)
        } else {
            None
        };
        let root = make_temp_dir(&runner)?;
        let mut cluster = Cluster {
            data_dir: root.join("data"),
            log_path: root.join("postgres.log"),
            tls_dir: root.join("tls"),
            ca_cert: root.join("tls").join(tls::CA_CERT_FILE),
            server_cert: root.join("tls").join(tls::SERVER_CERT_FILE),
            root,
            tls: None,
            port: 0,
            wal_level: config.wal_level,
            settings: config.settings,
            bins,
            major_version,
            runner,
            reaper: Mutex::new(None),
            other_ca: Mutex::new(None),
        };
        // From here on, an error drops `cluster`, which stops the server and removes the files.
        cluster.spawn_reaper()?;
        cluster.tls = std::thread::scope(|scope| -> Result<Option<ServerTls>, TestkitError> {
            let tls_job = match &openssl {
                Some(openssl) => {
                    fs::create_dir(&cluster.tls_dir).map_err(|e| {
                        TestkitError::io(format!("create {}", cluster.tls_dir.display()), e)
                    })?;
                    sys::set_mode(&cluster.tls_dir, 0o700)?;
                    let dir = &cluster.tls_dir;
                    Some(scope.spawn(move || tls::generate_server_tls(openssl, dir)))
                }
                None => None,
            };
            let initdb = cluster.initdb();
            let tls = match tls_job {
                Some(job) => Some(job.join().map_err(|_| {
                    TestkitError::Setup("certificate generation panicked".into())
                })??),
                None => None,
            };
            initdb?;
            Ok(tls)
        })?;
        if let Some(tls) = &cluster.tls {
            for path in [
                &cluster.tls_dir,
                &tls.ca_cert,
                &tls.server_cert,
                &tls.server_key,
            ] {
                cluster.runner.chown(path)?;
            }
        }
        cluster.runner.write_file(
            &cluster.data_dir.join("pg_hba.conf"),
            users::pg_hba_conf().as_bytes(),
            0o600,
        )?;
        cluster.runner.append_file(
            &cluster.data_dir.join("postgresql.conf"),
            format!("\n# Added by pgcdc-testkit.\ninclude '{CONF_FILE}'\n").as_bytes(),
        )?;
        cluster.start_on_free_port()?;
        cluster.psql("postgres", &users::create_users_sql())?;
        Ok(cluster)
    }

    /// Starts a detached shell that stops the server and removes the directory once this
    /// process has exited.
    fn spawn_reaper(&self) -> Result<(), TestkitError> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -f {pidfile} ]; then {prefix}{pg_ctl} stop -D {data} -m immediate -s -w -t 30; fi; \
             rm -rf {root}",
            pid = std::process::id(),
            pidfile = sh_quote(self.data_dir.join("postmaster.pid").as_os_str()),
            prefix = self.runner.shell_prefix(),
            pg_ctl = sh_quote(self.bins.pg_ctl.as_os_str()),
            data = sh_quote(self.data_dir.as_os_str()),
            root = sh_quote(self.root.as_os_str()),
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C aimed at the test run must not kill it.
            .process_group(0);
        clean_env(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| TestkitError::io("spawn the cleanup watcher (/bin/sh)", e))?;
        *lock(&self.reaper) = Some(child);
        Ok(())
    }

    fn initdb(&self) -> Result<(), TestkitError> {
        let mut cmd = self.runner.command(&self.bins.initdb, &self.root);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-A", "trust", "-U", "postgres", "--encoding=UTF8"])
            .args(["--locale=C", "-N"]);
        run(&mut cmd, "initdb")?;
        Ok(())
    }

    /// The settings written to the included configuration file.
    fn conf_settings(&self) -> Vec<(String, String)> {
        let mut settings: Vec<(String, String)> = Vec::new();
        let mut set = |name: &str, value: &str| match settings
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(entry) => entry.1 = value.to_string(),
            None => settings.push((name.to_string(), value.to_string())),
        };
        let port = self.port.to_string();
        let socket_dir = self.root.to_string_lossy();
        let minimal = self.wal_level.eq_ignore_ascii_case("minimal");
        set("listen_addresses", "127.0.0.1");
        set("port", &port);
        set("unix_socket_directories", &socket_dir);
        set("wal_level", &self.wal_level);
        set("max_replication_slots", "64");
        set("max_wal_senders", if minimal { "0" } else { "64" });
        set("max_connections", "200");
        set("fsync", "off");
        set("synchronous_commit", "off");
        set("full_page_writes", "off");
        set("shared_buffers", "32MB");
        if self.major_version >= 13 {
            set("logical_decoding_work_mem", "64kB");
        }
        // Two-phase decoding needs prepared transactions.
        set("max_prepared_transactions", "20");
        set("wal_sender_timeout", "60s");
        set("password_encryption", "scram-sha-256");
        set("logging_collector", "off");
        set("log_min_messages", "warning");
        set("log_line_prefix", "%m [%p] %q%u@%d ");
        match &self.tls {
            Some(tls) => {
                set("ssl", "on");
                set("ssl_cert_file", &tls.server_cert.to_string_lossy());
                set("ssl_key_file", &tls.server_key.to_string_lossy());
            }
            None => set("ssl", "off"),
        }
        for (name, value) in &self.settings {
            set(name, value);
        }
        settings
    }

    fn write_conf(&self) -> Result<(), TestkitError> {
        let mut conf = String::from("# Written by pgcdc-testkit.\n");
        for (name, value) in self.conf_settings() {
            conf.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        self.runner
            .write_file(&self.data_dir.join(CONF_FILE), conf.as_bytes(), 0o600)
    }

    /// First start: on a free port, retrying with another port if it was taken meanwhile.
    fn start_on_free_port(&mut self) -> Result<(), TestkitError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.port = free_port()?;
            self.write_conf()?;
            let log_offset = fs::metadata(&self.log_path).map_or(0, |m| m.len());
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let log = read_from(&self.log_path, log_offset);
                    let port_taken =
                        log.contains("Address already in use") || log.contains("could not bind");
                    if !port_taken || attempt >= PORT_ATTEMPTS {
                        return Err(err);
                    }
                }
            }
        }
    }

    fn pg_ctl_command(&self) -> Command {
        let mut cmd = self.runner.command(&self.bins.pg_ctl, &self.root);
        cmd.arg("-D").arg(&self.data_dir);
        cmd
    }

    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<Output, TestkitError> {
        let mut cmd = self.pg_ctl_command();
        cmd.args(args);
        run(&mut cmd, what)
    }

    fn pg_ctl_start(&self) -> Result<(), TestkitError> {
        let mut cmd = self.pg_ctl_command();
        cmd.args(["start", "-w", "-t", PG_CTL_TIMEOUT, "-l"])
            .arg(&self.log_path);
        self.run_server_change(cmd, "pg_ctl start")
    }

    /// Runs a `pg_ctl` command that (re)starts the server; failures carry the log's tail.
    fn run_server_change(&self, mut cmd: Command, what: &str) -> Result<(), TestkitError> {
        let output = cmd.stdin(Stdio::null()).output().map_err(|e| {
            TestkitError::io(format!("{what}: could not run {}", describe(&cmd)), e)
        })?;
        if output.status.success() {
            return Ok(());
        }
        Err(TestkitError::StartFailed {
            message: format!(
                "{what} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            log_tail: log_tail(&self.log_path, 30),
        })
    }

    /// The server's major version (10 … 18).
    pub fn major_version(&self) -> u32 {
        self.major_version
    }

    /// The host to connect to over TCP: always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP address (`127.0.0.1:<port>`), e.g. to put a [`FaultProxy`](crate::FaultProxy) in
    /// front of the server.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The directory holding the server's Unix socket (`.s.PGSQL.<port>`); it is also the
    /// cluster's temporary root directory.
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The directory holding `initdb`, `pg_ctl` and `postgres`.
    pub fn bin_dir(&self) -> &Path {
        &self.bins.dir
    }

    /// The `psql` client used by [`Cluster::psql`].
    pub fn psql_path(&self) -> &Path {
        &self.bins.psql
    }

    /// Whether the server was started with TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// The PEM certificate of the CA that signed the server certificate (the root to give
    /// clients for `sslmode=verify-ca`/`verify-full`).
    ///
    /// With [`ClusterBuilder::tls`]`(false)` no certificates are made and this file does not
    /// exist.
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_cert
    }

    /// The server's PEM certificate (CN `localhost`, SAN `DNS:localhost`, `IP:127.0.0.1`).
    ///
    /// With [`ClusterBuilder::tls`]`(false)` this file does not exist.
    pub fn server_cert_path(&self) -> &Path {
        &self.server_cert
    }

    /// The PEM certificate of a CA unrelated to this cluster's certificates, generated on first
    /// call (see [`generate_unrelated_ca`](crate::generate_unrelated_ca)).
    pub fn other_ca_cert_path(&self) -> Result<PathBuf, TestkitError> {
        let mut other = lock(&self.other_ca);
        if let Some(path) = &*other {
            return Ok(path.clone());
        }
        let dir = self.root.join("other-ca");
        fs::create_dir_all(&dir)
            .map_err(|e| TestkitError::io(format!("create {}", dir.display()), e))?;
        let path = tls::generate_unrelated_ca(&dir)?;
        *other = Some(path.clone());
        Ok(path)
    }

    /// Runs SQL with `psql` as the superuser `postgres` over the Unix socket and returns its
    /// output (unaligned, tuples only: one row per line, columns separated by `|`), without
    /// the final newline.
    ///
    /// Several statements separated by `;` run in one implicit transaction (so statements such
    /// as `CREATE DATABASE` must be sent alone). An error includes `psql`'s stderr.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, TestkitError> {
        let mut cmd = self.runner.command(&self.bins.psql, &self.root);
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.root)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ]);
        let output = run(&mut cmd, "psql")?;
        let mut stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        Ok(stdout)
    }

    /// Opens a [`Session`]: a `psql` process connected to `db` as the superuser `postgres`
    /// over the Unix socket, kept open so that a later statement sees what an earlier one
    /// left open (a transaction holding an xid, a lock).
    ///
    /// # Errors
    ///
    /// When `psql` cannot be started, or cannot connect (reported by the first
    /// [`Session::query`]).
    pub fn open_session(&self, db: &str) -> Result<Session, TestkitError> {
        let mut cmd = self.runner.command(&self.bins.psql, &self.root);
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.root)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db]);
        Session::spawn(cmd)
    }

    /// Creates database `name` owned by `pgcdc_scram`, and grants all privileges on it and on its
    /// `public` schema to every test user.
    pub fn create_database(&self, name: &str) -> Result<(), TestkitError> {
        let db = quote_ident(name);
        let all = users::all_user_idents();
        self.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {db} OWNER {}",
                quote_ident(users::SCRAM_USER.name)
            ),
        )?;
        self.psql("postgres", &format!("GRANT ALL ON DATABASE {db} TO {all}"))?;
        self.psql(name, &format!("GRANT ALL ON SCHEMA public TO {all}"))?;
        Ok(())
    }

    /// Restarts the server (`pg_ctl restart -m fast -w`), disconnecting every client.
    pub fn restart_fast(&self) -> Result<(), TestkitError> {
        let mut cmd = self.pg_ctl_command();
        cmd.args(["restart", "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT, "-l"])
            .arg(&self.log_path);
        self.run_server_change(cmd, "pg_ctl restart")
    }

    /// Stops the server (`pg_ctl stop -m <mode> -w`). Start it again with
    /// [`Cluster::start_server`].
    pub fn stop(&self, mode: StopMode) -> Result<(), TestkitError> {
        self.pg_ctl(
            &["stop", "-m", mode.as_str(), "-w", "-t", PG_CTL_TIMEOUT],
            "pg_ctl stop",
        )?;
        Ok(())
    }

    /// Starts the server again after [`Cluster::stop`], on the same port.
    #[doc(alias = "start_again")]
    pub fn start_server(&self) -> Result<(), TestkitError> {
        self.pg_ctl_start()
    }

    /// Makes the server reload its configuration (`pg_ctl reload`), e.g. after `ALTER SYSTEM`.
    pub fn reload(&self) -> Result<(), TestkitError> {
        self.pg_ctl(&["reload"], "pg_ctl reload")?;
        Ok(())
    }

    /// Whether the server is running (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        let mut cmd = self.pg_ctl_command();
        cmd.arg("status")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data_dir.join("postmaster.pid").exists() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30", "-s"], "stop");
        }
        let _ = fs::remove_dir_all(&self.root);
        if let Some(mut reaper) = lock(&self.reaper).take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| TestkitError::io("bind 127.0.0.1:0 to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| TestkitError::io("local_addr of the port probe", e))?
        .port();
    Ok(port)
}

/// Creates a fresh, private directory for one cluster (owned by `postgres` when root).
fn make_temp_dir(runner: &Runner) -> Result<PathBuf, TestkitError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base = std::env::temp_dir();
    // The `postgres` user must be able to reach the directory.
    if runner.owner.is_some() && !traversable_by_all(&base) {
        base = PathBuf::from("/tmp");
    }
    let pid = std::process::id();
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("pgcdc-testkit-{pid}-{n}-{nanos}"));
        match fs::create_dir(&dir) {
            Ok(()) => {
                let setup = sys::set_mode(&dir, 0o700).and_then(|()| runner.chown(&dir));
                if let Err(err) = setup {
                    let _ = fs::remove_dir_all(&dir);
                    return Err(err);
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TestkitError::io(format!("create {}", dir.display()), e)),
        }
    }
    Err(TestkitError::Setup(format!(
        "could not create a unique directory in {}",
        base.display()
    )))
}

fn traversable_by_all(dir: &Path) -> bool {
    dir.ancestors()
        .all(|d| fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// The file's contents from `offset` on (lossy), or "" if it cannot be read.
fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut file) = fs::File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = file.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `lines` lines of a file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = read_from(path, 0);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
