//! Ranges (`[1,10)`, `(,6)`, `empty`) and multiranges (`{[1,3),[5,7)}`) from text and
//! binary; each bound is decoded by the bound decoder the caller passes.

use std::borrow::Cow;

use super::error::ValueError;
use super::oid::Oid;
use super::scan::{Reader, Scan};
use super::types::{Range, Value};

/// Reads one bound: `None` when infinite (nothing before the `,`/`)`/`]`), otherwise its
/// unescaped bytes (`""` inside quotes is a quote, `\x` is `x`).
fn read_bound<'a>(sc: &mut Scan<'a>) -> Result<Option<Cow<'a, [u8]>>, &'static str> {
    if matches!(sc.peek(), Some(b',' | b')' | b']')) {
        return Ok(None);
    }
    let start = sc.pos();
    loop {
        match sc.peek() {
            Some(b',' | b')' | b']') => return Ok(Some(Cow::Borrowed(sc.since(start)))),
            Some(b'"' | b'\\') => break,
            Some(_) => {
                sc.bump();
            }
            None => return Err("unexpected end of range"),
        }
    }
    let mut out = sc.since(start).to_vec();
    let mut in_quotes = false;
    loop {
        let b = sc.peek().ok_or("unexpected end of range")?;
        match b {
            b'\\' => {
                sc.bump();
                out.push(sc.bump().ok_or("unexpected end of range")?);
            }
            b'"' if in_quotes && sc.peek_at(1) == Some(b'"') => {
                sc.bump();
                sc.bump();
                out.push(b'"');
            }
            b'"' => {
                sc.bump();
                in_quotes = !in_quotes;
            }
            b',' | b')' | b']' if !in_quotes => return Ok(Some(Cow::Owned(out))),
            _ => {
                sc.bump();
                out.push(b);
            }
        }
    }
}

/// Decodes one range starting at the cursor (after optional whitespace).
fn decode_text_at<F>(
    range_oid: Oid,
    subtype: Oid,
    sc: &mut Scan<'_>,
    decode_bound: &F,
) -> Result<Range, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
    let bad = |reason| ValueError::InvalidText {
        type_oid: range_oid,
        reason,
    };
    sc.skip_ws();
    if sc.eat_word_ci(b"empty") {
        return Ok(Range::empty());
    }
    let lower_inc = match sc.bump() {
        Some(b'[') => true,
        Some(b'(') => false,
        _ => return Err(bad("expected '[', '(' or 'empty'")),
    };
    let lower = read_bound(sc).map_err(bad)?;
    if !sc.eat(b',') {
        return Err(bad("expected ',' between the bounds"));
    }
    let upper = read_bound(sc).map_err(bad)?;
    let upper_inc = match sc.bump() {
        Some(b']') => true,
        Some(b')') => false,
        _ => return Err(bad("expected ']' or ')'")),
    };
    let decode = |b: Option<Cow<'_, [u8]>>| -> Result<Option<Box<Value>>, ValueError> {
        b.map(|b| decode_bound(subtype, &b).map(Box::new))
            .transpose()
    };
    let lower = decode(lower)?;
    let upper = decode(upper)?;
    Ok(Range {
        lower_inc: lower_inc && lower.is_some(),
        upper_inc: upper_inc && upper.is_some(),
        lower,
        upper,
        empty: false,
    })
}

/// Decodes range text whose bounds are of type `subtype`, each with
/// `decode_bound(subtype, bytes)`.
pub(crate) fn decode_text<F>(
    range_oid: Oid,
    subtype: Oid,
    s: &[u8],
    decode_bound: F,
) -> Result<Range, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
    let mut sc = Scan::new(s);
    let r = decode_text_at(range_oid, subtype, &mut sc, &decode_bound)?;
    sc.skip_ws();
    if !sc.done() {
        return Err(ValueError::InvalidText {
            type_oid: range_oid,
            reason: "unexpected data after the range",
        });
    }
    Ok(r)
}

