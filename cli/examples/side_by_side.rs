//! pgcdc measured side by side with PostgreSQL's own clients, on one throwaway server, in one
//! run, rounds interleaved so that a busy machine weighs on every client alike. Run it with
//! `scripts/side-by-side` (which builds the binaries first):
//!
//! ```text
//! side_by_side drain     [--rows N] [--tx-rows K] [--rounds R]
//! side_by_side bootstrap [--rows N] [--rounds R]
//! side_by_side latency   [--rate TPS] [--seconds S] [--rounds R]
//! ```
//!
//! - **drain**: a backlog of N orders-like rows in transactions of K is written while nobody
//!   reads, then read to its end by `pg_recvlogical` (raw pgoutput to `/dev/null`: no
//!   decoding), by `lib_drain` (the library: typed changes to a subscriber that drops them) and
//!   by `pgcdc stream > /dev/null` (the CLI: JSON lines), each from its own slot.
//! - **bootstrap**: a table of N rows copied by `psql -c "COPY … TO STDOUT"` to `/dev/null`, by
//!   `lib_drain --snapshot` and by `pgcdc stream --snapshot-only > /dev/null`.
//! - **latency**: `pgbench` commits single-row transactions at TPS for S seconds while one
//!   client reads; each transaction's commit timestamp is subtracted from the moment the
//!   client handed it over (`pg_recvlogical`: its bytes reached this process through a pipe;
//!   `pgcdc stream`: its JSON line did; `lib_drain`: the subscriber received it).
//!
//! - **sink**: the drain's backlog read by `pgcdc stream > /dev/null` and by `pgcdc stream
//!   --sink nats://… --stream …` into a NATS JetStream stream of a throwaway `nats-server -js`
//!   (its CPU from `/proc/<pid>/stat`); after each JetStream run the stream must hold exactly
//!   N + 1 messages (the rows and the round's TRUNCATE).
//!
//! - **backlog**: for profiling by hand: writes the drain's backlog for `--slots K` slots
//!   (`p0` …), prints the URL and the end LSN, and keeps the server until stdin closes.
//!
//! Client CPU and peak memory come from `/usr/bin/time` (GNU time); the walsender's CPU from
//! the postmaster's reaped-children times (`/proc/<postmaster>/stat`), so it is the CPU of
//! every backend that ended during the client's run: its walsender, and for pgcdc the
//! short-lived ordinary connections it opens.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgcdc_testkit::{Cluster, NatsServer, TRUST_USER};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const DB: &str = "sbs";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (what, flags) = args.split_first().ok_or(
        "usage: side_by_side (drain|bootstrap|latency) [--rows N] [--tx-rows K] [--rounds R] \
         [--rate TPS] [--seconds S]",
    )?;
    let flag = |name: &str, default: u64| -> Result<u64> {
        match flags.iter().position(|f| f == name) {
            Some(i) => Ok(flags
                .get(i + 1)
                .ok_or(format!("{name} needs a value"))?
                .parse()?),
            None => Ok(default),
        }
    };
    let bins = Bins::beside_this_program()?;
    let cluster = start_cluster()?;
    match what.as_str() {
        "drain" => drain(
            &cluster,
            &bins,
            flag("--rows", 1_000_000)?,
            flag("--tx-rows", 100)?,
            flag("--rounds", 5)?,
        ),
        "bootstrap" => bootstrap(
            &cluster,
            &bins,
            flag("--rows", 1_000_000)?,
            flag("--rounds", 5)?,
        ),
        "latency" => latency(
            &cluster,
            &bins,
            flag("--rate", 800)?,
            flag("--seconds", 20)?,
            flag("--rounds", 5)?,
        ),
        "sink" => sink(
            &cluster,
            &bins,
            flag("--rows", 1_000_000)?,
            flag("--tx-rows", 100)?,
            flag("--rounds", 3)?,
        ),
        "backlog" => backlog(
            &cluster,
            flag("--rows", 1_000_000)?,
            flag("--tx-rows", 100)?,
            flag("--slots", 4)?,
        ),
        other => Err(format!(
            "unknown measurement {other:?}: drain, bootstrap, latency, sink or backlog"
        )
        .into()),
    }
}

