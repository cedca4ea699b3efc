//! Bounds-checked big-endian reading and the writing helpers every message family uses.
//!
//! [`Reader`] never panics: every read past the end is a [`DecodeError::Truncated`] naming what
//! was being read, so bytes from the switch can only ever produce errors.

use super::error::DecodeError;

/// A cursor over received bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the structure in errors.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
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

    /// Takes `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes `n` bytes as a sub-reader for a nested structure.
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        Ok(Reader::new(self.bytes(n)?, what))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Appends zero bytes until `buf.len() - start` is a multiple of 8.
pub(crate) fn pad8(buf: &mut Vec<u8>, start: usize) {
    let len = buf.len() - start;
    buf.resize(buf.len() + (8 - len % 8) % 8, 0);
}

/// Writes `len` as a big-endian u16 at `at` (a length field filled in after the body).
pub(crate) fn patch_u16(buf: &mut [u8], at: usize, len: usize) -> Result<(), super::EncodeError> {
    let v = u16::try_from(len).map_err(|_| super::EncodeError::TooLong(len))?;
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[1, 2, 3], "test");
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert!(matches!(
            r.u16(),
            Err(DecodeError::Truncated {
                need: 2,
                have: 1,
                ..
            })
        ));
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.is_empty());
    }

    #[test]
    fn padding() {
        let mut v = vec![0u8; 3];
        pad8(&mut v, 1);
        assert_eq!(v.len(), 9);
    }
}
