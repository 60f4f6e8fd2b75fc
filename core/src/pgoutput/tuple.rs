//! Zero-copy TupleData.

use std::fmt;
use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;

/// One column value of a [`TupleData`], borrowed from the frame.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnValue<'a> {
    /// `'n'`: SQL NULL (also every non-key column of an old-key `K` tuple).
    Null,
    /// `'u'`: an unchanged TOASTed value that the server did not send. **Not** NULL: the
    /// previous value still holds.
    UnchangedToast,
    /// `'t'`: the type's text output, in the client encoding (UTF-8 as pgcdc pins it).
    Text(&'a [u8]),
    /// `'b'`: the type's binary send format (only with the `binary` option).
    Binary(&'a [u8]),
}

impl<'a> ColumnValue<'a> {
    /// Whether this is SQL NULL.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, ColumnValue::Null)
    }

    /// Whether this is an unchanged TOASTed value that was not sent.
    #[inline]
    pub fn is_unchanged_toast(&self) -> bool {
        matches!(self, ColumnValue::UnchangedToast)
    }

    /// The bytes of a text or binary value.
    #[inline]
    pub fn data(&self) -> Option<&'a [u8]> {
        match *self {
            ColumnValue::Text(b) | ColumnValue::Binary(b) => Some(b),
            ColumnValue::Null | ColumnValue::UnchangedToast => None,
        }
    }

    /// The wire kind byte: `n`, `u`, `t` or `b`.
    #[inline]
    pub fn kind_byte(&self) -> u8 {
        match self {
            ColumnValue::Null => b'n',
            ColumnValue::UnchangedToast => b'u',
            ColumnValue::Text(_) => b't',
            ColumnValue::Binary(_) => b'b',
        }
    }
}

impl fmt::Debug for ColumnValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnValue::Null => f.write_str("Null"),
            ColumnValue::UnchangedToast => f.write_str("UnchangedToast"),
            ColumnValue::Text(b) => write!(f, "Text({:?})", String::from_utf8_lossy(b)),
            ColumnValue::Binary(b) => write!(f, "Binary({b:02x?})"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Unchanged,
    Text,
    Binary,
}

/// Where one column's value sits in the tuple's bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    kind: Kind,
    start: u32,
    len: u32,
}

impl Cell {
    /// SQL NULL.
    pub(crate) const NULL: Cell = Cell {
        kind: Kind::Null,
        start: 0,
        len: 0,
    };

    /// A text value at `start..end` of the tuple's bytes; `None` when an end does not fit
    /// in 32 bits (no pgoutput or COPY value is that long).
    #[inline]
    pub(crate) fn text(start: usize, end: usize) -> Option<Cell> {
        Some(Cell {
            kind: Kind::Text,
            start: u32::try_from(start).ok()?,
            len: u32::try_from(end.checked_sub(start)?).ok()?,
        })
    }
}

/// The column values of one row (pgoutput TupleData), zero-copy.
///
/// It holds one reference-counted slice of the received frame (exactly the TupleData's wire
/// encoding, starting at its `i16` column count) and one small entry per column, so decoding
/// allocates a single `Vec` and copies no value bytes. Values are read through [`get`] and
/// [`iter`] as borrowed [`ColumnValue`]s, or as owned zero-copy [`Bytes`] through
/// [`value_bytes`].
///
/// Two `TupleData` are equal when they hold the same values in the same order (their wire
/// encodings are equal).
///
/// [`get`]: TupleData::get
/// [`iter`]: TupleData::iter
/// [`value_bytes`]: TupleData::value_bytes
#[derive(Clone)]
pub struct TupleData {
    raw: Bytes,
    cells: Vec<Cell>,
}

