//! Replication commands and the parsing of their results.

use crate::lsn::Lsn;
use crate::query::{QueryResult, ResultError};

/// The result of `IDENTIFY_SYSTEM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifySystem {
    /// The cluster's system identifier.
    pub system_id: u64,
    /// The current timeline (int4 up to PostgreSQL 15, int8 from 16; both are accepted).
    pub timeline: u64,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
    /// The database connected to (`None` on a physical replication connection).
    pub dbname: Option<String>,
}

impl IdentifySystem {
    /// The command text.
    pub const COMMAND: &'static str = "IDENTIFY_SYSTEM";

    /// Reads the single row of an `IDENTIFY_SYSTEM` result.
    pub fn from_result(r: &QueryResult) -> Result<Self, ResultError> {
        Ok(IdentifySystem {
            system_id: r.parse(0, "systemid", "system identifier")?,
            timeline: r.parse(0, "timeline", "timeline")?,
            xlogpos: r.parse(0, "xlogpos", "LSN")?,
            dbname: r.text(0, "dbname")?.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DataRow, FieldDescription};
    use bytes::Bytes;

    fn field(name: &str, oid: u32) -> FieldDescription {
        FieldDescription {
            name: name.into(),
            table_oid: 0,
            column_id: 0,
            type_oid: oid,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        }
    }

    #[test]
    fn parses_identify_system() {
        let r = QueryResult {
            columns: vec![
                field("systemid", 25),
                field("timeline", 23),
                field("xlogpos", 25),
                field("dbname", 25),
            ],
            rows: vec![DataRow {
                values: vec![
                    Some(Bytes::from_static(b"7312345678901234567")),
                    Some(Bytes::from_static(b"1")),
                    Some(Bytes::from_static(b"0/19428C8")),
                    Some(Bytes::from_static(b"app")),
                ],
            }],
            tag: "IDENTIFY_SYSTEM".into(),
        };
        let id = IdentifySystem::from_result(&r).unwrap();
        assert_eq!(id.system_id, 7312345678901234567);
        assert_eq!(id.timeline, 1);
        assert_eq!(id.xlogpos, Lsn(0x19428C8));
        assert_eq!(id.dbname.as_deref(), Some("app"));

        let mut bad = r.clone();
        bad.rows[0].values[2] = Some(Bytes::from_static(b"zz"));
        let e = IdentifySystem::from_result(&bad).unwrap_err().to_string();
        assert!(e.contains("xlogpos"), "{e}");
        bad.rows.clear();
        assert!(IdentifySystem::from_result(&bad).is_err());
    }
}
