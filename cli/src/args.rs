//! Command-line parsing (hand-written: a handful of flags does not need a parser crate) and the
//! usage texts.

use std::time::Duration;

use pgcdc_tokio::Lsn;

use crate::CliError;

/// The top-level usage.
pub const USAGE: &str = "\
pgcdc: stream the changes of a PostgreSQL database as JSON lines

Usage:
  pgcdc stream --url URL --publication P --slot S [options]   stream changes to stdout (or NATS JetStream)
  pgcdc demo [--url URL] [--format jsonl|pretty]              try it on a throwaway server
  pgcdc slots [--url URL] [--drop NAME] [--json]              list (or drop) replication slots
  pgcdc doctor [--url URL] [--publication P]                  check a server before the first run
  pgcdc help [COMMAND]                                        show help
  pgcdc --version

Connection settings come from --url (postgres://user:password@host:port/database?sslmode=…)
and libpq's environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
PGSSLMODE, …); the URL wins. Logs go to stderr; RUST_LOG sets their level (default info).

Run `pgcdc help stream` for the stream options.";

/// `pgcdc doctor --help`.
pub const DOCTOR_USAGE: &str = "\
Usage: pgcdc doctor [--url URL] [--publication P]

Checks a server before the first run and prints, per check, ok, a warning, or what is wrong
and the exact fix: the server version and the options it allows, wal_level, free
replication slots and WAL senders, the role's REPLICATION attribute, a replication
connection, the publication and its tables (SELECT privilege, replica identity, primary
key), max_slot_wal_keep_size and wal_sender_timeout, the existing slots with their lag and
wal_status, TLS and the authentication method. Exits 0 only when streaming would work.

Options:
  --url URL               postgres://user:password@host:port/database
  --publication P         the publication to check (default drasi_publication)
  -h, --help              this help";

/// `pgcdc stream --help`.
pub const STREAM_USAGE: &str = "\
Usage: pgcdc stream --url URL --publication P --slot S [options]

Streams every change of the publication to stdout, one JSON object per line, and
acknowledges a transaction to PostgreSQL only once its lines are written and flushed.
Ctrl-C or SIGTERM stops cleanly: nothing written is lost, nothing unwritten is confirmed.

Options:
  --url URL               postgres://user:password@host:port/database[?sslmode=…]
  --publication NAME      the publication to stream (required)
  --slot NAME             the logical replication slot (required)
  --create-slot           create the slot when it does not exist
  --create-publication    create the publication when it does not exist (FOR TABLE the
                          --tables, or FOR ALL TABLES without them)
  --tables a,b,schema.c   stream only these tables (default: every table of the publication)
  --snapshot              first emit the rows that exist (initial snapshot, when the slot is created)
  --snapshot-only         emit the rows that exist, then exit: a one-time export through a
                          temporary slot (created and gone with the connection)
  --progress-every SECS   while copying the snapshot, log its progress every SECS when stderr
                          is not a terminal (default 5; on a terminal: a bar per table)
  --from-lsn LSN          start at this position (X/X) instead of the slot's
  --until-lsn LSN         end after the first transaction whose end LSN reaches LSN
  --idle-exit SECONDS     end after SECONDS without a change
  --start-timeout SECONDS keep retrying transient failures (server down, slot in use by
                          another consumer) until the slot is reached, at most SECONDS
                          (default 60; 0: forever); later disconnections are always retried
  --failover              create the slot as a failover slot (PostgreSQL 17+)
  --slot-in-use MODE      while another consumer holds the slot: wait (stand by and take it
                          over once it is free; default) or fail at once
  --max-changes N         end after N changes (a transaction cut short is not acknowledged)
  --streaming on|parallel receive large transactions while they run (PostgreSQL 14+; 16+ for
                          parallel); they are held until they commit
  --two-phase             receive prepared transactions at PREPARE (PostgreSQL 15+); they are
                          held until COMMIT PREPARED
  --spill-threshold SIZE  memory for held transactions before they spill to disk, in bytes or
                          with KiB, MiB, GiB (default 64MiB; 0: never spill)
  --spill-dir DIR         directory of spill files (default: the system's temporary directory)
  --format jsonl|pretty   output format (default jsonl)
  --metrics-addr ADDR     serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9187)
  -h, --help              this help

