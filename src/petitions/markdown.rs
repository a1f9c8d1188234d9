//! Petition bodies are Markdown written by organizers. Rendering is safe for the public page:
//! raw HTML is shown as text, links may only point to http(s), mailto or the site itself, and
//! images become links (pages load nothing from third parties).

use pulldown_cmark::{html, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

pub fn render_safe(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let path_start = lower.find(['/', '?', '#']).unwrap_or(lower.len());
    let relative = match scheme_end {
        None => true,
        Some(colon) => colon > path_start,
    };
    let allowed = relative
        || lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:");
    if allowed {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::render_safe;

    #[test]
    fn renders_markdown() {
        let html = render_safe("Dear **Minister**,\n\n- one\n- two\n");
        assert!(html.contains("<strong>Minister</strong>"));
        assert!(html.contains("<li>one</li>"));
    }

    #[test]
    fn raw_html_is_escaped() {
        let html = render_safe("<script>alert(1)</script>\n\nHi <b onclick=\"x()\">there</b>");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<b "), "{html}");
    }

    #[test]
    fn dangerous_links_are_neutralised_and_images_become_links() {
        let html = render_safe("[x](javascript:alert(1)) [y](JaVaScRiPt:alert(1)) [z](/p/other) [w](https://example.org)");
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert!(html.contains("href=\"/p/other\""));
        assert!(html.contains("href=\"https://example.org\""));
        let html = render_safe("![tracking pixel](https://tracker.example/p.gif)");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("<a href=\"https://tracker.example/p.gif\">tracking pixel</a>"));
    }
}
