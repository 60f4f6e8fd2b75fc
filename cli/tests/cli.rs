//! The `pgcdc` binary against a real PostgreSQL: its output line by line, its exit codes,
//! acknowledgement and clean stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgcdc_testkit::{Cluster, SCRAM_USER};
use serde_json::Value as J;

const LIMIT: Duration = Duration::from_secs(60);

/// One test's database on the shared cluster.
/// `s` with every byte but letters, digits and `-` percent-encoded, for a URL.
fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Db {
    cluster: &'static Cluster,
    name: String,
}

impl Db {
    fn new(name: &str) -> Db {
        let cluster = Cluster::shared();
        let name = format!("cli_{name}");
        cluster.create_database(&name).unwrap();
        Db { cluster, name }
    }

    fn sql(&self, sql: &str) -> String {
        self.cluster
            .psql(&self.name, sql)
            .unwrap_or_else(|e| panic!("SQL failed: {sql}: {e}"))
    }

    /// The URL of the database for the SCRAM user (its password percent-encoded).
    fn url(&self) -> String {
        let pw = percent_encoded(SCRAM_USER.password.unwrap());
        format!(
            "postgres://{}:{pw}@{}:{}/{}",
            SCRAM_USER.name,
            self.cluster.host(),
            self.cluster.port(),
            self.name
        )
    }

    /// Slot names are global to the cluster: each test's are prefixed with its database name.
    fn slot(&self, slot: &str) -> String {
        format!("{}_{slot}", self.name)
    }

    fn create_slot(&self, slot: &str) {
        let slot = self.slot(slot);
        self.sql(&format!(
            "SELECT 1 FROM pg_create_logical_replication_slot('{slot}', 'pgoutput')"
        ));
    }

    fn confirmed_flush(&self, slot: &str) -> String {
        let slot = self.slot(slot);
        self.sql(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ))
    }

    /// Whether the slot's confirmed position is at or past `lsn` (a JSON string).
    fn confirmed_flush_at_least(&self, slot: &str, lsn: &J) -> bool {
        let want = lsn_value(lsn.as_str().unwrap());
        let got = self.confirmed_flush(slot);
        assert!(
            lsn_value(&got) >= want,
            "confirmed {got}, expected at least {lsn}"
        );
        true
    }

    /// Waits until a consumer is streaming from `slot`.
    fn wait_active(&self, slot: &str) {
        self.wait_slot(slot, true);
    }

    fn wait_inactive(&self, slot: &str) {
        self.wait_slot(slot, false);
    }

    /// Waits until the slot's `active` is `active`.
    fn wait_slot(&self, slot: &str, active: bool) {
        let slot = self.slot(slot);
        let want = if active { "t" } else { "f" };
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            let now = self.sql(&format!(
                "SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'"
            ));
            if now == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("slot {slot} never reached active = {active}");
    }

    fn stream_args(&self, publication: &str, slot: &str, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "stream",
            "--url",
            &self.url(),
            "--publication",
            publication,
            "--slot",
            &self.slot(slot),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }
}

/// The binary with a clean environment (no PG* variables of the caller).
fn pgcdc<S: AsRef<str>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgcdc"));
    cmd.args(args.iter().map(AsRef::as_ref));
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") && k != "PGCDC_PG_BIN" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs to completion, killing the process after `limit`.
fn run<S: AsRef<str>>(args: &[S], limit: Duration) -> Output {
    let child = pgcdc(args).spawn().unwrap();
    wait(child, limit)
}

