//! Which columns identify a row, and element-id formatting.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::model::{NULL_KEY_PART, escape_key_part, escape_label, table_label};
use crate::pgoutput::{ColumnValue, Oid, RelationBody, ReplicaIdentity, TupleRef};
use crate::value::{Codec, TypeRegistry, decode_binary};

/// Configured element-id key columns per table (drasi-source-postgres's `table_keys`), which take
/// precedence over primary keys and replica identities.
///
/// A table is named either qualified (`schema.table`) or bare (`table`). A relation is looked
/// up by `schema.table` first, then by its bare name, so a bare name matches the table of that
/// name in any schema unless a qualified entry exists. An entry names a table as it is called
/// when the source starts: once it matched a relation it follows that relation's OID, through
/// renames ([`Pipeline::bind_table`](super::Pipeline::bind_table)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyConfig {
    tables: HashMap<String, Vec<String>>,
}

impl KeyConfig {
    /// No configured keys.
    pub fn new() -> Self {
        KeyConfig::default()
    }

    /// Adds (or replaces) the key columns of `table`, in key order.
    pub fn with_table<S: Into<String>>(
        mut self,
        table: impl Into<String>,
        columns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.insert(table, columns);
        self
    }

    /// Sets the key columns of `table`, in key order; returns the previous ones.
    pub fn insert<S: Into<String>>(
        &mut self,
        table: impl Into<String>,
        columns: impl IntoIterator<Item = S>,
    ) -> Option<Vec<String>> {
        self.tables
            .insert(table.into(), columns.into_iter().map(Into::into).collect())
    }

    /// The key columns configured under exactly this name.
    pub fn get(&self, table: &str) -> Option<&[String]> {
        self.tables.get(table).map(Vec::as_slice)
    }

    /// The number of configured tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether no table is configured.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The entries that name the table `schema.name`, in precedence order: the qualified
    /// name, then the bare one.
    fn candidates<'a>(
        &'a self,
        schema: &str,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Vec<String>)> + 'a {
        let qualified = if self.tables.is_empty() {
            None
        } else {
            self.tables
                .get_key_value(format!("{schema}.{name}").as_str())
        };
        qualified.into_iter().chain(self.tables.get_key_value(name))
    }
}

/// The configured keys bound to relation OIDs.
///
/// A [`KeyConfig`] entry names a table as it was called when the source started. The first
/// relation it names binds it to that relation's OID, and from then on it follows the OID: a
/// renamed table keeps its key, and a new table that takes the old name does not get it.
#[derive(Clone, Debug, Default)]
pub(crate) struct BoundKeys {
    by_oid: OidMap<Vec<String>>,
    bound: HashMap<String, Oid>,
}

impl BoundKeys {
    /// Whether a configured key is bound to relation `oid`.
    pub(crate) fn is_bound(&self, oid: Oid) -> bool {
        self.by_oid.contains_key(&oid)
    }

    /// The configured key of relation `oid`, now called `schema.name`: the entry bound to
    /// its OID, else the first entry naming it that no other relation took (bound to `oid`
    /// from now on).
    pub(crate) fn resolve(
        &mut self,
        config: &KeyConfig,
        oid: Oid,
        schema: &str,
        name: &str,
    ) -> Option<&[String]> {
        if !self.by_oid.contains_key(&oid) {
            let free = config
                .candidates(schema, name)
                .find(|(entry, _)| self.bound.get(*entry).is_none_or(|o| *o == oid));
            let (entry, columns) = free?;
            self.bound.insert(entry.clone(), oid);
            self.by_oid.insert(oid, columns.clone());
        }
        self.by_oid.get(&oid).map(Vec::as_slice)
    }
}

fn lookup_by_name<'m>(
    map: &'m HashMap<String, Vec<String>>,
    rel: &RelationBody,
    label: &str,
) -> Option<&'m [String]> {
    if map.is_empty() {
        return None;
    }
    let qualified = format!("{}.{}", rel.schema(), rel.name);
    map.get(&qualified)
        .or_else(|| map.get(label))
        .or_else(|| map.get(&rel.name))
        .map(Vec::as_slice)
}

