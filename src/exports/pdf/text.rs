//! Text for print: the petition's Markdown as plain blocks (no emphasis, list items with
//! their markers, link targets spelled out), and line breaking by measured width.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::font::Font;

#[derive(Debug, PartialEq)]
pub(super) enum BlockKind {
    Heading,
    Paragraph,
    /// A list item with its marker: "•" or "3.".
    Item(String),
    /// Preformatted: its line breaks are kept.
    Code,
    Rule,
}

#[derive(Debug, PartialEq)]
pub(super) struct Block {
    pub(super) kind: BlockKind,
    /// Nesting in lists and quotes, for the indentation.
    pub(super) depth: usize,
    /// `\n` is a forced line break.
    pub(super) text: String,
}

/// The Markdown source as blocks, parsed with the options the public page uses.
pub(super) fn blocks(markdown: &str) -> Vec<Block> {
    let mut builder = Builder {
        blocks: Vec::new(),
        current: None,
        lists: Vec::new(),
        quotes: 0,
        links: Vec::new(),
    };
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(markdown, options) {
        builder.event(event);
    }
    builder.flush();
    builder.blocks
}

struct Builder {
    blocks: Vec<Block>,
    current: Option<Block>,
    /// For each open list, the next number of an ordered one.
    lists: Vec<Option<u64>>,
    quotes: usize,
    /// Targets of the open links and images.
    links: Vec<String>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => match tag {
                // A list item's first paragraph is the item itself.
                Tag::Paragraph => {
                    let in_fresh_item = matches!(
                        &self.current,
                        Some(Block { kind: BlockKind::Item(_), text, .. }) if text.trim().is_empty()
                    );
                    if !in_fresh_item {
                        self.start(BlockKind::Paragraph);
                    }
                }
                Tag::Heading { .. } => self.start(BlockKind::Heading),
                Tag::CodeBlock(_) | Tag::HtmlBlock => self.start(BlockKind::Code),
                Tag::BlockQuote(_) => {
                    self.flush();
                    self.quotes += 1;
                }
                Tag::List(first) => {
                    self.flush();
                    self.lists.push(first);
                }
                Tag::Item => {
                    let marker = match self.lists.last_mut() {
                        Some(Some(number)) => {
                            let marker = format!("{number}.");
                            *number += 1;
                            marker
                        }
                        _ => "•".to_owned(),
                    };
                    self.start(BlockKind::Item(marker));
                }
                Tag::TableHead | Tag::TableRow => self.start(BlockKind::Paragraph),
                Tag::TableCell if self.current.as_ref().is_some_and(|b| !b.text.is_empty()) => {
                    self.push(" | ");
                }
                Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                    self.links.push(dest_url.to_string());
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::CodeBlock
                | TagEnd::HtmlBlock
                | TagEnd::Item
                | TagEnd::TableHead
                | TagEnd::TableRow => self.flush(),
                TagEnd::BlockQuote(_) => {
                    self.flush();
                    self.quotes = self.quotes.saturating_sub(1);
                }
                TagEnd::List(_) => {
                    self.flush();
                    self.lists.pop();
                }
                // On paper a link is only useful with its address.
                TagEnd::Link | TagEnd::Image => {
                    if let Some(url) = self.links.pop() {
                        let lower = url.to_ascii_lowercase();
                        let absolute = lower.starts_with("http://")
                            || lower.starts_with("https://")
                            || lower.starts_with("mailto:");
                        let shown = self
                            .current
                            .as_ref()
                            .is_some_and(|b| b.text.ends_with(&url));
                        if absolute && !shown {
                            self.push(&format!(" ({url})"));
                        }
                    }
                }
                _ => {}
            },
            Event::Text(text)
            | Event::Code(text)
            | Event::Html(text)
            | Event::InlineHtml(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => self.push(&text),
            Event::FootnoteReference(label) => self.push(&format!("[{label}]")),
            Event::SoftBreak => self.push(" "),
            Event::HardBreak => self.push("\n"),
            Event::TaskListMarker(done) => self.push(if done { "[x] " } else { "[ ] " }),
            Event::Rule => {
                self.flush();
                self.blocks.push(Block {
                    kind: BlockKind::Rule,
                    depth: self.quotes,
                    text: String::new(),
                });
            }
        }
    }

    fn start(&mut self, kind: BlockKind) {
        self.flush();
        self.current = Some(Block {
            kind,
            depth: self.lists.len() + self.quotes,
            text: String::new(),
        });
    }

    fn push(&mut self, text: &str) {
        if self.current.is_none() {
            self.start(BlockKind::Paragraph);
        }
        if let Some(block) = &mut self.current {
            block.text.extend(text.chars().filter_map(printable));
        }
    }

    fn flush(&mut self) {
        if let Some(mut block) = self.current.take() {
            let kept = block.text.trim_end().len();
            block.text.truncate(kept);
            if !block.text.trim().is_empty() {
                self.blocks.push(block);
            }
        }
    }
}

/// Keeps line feeds (forced breaks), turns other control characters into spaces and drops
/// carriage returns.
fn printable(c: char) -> Option<char> {
    match c {
        '\n' => Some('\n'),
        '\r' => None,
        c if c.is_control() => Some(' '),
        c => Some(c),
    }
}

