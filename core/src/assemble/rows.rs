//! Relations and row changes.

use std::sync::Arc;

use super::convert::{Converter, InOrder, OldRef, infallible};
use super::keys::KeySource;
use super::{AssembleError, Pipeline};
use crate::model::{Element, ElementMetadata, ElementReference, SourceChange, TxInfo};
use crate::pgoutput::{
    Oid, OldTuple, RelationBody, RowHead, RowMessage, SchemaChange, TupleData, TupleReader,
    TupleRef, Xid,
};

/// Adds the change `$change` (an expression evaluated once) of (sub)transaction `$sub`, like
/// [`Pipeline::emit_change`], building it straight into the transaction's buffer: a change is
/// over 200 bytes, and built on the stack then copied it costs a store-forwarding stall.
macro_rules! emit {
    ($self:ident, $sub:expr, $change:expr) => {
        match $self.plain_buffer() {
            // Room is made first and nothing runs between building and writing.
            Some(buf) => buf.extend(std::iter::once_with(|| $change)),
            None => {
                let change = $change;
                $self.emit_change($sub, change);
            }
        }
    };
}

impl Pipeline {
    pub(super) fn relation_message(&mut self, body: RelationBody) -> Result<(), AssembleError> {
        let oid = body.oid;
        let sub = body.xid;
        match self.relations.upsert(body) {
            SchemaChange::New => self.rebuild(oid),
            SchemaChange::Unchanged => {
                if !self.rel_info.contains_key(&oid) {
                    self.rebuild(oid);
                }
            }
            SchemaChange::Changed(diff) => {
                self.rebuild(oid);
                if !self.is_included(oid) {
                    return Ok(());
                }
                let rel = self.relation(oid, "Relation")?;
                match self.target("Relation") {
                    Ok(tx) => self.emit_change(
                        sub,
                        SourceChange::SchemaChange {
                            label: rel.label.clone(),
                            diff,
                            relation: rel.body.clone(),
                            tx,
                        },
                    ),
                    Err(_) => self.warnings.push(format!(
                        "the schema of table {} changed outside a transaction: {diff:?}",
                        rel.label
                    )),
                }
            }
        }
        Ok(())
    }

    /// Handles an Insert, Update or Delete parsed from `payload` (the fast path of
    /// [`handle_xlog`](Pipeline::handle_xlog): no message is built).
    #[inline]
    pub(super) fn row_message(
        &mut self,
        payload: &[u8],
        msg: RowMessage,
    ) -> Result<(), AssembleError> {
        match msg {
            RowMessage::Insert { xid, rel, new } => {
                let result = self.insert_row(xid, rel, new.view(payload));
                self.decoder.recycle_cells(new);
                result
            }
            RowMessage::Update { xid, rel, old, new } => {
                let result = self.update_row(
                    xid,
                    rel,
                    old.as_ref()
                        .map(|(key, t)| OldRef::new(*key, t.view(payload))),
                    new.view(payload),
                );
                if let Some((_, old)) = old {
                    self.decoder.recycle_cells(old);
                }
                self.decoder.recycle_cells(new);
                result
            }
            RowMessage::Delete { xid, rel, key, old } => {
                let result = self.delete_row(xid, rel, OldRef::new(key, old.view(payload)));
                self.decoder.recycle_cells(old);
                result
            }
        }
    }

