//! Batches of changes as records: a subject, a deterministic id, a JSON payload.

use std::fmt::Write as _;

use bytes::Bytes;
use pgcdc_core::assemble::TransactionBatch;
use pgcdc_core::model::{SourceChange, TxInfo};
use pgcdc_tokio::Lsn;

use crate::json;

/// One message for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Where it goes: `<prefix>.<schema>.<table>` (see [`Naming`]).
    pub subject: String,
    /// Its deduplication id (JetStream's `Nats-Msg-Id`): the same for the same change
    /// however often it is sent.
    pub id: String,
    /// The element id of the row, for sinks that partition by key.
    pub key: Option<std::sync::Arc<str>>,
    /// The JSON document.
    pub payload: Bytes,
}

/// The shape of a record's JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Envelope {
    /// The CLI's change line: `{"op":"insert","table":…,"id":…,"props":{…},"xid":…,…}`.
    #[default]
    Native,
    /// A Debezium-style envelope for row changes: `{"before":…,"after":…,"source":{…},
    /// "op":"c"|"u"|"d"|"t"|"r","ts_ms":…}`; schema changes and logical messages keep the
    /// native form.
    Debezium,
}

/// How subjects and ids are made.
#[derive(Clone, Debug)]
pub struct Naming {
    /// The subjects' first tokens (`pgcdc.<source>` by default).
    pub prefix: String,
    /// The source's name in ids and in the Debezium `source` block: it must differ between
    /// sources that publish to one stream (their LSNs may coincide).
    pub source: String,
    /// The slot, part of every id: two slots of one server see the same commit LSNs with
    /// different tables.
    pub slot: String,
}

impl Naming {
    /// `pgcdc.<source>` as prefix.
    pub fn new(source: &str, slot: &str) -> Naming {
        Naming {
            prefix: format!("pgcdc.{}", token(source)),
            source: source.to_owned(),
            slot: slot.to_owned(),
        }
    }

    /// The subject of a table label (`table` in `public`, else `schema.table`).
    pub fn table_subject(&self, label: &str) -> String {
        let (schema, table) = split_label(label);
        format!("{}.{}.{}", self.prefix, token(schema), token(table))
    }

    /// The subject of a logical message with this prefix.
    pub fn message_subject(&self, prefix: &str) -> String {
        format!("{}.$message.{}", self.prefix, token(prefix))
    }

    /// The subjects a stream must capture: everything under the prefix.
    pub fn stream_subject(&self) -> String {
        format!("{}.>", self.prefix)
    }
}

/// `schema.table` → (`schema`, `table`); a label without a dot is in `public`.
fn split_label(label: &str) -> (&str, &str) {
    label.split_once('.').unwrap_or(("public", label))
}

