//! Arrays of any element type and dimension, in text (`{1,NULL,3}`, `[0:1]={1,2}`) and binary.

use std::borrow::Cow;
use std::fmt;

use super::scan::{Reader, Scan, is_pg_space};
use super::{MAX_NESTING, TypeOid, TypeRegistry, Value, ValueError, binary, text};

/// One dimension of an [`Array`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArrayDim {
    /// The index of the first element (1 unless the array was built otherwise).
    pub lower_bound: i32,
    /// The number of elements along this dimension.
    pub len: u32,
}

/// An array value: its dimensions and its elements in row-major order.
///
/// An empty array has no dimensions and no elements. Elements may be [`Value::Null`].
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The element type the elements were decoded as.
    pub element_type: TypeOid,
    /// The dimensions, outermost first.
    pub dims: Vec<ArrayDim>,
    /// The elements in row-major order; their count is the product of the dimension lengths.
    pub elements: Vec<Value>,
}

impl Array {
    /// A one-dimensional array with lower bound 1.
    pub fn from_elements(element_type: TypeOid, elements: Vec<Value>) -> Array {
        let dims = if elements.is_empty() {
            Vec::new()
        } else {
            vec![ArrayDim {
                lower_bound: 1,
                len: u32::try_from(elements.len()).unwrap_or(u32::MAX),
            }]
        };
        Array {
            element_type,
            dims,
            elements,
        }
    }

    /// The number of dimensions (0 for an empty array).
    pub fn ndim(&self) -> usize {
        self.dims.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The element delimiter PostgreSQL uses for this element type (`;` for `box`).
    fn delimiter(&self) -> char {
        if self.element_type == TypeOid::BOX {
            ';'
        } else {
            ','
        }
    }
}

impl fmt::Display for Array {
    /// PostgreSQL's `array_out`: `{1,NULL,3}`, `{{1,2},{3,4}}`, `[0:1]={1,2}`, with elements
    /// double-quoted when needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count: u64 = self.dims.iter().map(|d| u64::from(d.len)).product();
        if self.dims.is_empty() || count == 0 || count != self.elements.len() as u64 {
            if !self.elements.is_empty() {
                // Inconsistent dimensions: print as one dimension.
                return Array::from_elements(self.element_type, self.elements.clone()).fmt(f);
            }
            return f.write_str("{}");
        }
        if self.dims.iter().any(|d| d.lower_bound != 1) {
            for d in &self.dims {
                let ub = i64::from(d.lower_bound) + i64::from(d.len) - 1;
                write!(f, "[{}:{}]", d.lower_bound, ub)?;
            }
            f.write_str("=")?;
        }
        let delim = self.delimiter();
        let mut elems = self.elements.iter();
        write_level(f, &self.dims, &mut elems, delim)
    }
}

fn write_level<'a>(
    f: &mut fmt::Formatter<'_>,
    dims: &[ArrayDim],
    elems: &mut impl Iterator<Item = &'a Value>,
    delim: char,
) -> fmt::Result {
    let Some((d, inner)) = dims.split_first() else {
        return Ok(());
    };
    f.write_str("{")?;
    for i in 0..d.len {
        if i > 0 {
            write!(f, "{delim}")?;
        }
        if inner.is_empty() {
            match elems.next() {
                Some(Value::Null) | None => f.write_str("NULL")?,
                Some(v) => write_element(f, &v.to_string(), delim)?,
            }
        } else {
            write_level(f, inner, elems, delim)?;
        }
    }
    f.write_str("}")
}