Publishing to NATS JetStream instead of stdout (a transaction is acknowledged to PostgreSQL
only once JetStream stored every change of it; a change sent again, after a crash or a
reconnect, carries the same Nats-Msg-Id and is stored once within the stream's duplicate
window):
  --sink nats://HOST:PORT the NATS server (with JetStream: nats-server -js)
  --stream NAME           the JetStream stream (required with --sink)
  --subject-prefix P      subjects are P.<schema>.<table> (default pgcdc.<source name>)
  --source-name NAME      names the source in subjects and message ids (default: the
                          database); sources publishing to one stream need distinct names
  --create-stream         create the stream when missing (file storage, subjects P.>,
                          7 days, 2-minute duplicate window)
  --envelope native|debezium
                          the JSON of each message: the stdout line (default) or a
                          Debezium-style before/after/source/op/ts_ms envelope
  --max-in-flight N       messages sent and not yet acknowledged by JetStream, at most
                          (default 4096)";

/// `pgcdc demo --help`.
pub const DEMO_USAGE: &str = "\
Usage: pgcdc demo [--url URL] [--format jsonl|pretty]

Without --url, starts a throwaway local PostgreSQL (the server binaries must be installed),
creates a demo schema and publication, runs a small workload (inserts, updates, deletes, a
multi-row transaction, a truncate), prints the changes as they stream, then removes everything.

With --url, runs the same demo in the schema `pgcdc_demo` of that database (its user needs
the REPLICATION attribute and the right to create schemas); the schema, the publication
`pgcdc_demo_pub` and the slot `pgcdc_demo_slot` are removed afterwards.

Options:
  --url URL               use this database instead of a throwaway server
  --format jsonl|pretty   output format (default jsonl)
  -h, --help              this help";

/// `pgcdc slots --help`.
pub const SLOTS_USAGE: &str = "\
Usage: pgcdc slots [--url URL] [--drop NAME] [--json | --format table|json|jsonl]

Lists the server's replication slots: plugin, type, database, whether a consumer is
connected (active) and its server process id, wal_status (PostgreSQL 13+), positions, the
lag (WAL the slot retains), and the age of the confirmed position: the time since the
consumer's last status update (active slots) or since the slot became inactive
(PostgreSQL 17+); the status update is shown to superusers and members of
pg_read_all_stats only. --drop NAME drops an inactive slot.

Options:
  --url URL               postgres://user:password@host:port/database
  --drop NAME             drop this replication slot
  --json                  print a JSON array (same as --format json)
  --format F              table (default), json (one array) or jsonl (one object per line)
  -h, --help              this help";

/// What the user asked for.
#[derive(Debug)]
pub enum Command {
    /// `pgcdc stream`.
    Stream(Box<StreamArgs>),
    /// `pgcdc demo`.
    Demo(DemoArgs),
    /// `pgcdc slots`.
    Slots(SlotsArgs),
    /// `pgcdc doctor`.
    Doctor(DoctorArgs),
    /// Print this text on stdout and exit 0.
    Help(&'static str),
    /// `pgcdc --version`.
    Version,
}

/// How changes are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A transaction header and one readable line per change.
    Pretty,
}