/// The pgcdc binaries, found next to this example (`target/<profile>/examples/`).
struct Bins {
    pgcdc: PathBuf,
    lib_drain: PathBuf,
}

impl Bins {
    fn beside_this_program() -> Result<Bins> {
        let me = std::env::current_exe()?;
        let examples = me.parent().ok_or("no directory for this program")?;
        let profile = examples.parent().ok_or("no profile directory")?;
        let bins = Bins {
            pgcdc: profile.join("pgcdc"),
            lib_drain: examples.join("lib_drain"),
        };
        for b in [&bins.pgcdc, &bins.lib_drain] {
            if !b.exists() {
                return Err(format!(
                    "{} is missing: build it first (scripts/side-by-side does)",
                    b.display()
                )
                .into());
            }
        }
        Ok(bins)
    }
}

fn start_cluster() -> Result<Cluster> {
    eprintln!("starting a throwaway PostgreSQL …");
    let cluster = Cluster::builder()
        .tls(false)
        .setting("max_replication_slots", "20")
        .setting("max_wal_senders", "20")
        .setting("shared_buffers", "256MB")
        .setting("max_wal_size", "4GB")
        .setting("synchronous_commit", "on")
        .start()?;
    cluster.create_database(DB)?;
    cluster.psql(
        DB,
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2),
           note text, created_at timestamptz, status varchar(20), paid bool);
         CREATE TABLE lat (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());
         GRANT ALL ON orders, lat TO PUBLIC;
         GRANT ALL ON SEQUENCE lat_id_seq TO PUBLIC;
         CREATE PUBLICATION orders_pub FOR TABLE orders;
         CREATE PUBLICATION lat_pub FOR TABLE lat;",
    )?;
    Ok(cluster)
}

fn url(cluster: &Cluster) -> String {
    format!(
        "postgres://{}@{}:{}/{DB}?sslmode=disable",
        TRUST_USER.name,
        cluster.host(),
        cluster.port()
    )
}

/// `pgcdc stream` of `orders_pub` from `slot`, then `extra`.
fn stream_args(cluster: &Cluster, slot: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "stream".into(),
        "--url".into(),
        url(cluster),
        "--slot".into(),
        slot.into(),
        "--publication".into(),
        "orders_pub".into(),
    ];
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a
}

fn insert_orders(from: &str, to: &str) -> String {
    format!(
        "INSERT INTO orders SELECT g, g % 5000, (g % 100000) / 100.0, 'order number ' || g,
           timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
           CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'new' END, g % 2 = 0
         FROM generate_series({from}, {to}) g"
    )
}

/// What `/usr/bin/time` and the postmaster said about one client run.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    wall: f64,
    user: f64,
    sys: f64,
    max_rss_kib: u64,
    server_cpu: f64,
}

impl Run {
    /// One progress line on stderr, then `extra`.
    fn log(&self, name: &str, extra: &str) {
        eprintln!(
            "  {name:<34} {:6.2} s wall, {:5.2} s user, {:5.2} s sys, {:4} MiB, server {:5.2} s{extra}",
            self.wall,
            self.user,
            self.sys,
            self.max_rss_kib / 1024,
            self.server_cpu
        );
    }
}

/// Runs `cmd` under `/usr/bin/time`, stdout to `/dev/null`.
fn timed(cluster: &Cluster, program: &Path, args: &[String]) -> Result<Run> {
    let report = std::env::temp_dir().join(format!("pgcdc-sbs-{}.time", std::process::id()));
    let server_before = reaped_children_cpu(cluster)?;
    let t = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&report)
        .args(["-f", "%U %S %M"])
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .status()?;
    let wall = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} {args:?} failed: {status}", program.display()).into());
    }
    // The walsender is reaped a moment after its client left.
    std::thread::sleep(Duration::from_millis(300));
    let server_cpu = reaped_children_cpu(cluster)? - server_before;
    let text = std::fs::read_to_string(&report)?;
    let last = text.lines().last().unwrap_or_default();
    let mut it = last.split_whitespace();
    let mut next = || -> Result<&str> {
        it.next()
            .ok_or_else(|| format!("unexpected /usr/bin/time output {text:?}").into())
    };
    Ok(Run {
        wall,
        user: next()?.parse()?,
        sys: next()?.parse()?,
        max_rss_kib: next()?.parse()?,
        server_cpu,
    })
}