/// A name as one subject token: ASCII letters, digits, `_` and `-` as they are, every other
/// byte (`.`, `*`, `>`, spaces, `$`, `%`, non-ASCII) as `%XX`; an empty name as `%`.
pub fn token(name: &str) -> String {
    if name.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Where the record ids of a transaction stand.
#[derive(Clone, Copy, Debug)]
struct Position {
    commit_lsn: Lsn,
    xid: u32,
    next: u64,
}

/// Turns batches into [`Record`]s with deterministic ids:
///
/// * a change of a transaction: `<source>:<slot>:<commit LSN>:<n>`, `n` counting the
///   transaction's records from 0 across its chunks (a truncate of several tables is one
///   record per table), schema changes not counted;
/// * a schema change: `<source>:<slot>:<commit LSN>:schema:<n>:<table>:<hash>`, `n` the
///   number of the record it precedes, the hash of its column names, types and flags (a
///   transaction sent again may hold more or fewer schema changes than the first time: the
///   data records keep their numbers);
/// * a non-transactional logical message: `<source>:<slot>:m:<LSN>`;
/// * a snapshot row: `<source>:<slot>:s:<consistent point>:<n>`.
///
/// The server sends a transaction again, from its first chunk, after every restart that did
/// not acknowledge it; the same changes get the same ids, and the log drops the copies.
#[derive(Debug)]
pub struct Encoder {
    naming: Naming,
    envelope: Envelope,
    position: Option<Position>,
    snapshot_next: u64,
    tail: String,
    buf: String,
    /// The last table label and its subject.
    last_subject: Option<(Box<str>, String)>,
}

impl Encoder {
    /// An encoder naming records by `naming`, writing `envelope`.
    pub fn new(naming: Naming, envelope: Envelope) -> Encoder {
        Encoder {
            naming,
            envelope,
            position: None,
            snapshot_next: 0,
            tail: String::new(),
            buf: String::new(),
            last_subject: None,
        }
    }

    /// The naming in use.
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// Appends the records of `batch` to `out`.
    pub fn encode(&mut self, batch: &TransactionBatch, out: &mut Vec<Record>) {
        let base = self.base(batch);
        let mut tail_of = None;
        for change in &batch.changes {
            let tx = *change.tx();
            // The transaction's part of a native line, rendered once per transaction (also
            // with the Debezium envelope: schema changes and messages keep the native form).
            if tail_of != Some(tx) {
                self.tail.clear();
                json::tx_tail(&mut self.tail, batch, &tx);
                tail_of = Some(tx);
            }
            match change {
                SourceChange::Truncate { labels, .. } => {
                    for label in labels {
                        self.payload(change, &tx, Some(label));
                        let subject = self.naming.table_subject(label);
                        let id = self.next_id(&base, change);
                        out.push(self.record(subject, id, None));
                    }
                }
                _ => {
                    self.payload(change, &tx, None);
                    let (subject, key) = match change {
                        SourceChange::Insert { element, .. }
                        | SourceChange::Update { element, .. } => {
                            let meta = element.metadata();
                            (
                                self.subject_of(meta.labels.first()),
                                Some(meta.reference.element_id.clone()),
                            )
                        }
                        SourceChange::Delete { metadata, .. } => (
                            self.subject_of(metadata.labels.first()),
                            Some(metadata.reference.element_id.clone()),
                        ),
                        SourceChange::SchemaChange { label, .. } => {
                            (self.naming.table_subject(label), None)
                        }
                        SourceChange::Message { message, .. } => {
                            (self.naming.message_subject(&message.prefix), None)
                        }
                        _ => (format!("{}.$other", self.naming.prefix), None),
                    };
                    let id = self.next_id(&base, change);
                    out.push(self.record(subject, id, key));
                }
            }
        }
    }

    /// The subject of a row's table, remembered for the next rows of the same table.
    fn subject_of(&mut self, label: Option<&std::sync::Arc<str>>) -> String {
        let label = label.map_or("", |l| &**l);
        match &self.last_subject {
            Some((l, subject)) if **l == *label => subject.clone(),
            _ => {
                let subject = self.naming.table_subject(label);
                self.last_subject = Some((label.into(), subject.clone()));
                subject
            }
        }
    }

    fn record(&mut self, subject: String, id: String, key: Option<std::sync::Arc<str>>) -> Record {
        Record {
            subject,
            id,
            key,
            payload: Bytes::from(self.buf.as_bytes().to_vec()),
        }
    }

    /// The id prefix of the batch's records, and where their numbering starts.
    fn base(&mut self, batch: &TransactionBatch) -> String {
        let (source, slot) = (&self.naming.source, &self.naming.slot);
        if batch.xid.0 == 0 {
            // Outside a transaction: logical messages (own LSN each) or snapshot rows.
            return format!("{source}:{slot}");
        }
        let continues = self
            .position
            .is_some_and(|p| p.commit_lsn == batch.commit_lsn && p.xid == batch.xid.0);
        if batch.first_chunk || !continues {
            if !batch.first_chunk {
                // A later chunk of a transaction whose start this encoder did not see (not
                // expected: a restart sends the transaction from its first chunk). Its own
                // id space: a copy may be stored twice, a change is never dropped as one.
                tracing::warn!(commit_lsn = %batch.commit_lsn, chunk = batch.chunk_index,
                    "a chunk without its transaction's start: its records get chunk ids");
                self.position = None;
                return format!(
                    "{source}:{slot}:{}:c{}",
                    batch.commit_lsn, batch.chunk_index
                );
            }
            self.position = Some(Position {
                commit_lsn: batch.commit_lsn,
                xid: batch.xid.0,
                next: 0,
            });
        }
        format!("{source}:{slot}:{}", batch.commit_lsn)
    }

    fn next_id(&mut self, base: &str, change: &SourceChange) -> String {
        let tx = change.tx();
        if tx.xid.0 == 0 {
            if let SourceChange::Message { .. } = change {
                return format!("{base}:m:{}", tx.commit_lsn);
            }
            let n = self.snapshot_next;
            self.snapshot_next += 1;
            return format!("{base}:s:{}:{n}", tx.commit_lsn);
        }
        if let SourceChange::SchemaChange {
            label, relation, ..
        } = change
        {
            // Not counted: a transaction sent again may carry more or fewer schema changes
            // (they depend on what the relation cache knew), and its data records must get
            // the same numbers. Named by the data record they precede and by their content.
            let at = self.position.map_or(0, |p| p.next);
            let mut hash = Fnv::default();
            for c in &relation.columns {
                hash.write(c.name.as_bytes());
                hash.write(&c.type_oid.0.to_be_bytes());
                hash.write(&[c.flags]);
            }
            return format!("{base}:schema:{at}:{}:{:016x}", token(label), hash.0);
        }
        let n = match &mut self.position {
            Some(p) => {
                let n = p.next;
                p.next += 1;
                n
            }
            // A chunk's own id space (see `base`): numbered within the chunk.
            None => {
                let n = self.snapshot_next;
                self.snapshot_next += 1;
                n
            }
        };
        let mut id = String::with_capacity(base.len() + 8);
        id.push_str(base);
        id.push(':');
        json::uint(&mut id, n);
        id
    }

    /// Renders the payload of `change` into `self.buf` (a native one ends with `self.tail`,
    /// its transaction's part); `table` is the one table of a truncate record.
    fn payload(&mut self, change: &SourceChange, tx: &TxInfo, table: Option<&str>) {
        self.buf.clear();
        let native = self.envelope == Envelope::Native
            || matches!(
                change,
                SourceChange::SchemaChange { .. } | SourceChange::Message { .. }
            );
        if native {
            json::change_head(&mut self.buf, change);
            self.buf.push_str(&self.tail);
            return;
        }
        debezium(&mut self.buf, &self.naming.source, change, tx, table);
    }
}

/// FNV-1a, 64 bits: a stable hash for ids (the standard library's is not stable across
/// releases).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn first(labels: &[std::sync::Arc<str>]) -> &str {
    labels.first().map_or("", |l| l)
}