    /// An Insert, or an Update without an old tuple, whose header is `head`: the new tuple is
    /// read from the payload and converted column by column in one pass (the fast path of
    /// [`handle_xlog`](Pipeline::handle_xlog)).
    ///
    /// `None`, with nothing changed, when the message is outside a transaction, of an unknown
    /// relation, or its tuple does not start with the relation's column count: the general
    /// path handles it and reports what is wrong exactly as for any other message.
    #[inline]
    pub(super) fn new_row_fast(&mut self, head: RowHead<'_>) -> Option<Result<(), AssembleError>> {
        let RowHead {
            update,
            xid: sub,
            rel: oid,
            mut reader,
        } = head;
        let tx = self.target(if update { "Update" } else { "Insert" }).ok()?;
        if !self.is_included(oid) {
            return Some(Ok(()));
        }
        let rel = self.rel_info.get(&oid)?;
        let mut columns = TupleReader::new(&mut reader, &mut self.cells).ok()?;
        if columns.len() != rel.columns.len() {
            return None;
        }
        // Reference counts first, before the row's values are written (see `Converter::row`).
        let (source_id, labels) = (self.source_id.clone(), rel.labels.clone());
        let fallbacks = self.stats.fallback_values;
        let converted = Converter {
            registry: &self.registry,
            fallbacks: &mut self.stats.fallback_values,
            dates: &mut self.dates,
        }
        .row(rel, &mut columns, None)
        .and_then(|row| columns.finish().map(|()| row));
        let (properties, unchanged_toast) = match converted {
            Ok(row) => row,
            Err(e) => {
                // A message that does not decode counts nothing.
                self.stats.fallback_values = fallbacks;
                return Some(Err(e.into()));
            }
        };
        self.stats.messages += 1;
        let id = self
            .ids
            .element_id(rel, columns.tuple(), None, &self.registry);
        let element = Element::Node {
            metadata: metadata(source_id, labels, id, &tx),
            properties,
        };
        if update {
            emit!(
                self,
                sub,
                SourceChange::Update {
                    element,
                    old: None,
                    unchanged_toast,
                    tx,
                }
            );
        } else {
            emit!(
                self,
                sub,
                SourceChange::Insert {
                    element,
                    unchanged_toast,
                    tx,
                }
            );
        }
        Some(Ok(()))
    }

    /// Whether [`insert_tuple`](Self::insert_tuple) may be called: no transaction is held
    /// and no payload waits (else a row must go through [`handle_xlog`](Self::handle_xlog)
    /// to keep its place).
    #[inline]
    pub(crate) fn takes_tuples(&self) -> bool {
        !self.has_backlog() && !self.holding()
    }

    /// An Insert of the open top-level transaction, from a tuple that was never a pgoutput
    /// message (a snapshot's COPY row): what [`handle_xlog`](Self::handle_xlog) does with
    /// an Insert, without encoding and decoding it. Call only when
    /// [`takes_tuples`](Self::takes_tuples).
    ///
    /// # Errors
    ///
    /// As for an Insert message: no transaction open, an unknown relation, another width.
    #[inline]
    pub(crate) fn insert_tuple(
        &mut self,
        oid: Oid,
        new: TupleRef<'_>,
    ) -> Result<(), AssembleError> {
        self.insert_row(None, oid, new)?;
        self.stats.messages += 1;
        Ok(())
    }

    pub(super) fn insert(
        &mut self,
        sub: Option<Xid>,
        oid: Oid,
        new: TupleData,
    ) -> Result<(), AssembleError> {
        let result = self.insert_row(sub, oid, new.view());
        self.decoder.recycle(new);
        result
    }

    #[inline]
    fn insert_row(
        &mut self,
        sub: Option<Xid>,
        oid: Oid,
        new: TupleRef<'_>,
    ) -> Result<(), AssembleError> {
        let tx = self.target("Insert")?;
        if !self.is_included(oid) && self.rel_info.contains_key(&oid) {
            return Ok(());
        }
        // Field by field, so that the relation stays borrowed from the map.
        let rel = self
            .rel_info
            .get(&oid)
            .ok_or(AssembleError::UnknownRelation {
                message: "Insert",
                oid,
            })?;
        Self::check_width(rel, new, "Insert")?;
        // Reference counts first, before the row's values are written (see `Converter::row`).
        let (source_id, labels) = (self.source_id.clone(), rel.labels.clone());
        let (properties, unchanged_toast) = infallible(
            Converter {
                registry: &self.registry,
                fallbacks: &mut self.stats.fallback_values,
                dates: &mut self.dates,
            }
            .row(rel, &mut InOrder::new(new), None),
        );
        let id = self.ids.element_id(rel, new, None, &self.registry);
        let metadata = metadata(source_id, labels, id, &tx);
        emit!(
            self,
            sub,
            SourceChange::Insert {
                element: Element::Node {
                    metadata,
                    properties,
                },
                unchanged_toast,
                tx,
            }
        );
        Ok(())
    }

    pub(super) fn update(
        &mut self,
        sub: Option<Xid>,
        oid: Oid,
        old: Option<OldTuple>,
        new: TupleData,
    ) -> Result<(), AssembleError> {
        let result = self.update_row(sub, oid, old.as_ref().map(OldRef::of), new.view());
        if let Some(old) = old {
            self.decoder.recycle(old.into_tuple());
        }
        self.decoder.recycle(new);
        result
    }