/// Writes one element, double-quoted when it is empty, spells `NULL`, or contains a quote, a
/// backslash, a brace, the delimiter or whitespace.
fn write_element(f: &mut fmt::Formatter<'_>, s: &str, delim: char) -> fmt::Result {
    let needs_quotes = s.is_empty()
        || s.eq_ignore_ascii_case("NULL")
        || s.chars().any(|c| {
            matches!(c, '"' | '\\' | '{' | '}')
                || c == delim
                || (c.is_ascii() && is_pg_space(c as u8))
        });
    if !needs_quotes {
        return f.write_str(s);
    }
    f.write_str("\"")?;
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if c == '"' || c == '\\' {
            f.write_str(s.get(run..i).unwrap_or(""))?;
            f.write_str("\\")?;
            run = i;
        }
    }
    f.write_str(s.get(run..).unwrap_or(""))?;
    f.write_str("\"")
}

/// One element token: its bytes (unescaped) and whether it was the unquoted word `NULL`.
struct Token<'a> {
    bytes: Cow<'a, [u8]>,
    null: bool,
}

/// Reads one element: unquoted text (backslash escapes allowed, trailing whitespace trimmed)
/// and/or double-quoted sections, up to the delimiter or `}`.
fn read_element<'a>(sc: &mut Scan<'a>, delim: u8) -> Result<Token<'a>, &'static str> {
    let start = sc.pos();
    // Fast path: plain unquoted text.
    loop {
        match sc.peek() {
            Some(b'"' | b'\\') => break,
            Some(b'{') => return Err("unexpected '{' inside an element"),
            Some(b) if b == delim || b == b'}' => {
                let raw = sc.since(start);
                let end = raw
                    .iter()
                    .rposition(|&b| !is_pg_space(b))
                    .map_or(0, |p| p + 1);
                let bytes = raw.get(..end).unwrap_or(&[]);
                if bytes.is_empty() {
                    return Err("empty unquoted element");
                }
                return Ok(Token {
                    null: bytes.eq_ignore_ascii_case(b"NULL"),
                    bytes: Cow::Borrowed(bytes),
                });
            }
            Some(_) => {
                sc.bump();
            }
            None => return Err("unexpected end of array"),
        }
    }
    // Slow path: quotes or escapes.
    let mut out: Vec<u8> = sc.since(start).to_vec();
    let mut significant = out
        .iter()
        .rposition(|&b| !is_pg_space(b))
        .map_or(0, |p| p + 1);
    let mut in_quotes = false;
    loop {
        let b = sc.peek().ok_or("unexpected end of array")?;
        if in_quotes {
            sc.bump();
            match b {
                b'"' => in_quotes = false,
                b'\\' => out.push(sc.bump().ok_or("unexpected end of array")?),
                _ => out.push(b),
            }
            significant = out.len();
            continue;
        }
        match b {
            b'"' => {
                sc.bump();
                in_quotes = true;
                significant = out.len();
            }
            b'\\' => {
                sc.bump();
                out.push(sc.bump().ok_or("unexpected end of array")?);
                significant = out.len();
            }
            b'{' => return Err("unexpected '{' inside an element"),
            b if b == delim || b == b'}' => break,
            b => {
                sc.bump();
                out.push(b);
                if !is_pg_space(b) {
                    significant = out.len();
                }
            }
        }
    }
    out.truncate(significant);
    Ok(Token {
        bytes: Cow::Owned(out),
        null: false,
    })
}

