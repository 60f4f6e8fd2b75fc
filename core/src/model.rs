//! The change model: what a consumer receives for every row change, truncate, schema change and
//! logical message.
//!
//! The names and shapes are those of the Drasi PostgreSQL source, so code written against it
//! keeps compiling: a [`SourceChange`] is an `Insert` or `Update` of an [`Element`] or a `Delete`
//! of an element identified by its [`ElementMetadata`]. pgcdc adds what Drasi lacks —
//! [`SourceChange::Truncate`], [`SourceChange::SchemaChange`] and [`SourceChange::Message`] — and
//! tags every change with its transaction ([`TxInfo`]) so consumers can deduplicate and resume.
//!
//! # Element ids
//!
//! An element id is `label:value` for a one-column key and `label:v1_v2_…` for a composite key,
//! where `label` is the table's label and each value is the column's text output. To keep ids
//! unambiguous, each key value is escaped ([`escape_key_part`]):
//!
//! | in a value | becomes |
//! |---|---|
//! | `\` | `\\` |
//! | `_` | `\_` |
//! | `:` | `\:` |
//! | SQL NULL (the whole value) | `\N` |
//!
//! The label is escaped the same way except that `_` is kept (the label ends at the first
//! unescaped `:`, so an `_` in it is never ambiguous). So `users` with key `id = 7` is
//! `users:7`, `app.order_items` with key `(order_id, sku) = (1, "a_b")` is
//! `app.order_items:1_a\_b`. See [`assemble`](crate::assemble) for how the key columns are
//! chosen.
//!
//! # Labels
//!
//! A table's label is its name, qualified as `schema.table` outside the `public` schema
//! ([`table_label`]).
//!
//! # Times
//!
//! `effective_from` is the transaction's **commit timestamp** in nanoseconds since the Unix
//! epoch, converted from PostgreSQL's microseconds since 2000-01-01 by [`pg_time_to_unix_nanos`].

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::lsn::Lsn;
use crate::pgoutput::{Oid, RelationBody, SchemaDiff, Xid};

/// A column value: the lossless [`Value`](crate::value::Value) of the value module.
///
/// pgoutput NULL columns are [`Value::Null`](crate::value::Value::Null).
pub type ElementValue = crate::value::Value;

/// 2000-01-01 00:00:00 UTC (PostgreSQL's epoch) in microseconds since the Unix epoch.
pub const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// Converts a PostgreSQL timestamp (microseconds since 2000-01-01 UTC, as pgoutput sends
/// commit times) to nanoseconds since the Unix epoch.
///
/// Saturates: instants before 1970 give 0 and instants past `u64::MAX` ns (year 2554) give
/// `u64::MAX`. Real commit times are far inside that range.
pub fn pg_time_to_unix_nanos(pg_micros: i64) -> u64 {
    let ns = (i128::from(pg_micros) + i128::from(PG_EPOCH_UNIX_MICROS)) * 1000;
    u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
}

/// The label of a relation: its name, schema-qualified (`schema.table`) outside `public`.
///
/// pgoutput's empty namespace (`pg_catalog`) is spelled out.
pub fn table_label(relation: &RelationBody) -> String {
    let schema = relation.schema();
    if schema == "public" {
        relation.name.clone()
    } else {
        format!("{schema}.{}", relation.name)
    }
}

/// Appends `part` to `out` escaped as one element-id key value: `\` → `\\`, `_` → `\_`,
/// `:` → `\:`.
pub fn escape_key_part(part: &str, out: &mut String) {
    escape_into(part, out, true);
}

/// Appends `label` escaped for an element id: `\` → `\\`, `:` → `\:` (`_` kept).
pub fn escape_label(label: &str, out: &mut String) {
    escape_into(label, out, false);
}

#[inline]
fn escape_into(s: &str, out: &mut String, underscore: bool) {
    if !s
        .bytes()
        .any(|b| b == b'\\' || b == b':' || (underscore && b == b'_'))
    {
        // Nothing to escape (the common case: numbers, plain names).
        out.push_str(s);
        return;
    }
    escape_slow(s, out, underscore);
}

#[cold]
fn escape_slow(s: &str, out: &mut String, underscore: bool) {
    out.reserve(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ':' => out.push_str("\\:"),
            '_' if underscore => out.push_str("\\_"),
            c => out.push(c),
        }
    }
}

/// The key text of a NULL key column in an element id.
pub const NULL_KEY_PART: &str = "\\N";