/// `pgcdc stream` options.
#[derive(Debug, Default)]
pub struct StreamArgs {
    pub url: Option<String>,
    pub publication: String,
    pub slot: String,
    pub create_slot: bool,
    pub create_publication: bool,
    pub tables: Vec<String>,
    pub snapshot: bool,
    /// `--snapshot-only`: copy the snapshot through a temporary slot, then end.
    pub snapshot_only: bool,
    pub from_lsn: Option<Lsn>,
    pub until_lsn: Option<Lsn>,
    pub idle_exit: Option<Duration>,
    pub start_timeout: Option<Duration>,
    pub slot_in_use: Option<pgcdc_tokio::SlotInUse>,
    pub failover: bool,
    pub max_changes: Option<u64>,
    pub format: Option<Format>,
    /// `--streaming`: `on` or `parallel` (`None`: off).
    pub streaming: Option<String>,
    pub two_phase: bool,
    pub spill_threshold: Option<usize>,
    pub spill_dir: Option<String>,
    /// `--progress-every`: how often the snapshot's progress is logged off a terminal.
    pub progress_every: Option<Duration>,
    /// `--metrics-addr`: where to serve Prometheus metrics.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `--sink` and its options: publish to JetStream instead of stdout.
    pub sink: Option<SinkArgs>,
}

/// `--sink nats://…` and the options that go with it.
#[derive(Debug, Default)]
pub struct SinkArgs {
    pub url: String,
    pub stream: String,
    pub subject_prefix: Option<String>,
    pub source_name: Option<String>,
    pub create_stream: bool,
    pub debezium: bool,
    pub max_in_flight: Option<usize>,
}

/// `pgcdc demo` options.
#[derive(Debug, Default)]
pub struct DemoArgs {
    pub url: Option<String>,
    pub format: Option<Format>,
}

/// `pgcdc doctor` options.
#[derive(Debug, Default)]
pub struct DoctorArgs {
    pub url: Option<String>,
    pub publication: Option<String>,
}

/// How `pgcdc slots` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlotsFormat {
    /// An aligned table.
    #[default]
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// `pgcdc slots` options.
#[derive(Debug, Default)]
pub struct SlotsArgs {
    pub url: Option<String>,
    pub drop: Option<String>,
    /// `--json`, `--format jsonl`, or the default aligned table.
    pub format: SlotsFormat,
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<String>) -> Result<Command, CliError> {
    let mut it = args.into_iter();
    let Some(cmd) = it.next() else {
        return Err(CliError::usage(None, "no command given"));
    };
    let rest: Vec<String> = it.collect();
    match cmd.as_str() {
        "stream" => parse_stream(rest),
        "demo" => parse_demo(rest),
        "slots" => parse_slots(rest),
        "doctor" => parse_doctor(rest),
        "help" | "-h" | "--help" => Ok(Command::Help(match rest.first().map(String::as_str) {
            Some("stream") => STREAM_USAGE,
            Some("demo") => DEMO_USAGE,
            Some("slots") => SLOTS_USAGE,
            Some("doctor") => DOCTOR_USAGE,
            None => USAGE,
            Some(other) => {
                return Err(CliError::usage(None, format!("unknown command {other:?}")));
            }
        })),
        "-V" | "--version" | "version" => Ok(Command::Version),
        other if other.starts_with('-') => Err(CliError::usage(
            None,
            format!("expected a command before {other:?}"),
        )),
        other => Err(CliError::usage(None, format!("unknown command {other:?}"))),
    }
}

/// The flags of one command, as `(name, inline value)` pairs with their values on demand.
struct Flags {
    command: &'static str,
    args: std::vec::IntoIter<String>,
}

/// One flag being parsed.
struct Flag {
    name: String,
    inline: Option<String>,
}

impl Flags {
    fn new(command: &'static str, args: Vec<String>) -> Self {
        Flags {
            command,
            args: args.into_iter(),
        }
    }