/// The user + system seconds of the postmaster's ended children.
fn reaped_children_cpu(cluster: &Cluster) -> Result<f64> {
    let pid_file = std::fs::read_to_string(cluster.data_dir().join("postmaster.pid"))?;
    let pid = pid_file
        .lines()
        .next()
        .ok_or("empty postmaster.pid")?
        .trim();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command's closing parenthesis; cutime and cstime are the 16th and
    // 17th fields of the whole line.
    let after = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(f.get(i).ok_or("short stat")?.parse::<f64>()? / clock_ticks())
    };
    // after[0] is the state (field 3): field n is after[n - 3].
    Ok(ticks(16 - 3)? + ticks(17 - 3)?)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Prints the medians of each client's runs, per million rows where it says so.
fn table(title: &str, rows: u64, clients: &[(&str, Vec<Run>)]) {
    let per_m = 1_000_000.0 / rows as f64;
    println!("{title}");
    println!(
        "| client | rows/s | wall s | client user s/M | client sys s/M | client CPU s/M | peak RSS MiB | server CPU s/M |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, runs) in clients {
        let wall = median(runs.iter().map(|r| r.wall).collect());
        let user = median(runs.iter().map(|r| r.user).collect());
        let sys = median(runs.iter().map(|r| r.sys).collect());
        let cpu = median(runs.iter().map(|r| r.user + r.sys).collect());
        let rss = median(runs.iter().map(|r| r.max_rss_kib as f64).collect()) / 1024.0;
        let server = median(runs.iter().map(|r| r.server_cpu).collect());
        println!(
            "| {name} | {:.0} | {wall:.2} | {:.2} | {:.2} | {:.2} | {rss:.0} | {:.2} |",
            rows as f64 / wall,
            user * per_m,
            sys * per_m,
            cpu * per_m,
            server * per_m
        );
    }
}

/// A round's slots (`<prefix><round>_<i>`, one per client), created before its backlog is
/// written; returns them with the WAL position after the backlog.
fn round_backlog(
    cluster: &Cluster,
    prefix: &str,
    round: u64,
    rounds: u64,
    clients: usize,
    rows: u64,
    tx_rows: u64,
) -> Result<(Vec<String>, String)> {
    let slots: Vec<String> = (0..clients)
        .map(|i| format!("{prefix}{round}_{i}"))
        .collect();
    for s in &slots {
        cluster.psql(
            DB,
            &format!("SELECT pg_create_logical_replication_slot('{s}', 'pgoutput')"),
        )?;
    }
    cluster.psql(DB, "TRUNCATE orders")?;
    eprintln!(
        "round {}/{rounds}: writing {rows} rows in transactions of {tx_rows} …",
        round + 1
    );
    let end = write_backlog(cluster, rows, tx_rows)?;
    Ok((slots, end))
}

fn drop_slots(cluster: &Cluster, slots: &[String]) -> Result<()> {
    for s in slots {
        cluster.psql(DB, &format!("SELECT pg_drop_replication_slot('{s}')"))?;
    }
    Ok(())
}

