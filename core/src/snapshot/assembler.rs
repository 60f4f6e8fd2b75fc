//! Copied rows → the stream's inserts, through the stream's own pipeline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;

use crate::assemble::{Pipeline, PipelineConfig, PipelineEvent, TransactionBatch};
use crate::lsn::Lsn;
use crate::model::{PG_EPOCH_UNIX_MICROS, TxInfo};
use crate::pgoutput::{ColumnValue, Oid, PgOutputMessage, TupleData, Xid, encode};
use crate::value::TypeRegistry;

use super::{CopyRow, CopyTextError, SnapshotError, SnapshotTable};

/// Turns the rows of COPY parts into [`SourceChange::Insert`](crate::model::SourceChange)s with
/// exactly the element ids, labels and values the stream gives the same rows.
///
/// It drives a [`Pipeline`] with synthetic pgoutput messages, so every rule (key precedence,
/// escaping, labels, value decoding, user types) is the stream's code: per part, a Begin,
/// the table's Type messages and Relation, one text-format Insert per row, and a Commit.
/// Each part is one transaction with xid 0, commit and end LSN the slot's consistent point
/// and commit time the snapshot time, chunked by
/// [`PipelineConfig::max_batch_changes`] like any other transaction: the chunks of a large
/// part come out while its rows are pushed.
///
/// Bootstrap batches have no end LSN (nothing to acknowledge) and the snapshot time.
///
/// One part at a time, as the other state machines run: input with
/// [`handle_part_start`](Self::handle_part_start), [`handle_row`](Self::handle_row) per row and
/// [`handle_part_end`](Self::handle_part_end); output with [`poll_event`](Self::poll_event)
/// ([`SnapshotEvent`]: batches and warnings) until `None` after each call. Copy parts in
/// parallel with one assembler per connection.
///
/// ```
/// use pgcdc_core::Lsn;
/// use pgcdc_core::assemble::PipelineConfig;
/// use pgcdc_core::model::SourceChange;
/// use pgcdc_core::snapshot::{SnapshotAssembler, SnapshotEvent, parse_tables_rows};
///
/// // One row of the table list query: public.users (id int4 primary key, name text).
/// let columns = r#"[["id", 23, -1, true, null, null], ["name", 25, -1, false, null, null]]"#;
/// let row = ["16402", "public", "users", "r", "d", "1", "1"]
///     .map(|s| Some(s.to_owned()))
///     .into_iter()
///     .chain([None, Some(columns.to_owned()), Some(r#"["id"]"#.to_owned())])
///     .collect();
/// let tables = parse_tables_rows([row])?;
///
/// let mut asm = SnapshotAssembler::new("pg", PipelineConfig::default(), Lsn(0x1000), 0);
/// asm.handle_part_start(&tables[0])?;
/// asm.handle_row(b"7\tAnn\n")?; // one CopyData of `COPY (SELECT "id", "name" …) TO STDOUT`
/// asm.handle_part_end()?;
/// let Some(SnapshotEvent::Batch(batch)) = asm.poll_event() else { panic!("one transaction") };
/// assert_eq!(batch.end_lsn, None, "nothing to acknowledge");
/// let SourceChange::Insert { element, .. } = &batch.changes[0] else { unreachable!() };
/// assert_eq!(&*element.metadata().reference.element_id, "users:7");
/// # Ok::<(), pgcdc_core::snapshot::SnapshotError>(())
/// ```
pub struct SnapshotAssembler {
    pipeline: Pipeline,
    consistent_point: Lsn,
    time_ns: u64,
    /// The snapshot time as pgoutput would send it (µs since 2000-01-01).
    pg_time: i64,
    part: Option<Part>,
    /// Primary keys already given to the pipeline, by relation.
    primary_keys: HashMap<Oid, Vec<String>>,
    row: CopyRow,
    buf: BytesMut,
    events: VecDeque<SnapshotEvent>,
    rows: u64,
}

/// What a [`SnapshotAssembler`] reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SnapshotEvent {
    /// A batch of bootstrap inserts: a whole part, or a chunk of a large one. It has xid 0,
    /// commit LSN the consistent point, no end LSN (there is nothing to acknowledge: the
    /// stream starts after it), and the snapshot time.
    Batch(TransactionBatch),
    /// A warning of the pipeline (a table without a key, a configured key column that does
    /// not exist …).
    Warning(String),
}

/// The part being copied.
#[derive(Debug)]
struct Part {
    oid: Oid,
    label: String,
    columns: Vec<Arc<str>>,
    rows: u64,
}