/// Where an element comes from: the source and the element's id within it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ElementReference {
    /// The source's id (the name given to [`Pipeline::new`](crate::assemble::Pipeline::new)).
    pub source_id: Arc<str>,
    /// The element id (`label:key`, see the [module docs](self)).
    pub element_id: Arc<str>,
}

impl ElementReference {
    /// A reference.
    pub fn new(source_id: impl Into<Arc<str>>, element_id: impl Into<Arc<str>>) -> Self {
        ElementReference {
            source_id: source_id.into(),
            element_id: element_id.into(),
        }
    }
}

/// Identity, labels and time of an element.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ElementMetadata {
    /// Source and element id.
    pub reference: ElementReference,
    /// The element's labels: the table label (see [`table_label`]).
    pub labels: Arc<[Arc<str>]>,
    /// The transaction's commit timestamp, in nanoseconds since the Unix epoch.
    pub effective_from: u64,
}

/// A row's column values by column name, in the relation's column order.
///
/// Names are `Arc<str>`s shared with the relation. A map built by the pipeline shares the
/// relation's whole list of names too, so building one costs a single allocation (its values)
/// and one reference-count increment, however many columns the row has. Lookups are linear,
/// which beats hashing for the tens of columns tables have. Inserting an existing name replaces
/// its value in place.
#[derive(Clone, Default)]
pub struct ElementPropertyMap {
    names: Names,
    /// Parallel to `names`.
    values: Vec<ElementValue>,
}

/// The names of an [`ElementPropertyMap`]: a list shared with the relation (copied on the
/// first change), or the map's own.
#[derive(Clone)]
enum Names {
    Shared(Arc<[Arc<str>]>),
    Owned(Vec<Arc<str>>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Owned(Vec::new())
    }
}

impl Names {
    #[inline]
    fn as_slice(&self) -> &[Arc<str>] {
        match self {
            Names::Shared(n) => n,
            Names::Owned(n) => n,
        }
    }

    fn push(&mut self, name: Arc<str>) {
        match self {
            Names::Owned(v) => v.push(name),
            Names::Shared(shared) => {
                let mut v = Vec::with_capacity(shared.len() + 1);
                v.extend(shared.iter().cloned());
                v.push(name);
                *self = Names::Owned(v);
            }
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Names::Owned(v) => {
                if i < v.len() {
                    v.remove(i);
                }
            }
            Names::Shared(shared) => {
                let v = shared
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, k)| k.clone())
                    .collect();
                *self = Names::Owned(v);
            }
        }
    }
}

impl ElementPropertyMap {
    /// An empty map.
    pub fn new() -> Self {
        ElementPropertyMap::default()
    }

    /// An empty map with room for `n` properties.
    pub fn with_capacity(n: usize) -> Self {
        ElementPropertyMap {
            names: Names::Owned(Vec::with_capacity(n)),
            values: Vec::with_capacity(n),
        }
    }

    /// A map of `values` named by `names` (the same length, distinct names), sharing the list
    /// of names.
    pub(crate) fn from_shared(names: Arc<[Arc<str>]>, values: Vec<ElementValue>) -> Self {
        debug_assert_eq!(names.len(), values.len());
        ElementPropertyMap {
            names: Names::Shared(names),
            values,
        }
    }

    /// A map of `values` named by `names` (the same length, distinct names).
    pub(crate) fn from_owned(names: Vec<Arc<str>>, values: Vec<ElementValue>) -> Self {
        debug_assert_eq!(names.len(), values.len());
        ElementPropertyMap {
            names: Names::Owned(names),
            values,
        }
    }

    #[inline]
    fn position(&self, name: &str) -> Option<usize> {
        self.names.as_slice().iter().position(|k| &**k == name)
    }

    /// The value of property `name`.
    pub fn get(&self, name: &str) -> Option<&ElementValue> {
        self.values.get(self.position(name)?)
    }

    /// Whether property `name` is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Sets property `name`, returning its previous value. A new name goes last.
    pub fn insert(&mut self, name: Arc<str>, value: ElementValue) -> Option<ElementValue> {
        match self.position(&name).and_then(|i| self.values.get_mut(i)) {
            Some(v) => Some(std::mem::replace(v, value)),
            None => {
                self.names.push(name);
                self.values.push(value);
                None
            }
        }
    }

    /// Removes property `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<ElementValue> {
        let i = self.position(name)?;
        if i >= self.values.len() {
            return None;
        }
        self.names.remove(i);
        Some(self.values.remove(i))
    }

    /// The number of properties.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The properties in column order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &ElementValue)> {
        self.names.as_slice().iter().zip(&self.values)
    }

    /// The property names in column order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Arc<str>> {
        self.names.as_slice().iter()
    }
}

