//! Arrays of any element type and dimension from text (`{1,NULL,3}`, `[0:1]={1,2}`) and
//! binary; each element is decoded by the element decoder the caller passes.

use std::borrow::Cow;

use super::MAX_NESTING;
use super::error::ValueError;
use super::oid::{Oid, TypeRegistry};
use super::scan::{Reader, Scan, is_pg_space};
use super::types::{Array, ArrayDim, Value};

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

/// Decodes array text whose elements are of type `elem`, each (but the `NULL`s) with
/// `decode_elem(elem, bytes)`.
pub(crate) fn decode_text<F>(
    array_oid: Oid,
    elem: Oid,
    s: &[u8],
    decode_elem: F,
) -> Result<Array, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
    let bad = |reason| ValueError::InvalidText {
        type_oid: array_oid,
        reason,
    };
    let delim = if elem == Oid::BOX { b';' } else { b',' };
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
                        decode_elem(elem, &tok.bytes)?
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
/// `i32 len, i32 lower_bound`, then per element `i32 len` (−1 for NULL) and its bytes, each
/// non-NULL element decoded with `decode_elem(elem, bytes)`. The element type is the one in
/// the data, unless `reg` does not know it and the array type declares one.
pub(crate) fn decode_binary<F>(
    array_oid: Oid,
    declared_elem: Option<Oid>,
    bytes: &[u8],
    reg: &TypeRegistry,
    decode_elem: F,
) -> Result<Array, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
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
    let data_elem = Oid(elem_oid);
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
        elements.push(decode_elem(elem, data)?);
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
