//! A throwaway NATS server with JetStream (`nats-server -js`), for the sink tests.

use std::fs;
use std::io::{self, BufRead as _, BufReader, Read as _};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::TestkitError;

/// How to get the server when it is missing.
const NATS_HINT: &str =
    "install it with `apt-get install -y nats-server` or set PGCDC_NATS_SERVER to its path";

/// How long a start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `nats-server -js` on a free port of 127.0.0.1 with its store in a private temporary
/// directory, stopped and removed on drop. It can be stopped, killed and started again on
/// the same port with the same store, as a restarted broker would be.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl NatsServer {
    /// Starts a server. The binary is `PGCDC_NATS_SERVER`, else `nats-server` on `PATH`,
    /// else `/usr/sbin/nats-server`.
    ///
    /// # Errors
    ///
    /// The binary is missing, or the server did not accept connections with JetStream on
    /// within 30 seconds (the error carries its log).
    pub fn start() -> Result<NatsServer, TestkitError> {
        let bin = locate()?;
        let dir = temp_dir()?;
        let port = crate::cluster::free_port()?;
        let mut server = NatsServer {
            bin,
            dir,
            port,
            child: None,
            starts: 0,
        };
        server.spawn()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the server gracefully (SIGTERM: it flushes its store) and waits for it.
    ///
    /// # Errors
    ///
    /// The signal could not be sent.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| TestkitError::io("kill -TERM nats-server", e))?;
        if !status.success() {
            let _ = child.kill();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(());
                }
            }
        }
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port with the same store (after
    /// [`stop`](Self::stop) or [`kill`](Self::kill); a running server is stopped first).
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.spawn()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut all = String::new();
        for n in 1..=self.starts {
            if let Ok(text) = fs::read_to_string(self.dir.join(format!("nats-{n}.log"))) {
                all.push_str(&text);
            }
        }
        all
    }

    fn spawn(&mut self) -> Result<(), TestkitError> {
        self.starts += 1;
        let log = self.dir.join(format!("nats-{}.log", self.starts));
        let store = self.store_dir();
        let child = Command::new(&self.bin)
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&store)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| TestkitError::io(format!("spawn {}", self.bin.display()), e))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.is_running() {
                self.child = None;
                return Err(TestkitError::StartFailed {
                    message: "nats-server exited while starting".into(),
                    log_tail: tail(&log),
                });
            }
            if jetstream_ready(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(TestkitError::StartFailed {
                    message: format!(
                        "nats-server did not accept connections with JetStream within {}s",
                        START_TIMEOUT.as_secs()
                    ),
                    log_tail: tail(&log),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether a connection gets the server's INFO line announcing JetStream.
fn jetstream_ready(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take(64 * 1024));
    if reader.read_line(&mut line).is_err() {
        return false;
    }
    line.starts_with("INFO ") && line.contains("\"jetstream\":true")
}

fn locate() -> Result<PathBuf, TestkitError> {
    if let Some(p) = std::env::var_os("PGCDC_NATS_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(TestkitError::ToolNotFound {
                tool: "nats-server",
                hint: "PGCDC_NATS_SERVER does not name a file: point it at the nats-server binary",
            })
        };
    }
    if let Some(p) = crate::sys::find_in_path(std::env::var_os("PATH").as_deref(), "nats-server") {
        return Ok(p);
    }
    let fallback = Path::new("/usr/sbin/nats-server");
    if fallback.is_file() {
        return Ok(fallback.to_path_buf());
    }
    Err(TestkitError::ToolNotFound {
        tool: "nats-server",
        hint: NATS_HINT,
    })
}

fn temp_dir() -> Result<PathBuf, TestkitError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("pgcdc-nats-{}-{n}-{nanos}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TestkitError::io(format!("create {}", dir.display()), e)),
        }
    }
    Err(TestkitError::Setup(format!(
        "could not create a unique directory in {}",
        base.display()
    )))
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
