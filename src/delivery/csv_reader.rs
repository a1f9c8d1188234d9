//! Reads a bundle's `signatures.csv` for `undersign verify`, with the `csv` crate: one record at
//! a time, so that a bundle of a million signatures needs no more memory than one row.
//!
//! `csv` has no strict mode: a quoted field left open at the end of the file is taken as closed
//! there. Verify still fails such a file, on the SHA-256 the signed manifest gives for it.

use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read it: {0}")]
    Read(#[from] csv::Error),
    #[error("record {record} is not valid UTF-8")]
    NotUtf8 { record: u64 },
}

pub struct CsvReader<R: Read> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    /// Records read so far, the header included.
    records: u64,
}

impl<R: Read> CsvReader<R> {
    pub fn new(input: R) -> Self {
        let reader = csv::ReaderBuilder::new()
            // The header is handed out as the first record, and rows with the wrong number of
            // fields are for verify to report, row by row.
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        Self {
            reader,
            record: csv::ByteRecord::new(),
            records: 0,
        }
    }

    /// The next record, or `None` at the end. Records end with CRLF, LF or CR; blank lines are
    /// skipped, and so is a byte-order mark at the very start.
    pub fn next_record(&mut self) -> Result<Option<Vec<String>>, CsvError> {
        if !self.reader.read_byte_record(&mut self.record)? {
            return Ok(None);
        }
        self.records += 1;
        let record = self.records;
        self.record
            .iter()
            .map(|field| {
                std::str::from_utf8(field)
                    .map(str::to_owned)
                    .map_err(|_| CsvError::NotUtf8 { record })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> Result<Vec<Vec<String>>, CsvError> {
        // A tiny buffer, so records and quotes straddle buffer boundaries.
        let mut reader = CsvReader::new(std::io::BufReader::with_capacity(3, text));
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    #[test]
    fn reads_quoted_fields_line_ends_and_unicode() {
        let text = "\u{feff}id,name,comment\r\n1,\"Ana, \"\"A\"\" Ivanova\",\"two\r\nlines\"\r\n2,Анна 🙂,\r\n3,,\"\"\n";
        let records = read_all(text.as_bytes()).unwrap();
        assert_eq!(
            records,
            vec![
                vec!["id", "name", "comment"],
                vec!["1", "Ana, \"A\" Ivanova", "two\r\nlines"],
                vec!["2", "Анна 🙂", ""],
                vec!["3", "", ""],
            ]
        );
        assert_eq!(read_all(b"").unwrap(), Vec::<Vec<String>>::new());
        assert_eq!(read_all(b"a,b").unwrap(), vec![vec!["a", "b"]]);
        assert_eq!(read_all(b"a,b,").unwrap(), vec![vec!["a", "b", ""]]);
    }

    #[test]
    fn bare_carriage_returns_end_records() {
        // Classic Mac line ends, which some spreadsheet programs still offer when saving.
        assert_eq!(
            read_all(b"id,name\r1,Ana\r2,Bo\r").unwrap(),
            vec![vec!["id", "name"], vec!["1", "Ana"], vec!["2", "Bo"]]
        );
    }

    #[test]
    fn blank_lines_are_not_records() {
        assert_eq!(
            read_all(b"id,name\r\n\r\n1,Ana\n\n2,Bo\r\n\r\n").unwrap(),
            vec![vec!["id", "name"], vec!["1", "Ana"], vec!["2", "Bo"]]
        );
    }

    #[test]
    fn reports_broken_input() {
        assert!(matches!(
            read_all(b"a\n\xff\xfe\n"),
            Err(CsvError::NotUtf8 { record: 2 })
        ));
    }
}
