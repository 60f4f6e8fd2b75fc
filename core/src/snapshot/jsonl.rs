//! The JSONL bootstrap format (see the [module docs](super#the-jsonl-bootstrap-format)).

use std::str::FromStr;
use std::sync::Arc;

use crate::assemble::KeyConfig;
use crate::model::{
    Element, ElementMetadata, ElementPropertyMap, ElementReference, NULL_KEY_PART, SourceChange,
    TxInfo, escape_key_part, escape_label,
};
use crate::source_config::TableName;
use crate::value::{Json, Numeric, Value};

use super::SnapshotError;

/// The most integer digits of a `numeric` (PostgreSQL's limit).
const MAX_INT_DIGITS: i64 = 131_072;
/// The most fraction digits of a `numeric` (PostgreSQL's limit).
const MAX_SCALE: i64 = 16_383;

/// Reads one line of a JSONL bootstrap file (format in the
/// [module docs](super#the-jsonl-bootstrap-format)) as an insert of source `source_id` in
/// transaction `tx`. `line_no` is only for messages. Blank lines and `#` comments give
/// `Ok(None)`.
///
/// # Errors
///
/// Invalid JSON, a line that is not an object, a missing or malformed `"table"`, an unknown
/// member, a number beyond `numeric`'s range, or no `"id"` and no configured key for the
/// table (or a key column missing from `"properties"`). The error names the line, and the
/// table and column where there is one.
pub fn jsonl_change(
    line: &str,
    line_no: usize,
    source_id: &str,
    keys: &KeyConfig,
    tx: TxInfo,
) -> Result<Option<SourceChange>, SnapshotError> {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let err = |reason: String| SnapshotError::Jsonl {
        line: line_no,
        reason,
    };
    let Json::Object(members) = Json::parse(text).map_err(|e| err(e.to_string()))? else {
        return Err(err("not a JSON object".to_owned()));
    };
    let mut table = None;
    let mut props = Vec::new();
    let mut id = None;
    for (k, v) in members {
        match (k.as_str(), v) {
            ("table", Json::String(s)) => table = Some(s),
            ("table", _) => return Err(err("\"table\" is not a string".to_owned())),
            ("properties", Json::Object(m)) => props = m,
            ("properties", Json::Null) => props.clear(),
            ("properties", _) => return Err(err("\"properties\" is not an object".to_owned())),
            ("id", Json::String(s)) if !s.is_empty() => id = Some(s),
            ("id", Json::Null) => id = None,
            ("id", _) => return Err(err("\"id\" is not a non-empty string".to_owned())),
            (other, _) => {
                return Err(err(format!(
                    "unknown member {other:?} (expected \"table\", \"properties\" and \
                     optionally \"id\")"
                )));
            }
        }
    }
    let table = table.ok_or_else(|| err("no \"table\"".to_owned()))?;
    let name = TableName::parse(&table).map_err(|e| err(format!("table {table:?} {e}")))?;
    let schema = name.schema_or_public();
    let qualified = format!("{schema}.{}", name.name);
    let label = if schema == "public" {
        name.name.clone()
    } else {
        qualified.clone()
    };

    let mut properties = ElementPropertyMap::with_capacity(props.len());
    for (k, v) in props {
        let value =
            json_value(v).map_err(|r| err(format!("table {label}, property {k:?}: {r}")))?;
        properties.insert(Arc::from(k), value);
    }

    let element_id = match id {
        Some(id) => id,
        None => {
            let columns = keys
                .get(&qualified)
                .or_else(|| keys.get(&label))
                .or_else(|| keys.get(&name.name))
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    err(format!(
                        "no \"id\", and table {label} has no configured key (table_keys) to \
                         compute one from"
                    ))
                })?;
            let mut id = String::with_capacity(label.len() + 16);
            escape_label(&label, &mut id);
            id.push(':');
            for (n, c) in columns.iter().enumerate() {
                if n > 0 {
                    id.push('_');
                }
                match properties.get(c) {
                    None => {
                        return Err(err(format!(
                            "no \"id\", and key column {c:?} of table {label} is missing from \
                             \"properties\""
                        )));
                    }
                    Some(Value::Null) => id.push_str(NULL_KEY_PART),
                    Some(v) => escape_key_part(&v.to_string(), &mut id),
                }
            }
            id
        }
    };

    let element = Element::Node {
        metadata: ElementMetadata {
            reference: ElementReference::new(source_id, element_id),
            labels: Arc::from(vec![Arc::<str>::from(label)]),
            effective_from: tx.commit_time_ns,
        },
        properties,
    };
    Ok(Some(SourceChange::Insert {
        element,
        unchanged_toast: Vec::new(),
        tx,
    }))
}

/// A JSON value as a property value.
fn json_value(v: Json) -> Result<Value, String> {
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::String(s) => Value::Text(s.into()),
        Json::Number(n) => number(&n)?,
        j @ (Json::Array(_) | Json::Object(_)) => Value::Json(j),
    })
}

/// An RFC 8259 number: `Int8` for an integer literal that fits, else an exact `Numeric` with
/// any exponent expanded.
fn number(text: &str) -> Result<Value, String> {
    let out_of_range = || format!("number {text} is beyond the range of numeric");
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    let Some(exp) = exp else {
        if !mantissa.contains('.') {
            if let Ok(i) = mantissa.parse::<i64>() {
                return Ok(Value::Int8(i));
            }
        }
        return numeric(mantissa, text);
    };
    let exp: i64 = exp
        .strip_prefix('+')
        .unwrap_or(exp)
        .parse()
        .map_err(|_| out_of_range())?;
    let (sign, unsigned) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int_len = i64::try_from(int.len()).map_err(|_| out_of_range())?;
    let frac_len = i64::try_from(frac.len()).map_err(|_| out_of_range())?;
    // The decimal point moves `exp` places to the right.
    let point = int_len.checked_add(exp).ok_or_else(out_of_range)?;
    let scale = frac_len.saturating_sub(exp).max(0);
    if point > MAX_INT_DIGITS || scale > MAX_SCALE || point < -MAX_SCALE {
        return Err(out_of_range());
    }
    let digits = format!("{int}{frac}");
    let n_digits = i64::try_from(digits.len()).map_err(|_| out_of_range())?;
    let mut s = String::with_capacity(digits.len() + 8);
    s.push_str(sign);
    if point >= n_digits {
        s.push_str(&digits);
        for _ in n_digits..point {
            s.push('0');
        }
    } else if point > 0 {
        let p = usize::try_from(point).map_err(|_| out_of_range())?;
        s.push_str(digits.get(..p).unwrap_or_default());
        s.push('.');
        s.push_str(digits.get(p..).unwrap_or_default());
    } else {
        s.push_str("0.");
        for _ in point..0 {
            s.push('0');
        }
        s.push_str(&digits);
    }
    numeric(&s, text)
}

fn numeric(s: &str, text: &str) -> Result<Value, String> {
    Numeric::from_str(s)
        .map(Value::Numeric)
        .map_err(|e| format!("number {text}: {e}"))
}