/// Decodes multirange text, `{[1,3), [5,7)}`, `{}`, as [`decode_text`] its ranges.
pub(crate) fn decode_multirange_text<F>(
    oid: Oid,
    subtype: Oid,
    s: &[u8],
    decode_bound: F,
) -> Result<Vec<Range>, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
    let bad = |reason| ValueError::InvalidText {
        type_oid: oid,
        reason,
    };
    let mut sc = Scan::new(s);
    sc.skip_ws();
    if !sc.eat(b'{') {
        return Err(bad("expected '{'"));
    }
    let mut out = Vec::new();
    sc.skip_ws();
    if !sc.eat(b'}') {
        loop {
            out.push(decode_text_at(oid, subtype, &mut sc, &decode_bound)?);
            sc.skip_ws();
            match sc.bump() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(bad("expected ',' or '}'")),
            }
        }
    }
    sc.skip_ws();
    if !sc.done() {
        return Err(bad("unexpected data after the multirange"));
    }
    Ok(out)
}

const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

/// Decodes `range_send` output: `u8 flags`, then `i32 len` and bytes for each finite bound,
/// each bound (of type `subtype`) with `decode_bound(subtype, bytes)`.
pub(crate) fn decode_binary<F>(
    range_oid: Oid,
    subtype: Oid,
    bytes: &[u8],
    decode_bound: F,
) -> Result<Range, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
    let bad = |reason| ValueError::InvalidBinary {
        type_oid: range_oid,
        reason,
    };
    let mut r = Reader::new(bytes);
    let flags = r.u8().ok_or_else(|| bad("missing flags"))?;
    if flags & !(RANGE_EMPTY | RANGE_LB_INC | RANGE_UB_INC | RANGE_LB_INF | RANGE_UB_INF) != 0 {
        return Err(bad("unknown flags"));
    }
    if flags & RANGE_EMPTY != 0 {
        if !r.is_empty() {
            return Err(bad("data after an empty range"));
        }
        return Ok(Range::empty());
    }
    let mut bound = |present: bool| -> Result<Option<Box<Value>>, ValueError> {
        if !present {
            return Ok(None);
        }
        let len = r.i32().ok_or_else(|| bad("truncated bound"))?;
        let len = usize::try_from(len).map_err(|_| bad("negative bound length"))?;
        let data = r.take(len).ok_or_else(|| bad("truncated bound"))?;
        decode_bound(subtype, data).map(|v| Some(Box::new(v)))
    };
    let lower = bound(flags & RANGE_LB_INF == 0)?;
    let upper = bound(flags & RANGE_UB_INF == 0)?;
    if !r.is_empty() {
        return Err(bad("data after the bounds"));
    }
    Ok(Range {
        lower_inc: flags & RANGE_LB_INC != 0 && lower.is_some(),
        upper_inc: flags & RANGE_UB_INC != 0 && upper.is_some(),
        lower,
        upper,
        empty: false,
    })
}

/// Decodes `multirange_send` output, `i32 count`, then per range `i32 len` and its bytes, as
/// [`decode_binary`] its ranges.
pub(crate) fn decode_multirange_binary<F>(
    oid: Oid,
    subtype: Oid,
    bytes: &[u8],
    decode_bound: F,
) -> Result<Vec<Range>, ValueError>
where
    F: Fn(Oid, &[u8]) -> Result<Value, ValueError>,
{
    let bad = |reason| ValueError::InvalidBinary {
        type_oid: oid,
        reason,
    };
    let mut r = Reader::new(bytes);
    let n = r.i32().ok_or_else(|| bad("missing range count"))?;
    let n = usize::try_from(n).map_err(|_| bad("negative range count"))?;
    // Each range takes at least its 4-byte length and a flags byte.
    if n > r.remaining() / 5 {
        return Err(bad("more ranges than data"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.i32().ok_or_else(|| bad("truncated range"))?;
        let len = usize::try_from(len).map_err(|_| bad("negative range length"))?;
        let data = r.take(len).ok_or_else(|| bad("truncated range"))?;
        out.push(decode_binary(oid, subtype, data, &decode_bound)?);
    }
    if !r.is_empty() {
        return Err(bad("data after the last range"));
    }
    Ok(out)
}
