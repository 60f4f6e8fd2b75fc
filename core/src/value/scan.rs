//! Small, panic-free cursors over untrusted bytes: [`Scan`] for text, [`Reader`] for binary.

/// A forward-only cursor over text bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scan<'a> {
    s: &'a [u8],
    pos: usize,
}

/// Whether `b` is whitespace as PostgreSQL's array and range parsers see it.
pub(crate) fn is_pg_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl<'a> Scan<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        Scan { s, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.pos.saturating_add(ahead)).copied()
    }

    pub(crate) fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, reason: &'static str) -> Result<(), &'static str> {
        if self.eat(b) { Ok(()) } else { Err(reason) }
    }

    pub(crate) fn done(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.s.get(self.pos..).unwrap_or(&[])
    }

    /// Everything from `start` up to the current position.
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        self.s.get(start..self.pos).unwrap_or(&[])
    }

    pub(crate) fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if !is_pg_space(b) {
                break;
            }
            self.pos += 1;
        }
    }

    /// Consumes `word` if the input continues with it, ignoring ASCII case.
    pub(crate) fn eat_word_ci(&mut self, word: &[u8]) -> bool {
        match self.rest().get(..word.len()) {
            Some(w) if w.eq_ignore_ascii_case(word) => {
                self.pos += word.len();
                true
            }
            _ => false,
        }
    }

    /// Reads 1..=`max_digits` decimal digits; `None` when there is no digit or more than
    /// `max_digits` of them.
    pub(crate) fn uint(&mut self, max_digits: usize) -> Option<u64> {
        let mut acc: u64 = 0;
        let mut n = 0usize;
        while let Some(b) = self.peek() {
            if !b.is_ascii_digit() {
                break;
            }
            if n == max_digits {
                return None;
            }
            acc = acc * 10 + u64::from(b - b'0');
            n += 1;
            self.pos += 1;
        }
        (n > 0).then_some(acc)
    }

    /// Reads exactly `n` decimal digits.
    pub(crate) fn fixed_digits(&mut self, n: usize) -> Option<u32> {
        let mut acc: u32 = 0;
        for _ in 0..n {
            let b = self.peek()?;
            if !b.is_ascii_digit() {
                return None;
            }
            acc = acc * 10 + u32::from(b - b'0');
            self.pos += 1;
        }
        Some(acc)
    }

    /// Reads an optionally signed decimal `i64` (at most 19 digits).
    pub(crate) fn int(&mut self) -> Option<i64> {
        let neg = if self.eat(b'-') {
            true
        } else {
            self.eat(b'+');
            false
        };
        let v = i64::try_from(self.uint(19)?).ok()?;
        Some(if neg { -v } else { v })
    }
}

/// A forward-only reader of big-endian binary fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.buf.split_at_checked(n)?;
        self.buf = b;
        Some(a)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.array().map(i16::from_be_bytes)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }
}

/// Reads exactly `N` bytes as a whole input.
pub(crate) fn exact<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.try_into().ok()
}
