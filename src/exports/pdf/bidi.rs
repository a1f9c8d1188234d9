//! Just enough of the Unicode bidirectional algorithm to put one line of Hebrew or Arabic in
//! display order: strong letters set runs, neutrals take the direction of their surroundings
//! (or of the line), digits keep reading left to right, and runs are reversed by level
//! (rules P2–P3, a simplified W/N, L2 and L4 of UAX #9). Explicit embeddings and isolates
//! are not interpreted. A PDF shows glyphs in the order given, so lines must be written in
//! display order; viewers reverse right-to-left runs again when text is copied.
//!
//! There is no Arabic shaping: letters keep their isolated forms.

use std::borrow::Cow;

fn is_rtl(c: char) -> bool {
    matches!(
        c as u32,
        0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF | 0x10800..=0x10FFF | 0x1E800..=0x1EFFF
    )
}

/// Direction of a character for ordering: `Some(true)` right-to-left, `Some(false)`
/// left-to-right (letters and, for order within a run, digits), `None` neutral.
fn direction(c: char) -> Option<bool> {
    if is_rtl(c) {
        Some(true)
    } else if c.is_alphanumeric() {
        Some(false)
    } else {
        None
    }
}

/// Whether the line reads right to left: its first letter is Hebrew, Arabic or similar.
pub(super) fn is_rtl_line(line: &str) -> bool {
    line.chars()
        .find(|&c| is_rtl(c) || c.is_alphabetic())
        .is_some_and(is_rtl)
}

/// `line` in display order, left to right.
pub(super) fn visual(line: &str) -> Cow<'_, str> {
    if !line.chars().any(is_rtl) {
        return Cow::Borrowed(line);
    }
    let chars: Vec<char> = line.chars().collect();
    let base_rtl = is_rtl_line(line);
    let directions: Vec<Option<bool>> = chars.iter().map(|&c| direction(c)).collect();
    // A neutral between two runs of the same direction takes it; otherwise the line's.
    let mut resolved = Vec::with_capacity(chars.len());
    let mut previous = base_rtl;
    for (index, direction) in directions.iter().enumerate() {
        match direction {
            Some(rtl) => {
                previous = *rtl;
                resolved.push(*rtl);
            }
            None => {
                let next = directions[index..]
                    .iter()
                    .find_map(|d| *d)
                    .unwrap_or(base_rtl);
                resolved.push(if previous == next { next } else { base_rtl });
            }
        }
    }
    // A closing bracket goes the way of its opening one (a simple form of rule N0), so
    // "(תודה)" keeps both brackets around the word.
    let mut open: Vec<(usize, char)> = Vec::new();
    for (index, &c) in chars.iter().enumerate() {
        if matches!(c, '(' | '[' | '{' | '«' | '‹') {
            open.push((index, mirrored(c)));
        } else if let Some(depth) = open.iter().rposition(|&(_, closing)| closing == c) {
            resolved[index] = resolved[open[depth].0];
            open.truncate(depth);
        }
    }
    let levels: Vec<u8> = resolved
        .iter()
        .map(|&rtl| match (base_rtl, rtl) {
            (false, false) => 0,
            (false, true) | (true, true) => 1,
            (true, false) => 2,
        })
        .collect();
    let mut order: Vec<usize> = (0..chars.len()).collect();
    let highest = levels.iter().copied().max().unwrap_or(0);
    for level in (1..=highest).rev() {
        let mut start = 0;
        while start < order.len() {
            if levels[order[start]] < level {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < order.len() && levels[order[end]] >= level {
                end += 1;
            }
            order[start..end].reverse();
            start = end;
        }
    }
    Cow::Owned(
        order
            .into_iter()
            .map(|index| {
                if levels[index] % 2 == 1 {
                    mirrored(chars[index])
                } else {
                    chars[index]
                }
            })
            .collect(),
    )
}

/// Paired punctuation drawn the other way round in right-to-left runs.
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
        assert_eq!(visual("נועה בן דוד"), "דוד ןב העונ");
        assert!(is_rtl_line("נועה בן דוד"));
        // Digits keep reading left to right inside right-to-left text.
        assert_eq!(visual("דירה 12"), "12 הריד");
        // A Hebrew name inside an English line: only the name's letters turn round.
        assert_eq!(visual("Dear נועה (Noa), hi"), "Dear העונ (Noa), hi");
        assert_eq!(visual("שלום (עולם)"), "(םלוע) םולש");
        assert_eq!(visual("Hi שלום (תודה). Bye"), "Hi (הדות) םולש. Bye");
        assert!(!is_rtl_line("Dear נועה"));
    }
}