fn drain(cluster: &Cluster, bins: &Bins, rows: u64, tx_rows: u64, rounds: u64) -> Result<()> {
    let names = [
        "pg_recvlogical",
        "pgcdc library",
        "pgcdc stream > /dev/null",
    ];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        let (slots, end) = round_backlog(cluster, "d", round, rounds, names.len(), rows, tx_rows)?;
        // Rotate who goes first.
        for k in 0..names.len() {
            let i = (k + round as usize) % names.len();
            let slot = &slots[i];
            let run = match i {
                0 => timed(
                    cluster,
                    &cluster.bin_dir().join("pg_recvlogical"),
                    &recvlogical_args(cluster, slot, "orders_pub", Some(&end)),
                )?,
                1 => timed(
                    cluster,
                    &bins.lib_drain,
                    &[
                        url(cluster),
                        slot.clone(),
                        "orders_pub".into(),
                        "--until".into(),
                        end.clone(),
                    ],
                )?,
                _ => timed(
                    cluster,
                    &bins.pgcdc,
                    &stream_args(cluster, slot, &["--until-lsn", &end]),
                )?,
            };
            run.log(names[i], "");
            runs[i].push(run);
        }
        drop_slots(cluster, &slots)?;
    }
    let clients: Vec<(&str, Vec<Run>)> = names.iter().copied().zip(runs).collect();
    table(
        &format!(
            "drain: {rows} rows in transactions of {tx_rows}, medians of {rounds} rounds (s/M: per million rows)"
        ),
        rows,
        &clients,
    );
    Ok(())
}

/// The user + system seconds a process used so far.
fn process_cpu(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(f.get(i).ok_or("short stat")?.parse::<f64>()? / clock_ticks())
    };
    // utime and stime are fields 14 and 15.
    Ok(ticks(14 - 3)? + ticks(15 - 3)?)
}

/// Messages in a JetStream stream; deletes it when `delete`.
fn stream_messages(nats: &NatsServer, stream: &str, delete: bool) -> Result<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
        let n = js.get_stream(stream).await?.info().await?.state.messages;
        if delete {
            js.delete_stream(stream).await?;
        }
        Ok(n)
    })
}

fn sink(cluster: &Cluster, bins: &Bins, rows: u64, tx_rows: u64, rounds: u64) -> Result<()> {
    let nats = NatsServer::start()?;
    let names = [
        "pgcdc stream > /dev/null",
        "pgcdc stream --sink (JetStream)",
    ];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); names.len()];
    let mut nats_cpu = Vec::new();
    for round in 0..rounds {
        let (slots, end) = round_backlog(cluster, "k", round, rounds, names.len(), rows, tx_rows)?;
        for k in 0..names.len() {
            let i = (k + round as usize) % names.len();
            let slot = &slots[i];
            let stream = format!("SBS{round}");
            let before = process_cpu(nats.pid().ok_or("nats-server is not running")?)?;
            let run = if i == 0 {
                timed(
                    cluster,
                    &bins.pgcdc,
                    &stream_args(cluster, slot, &["--until-lsn", &end]),
                )?
            } else {
                timed(
                    cluster,
                    &bins.pgcdc,
                    &stream_args(
                        cluster,
                        slot,
                        &[
                            "--until-lsn",
                            &end,
                            "--sink",
                            &nats.url(),
                            "--stream",
                            &stream,
                            "--create-stream",
                        ],
                    ),
                )?
            };
            let broker = process_cpu(nats.pid().ok_or("nats-server is not running")?)? - before;
            if i == 1 {
                // The rows and the round's TRUNCATE.
                let stored = stream_messages(&nats, &stream, true)?;
                if stored != rows + 1 {
                    return Err(format!(
                        "the stream holds {stored} messages, expected {} (the rows and a truncate)",
                        rows + 1
                    )
                    .into());
                }
                nats_cpu.push(broker);
            }
            run.log(names[i], &format!(", nats-server {broker:5.2} s"));
            runs[i].push(run);
        }
        drop_slots(cluster, &slots)?;
    }
    let clients: Vec<(&str, Vec<Run>)> = names.iter().copied().zip(runs).collect();
    table(
        &format!(
            "sink: {rows} rows in transactions of {tx_rows}, medians of {rounds} rounds (s/M: per million rows)"
        ),
        rows,
        &clients,
    );
    println!(
        "nats-server CPU during the JetStream runs: {:.2} s/M (median); every run stored exactly {} messages (the rows and the round's truncate)",
        median(nats_cpu) * 1_000_000.0 / rows as f64,
        rows + 1
    );
    Ok(())
}