    fn next(&mut self) -> Result<Option<Flag>, CliError> {
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if !arg.starts_with('-') || arg == "-" {
            return Err(self.err(format!("unexpected argument {arg:?}")));
        }
        Ok(Some(match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => Flag {
                name: name.to_owned(),
                inline: Some(value.to_owned()),
            },
            _ => Flag {
                name: arg,
                inline: None,
            },
        }))
    }

    /// The flag's value: after `=`, or the next argument.
    fn value(&mut self, flag: &mut Flag, what: &str) -> Result<String, CliError> {
        if let Some(v) = flag.inline.take() {
            return Ok(v);
        }
        match self.args.next() {
            Some(v) if !v.starts_with("--") => Ok(v),
            _ => Err(self.err(format!("{} needs a value: {what}", flag.name))),
        }
    }

    /// Checks that a switch was not given a value.
    fn switch(&self, flag: &Flag) -> Result<bool, CliError> {
        match flag.inline {
            Some(_) => Err(self.err(format!("{} takes no value", flag.name))),
            None => Ok(true),
        }
    }

    fn unknown(&self, flag: &Flag) -> CliError {
        self.err(format!("unknown option {:?}", flag.name))
    }

    fn err(&self, message: impl Into<String>) -> CliError {
        CliError::usage(Some(self.command), message)
    }

    fn lsn(&mut self, flag: &mut Flag) -> Result<Lsn, CliError> {
        let v = self.value(flag, "an LSN such as 0/16B3748")?;
        v.parse().map_err(|_| {
            self.err(format!(
                "{} {v:?} is not an LSN (expected X/X, such as 0/16B3748)",
                flag.name
            ))
        })
    }

    fn format(&mut self, flag: &mut Flag, allowed: &[&str]) -> Result<String, CliError> {
        let name = flag.name.clone();
        let v = self.value(flag, &allowed.join(" or "))?;
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.err(format!(
                "{name} {v:?} is not supported: use {}",
                allowed.join(" or ")
            )))
        }
    }
}

/// `123`, `64KiB`, `256MiB`, `2GiB` (also `kB`, `MB`, `GB` as PostgreSQL writes them, in
/// units of 1024).
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let n: usize = number.parse().ok()?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "kB" | "K" | "k" => 1 << 10,
        "MiB" | "MB" | "M" => 1 << 20,
        "GiB" | "GB" | "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn parse_format(s: &str) -> Format {
    if s == "pretty" {
        Format::Pretty
    } else {
        Format::Jsonl
    }
}