impl std::fmt::Debug for SnapshotAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotAssembler")
            .field("consistent_point", &self.consistent_point)
            .field("time_ns", &self.time_ns)
            .field("part", &self.part)
            .field("rows", &self.rows)
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl SnapshotAssembler {
    /// An assembler for source `source_id`, assembling with `config` (its keys and batch
    /// size), for a snapshot whose slot's consistent point is `consistent_point`, taken at
    /// `snapshot_time_ns` (nanoseconds since the Unix epoch: every change's
    /// `effective_from`).
    ///
    /// Tables without a key get ids from a deterministic generator: inject a random one with
    /// [`with_id_generator`](Self::with_id_generator).
    pub fn new(
        source_id: &str,
        config: PipelineConfig,
        consistent_point: Lsn,
        snapshot_time_ns: u64,
    ) -> Self {
        let micros = i64::try_from(snapshot_time_ns / 1000).unwrap_or(i64::MAX);
        SnapshotAssembler {
            pipeline: Pipeline::new(source_id, config),
            consistent_point,
            time_ns: snapshot_time_ns,
            pg_time: micros.saturating_sub(PG_EPOCH_UNIX_MICROS),
            part: None,
            primary_keys: HashMap::new(),
            row: CopyRow::new(),
            buf: BytesMut::with_capacity(256),
            events: VecDeque::new(),
            rows: 0,
        }
    }

    /// Uses `generate` (128 random bits per call) for the ids of rows of tables without a
    /// key, as [`Pipeline::with_id_generator`].
    pub fn with_id_generator(mut self, generate: impl FnMut() -> u128 + Send + 'static) -> Self {
        self.pipeline = self.pipeline.with_id_generator(generate);
        self
    }

    /// The type registry, to register user types read from `pg_type` (as for the stream's
    /// pipeline, so both decode alike).
    pub fn type_registry_mut(&mut self) -> &mut TypeRegistry {
        self.pipeline.type_registry_mut()
    }

    /// The pipeline underneath (its relations, key sources, statistics).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Rows pushed so far, over all parts.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether a part is open.
    pub fn in_part(&self) -> bool {
        self.part.is_some()
    }

    /// Starts copying a part of `table`: gives the pipeline the table's primary key, then
    /// feeds a Begin, the table's Type messages and its Relation.
    ///
    /// # Errors
    ///
    /// A part already open, or a table description the pipeline cannot take (a name holding
    /// NUL, more than 32767 columns).
    pub fn handle_part_start(&mut self, table: &SnapshotTable) -> Result<(), SnapshotError> {
        if self.part.is_some() {
            return Err(SnapshotError::Misuse(
                "handle_part_start called while a part is open (end or abort it first)",
            ));
        }
        let rel = &table.relation;
        let label = table.label();
        if !table.primary_key.is_empty()
            && self.primary_keys.get(&rel.oid) != Some(&table.primary_key)
        {
            self.pipeline
                .set_primary_key(rel.oid, table.primary_key.clone());
            self.primary_keys.insert(rel.oid, table.primary_key.clone());
            self.drain();
        }
        let mut messages = Vec::with_capacity(table.types.len() + 2);
        messages.push(PgOutputMessage::Begin {
            final_lsn: self.consistent_point,
            commit_time: self.pg_time,
            xid: Xid(0),
        });
        for t in &table.types {
            messages.push(PgOutputMessage::Type {
                xid: None,
                oid: t.oid,
                namespace: t.namespace.clone(),
                name: t.name.clone(),
            });
        }
        let mut body = rel.clone();
        body.xid = None;
        messages.push(PgOutputMessage::Relation(body));
        self.part = Some(Part {
            oid: rel.oid,
            label,
            columns: rel
                .columns
                .iter()
                .map(|c| Arc::from(c.name.as_str()))
                .collect(),
            rows: 0,
        });
        for m in &messages {
            if let Err(e) = self.feed(m) {
                self.abort_part();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Adds one row of the part: a CopyData payload of its `COPY … TO STDOUT` (text format).
    ///
    /// # Errors
    ///
    /// No part open, or a row that does not parse (the error names the table, row and
    /// column). The part stays open: the caller decides whether to go on.
    pub fn handle_row(&mut self, copy_line: &[u8]) -> Result<(), SnapshotError> {
        let Some(part) = &mut self.part else {
            return Err(SnapshotError::Misuse(
                "handle_row called without handle_part_start",
            ));
        };
        part.rows += 1;
        if self.pipeline.takes_tuples() {
            // The row goes to the pipeline as it is parsed: no pgoutput message in between.
            let tuple = match self.row.tuple(copy_line, part.columns.len()) {
                Ok(t) => t,
                Err(error) => return Err(copy_row_error(part, error)),
            };
            let result = self
                .pipeline
                .insert_tuple(part.oid, tuple)
                .map_err(|error| SnapshotError::Assemble {
                    table: part.label.clone(),
                    error,
                });
            self.drain();
            result?;
        } else {
            if let Err(error) = self.row.parse(copy_line, part.columns.len()) {
                return Err(copy_row_error(part, error));
            }
            let new = TupleData::from_values(self.row.iter().map(|v| match v {
                Some(b) => ColumnValue::Text(b),
                None => ColumnValue::Null,
            }))
            .map_err(|error| SnapshotError::Encode {
                table: part.label.clone(),
                error,
            })?;
            let msg = PgOutputMessage::Insert {
                xid: None,
                rel: part.oid,
                new,
            };
            self.feed(&msg)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the part with a Commit: its last (or only) batch becomes ready.
    ///
    /// # Errors
    ///
    /// No part open.
    pub fn handle_part_end(&mut self) -> Result<(), SnapshotError> {
        if self.part.is_none() {
            return Err(SnapshotError::Misuse(
                "handle_part_end called without handle_part_start",
            ));
        }
        let commit = PgOutputMessage::Commit {
            flags: 0,
            commit_lsn: self.consistent_point,
            end_lsn: self.consistent_point,
            commit_time: self.pg_time,
        };
        let result = self.feed(&commit);
        self.part = None;
        result
    }

    /// Abandons the open part (after a failed COPY), forgetting its rows not yet emitted.
    /// Chunks of it already polled were delivered: a caller that retries the part delivers
    /// their rows again. Returns whether a part was open.
    pub fn abort_part(&mut self) -> bool {
        let open = self.part.take().is_some();
        self.pipeline.reset();
        while let Some(e) = self.pipeline.poll_event() {
            // Only IncompleteTransaction comes out of a reset.
            if let PipelineEvent::Warning(w) = e {
                self.events.push_back(SnapshotEvent::Warning(w));
            }
        }
        open
    }

    /// The next event (a batch of a part, or a warning), or `None`. Drain after each call.
    pub fn poll_event(&mut self) -> Option<SnapshotEvent> {
        self.events.pop_front()
    }

    fn feed(&mut self, msg: &PgOutputMessage) -> Result<(), SnapshotError> {
        let table = || {
            self.part
                .as_ref()
                .map_or_else(String::new, |p| p.label.clone())
        };
        self.buf.clear();
        encode::message(msg, &mut self.buf).map_err(|error| SnapshotError::Encode {
            table: table(),
            error,
        })?;
        let payload = self.buf.split().freeze();
        let result = self
            .pipeline
            .handle_xlog(&payload, self.consistent_point, self.consistent_point)
            .map_err(|error| SnapshotError::Assemble {
                table: table(),
                error,
            });
        self.drain();
        result
    }

    fn drain(&mut self) {
        while let Some(event) = self.pipeline.poll_event() {
            match event {
                PipelineEvent::Transaction(mut batch) => {
                    // Bootstrap rows precede the stream: nothing to acknowledge (no end LSN),
                    // and the exact snapshot time (pgoutput times have microseconds).
                    batch.commit_time_ns = self.time_ns;
                    batch.end_lsn = None;
                    let tx = TxInfo {
                        end_lsn: None,
                        commit_time_ns: self.time_ns,
                        ..TxInfo::outside_transaction(self.consistent_point)
                    };
                    for c in &mut batch.changes {
                        c.set_tx(tx);
                    }
                    self.events.push_back(SnapshotEvent::Batch(batch));
                }
                PipelineEvent::Warning(w) => self.events.push_back(SnapshotEvent::Warning(w)),
                _ => {}
            }
        }
    }
}

/// The error of a COPY row that does not parse, naming its table, row and column.
fn copy_row_error(part: &Part, error: CopyTextError) -> SnapshotError {
    let column = error
        .column()
        .and_then(|c| part.columns.get(c.wrapping_sub(1)))
        .map(|c| c.to_string());
    SnapshotError::CopyRow {
        table: part.label.clone(),
        row: part.rows,
        column,
        error,
    }
}
