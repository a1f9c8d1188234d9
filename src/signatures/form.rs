//! The signing form as shown on the petition page: the signer's input and a message per field.

use super::countries::COUNTRIES;
use super::domain::SignatureInput;
use crate::error::FieldErrors;

#[derive(Debug, Default)]
pub struct SignatureForm {
    pub input: SignatureInput,
    pub errors: FieldErrors,
}

pub struct CountryOption {
    pub code: &'static str,
    pub name: &'static str,
    pub selected: bool,
}

impl SignatureForm {
    pub fn with_errors(input: SignatureInput, errors: FieldErrors) -> Self {
        Self { input, errors }
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