fn wait(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("pgcdc did not end within {limit:?}");
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns the JSON lines of stdout.
fn json_lines(o: &Output) -> Vec<J> {
    assert_eq!(
        o.status.code(),
        Some(0),
        "pgcdc failed: stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `op table id` of each line.
fn summary(lines: &[J]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let table = l["table"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| l["tables"].to_string());
            format!(
                "{} {} {}",
                l["op"].as_str().unwrap(),
                table,
                l["id"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

fn is_lsn(v: &J) -> bool {
    v.as_str().is_some_and(|s| {
        s.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.to_owned() + b).chars().all(|c| c.is_ascii_hexdigit())
        })
    })
}

fn lsn_value(s: &str) -> u64 {
    let (hi, lo) = s.split_once('/').unwrap();
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

#[test]
fn usage_errors_exit_2() {
    for line in [
        "",
        "nonsense",
        "stream --publication p",
        "stream --publication p --slot s --bogus",
        "stream --publication p --slot s --format xml",
        "stream --publication p --slot s --max-changes many",
        "stream --publication p --slot s --until-lsn 12",
        "stream --publication p --slot s --from-lsn 0/20 --until-lsn 0/10",
        "slots --drop",
        "stream --url mysql://x --publication p --slot s",
        "stream --url postgres://u@h/d --publication p --slot Bad-Slot",
        "stream --publication p --slot s --spill-threshold lots",
        "stream --publication p --slot s --streaming sometimes",
        "stream --url postgres://u@h/d --publication p --slot s --spill-threshold 1KiB",
    ] {
        let args: Vec<&str> = line.split_whitespace().collect();
        let o = run(&args, LIMIT);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("Usage"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = run(&["stream", "--help"], LIMIT);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--until-lsn"));
    let o = run(&["--version"], LIMIT);
    assert!(stdout(&o).starts_with("pgcdc "));
}

#[test]
fn stream_prints_one_line_per_change() {
    let db = Db::new("lines");
    db.sql(
        "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
         CREATE TABLE audit (id int PRIMARY KEY, note text);
         ALTER TABLE audit REPLICA IDENTITY FULL;
         CREATE PUBLICATION pub FOR TABLE items, audit;",
    );
    db.create_slot("s");
    db.sql("INSERT INTO items VALUES (1, 'apple', 3)");
    db.sql("UPDATE items SET qty = 4 WHERE id = 1");
    db.sql("DELETE FROM items WHERE id = 1");
    db.sql(
        "BEGIN; INSERT INTO audit VALUES (7, 'a'), (8, 'b'); UPDATE audit SET note = 'c' WHERE id = 7; COMMIT",
    );
    db.sql("TRUNCATE items, audit");
    let o = run(
        &db.stream_args("pub", "s", &["--max-changes", "7", "--idle-exit", "20"]),
        LIMIT,
    );
    let lines = json_lines(&o);
    assert_eq!(
        summary(&lines),
        [
            "insert items items:1",
            "update items items:1",
            "delete items items:1",
            "insert audit audit:7",
            "insert audit audit:8",
            "update audit audit:7",
            "truncate [\"items\",\"audit\"] -",
        ]
    );
    assert_eq!(
        lines[0]["props"],
        serde_json::json!({"id": 1, "name": "apple", "qty": 3})
    );
    assert!(lines[0].get("old").is_none());
    assert_eq!(lines[1]["props"]["qty"], 4);
    assert_eq!(
        lines[2]["old"],
        serde_json::json!({"id": 1}),
        "DEFAULT identity: the key"
    );
    assert_eq!(
        lines[5]["old"],
        serde_json::json!({"id": 7, "note": "a"}),
        "FULL: the row"
    );
    assert_eq!(lines[5]["props"]["note"], "c");
    assert_eq!(lines[6]["cascade"], false);
    for l in &lines {
        assert!(l["xid"].as_u64().unwrap() > 0, "{l}");
        assert!(is_lsn(&l["commit_lsn"]) && is_lsn(&l["end_lsn"]), "{l}");
        assert!(
            lsn_value(l["end_lsn"].as_str().unwrap())
                > lsn_value(l["commit_lsn"].as_str().unwrap())
        );
        let t = l["commit_time"].as_str().unwrap();
        assert!(
            t.len() == 27 && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
        assert!(l["effective_from"].as_u64().unwrap() > 1_600_000_000_000_000_000);
        assert!(l.get("chunk").is_none());
    }
    // The three changes of one transaction share its xid and LSNs.
    for f in ["xid", "commit_lsn", "end_lsn", "commit_time"] {
        assert_eq!(lines[3][f], lines[4][f]);
        assert_eq!(lines[3][f], lines[5][f]);
        assert_ne!(lines[2][f], lines[3][f]);
    }
    // Every transaction was written whole, so the slot is confirmed up to the last one (or
    // past it, when the server's WAL moved on meanwhile).
    assert!(db.confirmed_flush_at_least("s", &lines[6]["end_lsn"]));
    assert!(
        stderr(&o).contains("--max-changes reached"),
        "{}",
        stderr(&o)
    );
}

/// A streamed transaction larger than the spill threshold, through the CLI: every row, in
/// order, and no spill file left; a missing spill directory is a clear error naming the flag.
#[test]
fn streamed_transaction_spills_through_the_cli() {
    let db = Db::new("streamcli");
    db.sql(
        "CREATE TABLE big (id int PRIMARY KEY, pad text);
         CREATE PUBLICATION pub FOR TABLE big;",
    );
    db.create_slot("s");
    db.sql("INSERT INTO big SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 5000) g");
    let dir = std::env::temp_dir().join(format!("pgcdc-cli-spill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_arg = dir.to_string_lossy().into_owned();
    let o = run(
        &db.stream_args(
            "pub",
            "s",
            &[
                "--streaming",
                "on",
                "--spill-threshold",
                "64KiB",
                "--spill-dir",
                &dir_arg,
                "--max-changes",
                "5000",
                "--idle-exit",
                "30",
            ],
        ),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    let ids: Vec<u64> = lines
        .iter()
        .map(|l| l["props"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=5000).collect::<Vec<u64>>());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).ok();
    let o = run(
        &db.stream_args(
            "pub",
            "s",
            &[
                "--spill-dir",
                "/nonexistent/pgcdc-spill",
                "--idle-exit",
                "5",
            ],
        ),
        LIMIT,
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("--spill-dir: /nonexistent/pgcdc-spill"),
        "{}",
        stderr(&o)
    );
}

/// A Unix-socket directory given as the URL's `host` parameter (libpq's form): the CLI streams
/// over the socket.
#[test]
fn unix_socket_host_in_the_url() {
    let db = Db::new("unixurl");
    db.sql(
        "CREATE TABLE u (id int PRIMARY KEY);
         CREATE PUBLICATION pub FOR TABLE u;",
    );
    db.create_slot("s");
    db.sql("INSERT INTO u VALUES (1)");
    let dir = percent_encoded(&db.cluster.socket_dir().to_string_lossy());
    let url = format!("{}?host={dir}", db.url());
    let mut args = db.stream_args("pub", "s", &["--max-changes", "1", "--idle-exit", "20"]);
    let at = args.iter().position(|a| a == "--url").unwrap() + 1;
    args[at] = url;
    let o = run(&args, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(summary(&json_lines(&o)), ["insert u u:1"]);
}

#[test]
fn values_are_lossless() {
    let db = Db::new("values");
    db.sql(
        "CREATE TABLE v (id int PRIMARY KEY, n numeric, big int8, f float8, g float4, b bytea,
                         j jsonb, js json, a int[], m text[], ts timestamptz, t timestamp, d date,
                         s text, u uuid, i interval, z text);
         CREATE PUBLICATION pub FOR TABLE v;",
    );
    db.create_slot("s");
    db.sql(
        r#"INSERT INTO v VALUES (1, 12345678901234567890.123456789000, 9223372036854775807,
              'NaN', '-Infinity', '\x00ff10', '{"w": {"x": 1.0}, "k": [1, 2.50, null]}',
              '{"dup": 1, "dup": 2, "x": 1.5e300}', '{{1,NULL},{3,4}}', '{"a,b",NULL,"\"q\""}',
              '2024-02-29 08:15:01.5+00', '2024-02-29 08:15:01.000001', '2024-02-29',
              E'line\nbreak "quoted" \\ tab\t', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
              '1 day 02:03:04', NULL)"#,
    );
    db.sql("INSERT INTO v (id, n, f) VALUES (2, 'NaN', 'Infinity')");
    let o = run(&db.stream_args("pub", "s", &["--max-changes", "2"]), LIMIT);
    let raw = stdout(&o);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    let first = raw.lines().next().unwrap();
    // Exact digits, as JSON numbers.
    assert!(
        first.contains(r#""n":12345678901234567890.123456789000,"#),
        "{first}"
    );
    assert!(first.contains(r#""big":9223372036854775807,"#), "{first}");
    // jsonb as the server normalized it; json exactly as written, duplicate keys included.
    assert!(
        first.contains(r#""j":{"k":[1,2.50,null],"w":{"x":1.0}}"#),
        "{first}"
    );
    assert!(
        first.contains(r#""js":{"dup":1,"dup":2,"x":1.5e300}"#),
        "{first}"
    );
    let p = &lines[0]["props"];
    assert_eq!(p["f"], "NaN");
    assert_eq!(p["g"], "-Infinity");
    assert_eq!(p["b"], "\\x00ff10");
    assert_eq!(p["a"], serde_json::json!([[1, null], [3, 4]]));
    assert_eq!(p["m"], serde_json::json!(["a,b", null, "\"q\""]));
    assert_eq!(p["ts"], "2024-02-29T08:15:01.500000Z");
    assert_eq!(p["t"], "2024-02-29T08:15:01.000001");
    assert_eq!(p["d"], "2024-02-29");
    assert_eq!(p["s"], "line\nbreak \"quoted\" \\ tab\t");
    assert_eq!(p["u"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(p["i"], "1 day 02:03:04");
    assert_eq!(p["z"], J::Null);
    let q = &lines[1]["props"];
    assert_eq!(q["n"], "NaN");
    assert_eq!(q["f"], "Infinity");
    assert_eq!(q["big"], J::Null);
}

/// Array lower bounds and jsonb `null` (against SQL NULL), in columns and inside arrays.
#[test]
fn array_bounds_and_json_nulls() {
    let db = Db::new("bounds");
    db.sql(
        "CREATE TABLE v (id int PRIMARY KEY, a int[], b int[], m int[], j jsonb, k jsonb,
                         w jsonb, ja jsonb[]);
         CREATE PUBLICATION pub FOR TABLE v;",
    );
    db.create_slot("s");
    db.sql(
        r#"INSERT INTO v VALUES (1, '[5:6]={1,2}', '{1,2}', '[0:1][-1:0]={{1,NULL},{3,4}}',
              'null', NULL, '{"$json": 1}',
              ARRAY['null'::jsonb, NULL, '{"$json": null}', '{"a": null}'])"#,
    );
    let o = run(&db.stream_args("pub", "s", &["--max-changes", "1"]), LIMIT);
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{}", stderr(&o));
    let p = &lines[0]["props"];
    assert_eq!(p["a"], serde_json::json!({"lower": [5], "values": [1, 2]}));
    assert_eq!(p["b"], serde_json::json!([1, 2]));
    assert_eq!(
        p["m"],
        serde_json::json!({"lower": [0, -1], "values": [[1, null], [3, 4]]})
    );
    // jsonb null is wrapped; SQL NULL is JSON null; an object that looks like the wrapper
    // is wrapped too, so the form is unambiguous.
    assert_eq!(p["j"], serde_json::json!({"$json": null}));
    assert_eq!(p["k"], J::Null);
    assert_eq!(p["w"], serde_json::json!({"$json": {"$json": 1}}));
    assert_eq!(
        p["ja"],
        serde_json::json!([{"$json": null}, null, {"$json": {"$json": null}}, {"a": null}])
    );
}

/// `--max-changes` that cuts a transaction short: the transaction is not acknowledged and is
/// sent again, whole, by the next run; the earlier one is not.
#[test]
fn partial_transaction_is_not_acknowledged() {
    let db = Db::new("partial");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    db.create_slot("s");
    db.sql("INSERT INTO t VALUES (1)");
    db.sql("INSERT INTO t VALUES (2), (3), (4)");
    let o = run(&db.stream_args("pub", "s", &["--max-changes", "2"]), LIMIT);
    let first = json_lines(&o);
    assert_eq!(summary(&first), ["insert t t:1", "insert t t:2"]);
    // Confirmed up to the first transaction, not into the second.
    assert!(db.confirmed_flush_at_least("s", &first[0]["end_lsn"]));
    let confirmed = lsn_value(&db.confirmed_flush("s"));
    assert!(confirmed < lsn_value(first[1]["end_lsn"].as_str().unwrap()));
    let o = run(&db.stream_args("pub", "s", &["--idle-exit", "2"]), LIMIT);
    let second = json_lines(&o);
    assert_eq!(
        summary(&second),
        ["insert t t:2", "insert t t:3", "insert t t:4"]
    );
    assert!(db.confirmed_flush_at_least("s", &second[2]["end_lsn"]));
    assert!(stderr(&o).contains("idle"), "{}", stderr(&o));
    // Nothing left.
    let o = run(&db.stream_args("pub", "s", &["--idle-exit", "1"]), LIMIT);
    assert!(json_lines(&o).is_empty());
}

#[test]
fn until_lsn_and_from_lsn() {
    let db = Db::new("until");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    for s in ["s1", "s2", "s3"] {
        db.create_slot(s);
    }
    for i in 1..=3 {
        db.sql(&format!("INSERT INTO t VALUES ({i})"));
    }
    let all = json_lines(&run(
        &db.stream_args("pub", "s1", &["--max-changes", "3"]),
        LIMIT,
    ));
    let ends: Vec<&str> = all.iter().map(|l| l["end_lsn"].as_str().unwrap()).collect();
    // Ends after the transaction whose end reaches the LSN.
    let o = run(
        &db.stream_args("pub", "s2", &["--until-lsn", ends[1]]),
        LIMIT,
    );
    assert_eq!(summary(&json_lines(&o)), ["insert t t:1", "insert t t:2"]);
    assert!(db.confirmed_flush_at_least("s2", &all[1]["end_lsn"]));
    assert!(lsn_value(&db.confirmed_flush("s2")) < lsn_value(ends[2]));
    // Starts after the given position.
    let o = run(
        &db.stream_args("pub", "s3", &["--from-lsn", ends[1], "--idle-exit", "2"]),
        LIMIT,
    );
    assert_eq!(summary(&json_lines(&o)), ["insert t t:3"]);
}

/// A second consumer of a slot in use waits and retries (the attempts on stderr), and takes
/// over once the first one is gone.
#[test]
fn slot_in_use_waits_and_retries() {
    let db = Db::new("inuse");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    db.create_slot("s");
    let first = pgcdc(&db.stream_args("pub", "s", &[])).spawn().unwrap();
    db.wait_active("s");
    let mut second = pgcdc(&db.stream_args("pub", "s", &["--idle-exit", "3"]))
        .spawn()
        .unwrap();
    let err = second.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The second one reports the slot in use and retries.
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("in use") && l.contains("attempt=2"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("no second attempt reported: {seen:#?}");
        }));
    }
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    let o = wait(first, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    db.wait_active("s");
    db.sql("INSERT INTO t VALUES (7)");
    let o = wait(second, LIMIT);
    let lines = json_lines(&o);
    assert_eq!(summary(&lines), ["insert t t:7"]);
}

#[test]
fn sigterm_stops_cleanly() {
    let db = Db::new("sigterm");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    db.create_slot("s");
    let mut child = pgcdc(&db.stream_args("pub", "s", &[])).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    db.wait_active("s");
    db.sql("INSERT INTO t VALUES (1)");
    db.sql("INSERT INTO t VALUES (2)");
    let mut lines = Vec::new();
    for _ in 0..2 {
        let l = rx.recv_timeout(LIMIT).expect("a change line");
        lines.push(serde_json::from_str::<J>(&l).unwrap());
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = wait(child, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("SIGTERM"), "{}", stderr(&o));
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "no more lines"
    );
    assert_eq!(summary(&lines), ["insert t t:1", "insert t t:2"]);
    // The final status update confirmed what was written.
    assert!(db.confirmed_flush_at_least("s", &lines[1]["end_lsn"]));
}

/// `--metrics-addr` serves the source's figures in the Prometheus text format while it
/// streams: scraped after two transactions of five rows, they count exactly those.
#[test]
fn metrics_are_scraped_while_streaming() {
    use std::io::{Read, Write};
    let db = Db::new("metrics");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    db.create_slot("s");
    let mut child = pgcdc(&db.stream_args("pub", "s", &["--metrics-addr", "127.0.0.1:0"]))
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The address actually bound (port 0: any free one) is logged on stderr.
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some((_, rest)) = line.split_once("serving Prometheus metrics at http://") {
                let addr = rest.split('/').next().unwrap_or_default().to_owned();
                let _ = addr_tx.send(addr);
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(LIMIT)
        .expect("the metrics address on stderr");
    db.wait_active("s");
    db.sql("INSERT INTO t SELECT generate_series(1, 3)");
    db.sql("INSERT INTO t SELECT generate_series(4, 5)");
    for _ in 0..5 {
        rx.recv_timeout(LIMIT).expect("a change line");
    }
    let scrape = || {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut page = String::new();
        c.read_to_string(&mut page).unwrap();
        page
    };
    let value = |page: &str, name: &str| -> Option<f64> {
        page.lines()
            .find(|l| l.starts_with(&format!("{name}{{source=\"pgcdc\"}} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let deadline = Instant::now() + LIMIT;
    let page = loop {
        let page = scrape();
        if value(&page, "pgcdc_transactions_total") == Some(2.0) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        page.contains("Content-Type: text/plain; version=0.0.4"),
        "{page}"
    );
    assert_eq!(value(&page, "pgcdc_changes_total"), Some(5.0), "{page}");
    assert_eq!(
        value(&page, "pgcdc_transactions_total"),
        Some(2.0),
        "{page}"
    );
    assert_eq!(value(&page, "pgcdc_up"), Some(1.0), "{page}");
    assert_eq!(value(&page, "pgcdc_reconnects_total"), Some(0.0), "{page}");
    assert!(
        value(&page, "pgcdc_bytes_received_total").unwrap() > 0.0,
        "{page}"
    );
    assert!(value(&page, "pgcdc_lag_bytes").is_some(), "{page}");
    assert!(value(&page, "pgcdc_subscribers") == Some(1.0), "{page}");
    let age = value(&page, "pgcdc_last_commit_age_seconds").expect("the commit age");
    assert!((0.0..60.0).contains(&age), "{page}");
    let committed = value(&page, "pgcdc_last_commit_timestamp_seconds").unwrap();
    assert!(committed > 1.7e9, "{page}");
    assert!(
        page.contains("# TYPE pgcdc_changes_total counter"),
        "{page}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = wait(child, LIMIT);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn creates_slot_and_publication_for_chosen_tables() {
    let db = Db::new("create");
    db.sql(
        "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY);
         ALTER TABLE a OWNER TO pgcdc_scram;",
    );
    let child = pgcdc(&db.stream_args(
        "newpub",
        "newslot",
        &[
            "--create-slot",
            "--create-publication",
            "--tables",
            "a",
            "--max-changes",
            "2",
            "--format",
            "pretty",
        ],
    ))
    .spawn()
    .unwrap();
    db.wait_active("newslot");
    db.sql("INSERT INTO b VALUES (1)");
    db.sql("INSERT INTO a VALUES (1, 'x')");
    db.sql("UPDATE a SET v = 'y'");
    let o = wait(child, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("── tx "), "{text}");
    assert!(
        lines[1].starts_with("  insert   a:1  {\"id\":1,\"v\":\"x\"}"),
        "{text}"
    );
    assert!(lines[2].starts_with("── tx "), "{text}");
    assert!(
        lines[3].starts_with("  update   a:1  {\"id\":1,\"v\":\"y\"}"),
        "{text}"
    );
    assert_eq!(
        db.sql(
            "SELECT string_agg(tablename, ',') FROM pg_publication_tables WHERE pubname = 'newpub'"
        ),
        "a"
    );
}

#[test]
fn snapshot_then_stream() {
    let db = Db::new("snap");
    db.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         ALTER TABLE t OWNER TO pgcdc_scram;
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 250) g;
         CREATE PUBLICATION p FOR TABLE t;",
    );
    let child = pgcdc(&db.stream_args(
        "p",
        "s",
        &["--create-slot", "--snapshot", "--max-changes", "251"],
    ))
    .spawn()
    .unwrap();
    db.wait_active("s");
    db.sql("INSERT INTO t VALUES (1000, 'after')");
    let o = wait(child, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 251, "{}", stdout(&o));
    let mut ids: Vec<i64> = lines
        .iter()
        .map(|l| l["props"]["id"].as_i64().unwrap())
        .collect();
    assert!(
        lines[..250]
            .iter()
            .all(|l| l["op"] == "insert" && l["xid"] == 0)
    );
    assert_eq!(lines[250]["props"]["id"], 1000);
    assert_ne!(lines[250]["xid"], 0);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 251, "every row once");
    // The slot exists now: a second --snapshot run resumes instead of copying again.
    db.sql("INSERT INTO t VALUES (1001, 'again')");
    let o = run(
        &db.stream_args("p", "s", &["--snapshot", "--max-changes", "1"]),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(summary(&json_lines(&o)), ["insert t t:1001"]);
}

/// `--snapshot-only` prints every row that exists once and exits by itself, leaving no slot.
#[test]
fn snapshot_only_exports_and_exits() {
    let db = Db::new("snaponly");
    db.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         GRANT SELECT ON t TO PUBLIC;
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 3000) g;
         CREATE PUBLICATION p FOR TABLE t;",
    );
    let o = run(&db.stream_args("p", "once", &["--snapshot-only"]), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("snapshot copied"), "{}", stderr(&o));
    let lines = json_lines(&o);
    let mut ids: Vec<i64> = lines
        .iter()
        .map(|l| l["props"]["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(lines.len(), 3000);
    assert_eq!(ids.len(), 3000, "every row once");
    assert!(lines.iter().all(|l| l["op"] == "insert" && l["xid"] == 0));
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'once'")
            .trim(),
        "0",
        "the temporary slot is gone"
    );
    // Off a terminal the progress is logged (here every 10 ms, so even a short copy is
    // seen), with rows against the estimate.
    db.sql("ANALYZE t");
    let o = run(
        &db.stream_args(
            "p",
            "once2",
            &["--snapshot-only", "--progress-every", "0.01"],
        ),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json_lines(&o).len(), 3000);
    let err = stderr(&o);
    // Periodic lines, when the copy lasted long enough for one, show the estimate; the
    // summary comes always.
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("snapshot progress"))
        .collect();
    assert!(
        progress
            .iter()
            .all(|l| l.contains("estimated_rows=3000") && l.contains("tables=1")),
        "{progress:?}"
    );
    let summary = err
        .lines()
        .find(|l| l.contains("snapshot done"))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    assert!(
        summary.contains("rows=3000 estimated_rows=3000 tables=1"),
        "{summary}"
    );
    // Usage: no positions with it.
    let o = run(
        &db.stream_args("p", "once", &["--snapshot-only", "--until-lsn", "0/1"]),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A process killed (SIGKILL) half way through its bootstrap leaves no slot behind, so the
/// next start bootstraps again: every row arrives, none is skipped as if the copy had
/// finished.
#[test]
fn a_bootstrap_killed_half_way_runs_again() {
    const ROWS: u32 = 100_000;
    let db = Db::new("bootkill");
    db.sql(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, pad text);
         INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, {ROWS}) g;
         GRANT SELECT ON t TO PUBLIC;
         CREATE PUBLICATION pub FOR TABLE t;"
    ));
    let args = db.stream_args("pub", "s", &["--create-slot", "--snapshot"]);
    let mut child = pgcdc(&args).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // Read part of the bootstrap, then kill the process without warning.
    let mut line = String::new();
    for _ in 0..1000 {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let o = wait(child, LIMIT);
            panic!("the bootstrap ended early: {}", stderr(&o));
        }
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    drop(out);
    // Its walsender ends and takes the bootstrap's temporary slot with it; no permanent
    // slot was ever created.
    let slot = db.slot("s");
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = db.sql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('{slot}', '{slot}_boot')"
        ));
        if left == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed bootstrap left a slot behind: {}",
            db.sql("SELECT slot_name, temporary, active FROM pg_replication_slots")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    db.sql(&format!("INSERT INTO t VALUES ({}, 'after')", ROWS + 1));
    // The next start bootstraps again: every row exactly once, then the stream.
    let mut again = args.clone();
    again.extend(["--idle-exit".to_owned(), "3".to_owned()]);
    let o = run(&again, Duration::from_secs(180));
    let lines = json_lines(&o);
    let mut ids: Vec<u32> = lines
        .iter()
        .map(|l| l["props"]["id"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(ids.len(), ROWS as usize + 1, "one line per row");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ROWS as usize + 1, "no row twice");
    assert_eq!((ids[0], ids[ids.len() - 1]), (1, ROWS + 1));
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT temporary"
        )),
        "1",
        "the completed bootstrap created the permanent slot"
    );
}

#[test]
fn slots_lists_and_drops() {
    let db = Db::new("slots");
    db.create_slot("listed");
    db.sql("CREATE TABLE t (id int PRIMARY KEY)");
    db.sql("INSERT INTO t SELECT generate_series(1, 100)");
    let url = db.url();
    let o = run(&["slots", "--url", &url], LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    let expected = "slot_name plugin type database active pid wal_status restart_lsn \
                    confirmed_flush_lsn lag_bytes lag confirmed_age";
    assert_eq!(header, expected.split_whitespace().collect::<Vec<_>>());
    let row: Vec<&str> = rows
        .find(|r| r.starts_with("cli_slots_listed "))
        .unwrap_or_else(|| panic!("slot missing: {text}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..7],
        [
            "cli_slots_listed",
            "pgoutput",
            "logical",
            "cli_slots",
            "no",
            "-",
            "reserved"
        ]
    );
    assert!(
        row[9].parse::<u64>().unwrap() > 0,
        "the inserts are lag: {text}"
    );

    let o = run(&["slots", "--url", &url, "--format", "jsonl"], LIMIT);
    let slots = json_lines(&o);
    let s = slots
        .iter()
        .find(|s| s["slot_name"] == "cli_slots_listed")
        .unwrap();
    assert_eq!(s["active"], false);
    assert_eq!(s["active_pid"], J::Null);
    assert!(s["lag_bytes"].as_u64().unwrap() > 0);
    assert!(is_lsn(&s["confirmed_flush_lsn"]));
    assert_eq!(s["wal_status"], "reserved");
    assert_eq!(s["temporary"], false);

    // A consumer attached: --json shows it active, its server process, and how old its
    // confirmed position is (its last status update, which PostgreSQL shows to superusers
    // and members of pg_read_all_stats).
    db.sql(&format!(
        "CREATE PUBLICATION pub FOR TABLE t; GRANT pg_read_all_stats TO {}",
        SCRAM_USER.name
    ));
    let mut child = pgcdc(&db.stream_args("pub", "listed", &[]))
        .spawn()
        .unwrap();
    db.wait_active("listed");
    let deadline = Instant::now() + LIMIT;
    let s = loop {
        let o = run(&["slots", "--url", &url, "--json"], LIMIT);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let all: J = serde_json::from_str(&stdout(&o)).expect("one JSON array");
        let s = all
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slot_name"] == "cli_slots_listed")
            .unwrap()
            .clone();
        if s["confirmed_age_seconds"].is_number() || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(s["active"], true, "{s}");
    assert!(s["active_pid"].as_i64().unwrap() > 0, "{s}");
    let age = s["confirmed_age_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no age: {s}"));
    assert!((0.0..60.0).contains(&age), "{s}");
    assert!(s["last_reply"].is_string(), "{s}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    // Inactive again; the table prints its age from PostgreSQL 17 on (inactive_since).
    db.wait_inactive("listed");

    let o = run(
        &["slots", "--url", &url, "--drop", "cli_slots_listed"],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "dropped replication slot cli_slots_listed\n");
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'cli_slots_listed'"),
        "0"
    );
    let o = run(
        &["slots", "--url", &url, "--drop", "cli_slots_listed"],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no replication slot named"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn runtime_errors_exit_1() {
    let db = Db::new("errors");
    db.sql("CREATE TABLE t (id int PRIMARY KEY)");
    // The publication does not exist.
    let o = run(
        &db.stream_args("missing_pub", "s", &["--create-slot"]),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing_pub"), "{}", stderr(&o));
    // Nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:p@127.0.0.1:{port}/d");
    let started = Instant::now();
    // A refused connection is transient: retried until --start-timeout, then an error.
    let o = run(
        &[
            "stream",
            "--url",
            &url,
            "--publication",
            "p",
            "--slot",
            "s",
            "--start-timeout",
            "2",
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("could not connect"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--start-timeout 2"), "{}", stderr(&o));
    assert!(stderr(&o).contains("attempt=1"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(20));
    let o = run(&["slots", "--url", &url], LIMIT);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("could not connect"), "{}", stderr(&o));
    // The demo without the server binaries says what to install.
    let empty = std::env::temp_dir().join(format!("pgcdc-cli-no-bins-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = pgcdc(&["demo"]);
    cmd.env("PGCDC_PG_BIN", &empty);
    let o = wait(cmd.spawn().unwrap(), LIMIT);
    let _ = std::fs::remove_dir(&empty);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("apt-get install -y postgresql"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn hints_name_cli_flags() {
    let db = Db::new("hints");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION pub FOR TABLE t;");
    // A missing slot: the hint names --create-slot, not the library setting.
    let o = run(&db.stream_args("pub", "missing", &[]), LIMIT);
    let err = error_line(&o);
    assert!(err.contains("--create-slot"), "{err}");
    assert!(!err.contains("enable create_slot"), "{err}");
    // A missing database: the hint names the URL's database, not a setting.
    let url = db.url().replace("/cli_hints", "/cli_no_such_db");
    let o = run(
        &[
            "stream",
            "--url",
            &url,
            "--publication",
            "pub",
            "--slot",
            "s",
            "--start-timeout",
            "2",
        ],
        LIMIT,
    );
    let err = error_line(&o);
    assert!(err.contains("database name in the --url"), "{err}");
    assert!(!err.contains("`database` setting"), "{err}");
    // A server certificate from an issuer that is not trusted (the root file given is
    // another CA's): the hint names sslrootcert=.
    let other_ca = db.cluster.other_ca_cert_path().unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url(),
        other_ca.display()
    );
    let o = run(
        &[
            "stream",
            "--url",
            &url,
            "--publication",
            "pub",
            "--slot",
            "s",
            "--start-timeout",
            "2",
        ],
        LIMIT,
    );
    let err = error_line(&o);
    assert!(err.contains("sslrootcert="), "{err}");
}

/// The `pgcdc: error: …` line of a run that failed with exit code 1.
fn error_line(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    err.lines()
        .find(|l| l.starts_with("pgcdc: error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"))
        .to_owned()
}

fn check_demo_lines(o: &Output) {
    let lines = json_lines(o);
    let ops: Vec<&str> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "insert", "insert", "insert", "update", "delete", "insert", "insert", "insert",
            "update", "update", "truncate", "message"
        ],
        "{}",
        stdout(o)
    );
    assert!(stdout(o).contains("\"balance\":12345678901234567890.123456789"));
    assert!(
        stderr(o).contains("12 changes in 9 transactions"),
        "{}",
        stderr(o)
    );
}

#[test]
fn demo_runs_on_a_throwaway_server() {
    let o = run(&["demo"], Duration::from_secs(120));
    check_demo_lines(&o);
    let table = |i: usize| json_lines(&o)[i]["table"].as_str().unwrap().to_owned();
    assert_eq!(table(0), "customers");
    assert_eq!(table(5), "orders");
    assert!(stderr(&o).contains("removed"), "{}", stderr(&o));
}

#[test]
fn demo_runs_on_a_given_database() {
    let db = Db::new("demo");
    let o = run(&["demo", "--url", &db.url()], LIMIT);
    check_demo_lines(&o);
    assert_eq!(json_lines(&o)[0]["table"], "pgcdc_demo.customers");
    // Everything the demo made is gone.
    assert_eq!(
        db.sql(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgcdc_demo')
                  + (SELECT count(*) FROM pg_publication WHERE pubname = 'pgcdc_demo_pub')
                  + (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgcdc_demo_slot')"
        ),
        "0"
    );
}

/// `pgcdc doctor` on a server ready to stream: every check ok or a warning, exit 0; the
/// table without a key is named with what its ids will be.
#[test]
fn doctor_on_a_good_server() {
    let db = Db::new("doctor_ok");
    db.sql(
        "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE nokey (v int); \
         GRANT SELECT ON t, nokey TO pgcdc_scram; CREATE PUBLICATION pub FOR TABLE t, nokey;",
    );
    let o = pgcdc(&["doctor", "--url", &db.url(), "--publication", "pub"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    for needle in [
        "ok   wal_level: logical",
        "ok   role: has the REPLICATION attribute",
        "ok   publication: \"pub\" holds 2 table(s)",
        "ok   public.t: replica identity default (primary key)",
        "warn public.nokey: replica identity default, but no primary key",
        "ok   replication connection: system",
        "streaming would work",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in:\n{out}");
    }
}

/// `pgcdc doctor` on a misconfigured server: `wal_level = replica`, no publication, a table
/// the role cannot read — each named with its fix, exit 1.
#[test]
fn doctor_on_a_misconfigured_server() {
    let cluster: &'static Cluster = Box::leak(Box::new(
        Cluster::builder().wal_level("replica").start().unwrap(),
    ));
    cluster.create_database("cli_doctor_bad").unwrap();
    let pw = percent_encoded(SCRAM_USER.password.unwrap());
    let url = format!(
        "postgres://{}:{pw}@{}:{}/cli_doctor_bad",
        SCRAM_USER.name,
        cluster.host(),
        cluster.port()
    );
    let o = pgcdc(&["doctor", "--url", &url, "--publication", "missing"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    for needle in [
        "FAIL wal_level: replica; logical decoding needs logical: ALTER SYSTEM SET wal_level = logical;",
        "FAIL publication: \"missing\" does not exist: CREATE PUBLICATION missing FOR TABLE",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in:\n{out}");
    }
    assert!(stderr(&o).contains("check(s) failed"), "{}", stderr(&o));
}