impl TupleData {
    /// Builds a tuple from values, encoding it as pgoutput would (for tests and tools).
    ///
    /// Fails if there are more than `i16::MAX` columns or the encoding exceeds 4 GiB.
    pub fn from_values<'v>(
        values: impl IntoIterator<Item = ColumnValue<'v>>,
    ) -> Result<TupleData, EncodeError> {
        let values = values.into_iter();
        let mut buf = BytesMut::with_capacity(2 + values.size_hint().0 * 5);
        buf.put_i16(0);
        let mut cells = Vec::with_capacity(values.size_hint().0);
        for v in values {
            let kind = match v {
                ColumnValue::Null => Kind::Null,
                ColumnValue::UnchangedToast => Kind::Unchanged,
                ColumnValue::Text(_) => Kind::Text,
                ColumnValue::Binary(_) => Kind::Binary,
            };
            buf.put_u8(v.kind_byte());
            let (start, len) = match v.data() {
                Some(data) => {
                    let len = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong {
                        field: "column value",
                        len: data.len(),
                    })?;
                    buf.put_u32(len);
                    let start = buf.len();
                    buf.put_slice(data);
                    (start, len)
                }
                None => (buf.len(), 0),
            };
            let start = u32::try_from(start).map_err(|_| EncodeError::TooLong {
                field: "tuple",
                len: buf.len(),
            })?;
            cells.push(Cell { kind, start, len });
        }
        let count = i16::try_from(cells.len()).map_err(|_| EncodeError::TooMany {
            field: "columns",
            count: cells.len(),
        })?;
        if let Some(head) = buf.get_mut(..2) {
            head.copy_from_slice(&count.to_be_bytes());
        }
        Ok(TupleData {
            raw: buf.freeze(),
            cells,
        })
    }

    /// The number of columns.
    #[inline]
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether the tuple has no columns.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The value of column `index` (in the Relation's column order).
    #[inline]
    pub fn get(&self, index: usize) -> Option<ColumnValue<'_>> {
        self.view().get(index)
    }

    /// The values in column order.
    #[inline]
    pub fn iter(&self) -> TupleIter<'_> {
        self.view().iter()
    }

    /// A borrowed view of the tuple.
    #[inline]
    pub(crate) fn view(&self) -> TupleRef<'_> {
        TupleRef {
            raw: &self.raw,
            cells: &self.cells,
        }
    }

    /// The bytes of a text or binary value as a zero-copy [`Bytes`] slice of the frame, for
    /// keeping a value beyond the tuple's life. `None` for NULL, unchanged TOAST, or an index
    /// out of range.
    pub fn value_bytes(&self, index: usize) -> Option<Bytes> {
        let c = self.cells.get(index)?;
        match c.kind {
            Kind::Text | Kind::Binary => {
                let r = cell_range(c);
                (r.end <= self.raw.len()).then(|| self.raw.slice(r))
            }
            Kind::Null | Kind::Unchanged => None,
        }
    }

    /// The tuple's wire encoding (`i16` count, then each column), as received.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }
}

/// The value of cell `c` of a tuple whose encoding is `raw`.
#[inline]
fn cell_value<'a>(raw: &'a [u8], c: &Cell) -> ColumnValue<'a> {
    match c.kind {
        Kind::Null => ColumnValue::Null,
        Kind::Unchanged => ColumnValue::UnchangedToast,
        Kind::Text => ColumnValue::Text(raw.get(cell_range(c)).unwrap_or_default()),
        Kind::Binary => ColumnValue::Binary(raw.get(cell_range(c)).unwrap_or_default()),
    }
}

/// A borrowed tuple: its wire encoding and its cells, as [`TupleData`] holds them or as
/// parsed from a payload that is not kept.
#[derive(Clone, Copy)]
pub(crate) struct TupleRef<'a> {
    raw: &'a [u8],
    cells: &'a [Cell],
}

impl<'a> TupleRef<'a> {
    /// A tuple of `cells` over `raw` (each cell's range is read with bounds checks).
    #[inline]
    pub(crate) fn new(raw: &'a [u8], cells: &'a [Cell]) -> Self {
        TupleRef { raw, cells }
    }

    /// The number of columns.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The value of column `index`.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<ColumnValue<'a>> {
        self.cells.get(index).map(|c| cell_value(self.raw, c))
    }

    /// The values in column order.
    #[inline]
    pub(crate) fn iter(&self) -> TupleIter<'a> {
        TupleIter {
            raw: self.raw,
            cells: self.cells.iter(),
        }
    }
}

