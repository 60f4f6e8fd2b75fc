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
        let mut props = RowBuilder::new(rel.columns.len());
        let mut unchanged = Vec::new();
        for (i, (col, v)) in rel.columns.iter().zip(new.iter()).enumerate() {
            let v = if v.is_unchanged_toast() {
                old_full.and_then(|t| t.get(i)).unwrap_or(v)
            } else {
                v
            };
            match self.value(col, v) {
                Some(value) => props.push(&col.name, value),
                None => {
                    props.skip(&rel.names);
                    unchanged.push(col.name.clone());
                }
            }
        }
        (props.finish(&rel.names), unchanged)
    }

    /// The properties of an old row as sent: every column of an `O` tuple, only the
    /// replica-identity key columns of a `K` tuple (the others are sent as NULL placeholders).
    /// Unchanged-TOAST values (never sent in old tuples in practice) are left out.
    pub(crate) fn old_row(&mut self, rel: &RelInfo, old: &OldTuple) -> ElementPropertyMap {
        let key_only = matches!(old, OldTuple::Key(_));
        let names = if key_only {
            &rel.ri_key_names
        } else {
            &rel.names
        };
        let mut props = RowBuilder::new(names.len());
        for (col, v) in rel.columns.iter().zip(old.tuple().iter()) {
            if key_only && !col.ri_key {
                continue;
            }
            match self.value(col, v) {
                Some(value) => props.push(&col.name, value),
                None => props.skip(names),
            }
        }
        props.finish(names)
    }
}

/// Collects a row's values. While every column has a value the names are those of the
/// relation, shared; once one is left out the map gets its own list.
struct RowBuilder {
    values: Vec<ElementValue>,
    own_names: Option<Vec<Arc<str>>>,
}

impl RowBuilder {
    #[inline]
    fn new(n: usize) -> Self {
        RowBuilder {
            values: Vec::with_capacity(n),
            own_names: None,
        }
    }

    #[inline]
    fn push(&mut self, name: &Arc<str>, value: ElementValue) {
        if let Some(names) = &mut self.own_names {
            names.push(name.clone());
        }
        self.values.push(value);
    }

    /// A column of `shared` is left out: the values so far are those of its first columns.
    #[cold]
    fn skip(&mut self, shared: &[Arc<str>]) {
        if self.own_names.is_none() {
            let before = shared.get(..self.values.len()).unwrap_or(shared);
            self.own_names = Some(before.to_vec());
        }
    }

    #[inline]
    fn finish(self, shared: &Arc<[Arc<str>]>) -> ElementPropertyMap {
        match self.own_names {
            None if self.values.len() == shared.len() => {
                ElementPropertyMap::from_shared(shared.clone(), self.values)
            }
            None => {
                let mut values = self.values;
                values.truncate(shared.len());
                let names = shared.get(..values.len()).unwrap_or_default().to_vec();
                ElementPropertyMap::from_owned(names, values)
            }
            Some(names) => ElementPropertyMap::from_owned(names, self.values),
        }
    }
}
