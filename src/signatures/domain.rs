//! A signature as typed by a signer, and the checked domain types it becomes.

use serde::Deserialize;

use crate::core::countries::COUNTRIES;
use crate::core::email::EmailAddress;
use crate::core::form::FormFields;
use crate::core::status::Disclosure;
use crate::core::text::is_bidi_control;
use crate::error::FieldErrors;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_POSTAL_CODE_CHARS: usize = 20;
pub const MAX_COMMENT_CHARS: usize = 500;

/// The raw fields of a signing form or JSON request, kept as typed so a rejected form can be
/// shown again with the signer's input.
#[derive(Debug, Clone, Default)]
pub struct SignatureInput {
    pub name: String,
    pub email: String,
    pub country: String,
    pub postal_code: String,
    pub comment: String,
    /// The disclosure choice as sent ("" when absent).
    pub disclosure: String,
    /// The old "show my name publicly" checkbox, used only when `disclosure` is absent.
    pub public: bool,
    pub consent: bool,
}

/// The JSON body of `POST /api/v1/petitions/{slug}/signatures`. Missing fields are reported
/// per field by [`SignatureInput::parse`]; fields of the wrong JSON type are a 400.
#[derive(Debug, Deserialize)]
pub struct SignatureJson {
    name: Option<String>,
    email: Option<String>,
    country: Option<String>,
    postal_code: Option<String>,
    comment: Option<String>,
    disclosure: Option<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    consent: bool,
}

impl SignatureInput {
    pub fn from_form(form: &FormFields) -> Self {
        let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
        Self {
            name: text("name"),
            email: text("email"),
            country: text("country"),
            postal_code: text("postal_code"),
            comment: text("comment"),
            disclosure: text("disclosure"),
            public: form.checked("public"),
            consent: form.checked("consent"),
        }
    }

    pub fn from_json(json: SignatureJson) -> Self {
        Self {
            name: json.name.unwrap_or_default(),
            email: json.email.unwrap_or_default(),
            country: json.country.unwrap_or_default(),
            postal_code: json.postal_code.unwrap_or_default(),
            comment: json.comment.unwrap_or_default(),
            disclosure: json.disclosure.unwrap_or_default(),
            public: json.public,
            consent: json.consent,
        }
    }

    /// Checks every field and reports every problem at once, each beside its field.
    pub fn parse(&self) -> Result<NewSignature, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut fail = |field: &'static str, message: &str| {
            errors.entry(field).or_default().push(message.to_owned());
        };
        let name = SignerName::parse(&self.name)
            .map_err(|m| fail("name", m))
            .ok();
        let email = EmailAddress::parse(&self.email)
            .map_err(|m| fail("email", m))
            .ok();
        let country = Country::parse(&self.country)
            .map_err(|m| fail("country", m))
            .ok();
        let postal_code = parse_postal_code(&self.postal_code)
            .map_err(|m| fail("postal_code", m))
            .ok();
        let comment = parse_comment(&self.comment)
            .map_err(|m| fail("comment", m))
            .ok();
        let disclosure = self.disclosure().map_err(|m| fail("disclosure", m)).ok();
        if !self.consent {
            fail(
                "consent",
                "Please tick this box: we can only count your signature with your agreement.",
            );
        }
        match (name, email, country, postal_code, comment, disclosure) {
            (
                Some(name),
                Some(email),
                Some(country),
                Some(postal_code),
                Some(comment),
                Some(disclosure),
            ) if errors.is_empty() => Ok(NewSignature {
                name,
                email,
                country,
                postal_code,
                comment,
                disclosure,
            }),
            _ => Err(errors),
        }
    }
}

/// A signature whose every field has been checked.
#[derive(Debug, Clone)]
pub struct NewSignature {
    pub name: SignerName,
    pub email: EmailAddress,
    pub country: Country,
    pub postal_code: Option<String>,
    pub comment: Option<String>,
    pub disclosure: Disclosure,
}

impl SignatureInput {
    /// The disclosure chosen: the `disclosure` field, or for older clients the `public` flag
    /// (public, else recipients only).
    pub fn disclosure(&self) -> Result<Disclosure, &'static str> {
        let raw = self.disclosure.trim();
        if raw.is_empty() {
            return Ok(if self.public {
                Disclosure::Public
            } else {
                Disclosure::Recipients
            });
        }
        Disclosure::parse(raw)
    }

    /// The radio button to show as chosen: the valid choice sent, else the default.
    pub fn chosen_disclosure(&self) -> &'static str {
        self.disclosure().unwrap_or_default().as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerName(String);

impl SignerName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Please enter your name.");
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err("Your name can be at most 200 characters long.");
        }
        if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err("Your name contains invisible or control characters; please retype it.");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 3166-1 alpha-2 code from the bundled list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(&'static str);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err("Please choose your country.");
        }
        COUNTRIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, _)| Country(known))
            .ok_or("Please choose a country from the list.")
    }

    pub fn code(self) -> &'static str {
        self.0
    }
}

fn parse_postal_code(raw: &str) -> Result<Option<String>, &'static str> {
    let code = raw.trim();
    if code.is_empty() {
        return Ok(None);
    }
    let valid = code.chars().count() <= MAX_POSTAL_CODE_CHARS
        && code
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-');
    if valid {
        Ok(Some(code.to_owned()))
    } else {
        Err("A postal code has at most 20 letters, digits, spaces or hyphens.")
    }
}

