//! CSV export: RFC 4180 (comma-separated, CRLF line ends, fields quoted when they hold a quote,
//! comma, CR or LF, quotes doubled), UTF-8 with an optional byte-order mark for spreadsheet
//! programs, a header row, times in RFC 3339 UTC.
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and, in some programs, tab
//! or carriage return) as a formula, and a signer chooses their own name and comment. So every
//! text cell a signer typed (name, email, postal code, comment) that starts with one of those
//! characters gets a leading apostrophe, which spreadsheets take as "this is text". A value
//! that starts with apostrophes followed by such a character gets one more apostrophe, so the
//! change can always be undone exactly ([`restore_cell`]); other values, such as "'t Hart",
//! are left as they are. The id, country code, flags, hashes and times are written by us and
//! never start with those characters.
//!
//! Written by hand, not with the `csv` crate: the neutralising would stay ours anyway, and
//! with the quoting it is one short function.

use crate::core::format::rfc3339;
use std::io::Write;

use super::rows::ExportRow;

const BOM: &[u8] = "\u{feff}".as_bytes();

/// The columns, in order; `email` only when asked for.
pub fn columns(include_email: bool) -> Vec<&'static str> {
    let mut columns = vec!["id", "name"];
    if include_email {
        columns.push("email");
    }
    columns.extend([
        "country",
        "postal_code",
        "comment",
        "disclosure",
        "version_sha256",
        "signed_at",
        "confirmed_at",
        "commitment",
    ]);
    columns
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Start with a UTF-8 byte-order mark, which some spreadsheet programs need to read UTF-8.
    pub bom: bool,
    pub include_email: bool,
}

pub struct CsvWriter<W: Write> {
    out: W,
    options: CsvOptions,
    /// One record is assembled here, then written with one call.
    line: String,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the byte-order mark (if asked for) and the header row.
    pub fn new(mut out: W, options: CsvOptions) -> std::io::Result<Self> {
        if options.bom {
            out.write_all(BOM)?;
        }
        let mut line = String::with_capacity(512);
        for (i, column) in columns(options.include_email).into_iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(column);
        }
        line.push_str("\r\n");
        out.write_all(line.as_bytes())?;
        Ok(Self { out, options, line })
    }

    pub fn write(&mut self, row: &ExportRow) -> std::io::Result<()> {
        let line = &mut self.line;
        line.clear();
        line.push_str(&row.id.to_string());
        line.push(',');
        push_text(line, &row.name);
        if self.options.include_email {
            line.push(',');
            push_text(line, &row.email);
        }
        line.push(',');
        push_text(line, &row.country);
        line.push(',');
        push_text(line, row.postal_code.as_deref().unwrap_or(""));
        line.push(',');
        push_text(line, row.comment.as_deref().unwrap_or(""));
        line.push(',');
        line.push_str(&row.disclosure);
        line.push(',');
        push_text(line, &row.version_sha256);
        line.push(',');
        line.push_str(&rfc3339(row.signed_at));
        line.push(',');
        line.push_str(&rfc3339(row.confirmed_at));
        line.push(',');
        push_text(line, row.commitment.as_deref().unwrap_or(""));
        line.push_str("\r\n");
        self.out.write_all(line.as_bytes())
    }

    /// Flushes and hands back the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn starts_formula(value: &str) -> bool {
    matches!(
        value.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    )
}

/// True when `value` is written with an extra leading apostrophe.
fn needs_apostrophe(value: &str) -> bool {
    starts_formula(value.trim_start_matches('\''))
}

/// The value a spreadsheet will show as text, never run as a formula.
pub fn neutralise(value: &str) -> std::borrow::Cow<'_, str> {
    if needs_apostrophe(value) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Undoes [`neutralise`]: the value as the signer typed it.
pub fn restore_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_apostrophe(rest) => rest,
        _ => cell,
    }
}

/// Appends a text cell: neutralised, then quoted if it must be.
fn push_text(line: &mut String, value: &str) {
    let value = neutralise(value);
    if value.contains(['"', ',', '\r', '\n']) {
        line.push('"');
        for c in value.chars() {
            if c == '"' {
                line.push('"');
            }
            line.push(c);
        }
        line.push('"');
    } else {
        line.push_str(&value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, comment: Option<&str>) -> ExportRow {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_micro_opt(14, 2, 3, 456_789)
            .unwrap();
        ExportRow {
            id: 7,
            name: name.to_owned(),
            email: "-ana@example.org".to_owned(),
            country: "NO".to_owned(),
            postal_code: Some("0150".to_owned()),
            comment: comment.map(str::to_owned),
            disclosure: crate::core::status::Disclosure::Public.as_str().to_owned(),
            version_sha256: "ab".repeat(32),
            signed_at: at,
            confirmed_at: at + chrono::Duration::minutes(1),
            commitment: None,
        }
    }

    fn export(rows: &[ExportRow], options: CsvOptions) -> String {
        let mut writer = CsvWriter::new(Vec::new(), options).unwrap();
        for row in rows {
            writer.write(row).unwrap();
        }
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    #[test]
    fn writes_header_and_rows_with_crlf_and_quotes_only_where_needed() {
        let csv = export(
            &[
                row(
                    "Ana \"Nina\" Ivanova, Jr.",
                    Some("line one\nline two\r\nthree"),
                ),
                row("Анна Іваненка", None),
            ],
            CsvOptions::default(),
        );
        let sha = "ab".repeat(32);
        assert_eq!(
            csv,
            format!(
                "id,name,country,postal_code,comment,disclosure,version_sha256,signed_at,confirmed_at,commitment\r\n\
                 7,\"Ana \"\"Nina\"\" Ivanova, Jr.\",NO,0150,\"line one\nline two\r\nthree\",public,{sha},2026-11-28T14:02:03Z,2026-11-28T14:03:03Z,\r\n\
                 7,Анна Іваненка,NO,0150,,public,{sha},2026-11-28T14:02:03Z,2026-11-28T14:03:03Z,\r\n"
            )
        );
    }

    #[test]
    fn bom_and_email_only_on_request() {
        let csv = export(
            &[row("Ana", None)],
            CsvOptions {
                bom: true,
                include_email: true,
            },
        );
        assert!(csv.starts_with("\u{feff}id,name,email,country,"));
        // The address starts with "-": neutralised like every typed text cell.
        assert!(csv.contains("\r\n7,Ana,'-ana@example.org,NO,"));
        let csv = export(&[row("Ana", None)], CsvOptions::default());
        assert!(csv.starts_with("id,name,country,"));
        assert!(!csv.contains("example.org"));
    }

    #[test]
    fn neutralises_formula_cells_reversibly() {
        for (typed, written) in [
            ("=SUM(1)", "'=SUM(1)"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@x", "'@x"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("''+x", "'''+x"),
            ("'t Hart", "'t Hart"),
            ("'", "'"),
            ("Ana = Anna", "Ana = Anna"),
            ("", ""),
        ] {
            assert_eq!(neutralise(typed), written, "{typed:?}");
            assert_eq!(restore_cell(written), typed, "{written:?}");
        }
        let csv = export(
            &[row("=HYPERLINK(\"x\")", Some("-"))],
            CsvOptions::default(),
        );
        assert!(csv.contains(",\"'=HYPERLINK(\"\"x\"\")\",NO,0150,'-,public,"));
    }
}
