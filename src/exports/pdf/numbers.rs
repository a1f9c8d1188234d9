//! Numbers as PDF content streams and font dictionaries write them.

/// A number as PDF writes it: at most two decimals, no exponent, no trailing zeros.
pub fn put_number(out: &mut Vec<u8>, value: f32) {
    let hundredths = (f64::from(value) * 100.0).round() as i64;
    if hundredths < 0 {
        out.push(b'-');
    }
    let hundredths = hundredths.unsigned_abs();
    out.extend_from_slice((hundredths / 100).to_string().as_bytes());
    let fraction = hundredths % 100;
    if fraction != 0 {
        out.push(b'.');
        out.push(b'0' + (fraction / 10) as u8);
        if !fraction.is_multiple_of(10) {
            out.push(b'0' + (fraction % 10) as u8);
        }
    }
}

pub fn number(value: f32) -> String {
    let mut out = Vec::new();
    put_number(&mut out, value);
    String::from_utf8_lossy(&out).into_owned()
}