/// Parses array text whose elements are of type `elem`.
pub(crate) fn parse_text(
    array_oid: TypeOid,
    elem: TypeOid,
    s: &[u8],
    reg: &TypeRegistry,
    depth: usize,
) -> Result<Array, ValueError> {
    let bad = |reason| ValueError::InvalidText {
        type_oid: array_oid,
        reason,
    };
    let delim = if elem == TypeOid::BOX { b';' } else { b',' };
    let mut sc = Scan::new(s);
    sc.skip_ws();

    // Optional explicit bounds: [lb:ub][lb:ub]=
    let mut explicit: Vec<(i64, i64)> = Vec::new();
    while sc.eat(b'[') {
        if explicit.len() >= MAX_NESTING {
            return Err(ValueError::TooDeep {
                type_oid: array_oid,
            });
        }
        let a = sc.int().ok_or_else(|| bad("expected a dimension bound"))?;
        let (lb, ub) = if sc.eat(b':') {
            (a, sc.int().ok_or_else(|| bad("expected an upper bound"))?)
        } else {
            (1, a)
        };
        if !sc.eat(b']') {
            return Err(bad("expected ']'"));
        }
        if ub < lb {
            return Err(bad("upper bound below lower bound"));
        }
        explicit.push((lb, ub));
    }
    if !explicit.is_empty() {
        sc.skip_ws();
        if !sc.eat(b'=') {
            return Err(bad("expected '=' after the dimensions"));
        }
        sc.skip_ws();
    }
    if !sc.eat(b'{') {
        return Err(bad("expected '{'"));
    }

    let mut counts: Vec<usize> = vec![0];
    let mut dim_lens: Vec<Option<usize>> = vec![None];
    let mut ndim: Option<usize> = None;
    let mut elements = Vec::new();
    let mut expect_elem = true;
    let mut after_open = true;
    loop {
        sc.skip_ws();
        let c = sc.peek().ok_or_else(|| bad("unexpected end of array"))?;
        let close = if expect_elem {
            match c {
                b'{' => {
                    let level = counts.len();
                    if ndim.is_some_and(|n| level >= n) {
                        return Err(bad("sub-array where an element was expected"));
                    }
                    if level >= MAX_NESTING {
                        return Err(ValueError::TooDeep {
                            type_oid: array_oid,
                        });
                    }
                    sc.bump();
                    counts.push(0);
                    if dim_lens.len() <= level {
                        dim_lens.push(None);
                    }
                    after_open = true;
                    false
                }
                b'}' if after_open => true,
                b'}' => return Err(bad("'}' after a delimiter")),
                _ => {
                    let level = counts.len();
                    match ndim {
                        None => ndim = Some(level),
                        Some(n) if n != level => {
                            return Err(bad("element where a sub-array was expected"));
                        }
                        Some(_) => {}
                    }
                    let tok = read_element(&mut sc, delim).map_err(bad)?;
                    let v = if tok.null {
                        Value::Null
                    } else {
                        text::decode_at(elem, &tok.bytes, reg, depth + 1)?
                    };
                    elements.push(v);
                    if let Some(n) = counts.last_mut() {
                        *n += 1;
                    }
                    expect_elem = false;
                    after_open = false;
                    false
                }
            }
        } else {
            match c {
                b'}' => true,
                d if d == delim => {
                    sc.bump();
                    expect_elem = true;
                    after_open = false;
                    false
                }
                _ => return Err(bad("expected a delimiter or '}'")),
            }
        };
        if !close {
            continue;
        }
        sc.bump();
        let len = counts.pop().unwrap_or(0);
        let level = counts.len();
        if len == 0 {
            if level != 0 {
                return Err(bad("empty sub-array"));
            }
            sc.skip_ws();
            if !sc.done() {
                return Err(bad("unexpected data after the array"));
            }
            if !explicit.is_empty() {
                return Err(bad("dimensions given for an empty array"));
            }
            return Ok(Array {
                element_type: elem,
                dims: Vec::new(),
                elements,
            });
        }
        match dim_lens.get_mut(level) {
            Some(slot @ None) => *slot = Some(len),
            Some(Some(l)) if *l == len => {}
            _ => return Err(bad("sub-arrays must have matching dimensions")),
        }
        if level == 0 {
            break;
        }
        if let Some(n) = counts.last_mut() {
            *n += 1;
        }
        expect_elem = false;
        after_open = false;
    }
    sc.skip_ws();
    if !sc.done() {
        return Err(bad("unexpected data after the array"));
    }
    if !explicit.is_empty() && explicit.len() != dim_lens.len() {
        return Err(bad("dimensions do not match the array"));
    }
    let mut dims = Vec::with_capacity(dim_lens.len());
    for (i, len) in dim_lens.iter().enumerate() {
        let len = len.ok_or_else(|| bad("incomplete dimensions"))?;
        let lower_bound = match explicit.get(i) {
            Some(&(lb, ub)) => {
                if usize::try_from(ub - lb + 1).ok() != Some(len) {
                    return Err(bad("dimensions do not match the array"));
                }
                i32::try_from(lb).map_err(|_| bad("bound out of range"))?
            }
            None => 1,
        };
        let len = u32::try_from(len).map_err(|_| bad("array too large"))?;
        if i64::from(lower_bound) + i64::from(len) - 1 > i64::from(i32::MAX) {
            return Err(bad("bound out of range"));
        }
        dims.push(ArrayDim { lower_bound, len });
    }
    Ok(Array {
        element_type: elem,
        dims,
        elements,
    })
}