    #[inline]
    fn update_row(
        &mut self,
        sub: Option<Xid>,
        oid: Oid,
        old: Option<OldRef<'_>>,
        new: TupleRef<'_>,
    ) -> Result<(), AssembleError> {
        let tx = self.target("Update")?;
        if !self.is_included(oid) && self.rel_info.contains_key(&oid) {
            return Ok(());
        }
        let rel = self
            .rel_info
            .get(&oid)
            .ok_or(AssembleError::UnknownRelation {
                message: "Update",
                oid,
            })?;
        Self::check_width(rel, new, "Update")?;
        if let Some(o) = old {
            Self::check_width(rel, o.tuple(), "Update")?;
        }
        let full_old = match old {
            Some(OldRef::Full(t)) => Some(t),
            _ => None,
        };
        let (source_id, labels) = (self.source_id.clone(), rel.labels.clone());
        let mut converter = Converter {
            registry: &self.registry,
            fallbacks: &mut self.stats.fallback_values,
            dates: &mut self.dates,
        };
        let (properties, unchanged_toast) =
            infallible(converter.row(rel, &mut InOrder::new(new), full_old));
        let new_id = self
            .ids
            .element_id(rel, new, old.map(OldRef::tuple), &self.registry);
        let old_id = match old {
            Some(o)
                if rel.key_source != KeySource::Generated
                    && (matches!(o, OldRef::Full(_)) || rel.key_in_identity) =>
            {
                Some(self.ids.element_id(rel, o.tuple(), None, &self.registry))
            }
            _ => None,
        };
        match (old, old_id) {
            (Some(old), Some(old_id)) if old_id != new_id => {
                let old_props = converter.old_row(rel, old);
                let delete = SourceChange::Delete {
                    metadata: metadata(source_id.clone(), labels.clone(), old_id, &tx),
                    old: old_props,
                    tx,
                };
                let insert = SourceChange::Insert {
                    element: Element::Node {
                        metadata: metadata(source_id, labels, new_id, &tx),
                        properties,
                    },
                    unchanged_toast,
                    tx,
                };
                self.emit_change(sub, delete);
                self.emit_change(sub, insert);
            }
            (old, _) => {
                let old = match old {
                    Some(o) if self.config.include_old_values => Some(converter.old_row(rel, o)),
                    _ => None,
                };
                let metadata = metadata(source_id, labels, new_id, &tx);
                emit!(
                    self,
                    sub,
                    SourceChange::Update {
                        element: Element::Node {
                            metadata,
                            properties,
                        },
                        old,
                        unchanged_toast,
                        tx,
                    }
                );
            }
        }
        Ok(())
    }

    pub(super) fn delete(
        &mut self,
        sub: Option<Xid>,
        oid: Oid,
        old: OldTuple,
    ) -> Result<(), AssembleError> {
        let result = self.delete_row(sub, oid, OldRef::of(&old));
        self.decoder.recycle(old.into_tuple());
        result
    }

    #[inline]
    fn delete_row(
        &mut self,
        sub: Option<Xid>,
        oid: Oid,
        old: OldRef<'_>,
    ) -> Result<(), AssembleError> {
        let tx = self.target("Delete")?;
        if !self.is_included(oid) && self.rel_info.contains_key(&oid) {
            return Ok(());
        }
        let rel = self
            .rel_info
            .get(&oid)
            .ok_or(AssembleError::UnknownRelation {
                message: "Delete",
                oid,
            })?;
        Self::check_width(rel, old.tuple(), "Delete")?;
        let (source_id, labels) = (self.source_id.clone(), rel.labels.clone());
        let id = self.ids.element_id(rel, old.tuple(), None, &self.registry);
        let old_props = Converter {
            registry: &self.registry,
            fallbacks: &mut self.stats.fallback_values,
            dates: &mut self.dates,
        }
        .old_row(rel, old);
        let metadata = metadata(source_id, labels, id, &tx);
        emit!(
            self,
            sub,
            SourceChange::Delete {
                metadata,
                old: old_props,
                tx,
            }
        );
        Ok(())
    }
}

/// The metadata of an element with `labels` made in `tx`.
#[inline]
fn metadata(
    source_id: Arc<str>,
    labels: Arc<[Arc<str>]>,
    element_id: Arc<str>,
    tx: &TxInfo,
) -> ElementMetadata {
    ElementMetadata {
        reference: ElementReference {
            source_id,
            element_id,
        },
        labels,
        effective_from: tx.commit_time_ns,
    }
}