/// A map keyed by relation OID, hashed cheaply: OIDs come from the server, not from an
/// adversary choosing collisions.
pub(crate) type OidMap<V> = HashMap<Oid, V, BuildHasherDefault<OidHasher>>;

/// A multiplicative hash (as in rustc's FxHash) for [`OidMap`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OidHasher(u64);

const HASH_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for OidHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(HASH_SEED);
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(HASH_SEED);
    }
}

/// A table named by relation OID or by name (qualified `schema.table` or bare).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TableRef {
    /// By relation OID.
    Oid(Oid),
    /// By name, looked up like [`KeyConfig`] names.
    Name(String),
}

impl From<Oid> for TableRef {
    fn from(oid: Oid) -> Self {
        TableRef::Oid(oid)
    }
}

impl From<&str> for TableRef {
    fn from(name: &str) -> Self {
        TableRef::Name(name.to_owned())
    }
}

impl From<String> for TableRef {
    fn from(name: String) -> Self {
        TableRef::Name(name)
    }
}

/// Where a table's element-id key columns come from, in order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySource {
    /// The [`KeyConfig`] of the pipeline's configuration.
    Configured,
    /// A primary key given with [`Pipeline::set_primary_key`](super::Pipeline::set_primary_key).
    PrimaryKey,
    /// The replica-identity key columns flagged in the Relation message (identity DEFAULT or
    /// USING INDEX).
    ReplicaIdentity,
    /// No key: every element gets a generated id, which is not stable.
    Generated,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySource::Configured => "configured table key",
            KeySource::PrimaryKey => "primary key",
            KeySource::ReplicaIdentity => "replica identity",
            KeySource::Generated => "generated id",
        })
    }
}

/// Primary keys supplied by the caller, by OID and by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrimaryKeys {
    by_oid: HashMap<Oid, Vec<String>>,
    by_name: HashMap<String, Vec<String>>,
}

impl PrimaryKeys {
    pub(crate) fn set(&mut self, table: TableRef, columns: Vec<String>) {
        match table {
            TableRef::Oid(oid) => {
                self.by_oid.insert(oid, columns);
            }
            TableRef::Name(name) => {
                self.by_name.insert(name, columns);
            }
        }
    }

    fn lookup(&self, rel: &RelationBody, label: &str) -> Option<&[String]> {
        self.by_oid
            .get(&rel.oid)
            .map(Vec::as_slice)
            .or_else(|| lookup_by_name(&self.by_name, rel, label))
    }
}

/// Whether `table` names `rel` (by OID, qualified name, label or bare name).
pub(crate) fn table_matches(table: &TableRef, rel: &RelationBody, label: &str) -> bool {
    match table {
        TableRef::Oid(oid) => *oid == rel.oid,
        TableRef::Name(n) => {
            *n == rel.name || n == label || {
                let schema = rel.schema();
                n.len() == schema.len() + 1 + rel.name.len()
                    && n.starts_with(schema)
                    && n.ends_with(&rel.name)
                    && n.as_bytes().get(schema.len()) == Some(&b'.')
            }
        }
    }
}

/// One column of a relation, prepared for conversion.
#[derive(Clone, Debug)]
pub(crate) struct ColInfo {
    pub(crate) name: Arc<str>,
    pub(crate) type_oid: Oid,
    /// How its values are decoded, resolved from `type_oid` once.
    pub(crate) codec: Codec,
    pub(crate) ri_key: bool,
}

