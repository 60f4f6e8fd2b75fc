//! Tuples to property maps.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use super::keys::{ColInfo, RelInfo};
use crate::model::{ElementPropertyMap, ElementValue};
use crate::pgoutput::{ColumnValue, DecodeError, OldTuple, TupleReader, TupleRef};
use crate::value::TypeRegistry;
use crate::value::datetime::DateMemo;

/// An old tuple: the replica-identity key (`K`) or the whole old row (`O`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum OldRef<'a> {
    Key(TupleRef<'a>),
    Full(TupleRef<'a>),
}

impl<'a> OldRef<'a> {
    #[inline]
    pub(crate) fn new(key: bool, tuple: TupleRef<'a>) -> Self {
        if key {
            OldRef::Key(tuple)
        } else {
            OldRef::Full(tuple)
        }
    }

    #[inline]
    pub(crate) fn of(old: &'a OldTuple) -> Self {
        match old {
            OldTuple::Key(t) => OldRef::Key(t.view()),
            OldTuple::Full(t) => OldRef::Full(t.view()),
        }
    }

    #[inline]
    pub(crate) fn tuple(self) -> TupleRef<'a> {
        match self {
            OldRef::Key(t) | OldRef::Full(t) => t,
        }
    }
}

/// A tuple's columns, read in order, for the row converters: either from a tuple already
/// parsed ([`InOrder`]) or straight from the payload ([`TupleReader`], which may fail).
pub(crate) trait Columns<'v> {
    /// What reading a column can fail with.
    type Error;
    /// The next column's value; `None` after the last.
    fn next_value(&mut self) -> Result<Option<ColumnValue<'v>>, Self::Error>;
    /// The whole tuple, for reading at random (the columns not read yet are read first).
    fn whole(&mut self) -> Result<TupleRef<'_>, Self::Error>;
}

/// The columns of a parsed tuple, in order.
pub(crate) struct InOrder<'a> {
    tuple: TupleRef<'a>,
    next: usize,
}

impl<'a> InOrder<'a> {
    #[inline]
    pub(crate) fn new(tuple: TupleRef<'a>) -> Self {
        InOrder { tuple, next: 0 }
    }
}

impl<'a> Columns<'a> for InOrder<'a> {
    type Error = Infallible;

    #[inline(always)]
    fn next_value(&mut self) -> Result<Option<ColumnValue<'a>>, Infallible> {
        let v = self.tuple.get(self.next);
        self.next += 1;
        Ok(v)
    }

    #[inline]
    fn whole(&mut self) -> Result<TupleRef<'_>, Infallible> {
        Ok(self.tuple)
    }
}

impl<'a> Columns<'a> for TupleReader<'_, 'a, '_> {
    type Error = DecodeError;

    #[inline(always)]
    fn next_value(&mut self) -> Result<Option<ColumnValue<'a>>, DecodeError> {
        TupleReader::next_value(self)
    }

    #[inline]
    fn whole(&mut self) -> Result<TupleRef<'_>, DecodeError> {
        self.read_rest()?;
        Ok(self.tuple())
    }
}

/// The value of a conversion that cannot fail.
#[inline(always)]
pub(crate) fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

/// Converts column values, counting the ones that fell back to text.
#[derive(Debug)]
pub(crate) struct Converter<'a> {
    pub(crate) registry: &'a TypeRegistry,
    pub(crate) fallbacks: &'a mut u64,
    /// The last date parsed, reused by the next timestamps of the same day.
    pub(crate) dates: &'a mut DateMemo,
}