fn parse_comment(raw: &str) -> Result<Option<String>, &'static str> {
    let comment = raw.trim();
    if comment.is_empty() {
        return Ok(None);
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err("Your comment can be at most 500 characters long.");
    }
    let allowed =
        |c: char| !(c.is_control() || is_bidi_control(c)) || matches!(c, '\n' | '\r' | '\t');
    if !comment.chars().all(allowed) {
        return Err("Your comment contains invisible or control characters; please retype it.");
    }
    Ok(Some(comment.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SignatureInput {
        SignatureInput {
            name: "  Sviatlana K.  ".into(),
            email: " Sviatlana@Example.org ".into(),
            country: "by".into(),
            postal_code: "".into(),
            comment: "".into(),
            disclosure: "".into(),
            public: true,
            consent: true,
        }
    }

    #[test]
    fn parses_and_normalises() {
        let signature = valid().parse().unwrap();
        assert_eq!(signature.name.as_str(), "Sviatlana K.");
        assert_eq!(signature.email.as_str(), "Sviatlana@Example.org");
        assert_eq!(signature.email.key(), "sviatlana@example.org");
        assert_eq!(signature.country.code(), "BY");
        assert_eq!(signature.postal_code, None);
    }

    #[test]
    fn reports_each_bad_field() {
        let input = SignatureInput {
            name: " ".into(),
            email: "not-an-email".into(),
            country: "XX".into(),
            postal_code: "<script>".into(),
            comment: "x".repeat(501),
            disclosure: "everyone".into(),
            public: false,
            consent: false,
        };
        let errors = input.parse().unwrap_err();
        let fields: Vec<_> = errors.keys().copied().collect();
        assert_eq!(
            fields,
            vec![
                "comment",
                "consent",
                "country",
                "disclosure",
                "email",
                "name",
                "postal_code"
            ]
        );
    }

    #[test]
    fn normalises_gmail_addresses() {
        let key = |raw: &str| EmailAddress::parse(raw).unwrap().key().to_owned();
        assert_eq!(
            key(" Ana.Lopez+petitions@GoogleMail.com "),
            "analopez@gmail.com"
        );
        assert_eq!(key("a.n.a.lopez@gmail.com"), "analopez@gmail.com");
        assert_eq!(key("ana.lopez+x@example.org"), "ana.lopez+x@example.org");
        let email = EmailAddress::parse("Ana.Lopez+p@googlemail.com").unwrap();
        assert_eq!(email.as_str(), "Ana.Lopez+p@googlemail.com");
        assert_eq!(email.domain(), "gmail.com");
    }

    /// Properties over many random addresses: the key is stable under re-normalising, every
    /// Gmail spelling of one mailbox has one key, and other domains only fold case and spaces.
    #[test]
    fn normalisation_properties_hold_for_random_addresses() {
        use rand::RngExt;
        let mut rng = rand::rng();
        let letters: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
            .chars()
            .collect();
        for _ in 0..2_000 {
            let length = rng.random_range(1..20);
            let mailbox: String = (0..length)
                .map(|_| letters[rng.random_range(0..letters.len())])
                .collect();
            let mut spelled = String::new();
            for c in mailbox.chars() {
                spelled.push(c);
                if rng.random_bool(0.2) {
                    spelled.push('.');
                }
            }
            let spelled = spelled.trim_end_matches('.').to_owned();
            let tag = if rng.random_bool(0.5) {
                "+news.2026"
            } else {
                ""
            };
            let domain = if rng.random_bool(0.5) {
                "GoogleMail.com"
            } else {
                "gmail.COM"
            };
            let Ok(variant) = EmailAddress::parse(&format!(" {spelled}{tag}@{domain} ")) else {
                continue;
            };
            let Ok(plain) = EmailAddress::parse(&format!("{mailbox}@gmail.com")) else {
                continue;
            };
            assert_eq!(variant.key(), plain.key(), "{spelled}{tag}@{domain}");
            assert_eq!(
                EmailAddress::parse(variant.key()).unwrap().key(),
                variant.key()
            );
            let other = format!("{spelled}{tag}@Example.ORG");
            if let Ok(address) = EmailAddress::parse(&other) {
                assert_eq!(address.key(), other.to_lowercase());
                assert_eq!(address.as_str(), other);
            }
        }
    }

    #[test]
    fn reads_the_disclosure_choice_and_the_old_flag() {
        let mut input = valid();
        assert_eq!(input.parse().unwrap().disclosure, Disclosure::Public);
        input.public = false;
        assert_eq!(input.parse().unwrap().disclosure, Disclosure::Recipients);
        input.disclosure = Disclosure::CountOnly.as_str().into();
        assert_eq!(input.parse().unwrap().disclosure, Disclosure::CountOnly);
        input.disclosure = "PUBLIC".into();
        assert!(input.parse().unwrap_err().contains_key("disclosure"));
        assert_eq!(input.chosen_disclosure(), Disclosure::Recipients.as_str());
    }

    #[test]
    fn refuses_tricky_emails() {
        for bad in [
            "a@b",
            "a@[127.0.0.1]",
            "a b@example.org",
            "a@example.org\r\nBcc: x@example.org",
            "@example.org",
            "a@",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_control_and_bidi_characters_in_names() {
        assert!(SignerName::parse("Ana\u{202E}evil").is_err());
        assert!(SignerName::parse("Ana\nBcc").is_err());
        assert!(SignerName::parse("Аляксандра Łukašenka-O'Brien").is_ok());
    }

    #[test]
    fn allows_line_breaks_in_comments_only() {
        assert!(parse_comment("line one\nline two").is_ok());
        assert!(parse_comment("bell\u{7}").is_err());
    }
}