/// A relation prepared for turning its tuples into changes: shared names, label, key plan.
#[derive(Clone, Debug)]
pub(crate) struct RelInfo {
    pub(crate) body: Arc<RelationBody>,
    pub(crate) label: Arc<str>,
    pub(crate) labels: Arc<[Arc<str>]>,
    /// The escaped label and `:`.
    pub(crate) id_prefix: Box<str>,
    pub(crate) columns: Vec<ColInfo>,
    /// The column names, in order: the names of every full row's property map.
    pub(crate) names: Arc<[Arc<str>]>,
    /// The names of the replica-identity key columns, in order: the names of an old-key
    /// (`K`) tuple's property map.
    pub(crate) ri_key_names: Arc<[Arc<str>]>,
    pub(crate) key_source: KeySource,
    pub(crate) key_columns: Vec<usize>,
    /// Whether an old-key (`K`) tuple holds every key column, so an old id can be computed
    /// from it. Always true for an `O` tuple.
    pub(crate) key_in_identity: bool,
}

impl RelInfo {
    /// Prepares `body`, choosing its key: configured > primary key > replica identity >
    /// generated. Problems are appended to `warnings`.
    pub(crate) fn build(
        body: Arc<RelationBody>,
        configured: Option<&[String]>,
        pks: &PrimaryKeys,
        warnings: &mut Vec<String>,
    ) -> RelInfo {
        let label: Arc<str> = Arc::from(table_label(&body));
        let mut prefix = String::with_capacity(label.len() + 1);
        escape_label(&label, &mut prefix);
        prefix.push(':');
        let columns: Vec<ColInfo> = body
            .columns
            .iter()
            .map(|c| ColInfo {
                name: Arc::from(c.name.as_str()),
                type_oid: c.type_oid,
                codec: Codec::of(c.type_oid),
                ri_key: c.is_key(),
            })
            .collect();

        let mut chosen = None;
        if let Some(cols) = configured {
            match resolve(&body, cols) {
                Ok(idx) => chosen = Some((KeySource::Configured, idx)),
                Err(missing) => warnings.push(format!(
                    "configured key of table {label} names column(s) {missing} that the \
                     publication does not send; falling back to the primary key or replica \
                     identity. Fix the table key configuration."
                )),
            }
        }
        if chosen.is_none() {
            if let Some(cols) = pks.lookup(&body, &label) {
                match resolve(&body, cols) {
                    Ok(idx) => chosen = Some((KeySource::PrimaryKey, idx)),
                    Err(missing) => warnings.push(format!(
                        "primary key of table {label} names column(s) {missing} that the \
                         publication does not send (a column list?); falling back to the \
                         replica identity"
                    )),
                }
            }
        }
        if chosen.is_none() && body.replica_identity != ReplicaIdentity::Full {
            let idx: Vec<usize> = body.key_columns().map(|(i, _)| i).collect();
            if !idx.is_empty() {
                chosen = Some((KeySource::ReplicaIdentity, idx));
            }
        }
        let (key_source, key_columns) = chosen.unwrap_or((KeySource::Generated, Vec::new()));
        let key_in_identity = key_source != KeySource::Generated
            && key_columns
                .iter()
                .all(|&i| columns.get(i).is_some_and(|c| c.ri_key));
        match key_source {
            KeySource::Generated => warnings.push(format!(
                "table {label} has no element key (no configured table key, no primary key, \
                 replica identity {:?} without key columns): its element ids are generated and \
                 not stable, so updates and deletes cannot be matched to earlier inserts. \
                 Configure a table key or add a primary key.",
                body.replica_identity
            )),
            KeySource::Configured | KeySource::PrimaryKey
                if !key_in_identity && body.replica_identity != ReplicaIdentity::Full =>
            {
                warnings.push(format!(
                    "the {key_source} columns of table {label} are not all in its replica \
                     identity, so deletes and key changes arrive without them and their \
                     element ids cannot be computed exactly. Set REPLICA IDENTITY FULL (or \
                     USING INDEX on those columns)."
                ));
            }
            _ => {}
        }
        let names: Arc<[Arc<str>]> = columns.iter().map(|c| c.name.clone()).collect();
        let ri_key_names: Arc<[Arc<str>]> = columns
            .iter()
            .filter(|c| c.ri_key)
            .map(|c| c.name.clone())
            .collect();
        RelInfo {
            labels: Arc::from(vec![label.clone()]),
            names,
            ri_key_names,
            label,
            id_prefix: prefix.into_boxed_str(),
            columns,
            key_source,
            key_columns,
            key_in_identity,
            body,
        }
    }
}

