//! COPY text rows and the copy plan.

use proptest::prelude::*;

use super::super::{
    CopyPart, CopyRow, CopyTextError, SnapshotError, parse_copy_text_row, plan_copies,
};
use super::{col, table};
use crate::pgoutput::ReplicaIdentity;

fn parse(line: &[u8], columns: usize) -> Result<Vec<Option<Vec<u8>>>, SnapshotError> {
    let mut out = vec![Some(b"stale".to_vec())];
    parse_copy_text_row(line, columns, &mut out).map(|()| out)
}

fn v(s: &[u8]) -> Option<Vec<u8>> {
    Some(s.to_vec())
}

#[test]
fn plain_fields_null_and_empty() {
    assert_eq!(
        parse(b"1\tann\t\\N\t\n", 4).unwrap(),
        [v(b"1"), v(b"ann"), None, v(b"")]
    );
    // Without the trailing newline, and with \r\n.
    assert_eq!(parse(b"1\t\\N", 2).unwrap(), [v(b"1"), None]);
    assert_eq!(parse(b"a\tb\r\n", 2).unwrap(), [v(b"a"), v(b"b")]);
    // One empty column vs. NULL.
    assert_eq!(parse(b"\n", 1).unwrap(), [v(b"")]);
    assert_eq!(parse(b"\\N\n", 1).unwrap(), [None]);
    // A table without columns writes empty rows.
    assert_eq!(parse(b"\n", 0).unwrap(), Vec::<Option<Vec<u8>>>::new());
    assert_eq!(parse(b"", 0).unwrap(), Vec::<Option<Vec<u8>>>::new());
    // Empty columns all around.
    assert_eq!(parse(b"\t\t\n", 3).unwrap(), [v(b""), v(b""), v(b"")]);
}

#[test]
fn escapes() {
    assert_eq!(
        parse(b"a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh\n", 1).unwrap(),
        [v(b"a\tb\nc\rd\\e\x08f\x0cg\x0bh")]
    );
    // `\N` is NULL only as the whole field; escaped it is the text `\N`.
    assert_eq!(parse(b"\\\\N\tx\\Ny\n", 2).unwrap(), [v(b"\\N"), v(b"xNy")]);
    // Octal: one to three digits, modulo 256.
    assert_eq!(
        parse(b"\\1\\12\\101\\1011\\777\\08\n", 1).unwrap(),
        [v(b"\x01\x0aAA1\xff\x008")]
    );
    // Hex: one or two digits; `\x` without a digit is `x`.
    assert_eq!(
        parse(b"\\x41\\x4\\x4g\\xg\\xAbc\\xfF\n", 1).unwrap(),
        [v(b"A\x04\x04gxg\xabc\xff")]
    );
    // Any other escaped character stands for itself, an escaped tab included.
    assert_eq!(parse(b"\\q\\.\\\t\n", 1).unwrap(), [v(b"q.\t")]);
    // UTF-8 passes through.
    assert_eq!(
        parse("héllo\t✓\n".as_bytes(), 2).unwrap(),
        [v("héllo".as_bytes()), v("✓".as_bytes())]
    );
}