fn parse_stream(args: Vec<String>) -> Result<Command, CliError> {
    let mut f = Flags::new("stream", args);
    let mut a = StreamArgs::default();
    let mut publication = None;
    let mut slot = None;
    let mut sink_url = None;
    let mut sink = SinkArgs::default();
    let mut stream = None;
    let mut sink_flag = None;
    while let Some(mut flag) = f.next()? {
        if matches!(
            flag.name.as_str(),
            "--stream"
                | "--subject-prefix"
                | "--source-name"
                | "--create-stream"
                | "--envelope"
                | "--max-in-flight"
        ) {
            sink_flag = Some(flag.name.clone());
        }
        match flag.name.as_str() {
            "-h" | "--help" => return Ok(Command::Help(STREAM_USAGE)),
            "--sink" => {
                let v = f.value(&mut flag, "a nats:// URL")?;
                if !v.starts_with("nats://") && !v.starts_with("tls://") {
                    return Err(f.err(format!(
                        "--sink {v:?} is not supported: give a NATS server as nats://HOST:PORT"
                    )));
                }
                sink_url = Some(v);
            }
            "--stream" => stream = Some(f.value(&mut flag, "a JetStream stream name")?),
            "--subject-prefix" => {
                let v = f.value(&mut flag, "a subject prefix such as pgcdc.shop")?;
                let bad = v.is_empty()
                    || v.split('.').any(|t| t.is_empty() || t.contains(['*', '>']))
                    || v.contains(char::is_whitespace);
                if bad {
                    return Err(f.err(format!(
                        "--subject-prefix {v:?} is not a subject prefix: give dot-separated \
                         tokens without spaces, `*` or `>`, such as pgcdc.shop"
                    )));
                }
                sink.subject_prefix = Some(v);
            }
            "--source-name" => sink.source_name = Some(f.value(&mut flag, "a name")?),
            "--create-stream" => sink.create_stream = f.switch(&flag)?,
            "--envelope" => {
                sink.debezium = f.format(&mut flag, &["native", "debezium"])? == "debezium"
            }
            "--max-in-flight" => {
                let v = f.value(&mut flag, "a number of messages")?;
                let n: usize = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    f.err(format!(
                        "--max-in-flight {v:?} is not a positive whole number"
                    ))
                })?;
                sink.max_in_flight = Some(n);
            }
            "--url" => a.url = Some(f.value(&mut flag, "a postgres:// URL")?),
            "--publication" => publication = Some(f.value(&mut flag, "a publication name")?),
            "--slot" => slot = Some(f.value(&mut flag, "a replication slot name")?),
            "--create-slot" => a.create_slot = f.switch(&flag)?,
            "--create-publication" => a.create_publication = f.switch(&flag)?,
            "--snapshot" => a.snapshot = f.switch(&flag)?,
            "--snapshot-only" => a.snapshot_only = f.switch(&flag)?,
            "--tables" => {
                let v = f.value(&mut flag, "a comma-separated list of tables")?;
                let tables: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
                if tables.is_empty() {
                    return Err(f.err("--tables needs at least one table name"));
                }
                a.tables.extend(tables);
            }
            "--from-lsn" => a.from_lsn = Some(f.lsn(&mut flag)?),
            "--until-lsn" => a.until_lsn = Some(f.lsn(&mut flag)?),
            "--progress-every" => {
                let v = f.value(&mut flag, "a number of seconds")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.01 && *s < 1e6)
                    .ok_or_else(|| {
                        f.err(format!(
                            "--progress-every {v:?} is not a number of seconds (0.01 or more)"
                        ))
                    })?;
                a.progress_every = Some(Duration::from_secs_f64(secs));
            }
            "--idle-exit" => {
                let v = f.value(&mut flag, "a number of seconds")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        f.err(format!(
                            "--idle-exit {v:?} is not a positive number of seconds"
                        ))
                    })?;
                a.idle_exit = Some(Duration::from_secs_f64(secs));
            }
            "--start-timeout" => {
                let v = f.value(&mut flag, "a number of seconds")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        f.err(format!(
                            "--start-timeout {v:?} is not a number of seconds (0 or more)"
                        ))
                    })?;
                a.start_timeout = Some(Duration::from_secs_f64(secs));
            }
            "--failover" => a.failover = f.switch(&flag)?,
            "--slot-in-use" => {
                let v = f.value(&mut flag, "wait or fail")?;
                a.slot_in_use = Some(
                    v.parse()
                        .map_err(|e: String| f.err(format!("--slot-in-use: {e}")))?,
                );
            }
            "--max-changes" => {
                let v = f.value(&mut flag, "a number of changes")?;
                let n: u64 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    f.err(format!(
                        "--max-changes {v:?} is not a positive whole number"
                    ))
                })?;
                a.max_changes = Some(n);
            }
            "--format" => {
                a.format = Some(parse_format(&f.format(&mut flag, &["jsonl", "pretty"])?))
            }
            "--streaming" => {
                let v = f.value(&mut flag, "on, parallel or off")?;
                a.streaming = match v.as_str() {
                    "on" | "parallel" => Some(v),
                    "off" => None,
                    _ => {
                        return Err(f.err(format!(
                            "--streaming {v:?} is not supported: use on, parallel or off"
                        )));
                    }
                };
            }
            "--two-phase" => a.two_phase = f.switch(&flag)?,
            "--spill-threshold" => {
                let v = f.value(&mut flag, "a size such as 64MiB")?;
                a.spill_threshold = Some(parse_size(&v).ok_or_else(|| {
                    f.err(format!(
                        "--spill-threshold {v:?} is not a size: give bytes, or a number with \
                         KiB, MiB or GiB (such as 256MiB), or 0 to never spill"
                    ))
                })?);
            }
            "--spill-dir" => a.spill_dir = Some(f.value(&mut flag, "a directory")?),
            "--metrics-addr" => {
                let v = f.value(&mut flag, "an address such as 127.0.0.1:9187")?;
                a.metrics_addr = Some(v.parse().map_err(|_| {
                    f.err(format!(
                        "--metrics-addr {v:?} is not an address: give IP:PORT, such as \
                         127.0.0.1:9187 (0.0.0.0:9187 for every interface)"
                    ))
                })?);
            }
            _ => return Err(f.unknown(&flag)),
        }
    }
    a.publication = publication.ok_or_else(|| f.err("--publication NAME is required"))?;
    a.slot = slot.ok_or_else(|| f.err("--slot NAME is required"))?;
    if let (Some(from), Some(until)) = (a.from_lsn, a.until_lsn) {
        if until < from {
            return Err(f.err(format!(
                "--until-lsn {until} is before --from-lsn {from}: nothing would be streamed"
            )));
        }
    }
    match (sink_url, stream) {
        (Some(url), Some(stream)) => {
            let bad = stream.is_empty()
                || stream.contains(['.', '*', '>', '/', '\\'])
                || stream.contains(char::is_whitespace);
            if bad {
                return Err(f.err(format!(
                    "--stream {stream:?} is not a stream name: no spaces, `.`, `*`, `>`, `/` or `\\`"
                )));
            }
            let unsupported = [
                (a.max_changes.is_some(), "--max-changes"),
                (a.idle_exit.is_some(), "--idle-exit"),
                (a.format.is_some(), "--format"),
                (a.two_phase, "--two-phase"),
            ];
            if let Some((_, name)) = unsupported.iter().find(|(set, _)| *set) {
                return Err(f.err(format!(
                    "{name} does not go with --sink: the sink publishes every change until \
                     stopped (SIGINT or SIGTERM, or --until-lsn)"
                )));
            }
            sink.url = url;
            sink.stream = stream;
            a.sink = Some(sink);
        }
        (Some(_), None) => {
            return Err(f.err("--sink needs --stream NAME: the JetStream stream to publish to"));
        }
        (None, _) => {
            if let Some(name) = sink_flag {
                return Err(f.err(format!("{name} goes with --sink nats://HOST:PORT")));
            }
        }
    }
    if a.snapshot_only && (a.from_lsn.is_some() || a.until_lsn.is_some() || a.snapshot) {
        return Err(f.err(
            "--snapshot-only copies the rows that exist and exits: it takes no --from-lsn, \
             --until-lsn or --snapshot",
        ));
    }
    Ok(Command::Stream(Box::new(a)))
}

