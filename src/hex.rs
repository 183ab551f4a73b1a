//! Hexadecimal for ids, digests and MACs: lowercase out, strict in.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Which letters a decoder accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// `a`–`f` only: the form keyward and the formats it reads write.
    Lower,
    /// `a`–`f` and `A`–`F`, for values people may paste.
    Any,
}

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Decodes exactly `2 * out.len()` hex characters into `out`. `None` for a
/// wrong length or any other character.
pub(crate) fn decode_into(hex: &[u8], out: &mut [u8], case: Case) -> Option<()> {
    let (pairs, rest) = hex.as_chunks::<2>();
    if pairs.len() != out.len() || !rest.is_empty() {
        return None;
    }
    for (slot, &[hi, lo]) in out.iter_mut().zip(pairs) {
        *slot = (nibble(hi, case)? << 4) | nibble(lo, case)?;
    }
    Some(())
}

/// Decodes into a fixed-size array.
pub(crate) fn decode_array<const N: usize>(hex: &str, case: Case) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_into(hex.as_bytes(), &mut out, case)?;
    Some(out)
}

/// Decodes lowercase hex of any even length.
pub(crate) fn decode_vec(hex: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; hex.len().checked_div(2)?];
    decode_into(hex.as_bytes(), &mut out, Case::Lower)?;
    Some(out)
}

fn nibble(c: u8, case: Case) -> Option<u8> {
    match c {
        b'0'..=b'9' => c.checked_sub(b'0'),
        b'a'..=b'f' => c.checked_sub(b'a')?.checked_add(10),
        b'A'..=b'F' if case == Case::Any => c.checked_sub(b'A')?.checked_add(10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let bytes: Vec<u8> = (0..=255).collect();
        let s = encode(&bytes);
        assert_eq!(&s[..6], "000102");
        assert_eq!(&s[s.len() - 4..], "feff");
        let mut out = vec![0u8; 256];
        assert!(decode_into(s.as_bytes(), &mut out, Case::Lower).is_some());
        assert_eq!(out, bytes);
        assert_eq!(decode_array::<2>("00FF", Case::Lower), None);
        assert_eq!(decode_array::<2>("00FF", Case::Any), Some([0, 255]));
        for bad in ["00f", "00fff", "0g00", "+0ff", " 0ff", "00ff\n"] {
            assert_eq!(decode_array::<2>(bad, Case::Any), None, "{bad:?}");
        }
    }
}
