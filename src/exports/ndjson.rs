//! NDJSON export: one JSON object per line (`\n`), with the CSV's fields as keys in the same
//! order, `null` for absent values, times in RFC 3339 UTC. Values are written exactly as
//! stored: this is data for programs, not a spreadsheet, so nothing is neutralised.

use std::io::Write;

use serde::Serialize;

use super::rows::ExportRow;
use crate::core::format::rfc3339;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NdjsonOptions {
    pub include_email: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    id: i64,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    country: &'a str,
    postal_code: Option<&'a str>,
    comment: Option<&'a str>,
    disclosure: &'a str,
    version_sha256: &'a str,
    signed_at: String,
    confirmed_at: String,
    commitment: Option<&'a str>,
}

pub struct NdjsonWriter<W: Write> {
    out: W,
    options: NdjsonOptions,
    line: Vec<u8>,
}

impl<W: Write> NdjsonWriter<W> {
    pub fn new(out: W, options: NdjsonOptions) -> std::io::Result<Self> {
        Ok(Self {
            out,
            options,
            line: Vec::with_capacity(512),
        })
    }

    pub fn write(&mut self, row: &ExportRow) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(
            &mut self.line,
            &Line {
                id: row.id,
                name: &row.name,
                email: self.options.include_email.then_some(row.email.as_str()),
                country: &row.country,
                postal_code: row.postal_code.as_deref(),
                comment: row.comment.as_deref(),
                disclosure: &row.disclosure,
                version_sha256: &row.version_sha256,
                signed_at: rfc3339(row.signed_at),
                confirmed_at: rfc3339(row.confirmed_at),
                commitment: row.commitment.as_deref(),
            },
        )?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Flushes and hands back the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line_email_only_on_request_nothing_neutralised() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let row = ExportRow {
            id: 3,
            name: "=SUM(1)\n\"Ана\"".to_owned(),
            email: "ana@example.org".to_owned(),
            country: "BY".to_owned(),
            postal_code: None,
            comment: Some("-".to_owned()),
            disclosure: crate::core::status::Disclosure::Recipients
                .as_str()
                .to_owned(),
            version_sha256: "00".repeat(32),
            signed_at: at,
            confirmed_at: at,
            commitment: Some("ff".repeat(32)),
        };
        let mut writer = NdjsonWriter::new(Vec::new(), NdjsonOptions::default()).unwrap();
        writer.write(&row).unwrap();
        writer.write(&row).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        let value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(value["name"], "=SUM(1)\n\"Ана\"");
        assert_eq!(value["comment"], "-");
        assert_eq!(value["postal_code"], serde_json::Value::Null);
        assert_eq!(value["confirmed_at"], "2026-11-28T09:00:00Z");
        assert!(value.get("email").is_none());
        assert!(lines[0].starts_with("{\"id\":3,\"name\":"));

        let mut writer = NdjsonWriter::new(
            Vec::new(),
            NdjsonOptions {
                include_email: true,
            },
        )
        .unwrap();
        writer.write(&row).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        assert!(text.starts_with(
            "{\"id\":3,\"name\":\"=SUM(1)\\n\\\"Ана\\\"\",\"email\":\"ana@example.org\","
        ));
    }
}