fn backlog(cluster: &Cluster, rows: u64, tx_rows: u64, slots: u64) -> Result<()> {
    for i in 0..slots {
        cluster.psql(
            DB,
            &format!("SELECT pg_create_logical_replication_slot('p{i}', 'pgoutput')"),
        )?;
    }
    let end = write_backlog(cluster, rows, tx_rows)?;
    println!("{} {end}", url(cluster));
    eprintln!(
        "slots p0 … p{}; the server stays up until stdin closes",
        slots - 1
    );
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink)? > 0 {}
    Ok(())
}

/// Writes `rows` orders in transactions of `tx_rows`; returns the WAL position after them.
fn write_backlog(cluster: &Cluster, rows: u64, tx_rows: u64) -> Result<String> {
    cluster.psql(
        DB,
        &format!(
            "DO $$
             BEGIN
               FOR b IN 0..{last} LOOP
                 {insert};
                 COMMIT;
               END LOOP;
             END $$",
            last = rows.div_ceil(tx_rows) - 1,
            insert = insert_orders(
                &format!("b * {tx_rows} + 1::bigint"),
                &format!("least(b * {tx_rows} + {tx_rows}, {rows})")
            ),
        ),
    )?;
    let end = cluster.psql(DB, "SELECT pg_current_wal_lsn()")?;
    cluster.psql(DB, "CHECKPOINT")?;
    Ok(end.trim().to_owned())
}

fn recvlogical_args(
    cluster: &Cluster,
    slot: &str,
    publication: &str,
    end: Option<&str>,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-h".into(),
        cluster.host().into(),
        "-p".into(),
        cluster.port().to_string(),
        "-U".into(),
        TRUST_USER.name.into(),
        "-d".into(),
        DB.into(),
        "--slot".into(),
        slot.into(),
        "--start".into(),
        "-f".into(),
        "-".into(),
        "-o".into(),
        "proto_version=1".into(),
        "-o".into(),
        format!("publication_names={publication}"),
    ];
    if let Some(end) = end {
        a.push("--endpos".into());
        a.push(end.into());
        a.push("--no-loop".into());
    }
    a
}

