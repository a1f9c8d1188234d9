//! The strict decoder of `application/x-www-form-urlencoded` bodies, ours because the usual
//! lossy decoders replace invalid UTF-8 silently where we must refuse it with a 400.

use crate::error::AppError;

/// No field takes a NUL character, and PostgreSQL cannot store one in text: it is refused at
/// the edge, like invalid UTF-8, rather than failing deep in a query.
pub fn nul_refused() -> AppError {
    AppError::BadRequest("The request contains a NUL character, which no field accepts.".to_owned())
}

/// A decoded `application/x-www-form-urlencoded` body. Fields are looked up by name; a field
/// sent twice keeps its first value.
#[derive(Debug, Default)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated field, e.g. ticked checkboxes named `id`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// A checkbox counts as ticked when it is present with any value but "" or "false".
    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), Some(value) if !value.is_empty() && value != "false")
    }
}

/// Strict urlencoded parsing: unlike the usual lossy decoders, invalid UTF-8 (raw or
/// percent-encoded) is an error instead of being replaced silently.
pub fn parse_urlencoded(body: &[u8]) -> Result<FormFields, AppError> {
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let mut parts = pair.splitn(2, |&b| b == b'=');
        let key = decode_component(parts.next().unwrap_or_default())?;
        let value = decode_component(parts.next().unwrap_or_default())?;
        fields.push((key, value));
    }
    Ok(FormFields(fields))
}

fn decode_component(raw: &[u8]) -> Result<String, AppError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        bytes.push(byte);
                        i += 2;
                    }
                    None => {
                        return Err(AppError::BadRequest(
                            "The form contains a malformed percent-escape.".to_owned(),
                        ))
                    }
                }
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    if bytes.contains(&0) {
        return Err(nul_refused());
    }
    String::from_utf8(bytes).map_err(|_| {
        AppError::BadRequest("The form contains text that is not valid UTF-8.".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields_and_checkboxes() {
        let form = parse_urlencoded(b"name=Ana+Mar%C3%ADa&public=on&consent=&x").unwrap();
        assert_eq!(form.get("name"), Some("Ana María"));
        assert!(form.checked("public"));
        assert!(!form.checked("consent"));
        assert_eq!(form.get("x"), Some(""));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn refuses_invalid_utf8_and_bad_escapes() {
        assert!(parse_urlencoded(b"name=%FF%FE").is_err());
        assert!(parse_urlencoded(b"name=\xff").is_err());
        assert!(parse_urlencoded(b"name=%G1").is_err());
        assert!(parse_urlencoded(b"name=%4").is_err());
        assert!(parse_urlencoded(b"name=a%00b").is_err());
        assert!(parse_urlencoded(b"na%00me=a").is_err());
    }
}