#[test]
fn errors() {
    let err = |line: &[u8], n| match parse(line, n) {
        Err(SnapshotError::CopyText(e)) => e,
        other => panic!("{line:?}: {other:?}"),
    };
    assert_eq!(
        err(b"1\t2\n", 3),
        CopyTextError::FieldCount {
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        err(b"1\t2\t3\n", 2),
        CopyTextError::FieldCount {
            expected: 2,
            got: 3
        }
    );
    assert_eq!(
        err(b"x\n", 0),
        CopyTextError::FieldCount {
            expected: 0,
            got: 1
        }
    );
    assert_eq!(
        err(b"\n", 2),
        CopyTextError::FieldCount {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        err(b"a\tb\\", 2),
        CopyTextError::TruncatedEscape {
            column: 2,
            offset: 3
        }
    );
    assert_eq!(
        err(b"a\nb\n", 1),
        CopyTextError::LineBreak {
            column: 1,
            offset: 1
        }
    );
    assert_eq!(
        err(b"a\tb\rc", 2),
        CopyTextError::LineBreak {
            column: 2,
            offset: 3
        }
    );
    assert_eq!(
        err(b"a\\\nb", 1),
        CopyTextError::LineBreak {
            column: 1,
            offset: 2
        }
    );
    let msg = SnapshotError::CopyText(err(b"1\t2\n", 3)).to_string();
    assert!(
        msg.contains("expected 3") && msg.contains("found 2"),
        "{msg}"
    );
}

#[test]
fn reusable_row() {
    let mut row = CopyRow::new();
    row.parse(b"a\\tb\t\\N\tc\n", 3).unwrap();
    assert_eq!(row.len(), 3);
    assert_eq!(row.get(0), Some(Some(&b"a\tb"[..])));
    assert_eq!(row.get(1), Some(None));
    assert_eq!(row.get(2), Some(Some(&b"c"[..])));
    assert_eq!(row.get(3), None);
    row.parse(b"x\n", 1).unwrap();
    assert_eq!(row.iter().collect::<Vec<_>>(), [Some(&b"x"[..])]);
    // A failed parse leaves the row empty.
    assert!(row.parse(b"x\ty\n", 1).is_err());
    assert!(row.is_empty());
}

/// COPY's text output of a value: what PostgreSQL's CopyAttributeOutText writes.
fn escape(value: Option<&[u8]>) -> Vec<u8> {
    let Some(value) = value else {
        return b"\\N".to_vec();
    };
    let mut out = Vec::new();
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0b => out.extend_from_slice(b"\\v"),
            b => out.push(b),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes, any column count: an answer, never a panic, and never more values than
    /// bytes.
    #[test]
    fn arbitrary_bytes_never_panic(
        line in prop::collection::vec(any::<u8>(), 0..200),
        columns in 0usize..8,
    ) {
        let mut out = Vec::new();
        if parse_copy_text_row(&line, columns, &mut out).is_ok() {
            prop_assert_eq!(out.len(), columns);
            let total: usize = out.iter().flatten().map(Vec::len).sum();
            prop_assert!(total <= line.len());
        } else {
            prop_assert!(out.is_empty());
        }
    }

    /// Backslash-heavy input (the escape paths) never panics either.
    #[test]
    fn escape_soup_never_panics(
        line in prop::collection::vec(prop::sample::select(
            b"\\\t\nNx0179afAFgrtnbv".to_vec()), 0..60),
        columns in 0usize..5,
    ) {
        let mut out = Vec::new();
        let _ = parse_copy_text_row(&line, columns, &mut out);
    }

    /// The assembler's direct path (a line split in place when it has no escape) reads
    /// exactly what [`CopyRow::parse`] reads, and fails exactly when it fails.
    #[test]
    fn tuple_matches_parse(
        line in prop::collection::vec(prop::sample::select(
            b"\\\t\n\rNx0179ab".to_vec()), 0..40),
        columns in 0usize..6,
    ) {
        let mut a = CopyRow::new();
        let mut b = CopyRow::new();
        let parsed = a.parse(&line, columns).map(|()| a.iter().map(|v| v.map(<[u8]>::to_vec)).collect::<Vec<_>>());
        let direct = b.tuple(&line, columns).map(|t| {
            t.iter()
                .map(|v| match v {
                    crate::pgoutput::ColumnValue::Text(s) => Some(s.to_vec()),
                    crate::pgoutput::ColumnValue::Null => None,
                    other => panic!("not a text cell: {other:?}"),
                })
                .collect::<Vec<_>>()
        });
        prop_assert_eq!(parsed, direct);
    }

    /// What COPY writes parses back to the values.
    #[test]
    fn round_trip(
        values in prop::collection::vec(
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)), 1..6),
        crlf in any::<bool>(),
    ) {
        let mut line = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            line.extend(escape(v.as_deref()));
        }
        line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        let mut out = Vec::new();
        parse_copy_text_row(&line, values.len(), &mut out).unwrap();
        prop_assert_eq!(out, values);
    }
}

// ------------------------------------------------------------------------------ plan_copies