fn bootstrap(cluster: &Cluster, bins: &Bins, rows: u64, rounds: u64) -> Result<()> {
    eprintln!("writing a table of {rows} rows …");
    cluster.psql(DB, "TRUNCATE orders")?;
    cluster.psql(DB, &insert_orders("1", &rows.to_string()))?;
    cluster.psql(DB, "VACUUM ANALYZE orders")?;
    let names = [
        "psql COPY > /dev/null",
        "pgcdc library",
        "pgcdc stream --snapshot-only",
    ];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for k in 0..names.len() {
            let i = (k + round as usize) % names.len();
            let slot = format!("b{round}_{i}");
            let run = match i {
                0 => timed(
                    cluster,
                    cluster.psql_path(),
                    &[
                        "-X".into(),
                        "-q".into(),
                        "-h".into(),
                        cluster.host().into(),
                        "-p".into(),
                        cluster.port().to_string(),
                        "-U".into(),
                        TRUST_USER.name.into(),
                        "-d".into(),
                        DB.into(),
                        "-c".into(),
                        "COPY orders TO STDOUT".into(),
                    ],
                )?,
                1 => timed(
                    cluster,
                    &bins.lib_drain,
                    &[
                        url(cluster),
                        slot.clone(),
                        "orders_pub".into(),
                        "--snapshot".into(),
                    ],
                )?,
                _ => timed(
                    cluster,
                    &bins.pgcdc,
                    &stream_args(cluster, &slot, &["--snapshot-only"]),
                )?,
            };
            eprintln!(
                "  {:<28} {:6.2} s wall, {:5.2} s user, {:5.2} s sys, {:4} MiB",
                names[i],
                run.wall,
                run.user,
                run.sys,
                run.max_rss_kib / 1024
            );
            runs[i].push(run);
            let _ = cluster.psql(
                DB,
                &format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = '{slot}'"
                ),
            );
        }
    }
    let clients: Vec<(&str, Vec<Run>)> = names.iter().copied().zip(runs).collect();
    table(
        &format!(
            "bootstrap: a table of {rows} rows, medians of {rounds} rounds (s/M: per million rows)"
        ),
        rows,
        &clients,
    );
    Ok(())
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn latency(cluster: &Cluster, bins: &Bins, rate: u64, seconds: u64, rounds: u64) -> Result<()> {
    let names = ["pg_recvlogical", "pgcdc library", "pgcdc stream"];
    let mut samples: Vec<Vec<i64>> = vec![Vec::new(); names.len()];
    let script = std::env::temp_dir().join(format!("pgcdc-sbs-{}.sql", std::process::id()));
    std::fs::write(&script, "INSERT INTO lat DEFAULT VALUES;\n")?;
    for round in 0..rounds {
        eprintln!(
            "round {}/{rounds}: {rate} transactions/s for {seconds} s per client",
            round + 1
        );
        for k in 0..names.len() {
            let i = (k + round as usize) % names.len();
            let slot = format!("l{round}_{i}");
            cluster.psql(
                DB,
                &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
            )?;
            let expected = rate * seconds;
            let mut child = match i {
                0 => Command::new(cluster.bin_dir().join("pg_recvlogical"))
                    .args(recvlogical_args(cluster, &slot, "lat_pub", None))
                    .stdout(Stdio::piped())
                    .spawn()?,
                1 => Command::new(&bins.lib_drain)
                    .args([
                        url(cluster),
                        slot.clone(),
                        "lat_pub".into(),
                        "--latency".into(),
                    ])
                    .arg(expected.to_string())
                    .stdout(Stdio::piped())
                    .spawn()?,
                _ => Command::new(&bins.pgcdc)
                    .args(["stream", "--url", &url(cluster), "--slot", &slot])
                    .args(["--publication", "lat_pub"])
                    .stdout(Stdio::piped())
                    .spawn()?,
            };
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let reader = std::thread::spawn(move || -> Result<Vec<i64>> {
                match i {
                    0 => read_recvlogical(stdout, expected),
                    1 => Ok(BufReader::new(stdout)
                        .lines()
                        .map_while(std::result::Result::ok)
                        .filter_map(|l| l.trim().parse().ok())
                        .collect()),
                    _ => read_jsonl(stdout, expected),
                }
            });
            // Let the client reach streaming before the load starts.
            std::thread::sleep(Duration::from_secs(2));
            let status = Command::new(cluster.bin_dir().join("pgbench"))
                .args([
                    "-n",
                    "-h",
                    cluster.host(),
                    "-p",
                    &cluster.port().to_string(),
                ])
                .args(["-U", TRUST_USER.name, "-c", "1", "-t"])
                .arg(expected.to_string())
                .args(["-R", &rate.to_string(), "-f"])
                .arg(&script)
                .arg(DB)
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                return Err(format!("pgbench failed: {status}").into());
            }
            let got = reader.join().map_err(|_| "reader panicked")??;
            let _ = child.kill();
            let _ = child.wait();
            let mut sorted = got.clone();
            sorted.sort_unstable();
            eprintln!(
                "  {:<14} {} transactions, p50 {:.2} ms, p99 {:.2} ms",
                names[i],
                got.len(),
                pct(&sorted, 50.0),
                pct(&sorted, 99.0)
            );
            samples[i].extend(got);
            cluster.psql(DB, &format!("SELECT pg_drop_replication_slot('{slot}')"))?;
        }
    }
    let _ = std::fs::remove_file(&script);
    println!(
        "latency: commit timestamp to delivery, {rate} single-row transactions/s, {seconds} s × {rounds} rounds per client, pooled"
    );
    println!("| client | transactions | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let floor = {
        let mut s = samples[0].clone();
        s.sort_unstable();
        pct(&s, 99.0)
    };
    for (name, mut s) in names.iter().zip(samples) {
        s.sort_unstable();
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.len(),
            pct(&s, 50.0),
            pct(&s, 90.0),
            pct(&s, 99.0),
            pct(&s, 99.9),
            s.last().copied().unwrap_or(0) as f64 / 1000.0
        );
        if *name != names[0] {
            println!(
                "|   p99 ÷ pg_recvlogical's | {:.2}× | | | | | |",
                pct(&s, 99.0) / floor
            );
        }
    }
    Ok(())
}

