//! COPY's text format, one row at a time.

use super::SnapshotError;
use crate::pgoutput::{Cell, TupleRef};

/// Why a COPY text row does not parse. Columns are numbered from 1, byte offsets from 0
/// within the row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CopyTextError {
    /// The row has another number of fields than the table has columns.
    #[error("expected {expected} tab-separated columns, found {got}")]
    FieldCount {
        /// Columns of the table.
        expected: usize,
        /// Fields in the row.
        got: usize,
    },
    /// The row ends with a lone backslash.
    #[error("column {column} ends inside a backslash escape (byte {offset})")]
    TruncatedEscape {
        /// The column.
        column: usize,
        /// The offset of the backslash.
        offset: usize,
    },
    /// A raw line break before the end of the row (COPY escapes them as `\n` and `\r`).
    #[error("column {column} holds an unescaped line break (byte {offset})")]
    LineBreak {
        /// The column.
        column: usize,
        /// The offset of the line break.
        offset: usize,
    },
    /// A value ends past 4 GiB into the row (no COPY row of PostgreSQL is that long).
    #[error("a value starting at byte {offset} ends past 4 GiB")]
    TooLong {
        /// The offset of the value.
        offset: usize,
    },
}

impl CopyTextError {
    /// The column (from 1) the problem is in, if it is in one.
    pub fn column(&self) -> Option<usize> {
        match self {
            CopyTextError::FieldCount { .. } | CopyTextError::TooLong { .. } => None,
            CopyTextError::TruncatedEscape { column, .. }
            | CopyTextError::LineBreak { column, .. } => Some(*column),
        }
    }
}

/// One parsed row of COPY text format, reusable from row to row: the de-escaped values live
/// in one buffer, so parsing a row allocates nothing once the buffers have grown to the
/// widest row. Memory is bounded by the row's length.
///
/// The format (what `COPY … TO STDOUT` writes, one CopyData per row): fields separated by
/// tabs; a field that is exactly `\N` is NULL; backslash escapes `\b \f \n \r \t \v`, `\\`,
/// `\` and one to three octal digits (the value taken modulo 256, as PostgreSQL does), `\x`
/// and one or two hex digits, and `\` before any other character stands for that character
/// (so `\x` without a hex digit is `x`); an optional trailing `\n` (or `\r\n`). No encoding
/// check is made: values are the bytes the server sent.
#[derive(Clone, Debug, Default)]
pub struct CopyRow {
    buf: Vec<u8>,
    /// `None` for NULL, else the value's range in `buf`.
    fields: Vec<Option<(usize, usize)>>,
    /// The cells of the last [`tuple`](Self::tuple).
    cells: Vec<Cell>,
}

impl CopyRow {
    /// An empty row.
    pub fn new() -> Self {
        CopyRow::default()
    }

