//! Tuples to property maps.

use std::fmt::Write as _;
use std::sync::Arc;

use super::keys::{ColInfo, RelInfo};
use crate::model::{ElementPropertyMap, ElementValue};
use crate::pgoutput::{ColumnValue, OldTuple, TupleData};
use crate::value::{TypeRegistry, decode_binary, decode_text};

/// Converts column values, counting the ones that fell back to text.
#[derive(Debug)]
pub(crate) struct Converter<'a> {
    pub(crate) registry: &'a TypeRegistry,
    pub(crate) fallbacks: &'a mut u64,
}

impl Converter<'_> {
    /// The value of one column; `None` for unchanged TOAST (no value was sent).
    ///
    /// Text that does not parse as its type, and binary data without a decoder, become
    /// [`ElementValue::Unknown`]: the text (invalid UTF-8 replaced), or for binary data `\x`
    /// and lowercase hex. A row is never dropped.
    pub(crate) fn value(&mut self, col: &ColInfo, v: ColumnValue<'_>) -> Option<ElementValue> {
        Some(match v {
            ColumnValue::Null => ElementValue::Null,
            ColumnValue::UnchangedToast => return None,
            ColumnValue::Text(b) => match decode_text(col.type_oid, col.typmod, b, self.registry) {
                Ok(v) => v,
                Err(_) => {
                    *self.fallbacks += 1;
                    ElementValue::Unknown {
                        type_oid: col.type_oid,
                        text: String::from_utf8_lossy(b).into_owned(),
                    }
                }
            },
            ColumnValue::Binary(b) => match decode_binary(col.type_oid, b, self.registry) {
                Ok(v) => v,
                Err(_) => {
                    *self.fallbacks += 1;
                    let mut text = String::with_capacity(2 + 2 * b.len());
                    text.push_str("\\x");
                    for x in b {
                        let _ = write!(text, "{x:02x}");
                    }
                    ElementValue::Unknown {
                        type_oid: col.type_oid,
                        text,
                    }
                }
            },
        })
    }

    /// The properties of a new row. Unchanged-TOAST columns are filled from `old_full` (an
    /// `O` tuple) when it has a value; otherwise they are left out and their names returned.
    pub(crate) fn row(
        &mut self,
        rel: &RelInfo,
        new: &TupleData,
        old_full: Option<&TupleData>,
    ) -> (ElementPropertyMap, Vec<Arc<str>>) {
        let mut props = ElementPropertyMap::with_capacity(rel.columns.len());
        let mut unchanged = Vec::new();
        for (i, (col, v)) in rel.columns.iter().zip(new.iter()).enumerate() {
            let v = if v.is_unchanged_toast() {
                old_full.and_then(|t| t.get(i)).unwrap_or(v)
            } else {
                v
            };
            match self.value(col, v) {
                Some(value) => props.push_unchecked(col.name.clone(), value),
                None => unchanged.push(col.name.clone()),
            }
        }
        (props, unchanged)
    }

    /// The properties of an old row as sent: every column of an `O` tuple, only the
    /// replica-identity key columns of a `K` tuple (the others are sent as NULL placeholders).
    /// Unchanged-TOAST values (never sent in old tuples in practice) are left out.
    pub(crate) fn old_row(&mut self, rel: &RelInfo, old: &OldTuple) -> ElementPropertyMap {
        let key_only = matches!(old, OldTuple::Key(_));
        let tuple = old.tuple();
        let mut props = ElementPropertyMap::with_capacity(if key_only {
            rel.columns.iter().filter(|c| c.ri_key).count()
        } else {
            rel.columns.len()
        });
        for (col, v) in rel.columns.iter().zip(tuple.iter()) {
            if key_only && !col.ri_key {
                continue;
            }
            if let Some(value) = self.value(col, v) {
                props.push_unchecked(col.name.clone(), value);
            }
        }
        props
    }
}
