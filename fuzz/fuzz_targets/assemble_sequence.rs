//! A sequence of pgoutput payloads through the assembly pipeline: never a panic, and every
//! emitted batch keeps the chunking invariants.
//!
//! Input: one configuration byte, then messages, each a big-endian `u16` length and that many
//! bytes (the last one may be short).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::{KeyConfig, Pipeline, PipelineConfig, PipelineEvent};
use pgcdc_core::pgoutput::Oid;

/// Drains the pipeline, checking what every event must keep.
fn drain(p: &mut Pipeline, max: usize) {
    while let Some(event) = p.poll_event() {
        match event {
            PipelineEvent::Transaction(b) => {
                assert!(
                    b.changes.len() <= max,
                    "a chunk of {} > {max}",
                    b.changes.len()
                );
                assert_eq!(b.end_lsn.is_some(), b.last_chunk);
                assert_eq!(b.first_chunk, b.chunk_index == 0);
                assert_eq!(b.ack_lsn().is_some(), b.last_chunk);
                for c in &b.changes {
                    assert_eq!(c.tx().xid, b.xid);
                    if b.last_chunk {
                        assert_eq!(c.tx().end_lsn, b.end_lsn);
                    }
                    if let Some(md) = c.metadata() {
                        assert!(md.reference.element_id.contains(':'));
                        assert_eq!(md.labels.len(), 1);
                        assert_eq!(md.effective_from, c.tx().commit_time_ns);
                    }
                    let _ = format!("{c:?}");
                }
            }
            other => {
                let _ = format!("{other:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(cfg & 3) + 1;
    let mut config = PipelineConfig::default()
        .with_max_batch_changes(max)
        .with_skip_empty_transactions(cfg & 4 == 0)
        .with_include_old_values(cfg & 8 != 0);
    if cfg & 16 != 0 {
        config = config.with_keys(KeyConfig::new().with_table("t", ["b", "a"]));
    }
    let mut p = Pipeline::new("fuzz", config);
    if cfg & 32 != 0 {
        p.set_primary_key(Oid(16384), vec!["id".to_owned()]);
    }
    let reset_on_error = cfg & 64 != 0;
    let mut n = 0u64;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (msg, tail) = tail.split_at(len);
        rest = tail;
        n += 1;
        let result = p.handle_xlog(&Bytes::copy_from_slice(msg), Lsn(n), Lsn(n));
        if let Err(e) = result {
            let _ = e.to_string();
            if reset_on_error {
                p.reset();
            }
        }
        drain(&mut p, max);
        let _ = (
            p.buffered_changes(),
            p.oldest_pending_prepare_lsn(),
            p.stats(),
        );
    }
    p.reset();
    drain(&mut p, max);
});