/// Decodes `array_send` output: `i32 ndim, i32 has_nulls, u32 elem_oid`, per dimension
/// `i32 len, i32 lower_bound`, then per element `i32 len` (−1 for NULL) and its bytes.
pub(crate) fn decode_binary(
    array_oid: TypeOid,
    declared_elem: Option<TypeOid>,
    bytes: &[u8],
    reg: &TypeRegistry,
    depth: usize,
) -> Result<Array, ValueError> {
    let bad = |reason| ValueError::InvalidBinary {
        type_oid: array_oid,
        reason,
    };
    let mut r = Reader::new(bytes);
    let (Some(ndim), Some(flags), Some(elem_oid)) = (r.i32(), r.i32(), r.u32()) else {
        return Err(bad("shorter than the 12-byte header"));
    };
    let ndim = usize::try_from(ndim).map_err(|_| bad("negative dimension count"))?;
    if ndim > MAX_NESTING {
        return Err(ValueError::TooDeep {
            type_oid: array_oid,
        });
    }
    if flags != 0 && flags != 1 {
        return Err(bad("invalid flags"));
    }
    let data_elem = TypeOid(elem_oid);
    let elem = match declared_elem {
        Some(d) if !reg.knows(data_elem) => d,
        _ => data_elem,
    };
    let mut dims = Vec::with_capacity(ndim);
    let mut count: u64 = 1;
    for _ in 0..ndim {
        let (Some(len), Some(lb)) = (r.i32(), r.i32()) else {
            return Err(bad("truncated dimensions"));
        };
        let len = u32::try_from(len).map_err(|_| bad("negative dimension length"))?;
        if len > 0 && i64::from(lb) + i64::from(len) - 1 > i64::from(i32::MAX) {
            return Err(bad("bound out of range"));
        }
        count = count.saturating_mul(u64::from(len));
        dims.push(ArrayDim {
            lower_bound: lb,
            len,
        });
    }
    if ndim == 0 || count == 0 {
        if !r.is_empty() {
            return Err(bad("data after an empty array"));
        }
        return Ok(Array {
            element_type: elem,
            dims: Vec::new(),
            elements: Vec::new(),
        });
    }
    // Every element takes at least its 4-byte length.
    if count > (r.remaining() / 4) as u64 {
        return Err(bad("more elements than data"));
    }
    let mut elements = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = r.i32().ok_or_else(|| bad("truncated element"))?;
        if len == -1 {
            elements.push(Value::Null);
            continue;
        }
        let len = usize::try_from(len).map_err(|_| bad("negative element length"))?;
        let data = r.take(len).ok_or_else(|| bad("truncated element"))?;
        elements.push(binary::decode_at(elem, data, reg, depth + 1)?);
    }
    if !r.is_empty() {
        return Err(bad("data after the last element"));
    }
    Ok(Array {
        element_type: elem,
        dims,
        elements,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Json, decode_binary, decode_text};
    use super::*;

    fn int_array(dims: &[(i32, u32)], elements: &[Option<i32>]) -> Value {
        Value::Array(Box::new(Array {
            element_type: TypeOid::INT4,
            dims: dims
                .iter()
                .map(|&(lower_bound, len)| ArrayDim { lower_bound, len })
                .collect(),
            elements: elements
                .iter()
                .map(|e| e.map_or(Value::Null, Value::Int4))
                .collect(),
        }))
    }

    /// `array_send` of an int4 array.
    fn int_array_binary(dims: &[(i32, u32)], elements: &[Option<i32>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((dims.len() as i32).to_be_bytes());
        b.extend(i32::from(elements.iter().any(Option::is_none)).to_be_bytes());
        b.extend(TypeOid::INT4.0.to_be_bytes());
        for &(lb, len) in dims {
            b.extend((len as i32).to_be_bytes());
            b.extend(lb.to_be_bytes());
        }
        for e in elements {
            match e {
                None => b.extend((-1i32).to_be_bytes()),
                Some(v) => {
                    b.extend(4i32.to_be_bytes());
                    b.extend(v.to_be_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn lower_bounds_are_kept() {
        let reg = TypeRegistry::new();
        type Case = (&'static str, &'static [(i32, u32)], &'static [Option<i32>]);
        let cases: [Case; 4] = [
            ("{1,2}", &[(1, 2)], &[Some(1), Some(2)]),
            ("[5:6]={1,2}", &[(5, 2)], &[Some(1), Some(2)]),
            ("[-2:-2]={NULL}", &[(-2, 1)], &[None]),
            (
                "[0:1][-1:0]={{1,NULL},{3,4}}",
                &[(0, 2), (-1, 2)],
                &[Some(1), None, Some(3), Some(4)],
            ),
        ];
        for (text, dims, elements) in cases {
            let want = int_array(dims, elements);
            let got = decode_text(TypeOid::INT4_ARRAY, -1, text.as_bytes(), &reg);
            assert_eq!(got.as_ref(), Ok(&want), "text {text}");
            assert_eq!(want.to_string(), text, "array_out of {text}");
            let bin = int_array_binary(dims, elements);
            assert_eq!(
                decode_binary(TypeOid::INT4_ARRAY, &bin, &reg),
                Ok(want),
                "binary {text}"
            );
        }
        assert_ne!(
            decode_text(TypeOid::INT4_ARRAY, -1, b"[5:6]={1,2}", &reg),
            decode_text(TypeOid::INT4_ARRAY, -1, b"{1,2}", &reg)
        );
    }

    #[test]
    fn jsonb_null_is_not_sql_null() {
        let reg = TypeRegistry::new();
        // A column: jsonb 'null' (text, and binary with the version byte).
        assert_eq!(
            decode_text(TypeOid::JSONB, -1, b"null", &reg),
            Ok(Value::Jsonb(Json::Null))
        );
        assert_eq!(
            decode_binary(TypeOid::JSONB, b"\x01null", &reg),
            Ok(Value::Jsonb(Json::Null))
        );
        assert_ne!(Value::Jsonb(Json::Null), Value::Null);
        // Inside an array: {null,NULL} is a jsonb null, then an SQL NULL.
        let want = Value::Array(Box::new(Array {
            element_type: TypeOid::JSONB,
            dims: vec![ArrayDim {
                lower_bound: 1,
                len: 2,
            }],
            elements: vec![Value::Jsonb(Json::Null), Value::Null],
        }));
        assert_eq!(
            decode_text(TypeOid::JSONB_ARRAY, -1, br#"{"null",NULL}"#, &reg).as_ref(),
            Ok(&want)
        );
        let mut bin = Vec::new();
        bin.extend(1i32.to_be_bytes());
        bin.extend(1i32.to_be_bytes());
        bin.extend(TypeOid::JSONB.0.to_be_bytes());
        bin.extend(2i32.to_be_bytes());
        bin.extend(1i32.to_be_bytes());
        bin.extend(5i32.to_be_bytes());
        bin.extend(b"\x01null");
        bin.extend((-1i32).to_be_bytes());
        assert_eq!(decode_binary(TypeOid::JSONB_ARRAY, &bin, &reg), Ok(want));
    }
}