impl PartialEq for ElementPropertyMap {
    fn eq(&self, other: &Self) -> bool {
        self.names.as_slice() == other.names.as_slice() && self.values == other.values
    }
}

impl fmt::Debug for ElementPropertyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entries<'a>(&'a ElementPropertyMap);
        impl fmt::Debug for Entries<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.iter()).finish()
            }
        }
        f.debug_struct("ElementPropertyMap")
            .field("entries", &Entries(self))
            .finish()
    }
}

impl FromIterator<(Arc<str>, ElementValue)> for ElementPropertyMap {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, ElementValue)>>(iter: I) -> Self {
        let mut m = ElementPropertyMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl IntoIterator for ElementPropertyMap {
    type Item = (Arc<str>, ElementValue);
    type IntoIter = std::vec::IntoIter<(Arc<str>, ElementValue)>;

    fn into_iter(self) -> Self::IntoIter {
        let pairs: Vec<(Arc<str>, ElementValue)> = match self.names {
            Names::Owned(names) => names.into_iter().zip(self.values).collect(),
            Names::Shared(names) => names.iter().cloned().zip(self.values).collect(),
        };
        pairs.into_iter()
    }
}

/// An element of the graph a change describes: for PostgreSQL, always a node (one row).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Element {
    /// A row.
    Node {
        /// Id, labels, time.
        metadata: ElementMetadata,
        /// The row's column values.
        properties: ElementPropertyMap,
    },
}

impl Element {
    /// The element's metadata.
    pub fn metadata(&self) -> &ElementMetadata {
        match self {
            Element::Node { metadata, .. } => metadata,
        }
    }

    /// The element's properties.
    pub fn properties(&self) -> &ElementPropertyMap {
        match self {
            Element::Node { properties, .. } => properties,
        }
    }

    fn metadata_mut(&mut self) -> &mut ElementMetadata {
        match self {
            Element::Node { metadata, .. } => metadata,
        }
    }
}

/// The transaction a change belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxInfo {
    /// The top-level transaction id (also for changes made in a subtransaction).
    pub xid: Xid,
    /// The LSN of the commit record (for a two-phase transaction, of the COMMIT PREPARED
    /// record).
    pub commit_lsn: Lsn,
    /// The end of the commit record: the LSN a consumer acknowledges and resumes after.
    ///
    /// `Some` whenever the commit had been received when the change was emitted: for every
    /// change of a transaction's last chunk and of streamed and two-phase transactions (emitted
    /// at their commit). `None` in the early chunks of a large transaction, emitted before its
    /// Commit arrived.
    pub end_lsn: Option<Lsn>,
    /// The commit timestamp, nanoseconds since the Unix epoch.
    pub commit_time_ns: u64,
}

impl TxInfo {
    /// The transaction of changes outside any transaction (non-transactional messages,
    /// bootstrap rows): xid 0 at `lsn`, no end LSN (nothing to acknowledge), no commit time.
    pub fn outside_transaction(lsn: Lsn) -> Self {
        TxInfo {
            xid: Xid(0),
            commit_lsn: lsn,
            end_lsn: None,
            commit_time_ns: 0,
        }
    }
}

/// A logical decoding message (`pg_logical_emit_message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalMessage {
    /// The prefix given to `pg_logical_emit_message`.
    pub prefix: String,
    /// The content.
    pub content: Bytes,
    /// Whether the message was emitted transactionally (then it sits in its transaction's
    /// batch); non-transactional messages arrive on their own, even if their transaction
    /// aborts.
    pub transactional: bool,
    /// The message's LSN.
    pub lsn: Lsn,
}