impl Converter<'_> {
    /// Appends the value of one column to `out`; `false` (and nothing appended) for unchanged
    /// TOAST, which has no value.
    ///
    /// Text that does not parse as its type, and binary data without a decoder, become
    /// [`ElementValue::Unknown`]: the text (invalid UTF-8 replaced), or for binary data `\x`
    /// and lowercase hex. A row is never dropped.
    ///
    /// Always inlined into the row loops: passed to a call, the column value would be written
    /// to memory and read back at once (a store-forwarding stall).
    #[inline(always)]
    pub(crate) fn push(
        &mut self,
        col: &ColInfo,
        v: ColumnValue<'_>,
        out: &mut Vec<ElementValue>,
    ) -> bool {
        match v {
            ColumnValue::Null => out.push(ElementValue::Null),
            ColumnValue::UnchangedToast => return false,
            ColumnValue::Text(b) => {
                if col
                    .codec
                    .push_text(col.type_oid, b, self.registry, self.dates, out)
                    .is_err()
                {
                    self.text_fallback(col, b, out);
                }
            }
            ColumnValue::Binary(b) => {
                if col
                    .codec
                    .push_binary(col.type_oid, b, self.registry, out)
                    .is_err()
                {
                    self.binary_fallback(col, b, out);
                }
            }
        }
        true
    }

    #[cold]
    #[inline(never)]
    fn text_fallback(&mut self, col: &ColInfo, b: &[u8], out: &mut Vec<ElementValue>) {
        *self.fallbacks += 1;
        out.push(ElementValue::Unknown {
            type_oid: col.type_oid,
            text: String::from_utf8_lossy(b).into_owned(),
        });
    }

    #[cold]
    #[inline(never)]
    fn binary_fallback(&mut self, col: &ColInfo, b: &[u8], out: &mut Vec<ElementValue>) {
        *self.fallbacks += 1;
        let mut text = String::with_capacity(2 + 2 * b.len());
        text.push_str("\\x");
        for x in b {
            let _ = write!(text, "{x:02x}");
        }
        out.push(ElementValue::Unknown {
            type_oid: col.type_oid,
            text,
        });
    }

    /// The properties of a new row, its columns read from `new`. Unchanged-TOAST columns are
    /// filled from `old_full` (an `O` tuple) when it has a value; otherwise they are left out
    /// and their names returned. The caller has checked that the tuple has as many columns as
    /// the relation.
    #[inline(always)]
    pub(crate) fn row<'v, C: Columns<'v>>(
        &mut self,
        rel: &RelInfo,
        new: &mut C,
        old_full: Option<TupleRef<'_>>,
    ) -> Result<(ElementPropertyMap, Vec<Arc<str>>), C::Error> {
        // Reference counts are taken before the values are written: an atomic increment waits
        // for the stores before it to drain.
        let names = rel.names.clone();
        let mut values = Vec::with_capacity(rel.columns.len());
        for (i, col) in rel.columns.iter().enumerate() {
            let Some(v) = new.next_value()? else {
                break;
            };
            if !self.push(col, v, &mut values) {
                let new = new.whole()?;
                return Ok(self.row_with_toast(rel, new, old_full, i, values));
            }
        }
        Ok((
            RowBuilder {
                values,
                own_names: None,
            }
            .finish(names),
            Vec::new(),
        ))
    }

    /// [`row`](Self::row) from column `from` on, which was sent as unchanged TOAST; `values`
    /// holds the columns before it.
    #[cold]
    #[inline(never)]
    fn row_with_toast(
        &mut self,
        rel: &RelInfo,
        new: TupleRef<'_>,
        old_full: Option<TupleRef<'_>>,
        from: usize,
        values: Vec<ElementValue>,
    ) -> (ElementPropertyMap, Vec<Arc<str>>) {
        let mut props = RowBuilder {
            values,
            own_names: None,
        };
        let mut unchanged = Vec::new();
        for (i, (col, v)) in rel.columns.iter().zip(new.iter()).enumerate().skip(from) {
            let v = if v.is_unchanged_toast() {
                old_full.and_then(|t| t.get(i)).unwrap_or(v)
            } else {
                v
            };
            if !props.push(self, col, v, &rel.names) {
                unchanged.push(col.name.clone());
            }
        }
        (props.finish(rel.names.clone()), unchanged)
    }

    /// The properties of an old row as sent: every column of an `O` tuple, only the
    /// replica-identity key columns of a `K` tuple (the others are sent as NULL placeholders).
    /// Unchanged-TOAST values (never sent in old tuples in practice) are left out.
    #[inline]
    pub(crate) fn old_row(&mut self, rel: &RelInfo, old: OldRef<'_>) -> ElementPropertyMap {
        let key_only = matches!(old, OldRef::Key(_));
        let names = if key_only {
            rel.ri_key_names.clone()
        } else {
            rel.names.clone()
        };
        let mut props = RowBuilder {
            values: Vec::with_capacity(names.len()),
            own_names: None,
        };
        for (col, v) in rel.columns.iter().zip(old.tuple().iter()) {
            if key_only && !col.ri_key {
                continue;
            }
            props.push(self, col, v, &names);
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
    /// Appends column `col`'s value `v`; `false` when it has none (unchanged TOAST) and is
    /// left out of the map whose full list of names is `shared`.
    #[inline]
    fn push(
        &mut self,
        conv: &mut Converter<'_>,
        col: &ColInfo,
        v: ColumnValue<'_>,
        shared: &[Arc<str>],
    ) -> bool {
        if conv.push(col, v, &mut self.values) {
            if let Some(names) = &mut self.own_names {
                names.push(col.name.clone());
            }
            true
        } else {
            self.skip(shared);
            false
        }
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
    fn finish(self, shared: Arc<[Arc<str>]>) -> ElementPropertyMap {
        match self.own_names {
            None if self.values.len() == shared.len() => {
                ElementPropertyMap::from_shared(shared, self.values)
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