fn parse_demo(args: Vec<String>) -> Result<Command, CliError> {
    let mut f = Flags::new("demo", args);
    let mut a = DemoArgs::default();
    while let Some(mut flag) = f.next()? {
        match flag.name.as_str() {
            "-h" | "--help" => return Ok(Command::Help(DEMO_USAGE)),
            "--url" => a.url = Some(f.value(&mut flag, "a postgres:// URL")?),
            "--format" => {
                a.format = Some(parse_format(&f.format(&mut flag, &["jsonl", "pretty"])?))
            }
            _ => return Err(f.unknown(&flag)),
        }
    }
    Ok(Command::Demo(a))
}

fn parse_doctor(args: Vec<String>) -> Result<Command, CliError> {
    let mut f = Flags::new("doctor", args);
    let mut a = DoctorArgs::default();
    while let Some(mut flag) = f.next()? {
        match flag.name.as_str() {
            "-h" | "--help" => return Ok(Command::Help(DOCTOR_USAGE)),
            "--url" => a.url = Some(f.value(&mut flag, "a postgres:// URL")?),
            "--publication" => a.publication = Some(f.value(&mut flag, "a publication name")?),
            _ => return Err(f.unknown(&flag)),
        }
    }
    Ok(Command::Doctor(a))
}

fn parse_slots(args: Vec<String>) -> Result<Command, CliError> {
    let mut f = Flags::new("slots", args);
    let mut a = SlotsArgs::default();
    while let Some(mut flag) = f.next()? {
        match flag.name.as_str() {
            "-h" | "--help" => return Ok(Command::Help(SLOTS_USAGE)),
            "--url" => a.url = Some(f.value(&mut flag, "a postgres:// URL")?),
            "--drop" => a.drop = Some(f.value(&mut flag, "a replication slot name")?),
            "--format" => {
                a.format = match f.format(&mut flag, &["table", "json", "jsonl"])?.as_str() {
                    "json" => SlotsFormat::Json,
                    "jsonl" => SlotsFormat::Jsonl,
                    _ => SlotsFormat::Table,
                }
            }
            "--json" => {
                if f.switch(&flag)? {
                    a.format = SlotsFormat::Json;
                }
            }
            _ => return Err(f.unknown(&flag)),
        }
    }
    Ok(Command::Slots(a))
}

