//! Checks on one-line text that every domain applies to what people type.

/// Characters that reorder text on screen and can make a name display as something else.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Whether one-line text (a name, a title) holds control characters or bidi overrides, which
/// no one types on purpose and which can break headers or disguise what is shown.
pub fn has_hidden_characters(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || is_bidi_control(c))
}
