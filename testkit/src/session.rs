//! A `psql` process kept open across statements, e.g. to hold a transaction open while a test
//! does something else.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::TestkitError;
use crate::sys::describe;

/// How long dropping a session waits for `psql` to exit before killing it.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// One `psql` connection as the superuser `postgres`, made by
/// [`Cluster::open_session`](crate::Cluster::open_session), that stays open between
/// statements: what one [`query`](Session::query) leaves open (a transaction, a lock, a
/// temporary table) is still there for the next one.
///
/// ```no_run
/// # use pgcdc_testkit::Cluster;
/// let cluster = Cluster::shared();
/// let mut session = cluster.open_session("postgres").unwrap();
/// let xid = session.query("BEGIN; SELECT txid_current();").unwrap();
/// // … the transaction is open: CREATE_REPLICATION_SLOT waits for it …
/// session.query("COMMIT").unwrap();
/// session.close().unwrap();
/// # let _ = xid;
/// ```
///
/// `psql` runs with `ON_ERROR_STOP`: a failing statement ends the session, and that
/// [`query`](Session::query) and every later one return the error. Dropping the session closes
/// `psql`'s input, which ends the connection (the server rolls back an open transaction);
/// `psql` is killed if it has not exited after 5 seconds (a statement still running).
#[derive(Debug)]
pub struct Session {
    child: Child,
    command: String,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
    failed: Option<String>,
}

impl Session {
    /// Starts `cmd` (a `psql` command line without `-c`) with piped input and output.
    pub(crate) fn spawn(mut cmd: Command) -> Result<Session, TestkitError> {
        let command = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TestkitError::io(format!("psql session: could not run {command}"), e))?;
        let (Some(stdin), Some(stdout), Some(mut stderr_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestkitError::Setup(
                "psql session: the child's pipes are missing".into(),
            ));
        };
        // Drained all along, so a chatty stderr (notices) never blocks psql.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = {
            let stderr = Arc::clone(&stderr);
            thread::Builder::new()
                .name("psql-session-stderr".into())
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stderr_pipe.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => lock(&stderr).extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .map_err(|e| TestkitError::io("psql session: spawn the stderr reader", e))?
        };
        Ok(Session {
            child,
            command,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr,
            stderr_reader: Some(stderr_reader),
            failed: None,
        })
    }

    /// Runs `sql` (one or more complete statements; a missing final `;` is added) in the
    /// session and returns its output once it has run: unaligned, tuples only (one row per
    /// line, columns separated by `|`), without the final newline.
    ///
    /// It blocks for as long as the statement runs (for example while it waits for a lock).
    ///
    /// # Errors
    ///
    /// [`TestkitError::Command`] with `psql`'s stderr when a statement fails or `psql` exits;
    /// the session is over then, and later calls return the same error.
    pub fn query(&mut self, sql: &str) -> Result<String, TestkitError> {
        if let Some(message) = &self.failed {
            return Err(TestkitError::Setup(message.clone()));
        }
        static MARKERS: AtomicU64 = AtomicU64::new(0);
        let marker = format!(
            "pgcdc-testkit-session-{}-{}-done",
            std::process::id(),
            MARKERS.fetch_add(1, Ordering::Relaxed)
        );
        let mut sql = sql.trim_end().to_owned();
        if !sql.ends_with(';') {
            sql.push(';');
        }
        // psql runs the statements, then echoes the marker: everything before it is their
        // output.
        let input = format!("{sql}\n\\echo {marker}\n");
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(input.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        let mut output = String::new();
        if written.is_ok() {
            let mut line = String::new();
            loop {
                line.clear();
                match self.stdout.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.trim_end_matches(['\n', '\r']) == marker {
                            if output.ends_with('\n') {
                                output.pop();
                            }
                            return Ok(output);
                        }
                        output.push_str(&line);
                    }
                }
            }
        }
        // psql stopped before the marker: a statement failed (ON_ERROR_STOP) or it died.
        Err(self.failure(&sql, output))
    }

    /// The error for a session that ended while running `sql`; later calls repeat it.
    fn failure(&mut self, sql: &str, stdout: String) -> TestkitError {
        self.stdin = None;
        let status = self.child.wait().ok().and_then(|s| s.code());
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let err = TestkitError::Command {
            what: format!("psql session statement `{sql}`"),
            command: self.command.clone(),
            status,
            stdout,
            stderr: String::from_utf8_lossy(&lock(&self.stderr)).into_owned(),
        };
        self.failed = Some(format!("the psql session ended earlier: {err}"));
        err
    }

    /// Ends the session: closes `psql`'s input and waits for it to exit. The server rolls
    /// back a transaction left open.
    ///
    /// # Errors
    ///
    /// [`TestkitError::Command`] when `psql` exits unsuccessfully (or ended earlier).
    pub fn close(mut self) -> Result<(), TestkitError> {
        if let Some(message) = self.failed.take() {
            return Err(TestkitError::Setup(message));
        }
        self.stdin = None;
        let status = self
            .child
            .wait()
            .map_err(|e| TestkitError::io("psql session: wait for psql to exit", e))?;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        if status.success() {
            return Ok(());
        }
        Err(TestkitError::Command {
            what: "psql session".into(),
            command: self.command.clone(),
            status: status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&lock(&self.stderr)).into_owned(),
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
            }
        }
        // The stderr reader is left to end with the pipe: when root, killing `runuser` may
        // leave `psql` running until its statement ends.
        self.stderr_reader = None;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
