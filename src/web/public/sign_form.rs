//! The signing form as shown on the petition page: the signer's input and a message per field.

use crate::core::countries::COUNTRIES;
use crate::core::status::Disclosure;
use crate::error::FieldErrors;
use crate::signatures::domain::SignatureInput;

#[derive(Debug)]
pub struct SignatureForm {
    pub input: SignatureInput,
    pub errors: FieldErrors,
    /// The signed time of rendering, sent back in a hidden field (`safety::form_token`).
    pub form_token: String,
}

impl Default for SignatureForm {
    fn default() -> Self {
        Self::with_errors(SignatureInput::default(), FieldErrors::new())
    }
}

/// One radio button of the disclosure choice.
pub struct DisclosureOption {
    pub value: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub checked: bool,
}

pub struct CountryOption {
    pub code: &'static str,
    pub name: &'static str,
    pub selected: bool,
}

impl SignatureForm {
    pub fn with_errors(input: SignatureInput, errors: FieldErrors) -> Self {
        Self {
            input,
            errors,
            form_token: crate::safety::form_token::issue(chrono::Utc::now()),
        }
    }

    pub fn disclosure_options(&self) -> Vec<DisclosureOption> {
        let chosen = self.input.chosen_disclosure();
        Disclosure::ALL
            .into_iter()
            .map(|choice| {
                let (label, hint) = match choice {
                    Disclosure::Public => (
                        "Public",
                        "Your name appears on the public list of signers on this site and in \
                         the signatures handed to the addressees.",
                    ),
                    Disclosure::Recipients => (
                        "Addressees only",
                        "Your name is handed to the addressees with the petition, but never \
                         shown on this site.",
                    ),
                    Disclosure::CountOnly => (
                        "Count only",
                        "Your signature is counted and you can prove it with your receipt, but \
                         your name is never listed anywhere, not even for the addressees.",
                    ),
                };
                DisclosureOption {
                    value: choice.as_str(),
                    label,
                    hint,
                    checked: choice.as_str() == chosen,
                }
            })
            .collect()
    }

    /// The first message for `field`, if it was rejected.
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .get(field)
            .and_then(|messages| messages.first())
            .map(String::as_str)
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn country_options(&self) -> Vec<CountryOption> {
        let chosen = self.input.country.trim().to_ascii_uppercase();
        COUNTRIES
            .iter()
            .map(|&(code, name)| CountryOption {
                code,
                name,
                selected: code == chosen,
            })
            .collect()
    }
}