/// The usage text of a command (the top-level one for `None`).
pub fn usage_of(command: Option<&str>) -> &'static str {
    match command {
        Some("stream") => STREAM_USAGE,
        Some("demo") => DEMO_USAGE,
        Some("slots") => SLOTS_USAGE,
        Some("doctor") => DOCTOR_USAGE,
        _ => USAGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn stream_flags() {
        let Ok(Command::Stream(a)) = parse(args(
            "stream --url=postgres://u@h/d --publication p --slot s --create-slot --tables a,,b \
             --from-lsn 0/10 --until-lsn 1/0 --idle-exit 1.5 --max-changes 3 --format pretty",
        )) else {
            panic!("expected stream");
        };
        assert_eq!(a.url.as_deref(), Some("postgres://u@h/d"));
        assert_eq!((a.publication.as_str(), a.slot.as_str()), ("p", "s"));
        assert!(a.create_slot && !a.create_publication && !a.snapshot);
        assert_eq!(a.tables, ["a", "b"]);
        assert_eq!(a.from_lsn, Some(Lsn(0x10)));
        assert_eq!(a.until_lsn, Some(Lsn(1 << 32)));
        assert_eq!(a.idle_exit, Some(Duration::from_millis(1500)));
        assert_eq!(a.max_changes, Some(3));
        assert_eq!(a.format, Some(Format::Pretty));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            "",
            "nope",
            "--url x",
            "stream --slot s",
            "stream --publication p",
            "stream --publication p --slot s --bogus",
            "stream --publication p --slot s --format xml",
            "stream --publication p --slot s --max-changes 0",
            "stream --publication p --slot s --idle-exit -1",
            "stream --publication p --slot s --until-lsn 12",
            "stream --publication p --slot s --from-lsn 0/20 --until-lsn 0/10",
            "stream --publication p --slot s --until-lsn 0/FF --from-lsn 1/0",
            "stream --publication p --slot s --create-slot=yes",
            "stream --publication --slot s",
            "slots --drop",
            "demo extra",
        ] {
            assert!(
                matches!(parse(args(bad)), Err(CliError::Usage { .. })),
                "{bad:?} should be a usage error"
            );
        }
    }

    #[test]
    fn help() {
        assert!(matches!(parse(args("help")), Ok(Command::Help(USAGE))));
        assert!(matches!(
            parse(args("stream --help")),
            Ok(Command::Help(STREAM_USAGE))
        ));
        assert!(matches!(
            parse(args("help slots")),
            Ok(Command::Help(SLOTS_USAGE))
        ));
        assert!(matches!(parse(args("--version")), Ok(Command::Version)));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("512kB"), Some(512 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("-1"), None);
    }
}
