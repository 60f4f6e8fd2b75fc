//! `json` / `jsonb` as structured values: a strict RFC 8259 parser that keeps numbers as their
//! exact text and objects in their original order, duplicates included.

use std::fmt;
use std::str::FromStr;

use super::MAX_NESTING;

/// A JSON value.
///
/// Nothing is lost: numbers keep their exact text (`2.50`, `1e400`, 30-digit integers), object
/// members keep their order and duplicate keys. Only insignificant whitespace is dropped
/// (`json` columns print their original whitespace; `Display` prints the `jsonb` layout).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its exact RFC 8259 text.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: members in their original order, duplicates kept.
    Object(Vec<(String, Json)>),
}

/// Why a JSON text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not RFC 8259 JSON.
    #[error("invalid JSON at byte {offset}: {reason}")]
    Syntax {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Arrays and objects nested deeper than [`MAX_NESTING`] levels.
    #[error("JSON nests deeper than {MAX_NESTING} levels")]
    TooDeep,
}

impl Json {
    /// Parses strict RFC 8259 JSON (any value at the top level, surrounded by optional
    /// whitespace). Nesting deeper than [`MAX_NESTING`] is refused.
    pub fn parse(text: &str) -> Result<Json, JsonError> {
        let mut p = Parser {
            src: text,
            s: text.as_bytes(),
            pos: 0,
        };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.pos != p.s.len() {
            return Err(p.err("unexpected data after the value"));
        }
        Ok(v)
    }

    /// The member of an object with this key (the last one when a key is repeated, as `jsonb`
    /// keeps it).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl FromStr for Json {
    type Err = JsonError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Json::parse(s)
    }
}

struct Parser<'a> {
    src: &'a str,
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &'static str) -> JsonError {
        JsonError::Syntax {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8], v: Json) -> Result<Json, JsonError> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal(b"true", Json::Bool(true)),
            Some(b'f') => self.literal(b"false", Json::Bool(false)),
            Some(b'n') => self.literal(b"null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_NESTING {
            return Err(JsonError::TooDeep);
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_NESTING {
            return Err(JsonError::TooDeep);
        }
        self.pos += 1;
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.pos += 1;
            self.ws();
            let v = self.value(depth)?;
            members.push((key, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected an exponent"));
            }
        }
        let text = self
            .src
            .get(start..self.pos)
            .ok_or_else(|| self.err("invalid number"))?;
        Ok(Json::Number(text.to_owned()))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.err("expected 4 hex digits after \\u"))?;
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    /// A string starting at its opening quote.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes.
        loop {
            match self.peek() {
                Some(b'"') => {
                    let s = self
                        .src
                        .get(start..self.pos)
                        .ok_or_else(|| self.err("bad string"))?;
                    self.pos += 1;
                    return Ok(s.to_owned());
                }
                Some(b'\\') => break,
                Some(0..0x20) => return Err(self.err("control character in string")),
                Some(_) => self.pos += 1,
                None => return Err(self.err("unterminated string")),
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(self.src.get(start..self.pos).unwrap_or(""));
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.src.get(run_start..self.pos).unwrap_or(""));
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.err("high surrogate without a low surrogate"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("high surrogate without a low surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.err("low surrogate without a high surrogate"));
                            } else {
                                hi
                            };
                            out.push(char::from_u32(cp).ok_or_else(|| self.err("bad \\u escape"))?);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }
}

/// Writes `s` as a JSON string, escaping as PostgreSQL's `escape_json` does (`"`, `\`,
/// `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00XX`).
///
/// # Errors
///
/// Only those of `f`.
pub fn write_json_string(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        f.write_str(s.get(run..i).unwrap_or(""))?;
        if esc.is_empty() {
            write!(f, "\\u{:04x}", c as u32)?;
        } else {
            f.write_str(esc)?;
        }
        run = i + c.len_utf8();
    }
    f.write_str(s.get(run..).unwrap_or(""))?;
    f.write_char('"')
}

impl fmt::Display for Json {
    /// The `jsonb` text layout: `{"a": [1, 2.50, null], "b": "x"}` (members in stored order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(true) => f.write_str("true"),
            Json::Bool(false) => f.write_str("false"),
            Json::Number(n) => f.write_str(n),
            Json::String(s) => write_json_string(f, s),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    v.fmt(f)?;
                }
                f.write_str("]")
            }
            Json::Object(members) => {
                f.write_str("{")?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_json_string(f, k)?;
                    f.write_str(": ")?;
                    v.fmt(f)?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Json {
        Json::Number(s.to_owned())
    }

    #[test]
    fn parses_and_prints() {
        let j = Json::parse(r#"{"a": [1, 2.50, null], "b":"x"}"#).unwrap();
        assert_eq!(
            j,
            Json::Object(vec![
                (
                    "a".into(),
                    Json::Array(vec![num("1"), num("2.50"), Json::Null])
                ),
                ("b".into(), Json::String("x".into())),
            ])
        );
        assert_eq!(j.to_string(), r#"{"a": [1, 2.50, null], "b": "x"}"#);
        assert_eq!(Json::parse(" 3.0 ").unwrap(), num("3.0"));
        assert_eq!(Json::parse(r#""str""#).unwrap(), Json::String("str".into()));
        assert_eq!(Json::parse("[]").unwrap().to_string(), "[]");
        assert_eq!(Json::parse("{ }").unwrap().to_string(), "{}");
        assert_eq!(
            Json::parse("123456789012345678901234567890e-400").unwrap(),
            num("123456789012345678901234567890e-400")
        );
        let dup = Json::parse(r#"{"k":1,"k":2}"#).unwrap();
        assert_eq!(dup.get("k"), Some(&num("2")));
        assert_eq!(dup.to_string(), r#"{"k": 1, "k": 2}"#);
    }

    #[test]
    fn strings_and_escapes() {
        let j = Json::parse(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\u0000\u001f""#).unwrap();
        assert_eq!(
            j,
            Json::String("a\"b\\c/d\u{8}\u{c}\n\r\té😀\u{0}\u{1f}".into())
        );
        assert_eq!(j.to_string(), r#""a\"b\\c/d\b\f\n\r\té😀\u0000\u001f""#);
        assert_eq!(Json::parse("\"é😀\"").unwrap(), Json::String("é😀".into()));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "NaN",
            "Infinity",
            "tru",
            "nul",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{a:1}",
            "'a'",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\u12\"",
            "\"a\nb\"",
            "\"abc",
            "[1] 2",
            "[",
            "{",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert!(Json::parse(&ok).is_ok());
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert_eq!(Json::parse(&deep), Err(JsonError::TooDeep));
        let deep_obj = "{\"a\":".repeat(MAX_NESTING + 1);
        assert_eq!(Json::parse(&deep_obj), Err(JsonError::TooDeep));
        // Hostile depth never overflows the stack.
        let huge = "[".repeat(1_000_000);
        assert_eq!(Json::parse(&huge), Err(JsonError::TooDeep));
    }
}
