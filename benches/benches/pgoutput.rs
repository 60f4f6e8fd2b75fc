//! pgoutput decoding and transaction assembly on a corpus captured from a real server.
//!
//! The corpus is an orders-like table (`id bigint primary key, customer_id int,
//! amount numeric(12,2), note text, created_at timestamptz, status varchar(20), paid bool`):
//! 100,000 inserts in transactions of 100 rows, then one UPDATE of every row and one DELETE of
//! every row, as `pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version', '1',
//! 'publication_names', 'pub')` returns it (one pgoutput message per row). A smaller variant
//! (10,000 rows, same workload) is captured with `'binary', 'true'`.
//!
//! Capturing starts a throwaway cluster with `pgcdc-testkit` and takes a while, so the corpora
//! are cached under the cargo target directory (`target/pgcdc-bench-corpus/*.bin`) and reused;
//! delete them or set `PGCDC_BENCH_REGENERATE=1` to capture again. The file format is a magic
//! line followed by one record per message: `u64` LSN, `u32` length, payload (big-endian).
//!
//! Before measuring, the bench prints the heap allocations per message of each path, counted
//! by a global allocator wrapper (counting is off while criterion measures). The wrapper
//! forwards to the system allocator, or to mimalloc with `--features mimalloc`
//! (`cargo bench -p pgcdc-benches --bench pgoutput --features mimalloc`).

// criterion_group! generates undocumented items; the counting allocator needs `unsafe impl`.
#![allow(missing_docs)]
#![allow(unsafe_code)]

#[cfg(not(feature = "mimalloc"))]
use std::alloc::System;
use std::alloc::{GlobalAlloc, Layout};
use std::fs;
use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pgcdc_core::Lsn;
use pgcdc_core::assemble::{Pipeline, PipelineConfig, PipelineEvent};
use pgcdc_core::pgoutput::Decoder;
use pgcdc_testkit::Cluster;

// ------------------------------------------------------------------------ allocation counting

/// The system allocator (mimalloc with `--features mimalloc`), counting allocations while
/// [`COUNTING`] is on.
struct CountingAlloc;

#[cfg(not(feature = "mimalloc"))]
use System as Inner;