impl fmt::Debug for TupleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[inline]
fn cell_range(c: &Cell) -> Range<usize> {
    let start = c.start as usize;
    start..start + c.len as usize
}

impl PartialEq for TupleData {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for TupleData {}

impl fmt::Debug for TupleData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a TupleData {
    type Item = ColumnValue<'a>;
    type IntoIter = TupleIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the values of a [`TupleData`], in column order.
#[derive(Clone, Debug)]
pub struct TupleIter<'a> {
    raw: &'a [u8],
    cells: std::slice::Iter<'a, Cell>,
}

impl<'a> Iterator for TupleIter<'a> {
    type Item = ColumnValue<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.cells.next().map(|c| cell_value(self.raw, c))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.cells.size_hint()
    }
}

impl ExactSizeIterator for TupleIter<'_> {}

impl DoubleEndedIterator for TupleIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.cells.next_back().map(|c| cell_value(self.raw, c))
    }
}

/// Spare cell tables of tuples already handled, for the decoder to reuse instead of
/// allocating one per tuple (the assembly pipeline gives them back).
#[derive(Default)]
pub(crate) struct CellPool {
    spare: Vec<Vec<Cell>>,
}

impl CellPool {
    /// Tables kept at most.
    const MAX_SPARE: usize = 4;
    /// Larger tables (in cells) are freed rather than kept.
    const MAX_CELLS: usize = 1024;

    /// A table, empty or not (the reader clears it).
    #[inline]
    fn take(&mut self) -> Vec<Cell> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps the cell table of `tuple` for reuse.
    #[inline]
    pub(crate) fn put(&mut self, tuple: TupleData) {
        self.put_cells(tuple.cells);
    }

    /// Keeps a cell table for reuse.
    #[inline]
    pub(crate) fn put_cells(&mut self, mut cells: Vec<Cell>) {
        if self.spare.len() < Self::MAX_SPARE
            && cells.capacity() > 0
            && cells.capacity() <= Self::MAX_CELLS
        {
            cells.clear();
            self.spare.push(cells);
        }
    }
}

impl Clone for CellPool {
    /// A clone starts with no spare tables.
    fn clone(&self) -> Self {
        CellPool::default()
    }
}

impl fmt::Debug for CellPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CellPool({} spare)", self.spare.len())
    }
}

/// A parsed tuple not yet attached to its frame: the byte range of its encoding in the payload
/// and the cells, with offsets relative to that range.
pub(crate) struct RawTuple {
    range: Range<usize>,
    cells: Vec<Cell>,
}

impl RawTuple {
    /// A view of the tuple in `payload`, the buffer it was parsed from.
    #[inline]
    pub(crate) fn view<'a>(&'a self, payload: &'a [u8]) -> TupleRef<'a> {
        TupleRef {
            raw: payload.get(self.range.clone()).unwrap_or_default(),
            cells: &self.cells,
        }
    }

    /// The cell table, for reuse.
    #[inline]
    pub(crate) fn into_cells(self) -> Vec<Cell> {
        self.cells
    }

    /// Attaches to `payload` by narrowing it in place (no reference-count traffic).
    #[inline]
    pub(crate) fn attach(self, mut payload: Bytes) -> TupleData {
        payload.truncate(self.range.end);
        payload.advance(self.range.start.min(payload.len()));
        TupleData {
            raw: payload,
            cells: self.cells,
        }
    }

    /// Attaches to a slice of `payload`.
    #[inline]
    pub(crate) fn attach_ref(self, payload: &Bytes) -> TupleData {
        let raw = if self.range.end <= payload.len() && self.range.start <= self.range.end {
            payload.slice(self.range)
        } else {
            Bytes::new()
        };
        TupleData {
            raw,
            cells: self.cells,
        }
    }
}

/// Parses a TupleData at the reader's position.
///
/// Always inlined: returned through memory, the tuple would be read back right after being
/// written piecewise, which stalls on store forwarding.
#[inline(always)]
pub(crate) fn parse_tuple(
    r: &mut Reader<'_>,
    pool: &mut CellPool,
) -> Result<RawTuple, DecodeError> {
    let mut cells = pool.take();
    let mut columns = TupleReader::new(r, &mut cells)?;
    let range = columns.read_rest()?;
    Ok(RawTuple { range, cells })
}

