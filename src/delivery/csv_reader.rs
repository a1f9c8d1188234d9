//! A small RFC 4180 reader, enough for `undersign verify` to count the rows of a bundle's
//! `signatures.csv` and read its commitment column, one record at a time so that a bundle of a
//! million signatures needs no more memory than one row.

use std::io::BufRead;

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("record {record} is not valid UTF-8")]
    NotUtf8 { record: u64 },
    #[error("record {record} ends inside a quoted field")]
    Unterminated { record: u64 },
}

pub struct CsvReader<R: BufRead> {
    input: R,
    /// Records read so far, the header included.
    records: u64,
    first: bool,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            records: 0,
            first: true,
        }
    }

    /// The next record, or `None` at the end. Lines end with CRLF or LF; a byte-order mark
    /// at the very start is skipped.
    pub fn next_record(&mut self) -> Result<Option<Vec<String>>, CsvError> {
        if self.first {
            self.first = false;
            let start = self.input.fill_buf()?;
            if start.starts_with("\u{feff}".as_bytes()) {
                self.input.consume(3);
            }
        }
        let record = self.records + 1;
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut field = Vec::new();
        let mut started = false;
        let mut in_quotes = false;
        // Inside quotes, a quote was just read: either the first of a doubled pair, or the end.
        let mut quote_pending = false;
        let mut at_field_start = true;
        let mut finished = false;
        while !finished {
            let buffer = self.input.fill_buf()?;
            if buffer.is_empty() {
                if !started {
                    return Ok(None);
                }
                if in_quotes && !quote_pending {
                    return Err(CsvError::Unterminated { record });
                }
                break;
            }
            let mut used = 0;
            for &byte in buffer {
                used += 1;
                started = true;
                if in_quotes {
                    if quote_pending {
                        quote_pending = false;
                        if byte == b'"' {
                            field.push(b'"');
                            continue;
                        }
                        in_quotes = false;
                    } else if byte == b'"' {
                        quote_pending = true;
                        continue;
                    } else {
                        field.push(byte);
                        continue;
                    }
                }
                match byte {
                    b',' => {
                        fields.push(std::mem::take(&mut field));
                        at_field_start = true;
                    }
                    b'\n' => {
                        finished = true;
                        break;
                    }
                    // Only ever part of a CRLF line end outside quotes.
                    b'\r' => {}
                    b'"' if at_field_start => {
                        in_quotes = true;
                        at_field_start = false;
                    }
                    other => {
                        field.push(other);
                        at_field_start = false;
                    }
                }
            }
            self.input.consume(used);
        }
        fields.push(field);
        self.records = record;
        fields
            .into_iter()
            .map(|field| String::from_utf8(field).map_err(|_| CsvError::NotUtf8 { record }))
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
    }

    #[test]
    fn reports_broken_input() {
        assert!(matches!(
            read_all(b"a\n\"open"),
            Err(CsvError::Unterminated { record: 2 })
        ));
        assert!(matches!(
            read_all(b"a\n\xff\xfe\n"),
            Err(CsvError::NotUtf8 { record: 2 })
        ));
    }
}
