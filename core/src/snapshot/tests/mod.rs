//! Unit tests of the bootstrap plan.

mod assembler;
mod catalog;
mod copy_text;
mod jsonl;

use crate::pgoutput::{Column, Oid, RelationBody, ReplicaIdentity};

use super::{SnapshotTable, SnapshotType};

/// A column: name, type OID, key flag.
pub(super) fn col(name: &str, ty: u32, key: bool) -> Column {
    Column {
        flags: u8::from(key),
        name: name.into(),
        type_oid: Oid(ty),
        type_modifier: -1,
    }
}

/// A table of `public` unless `schema` says otherwise.
pub(super) fn table(
    oid: u32,
    schema: &str,
    name: &str,
    identity: ReplicaIdentity,
    columns: Vec<Column>,
    primary_key: &[&str],
) -> SnapshotTable {
    let mut t = SnapshotTable::new(RelationBody {
        xid: None,
        oid: Oid(oid),
        namespace: schema.into(),
        name: name.into(),
        replica_identity: identity,
        columns,
    });
    t.primary_key = primary_key.iter().map(|s| s.to_string()).collect();
    assert_eq!(t.types, Vec::<SnapshotType>::new());
    t
}