/// The positions of `names`, or the missing names joined by `, `.
fn resolve(body: &RelationBody, names: &[String]) -> Result<Vec<usize>, String> {
    if names.is_empty() {
        return Err("(none: the list is empty)".to_owned());
    }
    let mut idx = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for n in names {
        match body.column_index(n) {
            Some(i) => idx.push(i),
            None => missing.push(n.as_str()),
        }
    }
    if missing.is_empty() {
        Ok(idx)
    } else {
        Err(missing.join(", "))
    }
}

/// The source of generated ids: a caller-supplied function returning 128 random bits.
pub(crate) struct IdGen(Box<dyn FnMut() -> u128 + Send>);

impl IdGen {
    pub(crate) fn new(f: impl FnMut() -> u128 + Send + 'static) -> Self {
        IdGen(Box::new(f))
    }

    /// A deterministic generator (SplitMix64 over a counter): ids are unique within one
    /// pipeline but repeat across restarts. Drivers should inject a random source.
    pub(crate) fn deterministic() -> Self {
        let mut state: u64 = 0;
        IdGen::new(move || {
            let hi = splitmix64(&mut state);
            let lo = splitmix64(&mut state);
            (u128::from(hi) << 64) | u128::from(lo)
        })
    }

    fn next(&mut self) -> u128 {
        (self.0)()
    }
}

impl fmt::Debug for IdGen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdGen")
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Formats 128 bits as a version-4 UUID (`8-4-4-4-12` lowercase hex).
fn write_uuid(bits: u128, out: &mut String) {
    let v = (bits & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let _ = write!(
        out,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 64) as u16,
        (v >> 48) as u16,
        v & 0xFFFF_FFFF_FFFF
    );
}

/// The key text of an unchanged-TOAST key column whose value is not available anywhere.
const UNAVAILABLE_KEY_PART: &str = "\\u";

/// Builds element ids, reusing one buffer.
#[derive(Debug)]
pub(crate) struct IdBuilder {
    buf: String,
    pub(crate) gen_ids: IdGen,
    pub(crate) generated: u64,
}

impl IdBuilder {
    pub(crate) fn new(gen_ids: IdGen) -> Self {
        IdBuilder {
            buf: String::with_capacity(64),
            gen_ids,
            generated: 0,
        }
    }

    /// The element id of the row `tuple` of `rel`. Key columns sent as unchanged TOAST are
    /// taken from `fallback` (the old tuple) when it has them.
    pub(crate) fn element_id(
        &mut self,
        rel: &RelInfo,
        tuple: TupleRef<'_>,
        fallback: Option<TupleRef<'_>>,
        registry: &TypeRegistry,
    ) -> Arc<str> {
        self.buf.clear();
        self.buf.push_str(&rel.id_prefix);
        if rel.key_source == KeySource::Generated {
            self.generated += 1;
            write_uuid(self.gen_ids.next(), &mut self.buf);
            return Arc::from(self.buf.as_str());
        }
        for (n, &i) in rel.key_columns.iter().enumerate() {
            if n > 0 {
                self.buf.push('_');
            }
            let mut v = tuple.get(i).unwrap_or(ColumnValue::Null);
            if v.is_unchanged_toast() {
                v = fallback
                    .and_then(|t| t.get(i))
                    .unwrap_or(ColumnValue::UnchangedToast);
            }
            let (ty, codec) = rel
                .columns
                .get(i)
                .map_or((Oid::UNKNOWN, Codec::Other), |c| (c.type_oid, c.codec));
            push_key_part(&mut self.buf, ty, codec, v, registry);
        }
        Arc::from(self.buf.as_str())
    }
}

