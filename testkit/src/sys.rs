//! Locating binaries, running commands (as the `postgres` user when root), file helpers.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::TestkitError;

/// The PostgreSQL programs a cluster needs.
#[derive(Debug, Clone)]
pub(crate) struct PgBins {
    /// The directory holding `initdb`, `pg_ctl` and `postgres`.
    pub(crate) dir: PathBuf,
    pub(crate) initdb: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    pub(crate) psql: PathBuf,
}

impl PgBins {
    /// The binaries in `dir` (`psql` from there, else from `PATH`).
    pub(crate) fn at(dir: &Path) -> Result<PgBins, TestkitError> {
        Self::locate_with(
            Some(dir.as_os_str().to_owned()),
            Path::new("/usr/lib/postgresql"),
            std::env::var_os("PATH"),
        )
    }

    /// The server's major version (10, 11, … 18), from `postgres --version`.
    pub(crate) fn major_version(&self) -> Result<u32, TestkitError> {
        let postgres = self.dir.join("postgres");
        let out = std::process::Command::new(&postgres)
            .arg("--version")
            .output()
            .map_err(|e| TestkitError::io(format!("run {} --version", postgres.display()), e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_major(&text).ok_or_else(|| {
            TestkitError::Setup(format!(
                "cannot read the version in `postgres --version`: {text}"
            ))
        })
    }

    /// Finds the binaries: `PGCDC_PG_BIN`, then the highest `/usr/lib/postgresql/*/bin`, then `PATH`.
    pub(crate) fn locate() -> Result<PgBins, TestkitError> {
        Self::locate_with(
            std::env::var_os("PGCDC_PG_BIN"),
            Path::new("/usr/lib/postgresql"),
            std::env::var_os("PATH"),
        )
    }

    /// [`PgBins::locate`] with its inputs made explicit (for tests).
    pub(crate) fn locate_with(
        env_dir: Option<OsString>,
        lib_root: &Path,
        path_var: Option<OsString>,
    ) -> Result<PgBins, TestkitError> {
        let dir = match env_dir.filter(|d| !d.is_empty()) {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if !has_server_binaries(&dir) {
                    return Err(TestkitError::BinariesNotFound {
                        detail: Some(format!(
                            "PGCDC_PG_BIN={} does not contain initdb, pg_ctl and postgres",
                            dir.display()
                        )),
                    });
                }
                dir
            }
            None => match highest_versioned_bin(lib_root) {
                Some(dir) => dir,
                None => bin_dir_from_path(path_var.as_deref())
                    .ok_or(TestkitError::BinariesNotFound { detail: None })?,
            },
        };
        let psql = if is_executable(&dir.join("psql")) {
            dir.join("psql")
        } else {
            find_in_path(path_var.as_deref(), "psql").ok_or(TestkitError::ToolNotFound {
                tool: "psql",
                hint: "install it with `apt-get install -y postgresql-client`",
            })?
        };
        Ok(PgBins {
            initdb: dir.join("initdb"),
            pg_ctl: dir.join("pg_ctl"),
            psql,
            dir,
        })
    }
}

/// The major version in `postgres (PostgreSQL) 17.10` (or `… 10.23`, `… 18beta1`).
fn parse_major(text: &str) -> Option<u32> {
    let version = text.split_whitespace().nth(2)?;
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

/// The `bin` directory of the highest-numbered `<lib_root>/<version>/bin` with the server binaries.
fn highest_versioned_bin(lib_root: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(lib_root).ok()?;
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(version) = parse_version(&name) else {
            continue;
        };
        let bin = entry.path().join("bin");
        if !has_server_binaries(&bin) {
            continue;
        }
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

fn parse_version(name: &OsStr) -> Option<Vec<u64>> {
    let name = name.to_str()?;
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// `initdb` on `PATH`, with `pg_ctl` and `postgres` alongside (following a symlink if needed).
fn bin_dir_from_path(path_var: Option<&OsStr>) -> Option<PathBuf> {
    let initdb = find_in_path(path_var, "initdb")?;
    if let Ok(real) = fs::canonicalize(&initdb)
        && let Some(dir) = real.parent()
        && has_server_binaries(dir)
    {
        return Some(dir.to_path_buf());
    }
    let dir = initdb.parent()?;
    has_server_binaries(dir).then(|| dir.to_path_buf())
}

/// Finds an executable on a `PATH`-style variable.
pub(crate) fn find_in_path(path_var: Option<&OsStr>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The uid and gid of the `postgres` system user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Runs PostgreSQL programs, as the `postgres` user when the process is root.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    /// `Some` when running as root: programs run through `runuser -u postgres`.
    pub(crate) owner: Option<Owner>,
    runuser: Option<PathBuf>,
}

impl Runner {
    pub(crate) fn detect() -> Result<Runner, TestkitError> {
        if effective_uid()? != 0 {
            return Ok(Runner {
                owner: None,
                runuser: None,
            });
        }
        let owner = postgres_owner()?;
        let path_var = std::env::var_os("PATH");
        let runuser = find_in_path(path_var.as_deref(), "runuser")
            .or_else(|| {
                ["/usr/sbin/runuser", "/sbin/runuser"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| is_executable(p))
            })
            .ok_or(TestkitError::ToolNotFound {
                tool: "runuser",
                hint: "PostgreSQL refuses to run as root and `runuser` (util-linux) is needed to \
                       run it as the `postgres` user",
            })?;
        Ok(Runner {
            owner: Some(owner),
            runuser: Some(runuser),
        })
    }

    /// A command running `program` (as `postgres` when root) in `cwd`, with a clean libpq
    /// environment.
    pub(crate) fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut cmd = match &self.runuser {
            Some(runuser) => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(cwd);
        clean_env(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The shell prefix (already quoted) that runs a program as `postgres` when root.
    pub(crate) fn shell_prefix(&self) -> String {
        match &self.runuser {
            Some(runuser) => format!("{} -u postgres -- ", sh_quote(runuser.as_os_str())),
            None => String::new(),
        }
    }

    /// Gives `path` to the `postgres` user when running as root.
    pub(crate) fn chown(&self, path: &Path) -> Result<(), TestkitError> {
        if let Some(owner) = self.owner {
            std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
                .map_err(|e| TestkitError::io(format!("chown {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Writes a file with the given mode, owned by `postgres` when root.
    pub(crate) fn write_file(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), TestkitError> {
        fs::write(path, contents)
            .map_err(|e| TestkitError::io(format!("write {}", path.display()), e))?;
        set_mode(path, mode)?;
        self.chown(path)
    }

    /// Appends to an existing file.
    pub(crate) fn append_file(&self, path: &Path, contents: &[u8]) -> Result<(), TestkitError> {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| TestkitError::io(format!("open {}", path.display()), e))?;
        file.write_all(contents)
            .map_err(|e| TestkitError::io(format!("append to {}", path.display()), e))
    }
}

/// Removes libpq/PostgreSQL environment variables that could redirect a command, and makes
/// messages and client encoding predictable.
pub(crate) fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("LC_ALL", "C").env("PGCLIENTENCODING", "UTF8");
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), TestkitError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| TestkitError::io(format!("chmod {}", path.display()), e))
}

/// Runs a command to completion; an unsuccessful exit becomes [`TestkitError::Command`].
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output, TestkitError> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestkitError::io(format!("{what}: could not run {}", describe(cmd)), e))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(command_error(cmd, what, &output))
    }
}

pub(crate) fn command_error(cmd: &Command, what: &str, output: &Output) -> TestkitError {
    TestkitError::Command {
        what: what.to_string(),
        command: describe(cmd),
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A printable command line.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(sh_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word for `sh`.
pub(crate) fn sh_quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn effective_uid() -> Result<u32, TestkitError> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok());
        if let Some(euid) = euid {
            return Ok(euid);
        }
    }
    let output = run(Command::new("id").arg("-u"), "id -u")?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| TestkitError::Setup("could not determine the effective user id".into()))
}

fn postgres_owner() -> Result<Owner, TestkitError> {
    if let Ok(passwd) = fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4
                && fields[0] == "postgres"
                && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
            {
                return Ok(Owner { uid, gid });
            }
        }
    }
    let id = |flag: &str| -> Option<u32> {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Ok(Owner { uid, gid }),
        _ => Err(TestkitError::Setup(
            "running as root, but there is no `postgres` system user to run PostgreSQL as \
             (PostgreSQL refuses to run as root): create one, e.g. `useradd --system postgres`, \
             or install the `postgresql` package"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_message() {
        let err = PgBins::locate_with(None, Path::new("/nonexistent-pgcdc"), Some("".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install them with \
             `apt-get install -y postgresql` or set PGCDC_PG_BIN to their directory"
        );
    }

    #[test]
    fn bad_env_dir() {
        let err = PgBins::locate_with(
            Some("/nonexistent-pgcdc".into()),
            Path::new("/usr/lib/postgresql"),
            None,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("PGCDC_PG_BIN=/nonexistent-pgcdc"), "{msg}");
        assert!(msg.starts_with("PostgreSQL server binaries"), "{msg}");
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version(OsStr::new("10")) > parse_version(OsStr::new("9.6")));
        assert!(parse_version(OsStr::new("15")) > parse_version(OsStr::new("9")));
        assert_eq!(parse_version(OsStr::new("common")), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote(OsStr::new("/usr/bin/pg_ctl")), "/usr/bin/pg_ctl");
        assert_eq!(sh_quote(OsStr::new("a b'c")), r"'a b'\''c'");
        assert_eq!(sh_quote(OsStr::new("")), "''");
    }
}