/// One line of a table cell: control characters (a name may hold a line feed) as spaces.
pub(super) fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Breaks `text` into lines at most `width` points wide: at spaces, and inside words too long
/// for a line. At most `max_lines` are returned; if text had to be cut, the last one ends
/// with an ellipsis.
pub(super) fn wrap(
    font: &mut Font,
    size: f32,
    text: &str,
    width: f32,
    max_lines: usize,
) -> Vec<String> {
    if !text.contains('\n') && font.width(text, size) <= width {
        return vec![text.to_owned()];
    }
    let space = font.width(" ", size);
    let mut lines = Vec::new();
    'text: for hard_line in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0.0;
        // A hyphenated word may also break after each hyphen ("Kowalska-" / "Nowak").
        let pieces = hard_line.split_whitespace().flat_map(|word| {
            word.split_inclusive('-')
                .enumerate()
                .map(|(index, piece)| (index == 0, piece))
        });
        for (starts_word, piece) in pieces {
            let piece_width = font.width(piece, size);
            let gap = if line.is_empty() || !starts_word {
                0.0
            } else {
                space
            };
            if line_width + gap + piece_width <= width {
                if gap > 0.0 {
                    line.push(' ');
                }
                line.push_str(piece);
                line_width += gap + piece_width;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_width = 0.0;
            }
            if piece_width <= width {
                line.push_str(piece);
                line_width = piece_width;
                continue;
            }
            for c in piece.chars() {
                let c_width = font.width(c.encode_utf8(&mut [0; 4]), size);
                if line_width + c_width > width && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                    if lines.len() > max_lines {
                        break 'text;
                    }
                }
                line.push(c);
                line_width += c_width;
            }
        }
        lines.push(line);
        if lines.len() > max_lines {
            break;
        }
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = ellipsize(font, size, last, width);
        }
    }
    lines
}

/// `text` cut so that it fits in `width` points with "…" appended.
fn ellipsize(font: &mut Font, size: f32, text: &str, width: f32) -> String {
    let room = width - font.width("…", size);
    let mut out = String::new();
    let mut used = 0.0;
    for c in text.chars() {
        let c_width = font.width(c.encode_utf8(&mut [0; 4]), size);
        if used + c_width > room {
            break;
        }
        out.push(c);
        used += c_width;
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::super::font::{Font, REGULAR};
    use super::{blocks, single_line, wrap, Block, BlockKind};

    fn block(kind: BlockKind, depth: usize, text: &str) -> Block {
        Block {
            kind,
            depth,
            text: text.to_owned(),
        }
    }

    #[test]
    fn markdown_becomes_plain_blocks() {
        let source = "# Save the *river*\n\nDear **Minister**, we ask\nthat you:\n\n\
                      - stop the dam\n- fund [the study](https://example.org/study)\n  1. first\n  2. second\n\n\
                      > quoted  \n> text\n\n---\n\n```\nline one\nline two\n```\n";
        assert_eq!(
            blocks(source),
            vec![
                block(BlockKind::Heading, 0, "Save the river"),
                block(BlockKind::Paragraph, 0, "Dear Minister, we ask that you:"),
                block(BlockKind::Item("•".into()), 1, "stop the dam"),
                block(
                    BlockKind::Item("•".into()),
                    1,
                    "fund the study (https://example.org/study)"
                ),
                block(BlockKind::Item("1.".into()), 2, "first"),
                block(BlockKind::Item("2.".into()), 2, "second"),
                block(BlockKind::Paragraph, 1, "quoted\ntext"),
                block(BlockKind::Rule, 0, ""),
                block(BlockKind::Code, 0, "line one\nline two"),
            ]
        );
        assert_eq!(single_line("Anna\nMaria\tKowalska "), "Anna Maria Kowalska");
    }

    #[test]
    fn lines_never_exceed_the_width() {
        let mut font = Font::new(REGULAR, "DejaVuSans", 80).unwrap();
        let long_word = "Wolfeschlegelsteinhausenbergerdorff".repeat(4);
        let lines = wrap(
            &mut font,
            10.0,
            &format!("Hubert {long_word} Jr."),
            150.0,
            100,
        );
        assert!(lines.len() > 3, "{lines:?}");
        assert_eq!(lines[0], "Hubert");
        assert_eq!(
            lines.concat().replace(' ', ""),
            format!("Hubert{long_word}Jr.")
        );
        for line in &lines {
            assert!(font.width(line, 10.0) <= 150.0, "{line}");
        }
        let cut = wrap(&mut font, 10.0, &long_word, 150.0, 2);
        assert_eq!(cut.len(), 2);
        assert!(cut[1].ends_with('…'), "{cut:?}");
        assert!(font.width(&cut[1], 10.0) <= 150.0);
        assert_eq!(wrap(&mut font, 10.0, "Short", 150.0, 1), vec!["Short"]);
        assert_eq!(
            wrap(&mut font, 10.0, "Anna Kowalska-Nowak-Wiśniewska", 90.0, 5),
            vec!["Anna Kowalska-", "Nowak-", "Wiśniewska"]
        );
    }
}