fn sized(oid: u32, name: &str, pages: u64, rows: u64) -> super::super::SnapshotTable {
    let mut t = table(
        oid,
        "public",
        name,
        ReplicaIdentity::Default,
        vec![col("id", 23, true), col("Na\"me", 25, false)],
        &["id"],
    );
    t.pages = pages;
    t.estimated_rows = rows;
    t
}

#[test]
fn one_copy_per_small_table_biggest_first() {
    let tables = [
        sized(1, "a", 10, 100),
        sized(2, "b", 50, 10),
        sized(3, "c", 10, 500),
    ];
    let parts = plan_copies(&tables, 1000, 4);
    let order: Vec<usize> = parts.iter().map(|p| p.table).collect();
    assert_eq!(order, [1, 2, 0]);
    assert_eq!(
        parts[0],
        CopyPart {
            table: 1,
            sql: "COPY (SELECT \"id\", \"Na\"\"me\" FROM ONLY \"public\".\"b\") TO STDOUT".into(),
            pages: None,
        }
    );
}

#[test]
fn large_tables_split_over_ctid_ranges() {
    let tables = [sized(1, "small", 5, 5), sized(2, "big", 1000, 100_000)];
    let parts = plan_copies(&tables, 300, 8);
    // ceil(1000 / 300) = 4 parts of the big table, then the small one.
    assert_eq!(parts.len(), 5);
    let big: Vec<&CopyPart> = parts.iter().filter(|p| p.table == 1).collect();
    assert_eq!(
        big.iter().map(|p| p.pages).collect::<Vec<_>>(),
        [
            Some((0, 250)),
            Some((250, 500)),
            Some((500, 750)),
            Some((750, 1000))
        ]
    );
    assert!(parts[..4].iter().all(|p| p.table == 1));
    assert_eq!(
        big[0].sql,
        "COPY (SELECT \"id\", \"Na\"\"me\" FROM ONLY \"public\".\"big\" WHERE ctid >= \
         '(0,0)'::tid AND ctid < '(250,0)'::tid) TO STDOUT"
    );
    assert!(
        big[1]
            .sql
            .ends_with("WHERE ctid >= '(250,0)'::tid AND ctid < '(500,0)'::tid) TO STDOUT")
    );
    // The last part is open-ended: rows on pages added since relpages was read are copied.
    assert!(
        big[3]
            .sql
            .ends_with("WHERE ctid >= '(750,0)'::tid) TO STDOUT"),
        "{}",
        big[3].sql
    );
    assert_eq!(parts[4].pages, None);

    // The part count is capped, and uneven page counts leave no gap.
    let parts = plan_copies(&[sized(1, "t", 1001, 1)], 10, 3);
    let ranges: Vec<_> = parts.iter().map(|p| p.pages.unwrap()).collect();
    assert_eq!(ranges, [(0, 333), (333, 667), (667, 1001)]);
    // Splitting turned off.
    assert_eq!(plan_copies(&[sized(1, "t", 1001, 1)], 0, 3).len(), 1);
    assert_eq!(plan_copies(&[sized(1, "t", 1001, 1)], 10, 1).len(), 1);
    assert_eq!(plan_copies(&[sized(1, "t", 300, 1)], 300, 8).len(), 1);
}

#[test]
fn filters_schemas_and_partitioned_roots() {
    let mut t = table(
        9,
        "App",
        "Orders",
        ReplicaIdentity::Full,
        vec![col("id", 23, true)],
        &[],
    );
    t.row_filter = Some("(id > 10)".into());
    t.pages = 100;
    let parts = plan_copies(std::slice::from_ref(&t), 10, 2);
    assert_eq!(
        parts[0].sql,
        "COPY (SELECT \"id\" FROM ONLY \"App\".\"Orders\" WHERE ((id > 10)) AND ctid >= \
         '(0,0)'::tid AND ctid < '(50,0)'::tid) TO STDOUT"
    );
    t.partitioned = true;
    let parts = plan_copies(&[t], 10, 2);
    assert_eq!(
        parts,
        [CopyPart {
            table: 0,
            sql: "COPY (SELECT \"id\" FROM \"App\".\"Orders\" WHERE ((id > 10))) TO STDOUT".into(),
            pages: None,
        }]
    );
}