/// A Debezium-style envelope of a row change (or one table of a truncate). `ts_ms` is the
/// commit time, so a record sent again is the same record.
fn debezium(
    out: &mut String,
    source: &str,
    change: &SourceChange,
    tx: &TxInfo,
    table: Option<&str>,
) {
    let snapshot = tx.xid.0 == 0;
    let (op, label) = match change {
        SourceChange::Insert { element, .. } => (
            if snapshot { "r" } else { "c" },
            first(&element.metadata().labels),
        ),
        SourceChange::Update { element, .. } => ("u", first(&element.metadata().labels)),
        SourceChange::Delete { metadata, .. } => ("d", first(&metadata.labels)),
        SourceChange::Truncate { .. } => ("t", table.unwrap_or("")),
        _ => ("?", ""),
    };
    out.push_str("{\"before\":");
    match change {
        SourceChange::Update { old: Some(old), .. } | SourceChange::Delete { old, .. } => {
            json::properties(out, old);
        }
        _ => out.push_str("null"),
    }
    out.push_str(",\"after\":");
    match change {
        SourceChange::Insert { element, .. } | SourceChange::Update { element, .. } => {
            json::properties(out, element.properties());
        }
        _ => out.push_str("null"),
    }
    let (schema, table) = split_label(label);
    let ts_ms = tx.commit_time_ns / 1_000_000;
    out.push_str(",\"source\":{\"connector\":\"pgcdc\",\"name\":");
    json::string(out, source);
    out.push_str(",\"schema\":");
    json::string(out, schema);
    out.push_str(",\"table\":");
    json::string(out, table);
    let _ = write!(
        out,
        ",\"txId\":{},\"lsn\":{},\"ts_ms\":{ts_ms},\"snapshot\":{snapshot}}},\"op\":\"{op}\",\"ts_ms\":{ts_ms}}}",
        tx.xid.0,
        u64::from(tx.commit_lsn)
    );
    if let SourceChange::Update {
        unchanged_toast, ..
    } = change
        && !unchanged_toast.is_empty()
    {
        // Keep the envelope closed: the list goes before the last brace.
        out.pop();
        out.push_str(",\"unchanged_toast\":[");
        for (i, c) in unchanged_toast.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::string(out, c.as_ref());
        }
        out.push_str("]}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_escape_what_subjects_cannot_hold() {
        assert_eq!(token("orders"), "orders");
        assert_eq!(token("Order_Items-2"), "Order_Items-2");
        assert_eq!(token("a.b"), "a%2Eb");
        assert_eq!(token("x y*>"), "x%20y%2A%3E");
        assert_eq!(token("é"), "%C3%A9");
        assert_eq!(token("$message"), "%24message");
        assert_eq!(token(""), "%");
        let n = Naming::new("shop", "s1");
        assert_eq!(n.table_subject("orders"), "pgcdc.shop.public.orders");
        assert_eq!(n.table_subject("sales.orders"), "pgcdc.shop.sales.orders");
        assert_eq!(
            n.message_subject("app.end"),
            "pgcdc.shop.$message.app%2Eend"
        );
        assert_eq!(n.stream_subject(), "pgcdc.shop.>");
    }
}
