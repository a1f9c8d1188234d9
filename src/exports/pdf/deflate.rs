//! zlib (RFC 1950) streams for the dossier's `/FlateDecode` objects, by `flate2`: the page
//! contents (glyph ids in hex and positioning operators) repeat themselves a lot, so a list of
//! a million signatures takes tens of megabytes rather than hundreds.

use flate2::{Compress, Compression, FlushCompress, Status};

/// Reused from stream to stream, so that the compressor's window and tables (a few hundred
/// KiB) are allocated once per dossier rather than once per page.
pub(super) struct Deflater {
    compress: Compress,
}

impl Deflater {
    pub(super) fn new() -> Deflater {
        Deflater {
            // The default level: page contents come out about a fifth smaller than with the
            // fixed-Huffman coder written here before, for about the same time.
            compress: Compress::new(Compression::default(), true),
        }
    }

    /// `input` as a zlib stream (what PDF's `/FlateDecode` expects).
    pub(super) fn zlib(&mut self, input: &[u8]) -> Vec<u8> {
        self.compress.reset();
        let mut out = Vec::with_capacity(input.len() / 4 + 64);
        loop {
            // `total_in` counts from the reset, so it is how much of `input` was taken.
            let taken = self.compress.total_in() as usize;
            match self
                .compress
                .compress_vec(&input[taken..], &mut out, FlushCompress::Finish)
            {
                Ok(Status::StreamEnd) => return out,
                Ok(Status::Ok | Status::BufError) => out.reserve(out.capacity().max(64)),
                // Only a misuse of the stream's state fails, and `reset` rules that out.
                Err(error) => unreachable!("zlib compression failed: {error}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;
    use std::io::Read;

    use flate2::read::ZlibDecoder;

    use super::Deflater;

    fn inflate(zlib: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ZlibDecoder::new(zlib).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_through_a_zlib_decoder() {
        let mut deflater = Deflater::new();
        let mut seed = 0x2545_F491_u32;
        let mut random = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let noise: Vec<u8> = (0..70_000).map(|_| random() as u8).collect();
        let repetitive: Vec<u8> = (0..200_000)
            .map(|i| b"BT /F1 9 Tf 1 0 0 1 50 700 Tm <0041004200430044> Tj ET\n"[i % 52])
            .collect();
        for input in [&b""[..], b"a", &noise, &repetitive, &noise] {
            let compressed = deflater.zlib(input);
            // A zlib header (deflate, 32 KiB window), not a raw deflate stream.
            assert_eq!(compressed[0], 0x78);
            assert_eq!(u16::from_be_bytes([compressed[0], compressed[1]]) % 31, 0);
            assert_eq!(inflate(&compressed), input);
        }
    }

    /// A page of the list as the dossier draws it: row numbers and names as glyph ids in hex.
    fn page() -> Vec<u8> {
        let mut seed = 0x2545_F491_u32;
        let mut random = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut page = String::new();
        for row in 0..45 {
            let y = 760 - 17 * row;
            writeln!(page, "BT /F1 9 Tf 76.82 {y} Td <{:04X}> Tj ET", 20 + row).unwrap();
            write!(page, "BT /F1 9 Tf 102 {y} Td <").unwrap();
            for _ in 0..8 + random() % 20 {
                write!(page, "{:04X}", 0x44 + random() % 40).unwrap();
            }
            writeln!(page, "> Tj ET").unwrap();
        }
        page.into_bytes()
    }

    #[test]
    fn codes_the_hex_of_a_page_in_fewer_bits() {
        // Fixed Huffman codes, which the hand-written coder used, spend 8 bits on every hex
        // digit, and held such a page to 3:1; zlib's own codes for the stream do better.
        let page = page();
        let compressed = Deflater::new().zlib(&page);
        assert_eq!(inflate(&compressed), page);
        assert!(
            compressed.len() * 7 < page.len() * 2,
            "{} bytes of {}",
            compressed.len(),
            page.len()
        );
    }
}