#[inline]
fn push_key_part(
    buf: &mut String,
    ty: Oid,
    codec: Codec,
    v: ColumnValue<'_>,
    registry: &TypeRegistry,
) {
    match v {
        ColumnValue::Null => buf.push_str(NULL_KEY_PART),
        ColumnValue::UnchangedToast => buf.push_str(UNAVAILABLE_KEY_PART),
        ColumnValue::Text(b) if b.len() <= 32 && b.iter().all(|&c| is_plain_key_byte(c)) => {
            // Short ASCII without anything to escape (numbers, codes): copied as is.
            buf.reserve(b.len());
            for &c in b {
                buf.push(char::from(c));
            }
        }
        ColumnValue::Text(b) => match std::str::from_utf8(b) {
            Ok(s) => escape_key_part(s, buf),
            Err(_) => escape_key_part(&String::from_utf8_lossy(b), buf),
        },
        ColumnValue::Binary(b) => match (codec, b.len()) {
            // Integers print as their digits, which need no escaping.
            (Codec::Int8, 8) | (Codec::Int4, 4) | (Codec::Int2, 2) => {
                let mut v: i64 = 0;
                if let Some((&first, rest)) = b.split_first() {
                    v = i64::from(first as i8);
                    for &x in rest {
                        v = (v << 8) | i64::from(x);
                    }
                }
                push_int(buf, v);
            }
            _ => push_binary_key_part(buf, ty, b, registry),
        },
    }
}

/// Whether `c` is ASCII and kept as is in an element-id key part.
#[inline]
fn is_plain_key_byte(c: u8) -> bool {
    c.is_ascii() && !matches!(c, b'\\' | b'_' | b':')
}

