//! The error type of the testkit.

use std::fmt;
use std::io;

/// The message used when the PostgreSQL server binaries cannot be found.
pub(crate) const BINARIES_NOT_FOUND: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: \
     install them with `apt-get install -y postgresql` or set PGCDC_PG_BIN to their directory";

/// Everything that can go wrong while setting up or driving a throwaway cluster.
#[derive(Debug)]
#[non_exhaustive]
pub enum TestkitError {
    /// `initdb`, `pg_ctl` or `postgres` could not be found.
    BinariesNotFound {
        /// Extra detail (for example a `PGCDC_PG_BIN` that does not hold the binaries).
        detail: Option<String>,
    },
    /// A tool other than the server binaries (`psql`, `openssl`, `runuser`) is missing.
    ToolNotFound {
        /// The tool's name.
        tool: &'static str,
        /// How to get it.
        hint: &'static str,
    },
    /// An I/O operation failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An external command exited unsuccessfully.
    Command {
        /// What the command was for.
        what: String,
        /// The command line.
        command: String,
        /// The exit code, if the command exited normally.
        status: Option<i32>,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },
    /// The server did not start.
    StartFailed {
        /// What `pg_ctl` reported.
        message: String,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// Any other setup problem.
    Setup(String),
}

impl TestkitError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        TestkitError::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestkitError::BinariesNotFound { detail } => {
                f.write_str(BINARIES_NOT_FOUND)?;
                if let Some(detail) = detail {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            TestkitError::ToolNotFound { tool, hint } => {
                write!(f, "`{tool}` not found on PATH: {hint}")
            }
            TestkitError::Io { context, source } => write!(f, "{context}: {source}"),
            TestkitError::Command {
                what,
                command,
                status,
                stdout,
                stderr,
            } => {
                match status {
                    Some(code) => write!(f, "{what} failed (exit code {code})")?,
                    None => write!(f, "{what} failed (killed by a signal)")?,
                }
                write!(f, "\n  command: {command}")?;
                if !stderr.trim().is_empty() {
                    write!(f, "\n  stderr: {}", stderr.trim_end())?;
                }
                if !stdout.trim().is_empty() {
                    write!(f, "\n  stdout: {}", stdout.trim_end())?;
                }
                Ok(())
            }
            TestkitError::StartFailed { message, log_tail } => {
                write!(f, "PostgreSQL did not start: {}", message.trim_end())?;
                if !log_tail.trim().is_empty() {
                    write!(f, "\n  server log (tail):\n{}", log_tail.trim_end())?;
                }
                Ok(())
            }
            TestkitError::Setup(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for TestkitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TestkitError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