/// One change of the source.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SourceChange {
    /// A row was inserted (or, after an UPDATE that changed the row's key, re-inserted under
    /// its new id).
    Insert {
        /// The new row.
        element: Element,
        /// Columns sent as unchanged TOAST that could not be filled in (only after a key
        /// change of a table that is not REPLICA IDENTITY FULL); their properties are absent.
        unchanged_toast: Vec<Arc<str>>,
        /// The transaction.
        tx: TxInfo,
    },
    /// A row was updated without changing its element id.
    Update {
        /// The row after the update.
        element: Element,
        /// The old row as sent: every column under REPLICA IDENTITY FULL, only the
        /// replica-identity key columns when the key was sent, `None` when the server sent no
        /// old row (or old values are switched off in the configuration).
        old: Option<ElementPropertyMap>,
        /// Columns whose values were unchanged TOAST and not sent, and could not be filled
        /// from the old row (the table is not REPLICA IDENTITY FULL). Their properties are
        /// **absent** from `element`: the previous value still holds. Never NULL.
        unchanged_toast: Vec<Arc<str>>,
        /// The transaction.
        tx: TxInfo,
    },
    /// A row was deleted (or, after an UPDATE that changed the row's key, its old id).
    Delete {
        /// The deleted element's id, labels and time.
        metadata: ElementMetadata,
        /// The old row as sent: every column under REPLICA IDENTITY FULL, otherwise the
        /// replica-identity key columns.
        old: ElementPropertyMap,
        /// The transaction.
        tx: TxInfo,
    },
    /// Tables were truncated.
    Truncate {
        /// The truncated tables' labels, in the order sent.
        labels: Vec<Arc<str>>,
        /// Their relation OIDs, in the same order.
        relations: Vec<Oid>,
        /// `TRUNCATE … CASCADE`.
        cascade: bool,
        /// `TRUNCATE … RESTART IDENTITY`.
        restart_identity: bool,
        /// The transaction.
        tx: TxInfo,
    },
    /// A table's published schema changed (columns added, dropped, retyped …). Changes after
    /// this one are decoded with the new schema.
    SchemaChange {
        /// The table's label (its new label if it was renamed).
        label: Arc<str>,
        /// What changed.
        diff: SchemaDiff,
        /// The new schema.
        relation: Arc<RelationBody>,
        /// The transaction.
        tx: TxInfo,
    },
    /// A transactional logical decoding message.
    Message {
        /// The message.
        message: LogicalMessage,
        /// The transaction.
        tx: TxInfo,
    },
}

impl SourceChange {
    /// The memory this change holds, estimated: its own size, its element id and property
    /// values (see [`Value::heap_bytes`](crate::value::Value::heap_bytes)), a message's
    /// content. For byte budgets, not exact.
    pub fn approx_bytes(&self) -> usize {
        fn props(p: &ElementPropertyMap) -> usize {
            p.iter()
                .map(|(k, v)| {
                    std::mem::size_of::<(Arc<str>, ElementValue)>() + k.len() + v.heap_bytes()
                })
                .sum()
        }
        let own = std::mem::size_of::<SourceChange>();
        own + match self {
            SourceChange::Insert { element, .. } => {
                element.metadata().reference.element_id.len() + props(element.properties())
            }
            SourceChange::Update { element, old, .. } => {
                element.metadata().reference.element_id.len()
                    + props(element.properties())
                    + old.as_ref().map_or(0, props)
            }
            SourceChange::Delete { metadata, old, .. } => {
                metadata.reference.element_id.len() + props(old)
            }
            SourceChange::Truncate { labels, .. } => labels.len() * 16,
            SourceChange::Message { message, .. } => message.prefix.len() + message.content.len(),
            _ => 0,
        }
    }

    /// The change's transaction.
    pub fn tx(&self) -> &TxInfo {
        match self {
            SourceChange::Insert { tx, .. }
            | SourceChange::Update { tx, .. }
            | SourceChange::Delete { tx, .. }
            | SourceChange::Truncate { tx, .. }
            | SourceChange::SchemaChange { tx, .. }
            | SourceChange::Message { tx, .. } => tx,
        }
    }

    /// The metadata of the inserted, updated or deleted element.
    pub fn metadata(&self) -> Option<&ElementMetadata> {
        match self {
            SourceChange::Insert { element, .. } | SourceChange::Update { element, .. } => {
                Some(element.metadata())
            }
            SourceChange::Delete { metadata, .. } => Some(metadata),
            _ => None,
        }
    }

    /// The element id of an insert, update or delete.
    pub fn element_id(&self) -> Option<&str> {
        self.metadata().map(|m| &*m.reference.element_id)
    }

    /// The commit timestamp in nanoseconds since the Unix epoch.
    pub fn effective_from(&self) -> u64 {
        self.tx().commit_time_ns
    }

