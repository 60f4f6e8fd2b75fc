//! Rendering a batch of changes as JSON lines or as readable text.

use std::fmt::Write as _;

use pgcdc_core::assemble::TransactionBatch;
use pgcdc_core::model::SourceChange;

use crate::args::Format;
use pgcdc_sink::json;

/// Appends the lines of `changes` (a prefix of `batch.changes`) to `out`.
pub fn render(
    out: &mut String,
    format: Format,
    batch: &TransactionBatch,
    changes: &[SourceChange],
) {
    match format {
        Format::Jsonl => {
            // The transaction's part of the line, rendered once for all its changes.
            let mut tail = String::new();
            let mut tail_of = None;
            for c in changes {
                json::change_head(out, c);
                let tx = *c.tx();
                if tail_of != Some(tx) {
                    tail.clear();
                    json::tx_tail(&mut tail, batch, &tx);
                    tail_of = Some(tx);
                }
                out.push_str(&tail);
                out.push('\n');
            }
        }
        Format::Pretty => pretty(out, batch, changes),
    }
}

/// A header per transaction (or chunk), then one indented line per change:
///
/// ```text
/// ── tx 745 · commit 0/1A2B3C8 · end 0/1A2B420 · 2024-05-01T10:00:00.123456Z ──
///   insert   customers:1  {"id":1,"name":"Ada"}
///   update   orders:7  {"id":7,"note":"gift"}  old {"id":7,"note":null}
/// ```
fn pretty(out: &mut String, batch: &TransactionBatch, changes: &[SourceChange]) {
    let is_plain_message = batch.xid.0 == 0
        && batch.end_lsn.is_none()
        && matches!(changes, [SourceChange::Message { .. }]);
    if is_plain_message {
        let _ = writeln!(
            out,
            "── message at {} (not transactional) ──",
            batch.commit_lsn
        );
    } else {
        let _ = write!(out, "── tx {} · commit {}", batch.xid, batch.commit_lsn);
        if let Some(end) = batch.end_lsn {
            let _ = write!(out, " · end {end}");
        }
        out.push_str(" · ");
        let mut time = String::new();
        json::commit_time(&mut time, batch.commit_time_ns);
        out.push_str(time.trim_matches('"'));
        if !batch.is_whole() {
            let _ = write!(out, " · chunk {}", batch.chunk_index);
            if batch.last_chunk {
                out.push_str(" (last)");
            }
        }
        out.push_str(" ──\n");
    }
    for c in changes {
        let _ = write!(out, "  {:<9}", json::op_name(c));
        match c {
            SourceChange::Insert { element, .. } | SourceChange::Update { element, .. } => {
                out.push_str(&element.metadata().reference.element_id);
                out.push_str("  ");
                json::properties(out, element.properties());
                if let SourceChange::Update {
                    old,
                    unchanged_toast,
                    ..
                } = c
                {
                    if let Some(old) = old {
                        out.push_str("  old ");
                        json::properties(out, old);
                    }
                    if !unchanged_toast.is_empty() {
                        let _ = write!(out, "  unchanged toast: {}", unchanged_toast.join(", "));
                    }
                }
            }
            SourceChange::Delete { metadata, old, .. } => {
                out.push_str(&metadata.reference.element_id);
                out.push_str("  old ");
                json::properties(out, old);
            }
            SourceChange::Truncate {
                labels,
                cascade,
                restart_identity,
                ..
            } => {
                out.push_str(&labels.join(", "));
                if *cascade {
                    out.push_str(" CASCADE");
                }
                if *restart_identity {
                    out.push_str(" RESTART IDENTITY");
                }
            }
            SourceChange::SchemaChange {
                label, relation, ..
            } => {
                out.push_str(label);
                out.push_str("  columns: ");
                let cols: Vec<&str> = relation.columns.iter().map(|c| c.name.as_str()).collect();
                out.push_str(&cols.join(", "));
            }
            SourceChange::Message { message, .. } => {
                out.push_str(&message.prefix);
                out.push_str("  ");
                json::string(out, &String::from_utf8_lossy(&message.content));
            }
            _ => {}
        }
        out.push('\n');
    }
}
