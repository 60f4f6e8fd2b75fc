//! A bounds-checked big-endian reader over one message payload.

use std::ops::Range;

use super::error::DecodeError;
use super::{Oid, Xid};
use crate::lsn::Lsn;

/// Reads fields from a payload, never past its end. Every failure is a [`DecodeError`] naming
/// the message and the offset.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` positioned at `pos` (1 skips the type byte), clamped to the end so
    /// that every range it returns lies inside `buf`.
    #[inline]
    pub(crate) fn new(buf: &'a [u8], pos: usize, message: &'static str) -> Self {
        Reader {
            buf,
            pos: pos.min(buf.len()),
            message,
        }
    }

    /// The message name used in errors.
    #[inline]
    pub(crate) fn message(&self) -> &'static str {
        self.message
    }

    /// The whole payload.
    #[inline]
    pub(crate) fn payload(&self) -> &'a [u8] {
        self.buf
    }

    /// The current offset.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            message: self.message,
            offset: self.pos,
            needed,
            available: self.remaining(),
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn invalid_byte(&self, field: &'static str, byte: u8, offset: usize) -> DecodeError {
        DecodeError::InvalidByte {
            message: self.message,
            field,
            byte,
            offset,
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn unknown_flags(&self, flags: u8, offset: usize) -> DecodeError {
        DecodeError::UnknownFlags {
            message: self.message,
            flags,
            offset,
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn negative(&self, field: &'static str, value: i64, offset: usize) -> DecodeError {
        DecodeError::NegativeCount {
            message: self.message,
            field,
            value,
            offset,
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        match self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>())
        {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.truncated(N)),
        }
    }

    /// One byte.
    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.truncated(1)),
        }
    }

    /// A big-endian `i16`.
    #[inline]
    pub(crate) fn i16(&mut self) -> Result<i16, DecodeError> {
        self.array().map(i16::from_be_bytes)
    }

    /// A big-endian `u32`.
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian `i32`.
    #[inline]
    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_be_bytes)
    }

    /// A big-endian `u64`.
    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A big-endian `i64`.
    #[inline]
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_be_bytes)
    }

    /// An LSN (`u64`).
    #[inline]
    pub(crate) fn lsn(&mut self) -> Result<Lsn, DecodeError> {
        self.u64().map(Lsn)
    }

    /// An OID (`u32`).
    #[inline]
    pub(crate) fn oid(&mut self) -> Result<Oid, DecodeError> {
        self.u32().map(Oid)
    }

    /// A transaction id (`u32`).
    #[inline]
    pub(crate) fn xid(&mut self) -> Result<Xid, DecodeError> {
        self.u32().map(Xid)
    }

    /// Skips `n` bytes and returns their range in the payload.
    #[inline]
    pub(crate) fn range(&mut self, n: usize) -> Result<Range<usize>, DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(n));
        }
        let start = self.pos;
        self.pos += n;
        Ok(start..self.pos)
    }

    /// The next `n` bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(self.truncated(n)),
        }
    }

    /// A NUL-terminated string, without its NUL.
    #[inline]
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(rest.get(..n).unwrap_or_default())
            }
            None => Err(DecodeError::UnterminatedString {
                message: self.message,
                offset: self.pos,
            }),
        }
    }

    /// A NUL-terminated UTF-8 string, owned.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let offset = self.pos;
        let raw = self.cstr()?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8 {
                message: self.message,
                field,
                offset,
            }),
        }
    }

    /// Succeeds only if every byte has been read.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(DecodeError::TrailingBytes {
                message: self.message,
                offset: self.pos,
                trailing,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields_and_reports_offsets() {
        let buf = [b'X', 0, 1, 0, 0, 0, 2, b'h', b'i', 0, 7];
        let mut r = Reader::new(&buf, 1, "Test");
        assert_eq!(r.i16().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!(r.cstr().unwrap(), b"hi");
        assert_eq!(r.pos(), 10);
        assert_eq!(
            r.finish().unwrap_err(),
            DecodeError::TrailingBytes {
                message: "Test",
                offset: 10,
                trailing: 1
            }
        );
        assert_eq!(
            r.u32().unwrap_err(),
            DecodeError::Truncated {
                message: "Test",
                offset: 10,
                needed: 4,
                available: 1
            }
        );
        // A failed read does not move the position.
        assert_eq!(r.u8().unwrap(), 7);
        r.finish().unwrap();
        assert_eq!(r.range(0).unwrap(), 11..11);
        assert!(r.range(1).is_err());
        assert_eq!(
            r.cstr().unwrap_err(),
            DecodeError::UnterminatedString {
                message: "Test",
                offset: 11
            }
        );
    }

    #[test]
    fn reader_positioned_past_the_end_is_safe() {
        let mut r = Reader::new(b"ab", 5, "Test");
        assert_eq!(r.remaining(), 0);
        assert!(r.u8().is_err());
        assert!(r.cstr().is_err());
        assert_eq!(r.range(0).unwrap(), 2..2);
    }
}
