//! Lines of Hebrew or Arabic in display order, by the Unicode bidirectional algorithm (UAX #9,
//! the `unicode-bidi` crate). A PDF shows glyphs in the order given, so lines must be written
//! in display order; viewers reverse right-to-left runs again when text is copied.
//!
//! There is no Arabic shaping: letters keep their isolated forms.

use std::borrow::Cow;

use unicode_bidi::{BidiInfo, Direction};

/// Whether the line reads right to left: its first strong letter is Hebrew, Arabic or similar.
pub(super) fn is_rtl_line(line: &str) -> bool {
    unicode_bidi::get_base_direction(line) == Direction::Rtl
}

/// `line` in display order, left to right.
pub(super) fn visual(line: &str) -> Cow<'_, str> {
    // Most cells (numbers, dates, Latin names) need no analysis at all.
    if line.is_ascii() {
        return Cow::Borrowed(line);
    }
    let info = BidiInfo::new(line, None);
    if !info.has_rtl() {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    for paragraph in &info.paragraphs {
        // A paragraph separator ends its paragraph in logical order, not in the reordered run.
        let mut range = paragraph.range.clone();
        let separator = line[range.clone()]
            .chars()
            .next_back()
            .filter(|&c| unicode_bidi::bidi_class(c) == unicode_bidi::BidiClass::B);
        if let Some(separator) = separator {
            range.end -= separator.len_utf8();
        }
        let (levels, runs) = info.visual_runs(paragraph, range);
        for run in runs {
            let text = &line[run.clone()];
            if levels[run.start].is_rtl() {
                out.extend(text.chars().rev().map(mirrored));
            } else {
                out.push_str(text);
            }
        }
        out.extend(separator);
    }
    Cow::Owned(out)
}

/// Paired punctuation drawn the other way round in right-to-left runs (rule L4). Hand-written:
/// `unicode-bidi` leaves mirroring to the renderer and has no table for it, and a PDF has none.
fn mirrored(c: char) -> char {
    match c {
        '(' => ')',
        ')' => '(',
        '[' => ']',
        ']' => '[',
        '{' => '}',
        '}' => '{',
        '<' => '>',
        '>' => '<',
        '«' => '»',
        '»' => '«',
        '‹' => '›',
        '›' => '‹',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::{is_rtl_line, visual};

    #[test]
    fn right_to_left_runs_are_reversed_for_display() {
        assert_eq!(visual("Ingrid Solberg"), "Ingrid Solberg");
        assert_eq!(visual("Дарына Ковальчык"), "Дарына Ковальчык");
        assert_eq!(visual("נועה בן דוד"), "דוד ןב העונ");
        assert!(is_rtl_line("נועה בן דוד"));
        // Digits keep reading left to right inside right-to-left text.
        assert_eq!(visual("דירה 12"), "12 הריד");
        // A Hebrew name inside an English line: only the name's letters turn round.
        assert_eq!(visual("Dear נועה (Noa), hi"), "Dear העונ (Noa), hi");
        assert_eq!(visual("שלום (עולם)"), "(םלוע) םולש");
        assert_eq!(visual("Hi שלום (תודה). Bye"), "Hi (הדות) םולש. Bye");
        assert!(!is_rtl_line("Dear נועה"));
        assert!(!is_rtl_line("12 345"));
    }

    #[test]
    fn arabic_digits_keep_their_order_in_right_to_left_names() {
        // Arabic-Indic, Extended Arabic-Indic (Persian, Urdu) and European digits alike: the
        // number reads left to right, the name around it right to left.
        assert_eq!(visual("محمد ١٢٣"), "١٢٣ دمحم");
        assert_eq!(visual("محمد ۱۲۳"), "۱۲۳ دمحم");
        assert_eq!(visual("محمد 123"), "123 دمحم");
        assert_eq!(visual("١٢٣ محمد"), "دمحم ١٢٣");
        assert_eq!(visual("علي (١٢)"), "(١٢) يلع");
        assert_eq!(visual("Ali محمد ١٢٣"), "Ali ١٢٣ دمحم");
        assert!(is_rtl_line("١٢٣ محمد"));
    }

    #[test]
    fn each_paragraph_is_ordered_on_its_own() {
        assert_eq!(visual("محمد\u{2029}علي"), "دمحم\u{2029}يلع");
        assert_eq!(visual("Ali\u{2029}علي ١٢"), "Ali\u{2029}١٢ يلع");
    }
}
