//! How much memory a value holds: an estimate for byte budgets (the dispatch queues), not an
//! exact allocator figure.

use std::mem::size_of;

use super::json::Json;
use super::types::{Array, ArrayDim, Range, Value};

impl Value {
    /// The bytes this value holds outside its own [`size_of`]: text, bytes, elements (an
    /// estimate: allocator overhead and spare capacity are not counted; inline short text
    /// counts as heap).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Text(s) => s.as_str().len(),
            Value::Numeric(n) => n.as_str().len(),
            Value::Json(j) | Value::Jsonb(j) => json_bytes(j),
            Value::Bytea(b) => b.len(),
            Value::Money(m) => m.text.len(),
            Value::Bit(b) => b.bytes.len(),
            Value::Enum { label, .. } => label.len(),
            Value::Unknown { text, .. } => text.len(),
            Value::Range(r) => range_bytes(r),
            Value::Multirange(rs) => rs.iter().map(|r| size_of::<Range>() + range_bytes(r)).sum(),
            Value::Array(a) => {
                size_of::<Array>()
                    + a.dims.len() * size_of::<ArrayDim>()
                    + a.elements
                        .iter()
                        .map(|e| size_of::<Value>() + e.heap_bytes())
                        .sum::<usize>()
            }
            _ => 0,
        }
    }
}

fn range_bytes(r: &Range) -> usize {
    [&r.lower, &r.upper]
        .into_iter()
        .flatten()
        .map(|v| size_of::<Value>() + v.heap_bytes())
        .sum()
}

fn json_bytes(j: &Json) -> usize {
    match j {
        Json::Null | Json::Bool(_) => 0,
        Json::Number(s) | Json::String(s) => s.len(),
        Json::Array(items) => items
            .iter()
            .map(|i| size_of::<Json>() + json_bytes(i))
            .sum(),
        Json::Object(members) => members
            .iter()
            .map(|(k, v)| size_of::<(String, Json)>() + k.len() + json_bytes(v))
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Array, Oid};

    #[test]
    fn sizes_count_what_values_hold() {
        assert_eq!(Value::Int4(7).heap_bytes(), 0);
        assert_eq!(Value::Bytea(vec![0u8; 1000].into()).heap_bytes(), 1000);
        let text = Value::Text(crate::value::PgText::from("x".repeat(500).as_str()));
        assert_eq!(text.heap_bytes(), 500);
        let array = Value::Array(Box::new(Array::from_elements(
            Oid(25),
            vec![text.clone(), Value::Null],
        )));
        assert!(array.heap_bytes() >= 500 + 2 * size_of::<Value>());
    }
}
