//! Arbitrary bytes as one COPY text-format row: never a panic; the field count an error
//! reports is one the same row parses with; a row that parses, escaped again and parsed,
//! gives the same fields; `parse_copy_text_row` agrees with `CopyRow`; and the row goes
//! through the snapshot assembler for a table of that many columns without a panic.
//!
//! Input: one configuration byte (column types, key, batch size), then the row.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::PipelineConfig;
use pgcdc_core::pgoutput::{Column, Oid, RelationBody, ReplicaIdentity};
use pgcdc_core::snapshot::{
    CopyRow, CopyTextError, SnapshotAssembler, SnapshotError, SnapshotEvent, SnapshotTable,
    parse_copy_text_row,
};

/// Writes `fields` as COPY's text format does.
fn escape(fields: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match f {
            None => out.extend_from_slice(b"\\N"),
            Some(v) => {
                for &b in v {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        _ => out.push(b),
                    }
                }
            }
        }
    }
    out
}

fn fields(row: &CopyRow) -> Vec<Option<Vec<u8>>> {
    row.iter().map(|v| v.map(<[u8]>::to_vec)).collect()
}

const TYPES: [u32; 8] = [25, 23, 20, 16, 1700, 3802, 1082, 17];

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, line)) = data.split_first() else {
        return;
    };
    let mut row = CopyRow::new();
    // Far more columns than any row has: the error says how many there are.
    let count = match row.parse(line, usize::MAX) {
        Err(CopyTextError::FieldCount { expected, got }) => {
            assert_eq!(expected, usize::MAX);
            assert!(row.is_empty(), "a failed parse left fields");
            assert!(got >= 1);
            Some(got)
        }
        Err(e) => {
            let _ = e.to_string();
            assert!(row.is_empty(), "a failed parse left fields");
            assert!(e.column().is_some());
            None
        }
        Ok(()) => panic!("a row of usize::MAX columns parsed"),
    };
    let mut out = Vec::new();
    let Some(count) = count else {
        // The row is malformed whatever the column count.
        assert!(row.parse(line, 1).is_err());
        assert!(parse_copy_text_row(line, 1, &mut out).is_err());
        assert!(out.is_empty());
        return;
    };
    row.parse(line, count)
        .expect("the reported field count parses");
    assert_eq!(row.len(), count);
    let parsed = fields(&row);
    parse_copy_text_row(line, count, &mut out).expect("parse_copy_text_row agrees");
    assert_eq!(out, parsed);
    if count > 1 {
        assert!(matches!(
            row.parse(line, count - 1),
            Err(CopyTextError::FieldCount { .. })
        ));
    }

    // Escaped again, the same fields.
    let again = escape(&parsed);
    row.parse(&again, count).expect("an escaped row parses");
    assert_eq!(fields(&row), parsed, "re-escaped as {again:?}");
    let mut terminated = again.clone();
    terminated.extend_from_slice(b"\r\n");
    row.parse(&terminated, count)
        .expect("a terminated row parses");
    assert_eq!(fields(&row), parsed);

    // Through the assembler, as a bootstrap would copy it.
    if count > 64 {
        return;
    }
    let columns = (0..count)
        .map(|i| Column {
            flags: u8::from(i == 0 && cfg & 0x80 != 0),
            name: format!("c{i}"),
            type_oid: Oid(TYPES[(usize::from(cfg) + i) % TYPES.len()]),
            type_modifier: -1,
        })
        .collect();
    let mut table = SnapshotTable::new(RelationBody {
        xid: None,
        oid: Oid(16_384),
        namespace: "public".into(),
        name: "t".into(),
        replica_identity: if cfg & 0x80 != 0 {
            ReplicaIdentity::Default
        } else {
            ReplicaIdentity::Full
        },
        columns,
    });
    if cfg & 0x80 != 0 {
        table.primary_key = vec!["c0".to_owned()];
    }
    let config = PipelineConfig::default().with_max_batch_changes(usize::from(cfg & 3) + 1);
    let mut asm = SnapshotAssembler::new("fuzz", config, Lsn(0x100), 1_700_000_000_000_000_000)
        .with_id_generator(|| 7);
    asm.handle_part_start(&table).expect("a part begins");
    for l in [line, &again[..]] {
        match asm.handle_row(l) {
            Ok(()) => {}
            Err(e @ SnapshotError::CopyRow { .. }) => panic!("a parsed row failed: {e}"),
            Err(e) => {
                let _ = e.to_string();
            }
        }
        while let Some(e) = asm.poll_event() {
            let _ = format!("{e:?}");
        }
    }
    let _ = asm.handle_part_end();
    while let Some(e) = asm.poll_event() {
        if let SnapshotEvent::Batch(b) = &e {
            assert!(b.changes.len() <= usize::from(cfg & 3) + 1);
            assert!(
                b.end_lsn.is_none(),
                "bootstrap batches have nothing to acknowledge"
            );
        }
        let _ = format!("{e:?}");
    }
});