/// Appends the decimal digits of `v`.
#[inline]
fn push_int(buf: &mut String, v: i64) {
    if v < 0 {
        buf.push('-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut len = 0;
    for d in digits.iter_mut() {
        *d = (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    for &d in digits.iter().take(len).rev() {
        buf.push(char::from(b'0' + d));
    }
}

fn push_binary_key_part(buf: &mut String, ty: Oid, b: &[u8], registry: &TypeRegistry) {
    match decode_binary(ty, b, registry) {
        Ok(value) => {
            // Printed straight into the id, escaped on the way.
            let _ = write!(KeyPartWriter(buf), "{value}");
        }
        Err(_) => {
            buf.push_str("\\\\x");
            for x in b {
                let _ = write!(buf, "{x:02x}");
            }
        }
    }
}

/// Escapes what is written to it as one element-id key value ([`escape_key_part`]).
struct KeyPartWriter<'a>(&'a mut String);

impl fmt::Write for KeyPartWriter<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_key_part(s, self.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let mut s = String::new();
        write_uuid(u128::MAX, &mut s);
        assert_eq!(s, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        s.clear();
        write_uuid(0, &mut s);
        assert_eq!(s, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn text_key_parts_are_escaped_whatever_the_path() {
        let reg = TypeRegistry::new();
        for text in [
            "12345",
            "-1",
            "",
            "plain text key",
            "a_b:c\\d",
            "héllo",
            "0123456789012345678901234567890123456789",
            "0123456789012345678901234567890123456789_",
        ] {
            let mut got = String::new();
            push_key_part(
                &mut got,
                Oid::TEXT,
                Codec::Text,
                ColumnValue::Text(text.as_bytes()),
                &reg,
            );
            let mut want = String::new();
            escape_key_part(text, &mut want);
            assert_eq!(got, want, "{text}");
        }
        let mut got = String::new();
        push_key_part(
            &mut got,
            Oid::TEXT,
            Codec::Text,
            ColumnValue::Text(b"a\xff_"),
            &reg,
        );
        assert_eq!(got, "a\u{fffd}\\_");
    }

    #[test]
    fn binary_integer_key_parts_print_like_their_values() {
        let reg = TypeRegistry::new();
        for v in [
            0i64,
            1,
            -1,
            9,
            10,
            12345,
            i64::MAX,
            i64::MIN,
            i64::from(i32::MIN),
        ] {
            let mut fast = String::new();
            push_key_part(
                &mut fast,
                Oid::INT8,
                Codec::Int8,
                ColumnValue::Binary(&v.to_be_bytes()),
                &reg,
            );
            let mut general = String::new();
            push_binary_key_part(&mut general, Oid::INT8, &v.to_be_bytes(), &reg);
            assert_eq!(fast, general);
            assert_eq!(fast, v.to_string());
            if let Ok(v4) = i32::try_from(v) {
                let mut fast = String::new();
                push_key_part(
                    &mut fast,
                    Oid::INT4,
                    Codec::Int4,
                    ColumnValue::Binary(&v4.to_be_bytes()),
                    &reg,
                );
                assert_eq!(fast, v.to_string());
            }
            if let Ok(v2) = i16::try_from(v) {
                let mut fast = String::new();
                push_key_part(
                    &mut fast,
                    Oid::INT2,
                    Codec::Int2,
                    ColumnValue::Binary(&v2.to_be_bytes()),
                    &reg,
                );
                assert_eq!(fast, v.to_string());
            }
        }
    }

    #[test]
    fn key_part_writer_escapes_like_escape_key_part() {
        let mut direct = String::new();
        escape_key_part("a_b:c\\d", &mut direct);
        let mut written = String::new();
        let (a, b) = ("a_b", ":c\\d");
        let _ = write!(KeyPartWriter(&mut written), "{a}{b}");
        assert_eq!(written, direct);
    }
}

#[cfg(test)]
mod rename_tests {
    use bytes::BytesMut;

    use super::super::{KeyConfig, KeySource, Pipeline, PipelineConfig};
    use crate::lsn::Lsn;
    use crate::pgoutput::{Column, Oid, PgOutputMessage, RelationBody, ReplicaIdentity, encode};

    fn relation(pipeline: &mut Pipeline, oid: u32, name: &str) {
        let msg = PgOutputMessage::Relation(RelationBody {
            xid: None,
            oid: Oid(oid),
            namespace: "public".into(),
            name: name.into(),
            replica_identity: ReplicaIdentity::Full,
            columns: vec![Column {
                flags: 1,
                name: "code".into(),
                type_oid: Oid(25),
                type_modifier: -1,
            }],
        });
        let mut payload = BytesMut::new();
        encode::message(&msg, &mut payload).unwrap();
        pipeline
            .handle_xlog(&payload.freeze(), Lsn(1), Lsn(1))
            .unwrap();
        while pipeline.poll_event().is_some() {}
    }

    #[test]
    fn configured_keys_follow_the_oid() {
        let config = PipelineConfig::default().with_keys(
            KeyConfig::new()
                .with_table("t", ["code"])
                .with_table("late", ["code"]),
        );
        let mut p = Pipeline::new("s", config);
        // Bound by the first Relation message, kept through a rename; a new table that takes
        // the old name does not get the key.
        relation(&mut p, 100, "t");
        assert_eq!(p.key_source(Oid(100)), Some(KeySource::Configured));
        relation(&mut p, 100, "t_renamed");
        assert_eq!(p.key_source(Oid(100)), Some(KeySource::Configured));
        relation(&mut p, 101, "t");
        assert_eq!(p.key_source(Oid(101)), Some(KeySource::Generated));
        // Bound from the catalog before the table's first Relation message, which comes after
        // a rename.
        p.bind_table(Oid(200), "public", "late");
        relation(&mut p, 200, "late_renamed");
        assert_eq!(p.key_source(Oid(200)), Some(KeySource::Configured));
        // A primary key set by OID also survives the rename.
        relation(&mut p, 300, "pk");
        p.set_primary_key(Oid(300), vec!["code".into()]);
        relation(&mut p, 300, "pk_renamed");
        assert_eq!(p.key_source(Oid(300)), Some(KeySource::PrimaryKey));
    }
}