/// The `p`th percentile of sorted microseconds, in milliseconds.
fn pct(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Reads `pg_recvlogical`'s raw pgoutput (each message followed by a newline) and returns the
/// latency of each Commit: the moment its bytes arrived minus its commit timestamp.
fn read_recvlogical(mut out: impl std::io::Read, expected: u64) -> Result<Vec<i64>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lat = Vec::new();
    let mut at = 0usize;
    while (lat.len() as u64) < expected {
        let n = out.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        let now = now_micros();
        buf.extend_from_slice(&chunk[..n]);
        // Whole messages only; a partial one waits for more bytes.
        while let Some(len) = pgoutput_len(&buf[at..]) {
            let msg = &buf[at..at + len];
            if msg.first() == Some(&b'C') && msg.len() >= 26 {
                let ts = i64::from_be_bytes(msg[18..26].try_into()?);
                lat.push(now - (ts + PG_EPOCH_MICROS));
            }
            at += len + 1; // and its newline
        }
        if at > 0 {
            buf.drain(..at.min(buf.len()));
            at = 0;
        }
    }
    Ok(lat)
}

/// The length of the pgoutput message at the start of `b` (without pg_recvlogical's newline),
/// or `None` when it is not complete yet. Knows the messages a publication of `lat` sends.
fn pgoutput_len(b: &[u8]) -> Option<usize> {
    let cstr = |from: usize| -> Option<usize> {
        b.get(from..)?
            .iter()
            .position(|&c| c == 0)
            .map(|p| from + p + 1)
    };
    let len = match *b.first()? {
        b'B' => 21,
        b'C' => 26,
        b'O' => cstr(9)?,
        b'Y' => cstr(cstr(5)?)?,
        b'R' => {
            let mut p = cstr(cstr(5)?)?; // relid, namespace, name
            p += 1; // replica identity
            let ncols = u16::from_be_bytes(b.get(p..p + 2)?.try_into().ok()?);
            p += 2;
            for _ in 0..ncols {
                p = cstr(p + 1)? + 8; // flags, name, type oid, typmod
            }
            p
        }
        b'I' => tuple_end(b, 6)?, // relid, 'N'
        other => {
            eprintln!("pgoutput message {other:?} not expected in the latency run");
            return None;
        }
    };
    (b.len() > len).then_some(len)
}

fn tuple_end(b: &[u8], mut p: usize) -> Option<usize> {
    let ncols = u16::from_be_bytes(b.get(p..p + 2)?.try_into().ok()?);
    p += 2;
    for _ in 0..ncols {
        match *b.get(p)? {
            b't' | b'b' => {
                let n = u32::from_be_bytes(b.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                p += 5 + n;
            }
            _ => p += 1,
        }
    }
    Some(p)
}

/// Reads `pgcdc stream`'s JSON lines: the latency of each line is the moment it arrived minus
/// its `effective_from` (the commit timestamp, in nanoseconds).
fn read_jsonl(out: impl std::io::Read, expected: u64) -> Result<Vec<i64>> {
    let mut lat = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        let now = now_micros();
        let Some((_, rest)) = line.split_once("\"effective_from\":") else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let ns: i64 = digits.parse()?;
        lat.push(now - ns / 1000);
        if lat.len() as u64 >= expected {
            break;
        }
    }
    Ok(lat)
}