    /// A short name of the kind of change: `insert`, `update`, `delete`, `truncate`,
    /// `schema_change` or `message`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceChange::Insert { .. } => "insert",
            SourceChange::Update { .. } => "update",
            SourceChange::Delete { .. } => "delete",
            SourceChange::Truncate { .. } => "truncate",
            SourceChange::SchemaChange { .. } => "schema_change",
            SourceChange::Message { .. } => "message",
        }
    }

    /// Sets the transaction (and the elements' `effective_from`), once the commit is known.
    pub(crate) fn set_tx(&mut self, info: TxInfo) {
        match self {
            SourceChange::Insert { element, tx, .. } | SourceChange::Update { element, tx, .. } => {
                element.metadata_mut().effective_from = info.commit_time_ns;
                *tx = info;
            }
            SourceChange::Delete { metadata, tx, .. } => {
                metadata.effective_from = info.commit_time_ns;
                *tx = info;
            }
            SourceChange::Truncate { tx, .. }
            | SourceChange::SchemaChange { tx, .. }
            | SourceChange::Message { tx, .. } => *tx = info,
        }
    }
}

impl fmt::Display for ElementReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.source_id, self.element_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_key_part("a_b:c\\d", &mut s);
        assert_eq!(s, "a\\_b\\:c\\\\d");
        s.clear();
        escape_label("my_tab:x", &mut s);
        assert_eq!(s, "my_tab\\:x");
    }

    #[test]
    fn epoch() {
        assert_eq!(pg_time_to_unix_nanos(0), 946_684_800_000_000_000);
        assert_eq!(pg_time_to_unix_nanos(1), 946_684_800_000_001_000);
        assert_eq!(pg_time_to_unix_nanos(i64::MIN), 0);
        assert_eq!(pg_time_to_unix_nanos(i64::MAX), u64::MAX);
    }

    #[test]
    fn property_map() {
        let mut m = ElementPropertyMap::new();
        assert_eq!(m.insert("a".into(), ElementValue::Int4(1)), None);
        assert_eq!(m.insert("b".into(), ElementValue::Null), None);
        assert_eq!(
            m.insert("a".into(), ElementValue::Int4(2)),
            Some(ElementValue::Int4(1))
        );
        assert_eq!(m.get("a"), Some(&ElementValue::Int4(2)));
        assert_eq!(m.keys().map(|k| &**k).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.remove("a"), Some(ElementValue::Int4(2)));
        assert_eq!(m.len(), 1);
    }

    mod property_map_props {
        use super::super::*;
        use proptest::prelude::*;

        const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

        #[derive(Clone, Debug)]
        enum Op {
            Insert(usize, i32),
            Remove(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0..NAMES.len(), any::<i32>()).prop_map(|(n, v)| Op::Insert(n, v)),
                (0..NAMES.len()).prop_map(Op::Remove),
            ]
        }

        /// The map as a plain list of pairs, the model the real map must match.
        fn pairs(m: &ElementPropertyMap) -> Vec<(String, ElementValue)> {
            m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        }

        proptest! {
            /// A map sharing its names with a relation behaves exactly like one built by
            /// inserting the same properties, through any inserts and removes.
            #[test]
            fn shared_names_behave_like_owned(
                start in 0..=NAMES.len(),
                ops in prop::collection::vec(op(), 0..12),
            ) {
                let names: Arc<[Arc<str>]> = NAMES.iter().map(|&n| Arc::from(n)).collect();
                let values: Vec<ElementValue> =
                    (0..start).map(|i| ElementValue::Int4(i as i32)).collect();
                let mut shared = ElementPropertyMap::from_shared(
                    names.get(..start).unwrap_or_default().into(),
                    values.clone(),
                );
                let mut owned: ElementPropertyMap =
                    names.iter().cloned().zip(values).collect();
                prop_assert_eq!(&shared, &owned);
                for op in ops {
                    match op {
                        Op::Insert(n, v) => prop_assert_eq!(
                            shared.insert(NAMES[n].into(), ElementValue::Int4(v)),
                            owned.insert(NAMES[n].into(), ElementValue::Int4(v))
                        ),
                        Op::Remove(n) => {
                            prop_assert_eq!(shared.remove(NAMES[n]), owned.remove(NAMES[n]))
                        }
                    }
                    prop_assert_eq!(pairs(&shared), pairs(&owned));
                    prop_assert_eq!(&shared, &owned);
                    prop_assert_eq!(shared.len(), owned.len());
                    for n in NAMES {
                        prop_assert_eq!(shared.get(n), owned.get(n));
                        prop_assert_eq!(shared.contains_key(n), owned.contains_key(n));
                    }
                    prop_assert_eq!(format!("{shared:?}"), format!("{owned:?}"));
                }
                let a: Vec<_> = shared.into_iter().collect();
                let b: Vec<_> = owned.into_iter().collect();
                prop_assert_eq!(a, b);
            }
        }
    }
}
