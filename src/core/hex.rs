//! SHA-256 digests and the lowercase hex they are written in.

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Lowercase hex, as every digest appears in files, pages and the database.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// A 32-byte digest written as 64 hex digits (either case, surrounding whitespace ignored).
pub fn parse_hash(text: &str) -> Option<Hash> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0_u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[i] = (high * 16 + low) as u8;
    }
    Some(out)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_anything_else() {
        let hash = sha256(b"abc");
        let hex = to_hex(&hash);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_hash(&hex), Some(hash));
        assert_eq!(parse_hash(&format!(" {} ", hex.to_uppercase())), Some(hash));
        assert_eq!(parse_hash(&hex[..62]), None);
        assert_eq!(parse_hash(&format!("{}zz", &hex[..62])), None);
        assert_eq!(parse_hash(&format!("{}+1", &hex[..62])), None);
        assert_eq!(parse_hash("é".repeat(32).as_str()), None);
    }
}