#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Inner;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the inner allocator.
        unsafe { Inner.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the inner allocator.
        unsafe { Inner.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the inner allocator.
        unsafe { Inner.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOC_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the inner allocator.
        unsafe { Inner.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` with allocation counting on; returns (allocations, bytes).
fn count_allocs(f: impl FnOnce()) -> (u64, u64) {
    ALLOCS.store(0, Ordering::Relaxed);
    ALLOC_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    )
}

// ----------------------------------------------------------------------------------- corpus

const MAGIC: &[u8] = b"pgcdc-bench-corpus v1\n";
/// Bump when the workload changes, so stale caches are not reused.
const TEXT_CORPUS: &str = "orders-v1.bin";
const BINARY_CORPUS: &str = "orders-binary-v1.bin";

/// Captured pgoutput messages: (LSN, payload), payloads sharing one buffer.
struct Corpus {
    messages: Vec<(Lsn, Bytes)>,
    bytes: u64,
}

impl Corpus {
    fn from_file_bytes(raw: Vec<u8>) -> Option<Corpus> {
        let all = Bytes::from(raw);
        let body = all.strip_prefix(MAGIC)?;
        let mut pos = all.len() - body.len();
        let mut messages = Vec::new();
        let mut bytes = 0u64;
        while pos < all.len() {
            let head = all.get(pos..pos + 12)?;
            let lsn = u64::from_be_bytes(head.get(..8)?.try_into().ok()?);
            let len = u32::from_be_bytes(head.get(8..12)?.try_into().ok()?) as usize;
            let start = pos + 12;
            let end = start.checked_add(len)?;
            if end > all.len() {
                return None;
            }
            messages.push((Lsn(lsn), all.slice(start..end)));
            bytes += len as u64;
            pos = end;
        }
        let corpus = Corpus { messages, bytes };
        corpus.is_complete().then_some(corpus)
    }

    /// Whether the corpus holds the whole workload: as many inserts as updates and deletes,
    /// and some of each.
    fn is_complete(&self) -> bool {
        let count = |tag: u8| {
            self.messages
                .iter()
                .filter(|(_, m)| m.first() == Some(&tag))
                .count()
        };
        let inserts = count(b'I');
        inserts > 0 && count(b'U') == inserts && count(b'D') == inserts
    }

    fn to_file_bytes(messages: &[(Lsn, Vec<u8>)]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (lsn, data) in messages {
            out.extend_from_slice(&lsn.0.to_be_bytes());
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }
}

fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGCDC_BENCH_CORPUS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("pgcdc-bench-corpus")
}

/// The two corpora, from the cache or captured now.
fn corpora() -> (Corpus, Corpus) {
    let dir = corpus_dir();
    let regenerate = std::env::var_os("PGCDC_BENCH_REGENERATE").is_some_and(|v| v != "0");
    let load = |name: &str| {
        if regenerate {
            return None;
        }
        fs::read(dir.join(name))
            .ok()
            .and_then(Corpus::from_file_bytes)
    };
    if let (Some(text), Some(binary)) = (load(TEXT_CORPUS), load(BINARY_CORPUS)) {
        return (text, binary);
    }
    eprintln!(
        "capturing the pgoutput corpus from a throwaway cluster into {} …",
        dir.display()
    );
    let (text, binary) = capture().unwrap_or_else(|e| panic!("capturing the corpus: {e}"));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    for (name, messages) in [(TEXT_CORPUS, &text), (BINARY_CORPUS, &binary)] {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut f = fs::File::create(&tmp).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
        f.write_all(&Corpus::to_file_bytes(messages))
            .unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
        drop(f);
        fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    match (load(TEXT_CORPUS), load(BINARY_CORPUS)) {
        (Some(t), Some(b)) => (t, b),
        _ => panic!(
            "the corpus written to {} does not read back complete (as many inserts as \
             updates and deletes)",
            dir.display()
        ),
    }
}

const TABLE_COLUMNS: &str = "id bigint PRIMARY KEY, customer_id int, amount numeric(12,2), \
                             note text, created_at timestamptz, status varchar(20), paid bool";

/// The workload on `table`: `batches` transactions of 100 inserts, one UPDATE of every row,
/// one DELETE of every row.
fn workload(cluster: &Cluster, table: &str, batches: u32) -> Result<(), String> {
    let psql = |sql: &str| cluster.psql("bench", sql).map_err(|e| e.to_string());
    // A DO block run alone may COMMIT between batches: one transaction per 100 rows.
    psql(&format!(
        "DO $$
         BEGIN
           FOR b IN 0..{last} LOOP
             INSERT INTO {table}
             SELECT i,
                    1 + (i * 7919) % 5000,
                    ((i * 104729) % 10000000) / 100.0,
                    CASE WHEN i % 10 = 0 THEN NULL
                         ELSE 'order ' || i || ' for customer ' || (1 + (i * 7919) % 5000)
                              || repeat(' - gift wrap', (i % 4)::int) END,
                    timestamptz '2024-03-01 08:00:00+00' + i * interval '37 seconds',
                    (ARRAY['new', 'paid', 'packed', 'shipped', 'delivered', 'cancelled'])[1 + i % 6],
                    i % 3 <> 0
             FROM generate_series(b * 100 + 1::bigint, b * 100 + 100) AS i;
             COMMIT;
           END LOOP;
         END $$",
        last = batches - 1,
    ))?;
    psql(&format!(
        "UPDATE {table} SET status = 'archived', paid = true, amount = amount + 1"
    ))?;
    psql(&format!("DELETE FROM {table}"))?;
    Ok(())
}

/// Reads the changes of `slot` (without consuming them) with the given extra options.
fn peek(
    cluster: &Cluster,
    slot: &str,
    publication: &str,
    extra: &str,
) -> Result<Vec<(Lsn, Vec<u8>)>, String> {
    let out = cluster
        .psql(
            "bench",
            &format!(
                "SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes(\
                 '{slot}', NULL, NULL, 'proto_version', '1', 'publication_names', \
                 '{publication}'{extra})"
            ),
        )
        .map_err(|e| e.to_string())?;
    out.lines()
        .map(|line| {
            let (lsn, hex) = line
                .split_once('|')
                .ok_or_else(|| format!("unexpected psql line {line:?}"))?;
            let lsn: Lsn = lsn.parse().map_err(|_| format!("bad LSN {lsn:?}"))?;
            Ok((lsn, unhex(hex).ok_or_else(|| format!("bad hex {hex:?}"))?))
        })
        .collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Some(nibble(*h)? << 4 | nibble(*l)?),
            _ => None,
        })
        .collect()
}

type Captured = Vec<(Lsn, Vec<u8>)>;

fn capture() -> Result<(Captured, Captured), String> {
    let cluster = Cluster::builder()
        .tls(false)
        // Peeking decodes only up to the flushed WAL: the testkit's asynchronous commit would
        // leave the last transactions out.
        .setting("synchronous_commit", "on")
        .setting("logical_decoding_work_mem", "64MB")
        .setting("max_wal_size", "4GB")
        .start()
        .map_err(|e| e.to_string())?;
    cluster
        .psql("postgres", "CREATE DATABASE bench")
        .map_err(|e| e.to_string())?;
    let psql = |sql: &str| cluster.psql("bench", sql).map_err(|e| e.to_string());
    psql(&format!(
        "CREATE TABLE orders ({TABLE_COLUMNS}); CREATE TABLE orders_small ({TABLE_COLUMNS}); \
         CREATE PUBLICATION pub FOR TABLE orders; \
         CREATE PUBLICATION pub_small FOR TABLE orders_small"
    ))?;

    psql("SELECT pg_create_logical_replication_slot('bench_text', 'pgoutput')")?;
    workload(&cluster, "orders", 1000)?;
    let text = peek(&cluster, "bench_text", "pub", "")?;
    psql("SELECT pg_drop_replication_slot('bench_text')")?;

    psql("SELECT pg_create_logical_replication_slot('bench_binary', 'pgoutput')")?;
    workload(&cluster, "orders_small", 100)?;
    let binary = peek(&cluster, "bench_binary", "pub_small", ", 'binary', 'true'")?;
    psql("SELECT pg_drop_replication_slot('bench_binary')")?;
    Ok((text, binary))
}

// ----------------------------------------------------------------------------------- paths

fn decode_all(corpus: &Corpus) -> usize {
    let mut decoder = Decoder::new();
    let mut n = 0;
    for (_, payload) in &corpus.messages {
        if let Ok(m) = decoder.decode(payload.clone()) {
            black_box(&m);
            n += 1;
        }
    }
    n
}

fn assemble_all(corpus: &Corpus) -> usize {
    let mut pipeline = Pipeline::new("bench", PipelineConfig::default());
    let mut changes = 0;
    for (lsn, payload) in &corpus.messages {
        if pipeline.handle_xlog(payload, *lsn, *lsn).is_err() {
            panic!("the corpus does not assemble");
        }
        while let Some(event) = pipeline.poll_event() {
            if let PipelineEvent::Transaction(batch) = &event {
                changes += batch.changes.len();
            }
            black_box(event);
        }
    }
    changes
}

/// [`assemble_all`] `iters` times, timing only the pipeline: the events are held and dropped
/// every few batches with the clock stopped, as a consumer on another core would drop them.
/// The memory is reused as in `assemble_all` (each batch is freed soon after it is made).
fn assemble_untimed_drop(corpus: &Corpus, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut pipeline = Pipeline::new("bench", PipelineConfig::default());
        let mut held: Vec<PipelineEvent> = Vec::with_capacity(16);
        let mut start = Instant::now();
        for (lsn, payload) in &corpus.messages {
            if pipeline.handle_xlog(payload, *lsn, *lsn).is_err() {
                panic!("the corpus does not assemble");
            }
            while let Some(event) = pipeline.poll_event() {
                held.push(event);
            }
            if held.len() >= 8 {
                total += start.elapsed();
                held.clear();
                start = Instant::now();
            }
        }
        total += start.elapsed();
        black_box(held);
    }
    total
}

fn report(corpus: &Corpus, name: &str) {
    let n = corpus.messages.len() as f64;
    let changes = assemble_all(corpus);
    let (da, db) = count_allocs(|| {
        black_box(decode_all(corpus));
    });
    let (aa, ab) = count_allocs(|| {
        black_box(assemble_all(corpus));
    });
    eprintln!(
        "corpus {name}: {} messages, {} bytes ({:.1} bytes/message), {changes} changes; \
         allocations per message: decode {:.2} ({:.0} B), decode+assemble {:.2} ({:.0} B)",
        corpus.messages.len(),
        corpus.bytes,
        corpus.bytes as f64 / n,
        da as f64 / n,
        db as f64 / n,
        aa as f64 / n,
        ab as f64 / n,
    );
}

// ----------------------------------------------------------------------------------- benches

fn pgoutput(c: &mut Criterion) {
    let (text, binary) = corpora();
    report(&text, "orders (text)");
    report(&binary, "orders_small (binary)");

    for (group, bytes) in [("pgoutput_messages", false), ("pgoutput_bytes", true)] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10);
        let throughput = |c: &Corpus| {
            if bytes {
                Throughput::Bytes(c.bytes)
            } else {
                Throughput::Elements(c.messages.len() as u64)
            }
        };
        g.throughput(throughput(&text));
        g.bench_function("decode/orders_text", |b| b.iter(|| decode_all(&text)));
        g.bench_function("decode_assemble/orders_text", |b| {
            b.iter(|| assemble_all(&text))
        });
        g.bench_function("decode_assemble_untimed_drop/orders_text", |b| {
            b.iter_custom(|iters| assemble_untimed_drop(&text, iters))
        });
        g.throughput(throughput(&binary));
        g.bench_function("decode_assemble/orders_binary", |b| {
            b.iter(|| assemble_all(&binary))
        });
        g.finish();
    }
}

criterion_group!(benches, pgoutput);
criterion_main!(benches);