/// Reads a TupleData one column at a time, straight from the payload, noting where each
/// column lies so that the tuple can then be read again at random ([`tuple`](Self::tuple)).
///
/// The row fast path converts each column as it is read, in a single pass over the payload;
/// [`parse_tuple`] reads them all at once. Either way the tuple is checked the same way: no
/// length is used before it is checked against the bytes left.
pub(crate) struct TupleReader<'r, 'a, 'c> {
    r: &'r mut Reader<'a>,
    /// Where the tuple starts (its column count) in the payload.
    start: usize,
    /// Columns not read yet.
    left: usize,
    /// One per column read, offsets relative to `start`.
    cells: &'c mut Vec<Cell>,
}

impl<'r, 'a, 'c> TupleReader<'r, 'a, 'c> {
    /// Reads the column count at the position of `r`; `cells` is cleared and will hold the
    /// cells of the columns read.
    #[inline(always)]
    pub(crate) fn new(
        r: &'r mut Reader<'a>,
        cells: &'c mut Vec<Cell>,
    ) -> Result<Self, DecodeError> {
        let start = r.pos();
        if r.remaining() > u32::MAX as usize {
            return Err(DecodeError::TooLarge {
                message: r.message(),
                len: r.remaining(),
            });
        }
        let ncols = r.i16()?;
        let ncols = match u16::try_from(ncols) {
            Ok(n) => usize::from(n),
            Err(_) => return Err(r.negative("column count", i64::from(ncols), start)),
        };
        cells.clear();
        // Every column takes at least its kind byte, so a lying count cannot over-allocate.
        cells.reserve(ncols.min(r.remaining()));
        Ok(TupleReader {
            r,
            start,
            left: ncols,
            cells,
        })
    }

    /// The number of columns the tuple says it has.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.cells.len() + self.left
    }

    /// The next column's value; `None` after the last.
    #[inline(always)]
    pub(crate) fn next_value(&mut self) -> Result<Option<ColumnValue<'a>>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        let at = self.r.pos();
        let kind = match self.r.u8()? {
            b'n' => Kind::Null,
            b'u' => Kind::Unchanged,
            b't' => Kind::Text,
            b'b' => Kind::Binary,
            other => return Err(self.r.invalid_byte("column kind", other, at)),
        };
        let (data, len) = match kind {
            Kind::Text | Kind::Binary => {
                let len = self.r.u32()?;
                (self.r.bytes(len as usize)?, len)
            }
            Kind::Null | Kind::Unchanged => (&[][..], 0),
        };
        // In bounds of a payload checked to be < 4 GiB in `new`.
        let start = (self.r.pos() - data.len() - self.start) as u32;
        self.cells.push(Cell { kind, start, len });
        self.left -= 1;
        Ok(Some(match kind {
            Kind::Null => ColumnValue::Null,
            Kind::Unchanged => ColumnValue::UnchangedToast,
            Kind::Text => ColumnValue::Text(data),
            Kind::Binary => ColumnValue::Binary(data),
        }))
    }

    /// Reads the columns not read yet and returns the tuple's range in the payload.
    #[inline]
    pub(crate) fn read_rest(&mut self) -> Result<Range<usize>, DecodeError> {
        while self.next_value()?.is_some() {}
        Ok(self.start..self.r.pos())
    }

    /// Reads the columns not read yet and succeeds when nothing follows the tuple in the
    /// payload.
    #[inline]
    pub(crate) fn finish(&mut self) -> Result<(), DecodeError> {
        self.read_rest()?;
        self.r.finish()
    }

    /// The columns read so far, at random.
    #[inline]
    pub(crate) fn tuple(&self) -> TupleRef<'_> {
        TupleRef {
            raw: self
                .r
                .payload()
                .get(self.start..self.r.pos())
                .unwrap_or_default(),
            cells: self.cells,
        }
    }
}