    /// Parses `line` (one CopyData payload), which must have `columns` fields. On error the
    /// row is left empty.
    ///
    /// # Errors
    ///
    /// A field count other than `columns`, a lone trailing backslash, a raw line break inside
    /// the row.
    pub fn parse(&mut self, line: &[u8], columns: usize) -> Result<(), CopyTextError> {
        self.buf.clear();
        self.fields.clear();
        let line = strip_terminator(line);
        if columns == 0 && line.is_empty() {
            // COPY of a table without columns writes empty rows; for any other table an empty
            // row is one empty-string field.
            return Ok(());
        }
        let result = self.parse_fields(line);
        let got = self.fields.len();
        match result {
            Ok(()) if got == columns => Ok(()),
            Ok(()) => {
                self.clear();
                Err(CopyTextError::FieldCount {
                    expected: columns,
                    got,
                })
            }
            Err(e) => {
                self.clear();
                Err(e)
            }
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
    }

    /// Parses `line` as [`parse`](Self::parse) does, as a tuple of text values for the
    /// assembler. A line without a backslash (no escape, no NULL: most rows) is split in
    /// place, its values borrowed from `line` and nothing copied; any other line is
    /// unescaped into the row's buffer.
    ///
    /// # Errors
    ///
    /// As for [`parse`](Self::parse); also a line longer than 4 GiB.
    pub(crate) fn tuple<'a>(
        &'a mut self,
        line: &'a [u8],
        columns: usize,
    ) -> Result<TupleRef<'a>, CopyTextError> {
        self.cells.clear();
        let plain = strip_terminator(line);
        if !plain.is_empty() && !plain.iter().any(|&b| matches!(b, b'\\' | b'\n' | b'\r')) {
            let mut start = 0;
            for (i, &b) in plain.iter().enumerate() {
                if b == b'\t' {
                    self.cells.push(text_cell(start, i)?);
                    start = i + 1;
                }
            }
            self.cells.push(text_cell(start, plain.len())?);
            if self.cells.len() != columns {
                let got = self.cells.len();
                self.cells.clear();
                return Err(CopyTextError::FieldCount {
                    expected: columns,
                    got,
                });
            }
            return Ok(TupleRef::new(plain, &self.cells));
        }
        self.parse(line, columns)?;
        for f in &self.fields {
            self.cells.push(match *f {
                None => Cell::NULL,
                Some((s, e)) => text_cell(s, e)?,
            });
        }
        Ok(TupleRef::new(&self.buf, &self.cells))
    }

    fn parse_fields(&mut self, line: &[u8]) -> Result<(), CopyTextError> {
        self.buf.reserve(line.len());
        let mut i = 0;
        let mut field_start = 0;
        let mut value_start = 0;
        loop {
            let rest = line.get(i..).unwrap_or_default();
            let run = rest
                .iter()
                .position(|&b| matches!(b, b'\t' | b'\\' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            self.buf
                .extend_from_slice(rest.get(..run).unwrap_or_default());
            i += run;
            let column = self.fields.len() + 1;
            match line.get(i) {
                None | Some(b'\t') => {
                    let raw = line.get(field_start..i).unwrap_or_default();
                    if raw == b"\\N" {
                        self.buf.truncate(value_start);
                        self.fields.push(None);
                    } else {
                        self.fields.push(Some((value_start, self.buf.len())));
                    }
                    if line.get(i).is_none() {
                        return Ok(());
                    }
                    i += 1;
                    field_start = i;
                    value_start = self.buf.len();
                }
                Some(b'\n' | b'\r') => {
                    return Err(CopyTextError::LineBreak { column, offset: i });
                }
                Some(_) => {
                    // A backslash.
                    let at = i;
                    let Some(&e) = line.get(i + 1) else {
                        return Err(CopyTextError::TruncatedEscape { column, offset: at });
                    };
                    i += 2;
                    let byte = match e {
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match line.get(i) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            (v & 0xFF) as u8
                        }
                        b'x' => match line.get(i).copied().and_then(hex) {
                            Some(h) => {
                                i += 1;
                                match line.get(i).copied().and_then(hex) {
                                    Some(l) => {
                                        i += 1;
                                        h * 16 + l
                                    }
                                    None => h,
                                }
                            }
                            None => b'x',
                        },
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'v' => 0x0B,
                        b'\n' | b'\r' => {
                            return Err(CopyTextError::LineBreak {
                                column,
                                offset: at + 1,
                            });
                        }
                        other => other,
                    };
                    self.buf.push(byte);
                }
            }
        }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i`: `None` past the end, `Some(None)` for NULL.
    pub fn get(&self, i: usize) -> Option<Option<&[u8]>> {
        self.fields.get(i).map(|f| self.value(*f))
    }

    /// The fields in order (`None` for NULL).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&[u8]>> + '_ {
        self.fields.iter().map(|f| self.value(*f))
    }

    fn value(&self, f: Option<(usize, usize)>) -> Option<&[u8]> {
        f.map(|(s, e)| self.buf.get(s..e).unwrap_or_default())
    }
}

/// A text cell, or the error for a value past 4 GiB.
fn text_cell(start: usize, end: usize) -> Result<Cell, CopyTextError> {
    Cell::text(start, end).ok_or(CopyTextError::TooLong { offset: start })
}

/// A trailing `\n` or `\r\n` removed.
fn strip_terminator(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses one row of COPY text format (one CopyData payload) into `out` (cleared first): one
/// entry per column, `None` for NULL. The number of fields must be `columns`. See [`CopyRow`]
/// for the format, and for a variant that does not allocate per value.
///
/// Never panics; allocates at most the row's length (plus one entry per field).
///
/// # Errors
///
/// [`SnapshotError::CopyText`]: a wrong field count, a lone trailing backslash, a raw line
/// break inside the row.
pub fn parse_copy_text_row(
    line: &[u8],
    columns: usize,
    out: &mut Vec<Option<Vec<u8>>>,
) -> Result<(), SnapshotError> {
    out.clear();
    let mut row = CopyRow::new();
    row.parse(line, columns)?;
    out.extend(row.iter().map(|v| v.map(<[u8]>::to_vec)));
    Ok(())
}
