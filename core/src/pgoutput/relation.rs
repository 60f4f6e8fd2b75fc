//! Caches for Relation and Type messages.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::Oid;
use super::messages::RelationBody;

/// What an upsert into the [`RelationCache`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaChange {
    /// The OID was not cached before.
    New,
    /// The same schema was already cached (a repeat after an invalidation, a new session or a
    /// streamed transaction). The cached entry, and its `Arc`, are kept.
    Unchanged,
    /// The schema differs from the cached one, which was replaced.
    Changed(SchemaDiff),
}

impl SchemaChange {
    /// Whether the cache now holds a schema it did not hold before (new or changed).
    pub fn is_change(&self) -> bool {
        !matches!(self, SchemaChange::Unchanged)
    }
}

/// How a relation's schema changed between two Relation messages. Columns are matched by name.
///
/// A `Changed` upsert always has at least one field set unless only unknown column flag bits
/// changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaDiff {
    /// Columns now published that were not before, in their new order.
    pub added: Vec<String>,
    /// Columns no longer published, in their old order.
    pub dropped: Vec<String>,
    /// Columns whose type changed: name, old type OID, new type OID.
    pub retyped: Vec<(String, Oid, Oid)>,
    /// Columns whose type modifier changed (same type): name, old typmod, new typmod.
    pub modifier_changed: Vec<(String, i32, i32)>,
    /// Whether the set of replica-identity key columns changed.
    pub key_changed: bool,
    /// Whether the replica identity (default/nothing/full/index) changed.
    pub identity_changed: bool,
    /// Whether the namespace or the relation name changed.
    pub renamed: bool,
    /// Whether columns present in both schemas appear in a different order.
    pub reordered: bool,
}

impl SchemaDiff {
    /// Computes the difference from `old` to `new`.
    pub fn between(old: &RelationBody, new: &RelationBody) -> SchemaDiff {
        let mut diff = SchemaDiff {
            identity_changed: old.replica_identity != new.replica_identity,
            renamed: old.namespace != new.namespace || old.name != new.name,
            ..SchemaDiff::default()
        };
        // Relations have tens of columns at most in practice; quadratic matching by name keeps
        // this allocation-free beyond the result and it only runs on a real change.
        let mut common_old_positions = Vec::new();
        for c in &new.columns {
            match old.columns.iter().position(|o| o.name == c.name) {
                None => diff.added.push(c.name.clone()),
                Some(i) => {
                    common_old_positions.push(i);
                    if let Some(o) = old.columns.get(i) {
                        if o.type_oid != c.type_oid {
                            diff.retyped.push((c.name.clone(), o.type_oid, c.type_oid));
                        } else if o.type_modifier != c.type_modifier {
                            diff.modifier_changed.push((
                                c.name.clone(),
                                o.type_modifier,
                                c.type_modifier,
                            ));
                        }
                    }
                }
            }
        }
        diff.reordered = common_old_positions
            .windows(2)
            .any(|w| w.first() > w.get(1));
        for o in &old.columns {
            if !new.columns.iter().any(|c| c.name == o.name) {
                diff.dropped.push(o.name.clone());
            }
        }
        let old_keys = old.columns.iter().filter(|c| c.is_key()).map(|c| &c.name);
        let new_keys = new.columns.iter().filter(|c| c.is_key()).map(|c| &c.name);
        let mut old_keys: Vec<&String> = old_keys.collect();
        let mut new_keys: Vec<&String> = new_keys.collect();
        old_keys.sort_unstable();
        new_keys.sort_unstable();
        diff.key_changed = old_keys != new_keys;
        diff
    }

    /// Whether no listed aspect changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.dropped.is_empty()
            && self.retyped.is_empty()
            && self.modifier_changed.is_empty()
            && !self.key_changed
            && !self.identity_changed
            && !self.renamed
            && !self.reordered
    }
}

/// The latest schema of every relation seen in Relation messages, by OID.
///
/// Relation messages arrive repeatedly with the same content (after TRUNCATE or other
/// invalidations, on every new session, once per streamed transaction), so
/// [`upsert`](RelationCache::upsert) is idempotent and says whether anything changed.
/// Entries are shared as `Arc`s so a change event can hold the schema it was decoded with.
#[derive(Clone, Debug, Default)]
pub struct RelationCache {
    relations: HashMap<Oid, Arc<RelationBody>>,
}

impl RelationCache {
    /// An empty cache.
    pub fn new() -> Self {
        RelationCache::default()
    }

    /// Inserts or replaces the schema of `relation.oid`.
    ///
    /// An identical repeat (ignoring the stream xid) keeps the cached entry and returns
    /// [`SchemaChange::Unchanged`].
    pub fn upsert(&mut self, relation: RelationBody) -> SchemaChange {
        match self.relations.entry(relation.oid) {
            Entry::Vacant(v) => {
                v.insert(Arc::new(relation));
                SchemaChange::New
            }
            Entry::Occupied(mut o) => {
                if o.get().same_schema(&relation) {
                    SchemaChange::Unchanged
                } else {
                    let diff = SchemaDiff::between(o.get(), &relation);
                    o.insert(Arc::new(relation));
                    SchemaChange::Changed(diff)
                }
            }
        }
    }

    /// The cached schema of `oid`.
    #[inline]
    pub fn get(&self, oid: Oid) -> Option<&Arc<RelationBody>> {
        self.relations.get(&oid)
    }

    /// Removes and returns the schema of `oid`.
    pub fn remove(&mut self, oid: Oid) -> Option<Arc<RelationBody>> {
        self.relations.remove(&oid)
    }

    /// Forgets every relation.
    pub fn clear(&mut self) {
        self.relations.clear();
    }

    /// The number of cached relations.
    pub fn len(&self) -> usize {
        self.relations.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }

    /// Every cached relation, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<RelationBody>> {
        self.relations.values()
    }
}

/// A type described by a Type (`Y`) message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeInfo {
    /// Namespace; `""` means pg_catalog.
    pub namespace: String,
    /// Type name. For a domain this is the **base type's** name, under the domain's OID.
    pub name: String,
}

/// Types described by Type messages (OIDs ≥ 10000: enums, domains, composites, extension
/// types), by OID. Built-in types are never described; look those up in a built-in OID table.
#[derive(Clone, Debug, Default)]
pub struct TypeCache {
    types: HashMap<Oid, TypeInfo>,
}

impl TypeCache {
    /// An empty cache.
    pub fn new() -> Self {
        TypeCache::default()
    }

    /// Inserts or replaces the description of `oid`; returns whether it differs from the
    /// cached one (true for a new OID, false for an identical repeat).
    pub fn upsert(&mut self, oid: Oid, namespace: String, name: String) -> bool {
        match self.types.entry(oid) {
            Entry::Vacant(v) => {
                v.insert(TypeInfo { namespace, name });
                true
            }
            Entry::Occupied(mut o) => {
                let t = o.get_mut();
                if t.namespace == namespace && t.name == name {
                    false
                } else {
                    *t = TypeInfo { namespace, name };
                    true
                }
            }
        }
    }

    /// The description of `oid`.
    #[inline]
    pub fn get(&self, oid: Oid) -> Option<&TypeInfo> {
        self.types.get(&oid)
    }

    /// Forgets every type.
    pub fn clear(&mut self) {
        self.types.clear();
    }

    /// The number of cached types.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}
