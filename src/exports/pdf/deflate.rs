//! A small zlib (RFC 1950) compressor for the dossier's streams: the page contents (glyph ids
//! in hex and positioning operators) shrink about sixfold, so a list of a million signatures
//! takes tens of megabytes rather than hundreds. LZ77 over a 32 KiB window with
//! hash chains, coded with the fixed Huffman tables of RFC 1951 (one block per stream): a
//! dynamic table would save a little more, at the cost of code that is easy to get subtly wrong.

const WINDOW: usize = 32 * 1024;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 15;
/// How many earlier occurrences of a 3-byte prefix are tried: the content streams repeat
/// themselves a lot, so a short search already finds long matches.
const MAX_CHAIN: usize = 16;
/// A match this long is taken without looking for a longer one.
const NICE_MATCH: usize = 64;

/// Lengths 3..=258: base length and extra bits of codes 257..=285.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Distances 1..=32768: base distance and extra bits of codes 0..=29.
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// Reused from stream to stream so that its tables are allocated once. Positions are stored
/// as offsets into a running total of all input seen, so entries left over from earlier
/// streams are recognised as stale (below `base`) without clearing the tables.
pub(super) struct Deflater {
    head: Vec<u32>,
    prev: Vec<u32>,
    base: u32,
}

impl Deflater {
    pub(super) fn new() -> Deflater {
        Deflater {
            head: vec![0; 1 << HASH_BITS],
            prev: vec![0; WINDOW],
            // 0 marks an empty slot, so real positions start at 1.
            base: 1,
        }
    }

    /// `input` as a zlib stream (what PDF's `/FlateDecode` expects).
    pub(super) fn zlib(&mut self, input: &[u8]) -> Vec<u8> {
        let Ok(len) = u32::try_from(input.len()) else {
            // Never happens for the dossier's streams; a stored stream is still valid zlib.
            return stored_zlib(input);
        };
        if self.base.checked_add(len).is_none_or(|end| end == u32::MAX) {
            self.head.fill(0);
            self.prev.fill(0);
            self.base = 1;
        }
        let mut out = BitWriter::with_capacity(input.len() / 4 + 64);
        // CMF: deflate with a 32 KiB window; FLG: "fastest" level, check bits so that the
        // 16-bit header is a multiple of 31.
        out.bytes.extend_from_slice(&[0x78, 0x01]);
        out.put(1, 1); // BFINAL
        out.put(1, 2); // BTYPE = fixed Huffman codes
        let base = self.base;
        let mut i = 0;
        while i < input.len() {
            let (length, distance) = self.longest_match(input, i, base);
            if length >= MIN_MATCH {
                out.length_distance(length, distance);
                for j in i..i + length {
                    self.insert(input, j, base);
                }
                i += length;
            } else {
                out.literal_or_length(u16::from(input[i]));
                self.insert(input, i, base);
                i += 1;
            }
        }
        out.literal_or_length(256);
        let mut bytes = out.finish();
        bytes.extend_from_slice(&adler32(input).to_be_bytes());
        self.base = base + len;
        bytes
    }

    fn insert(&mut self, input: &[u8], i: usize, base: u32) {
        if i + MIN_MATCH > input.len() {
            return;
        }
        let h = hash(&input[i..i + MIN_MATCH]);
        // `i` fits: the whole input length fits in u32 (checked in `zlib`).
        let position = base + i as u32;
        self.prev[position as usize % WINDOW] = self.head[h];
        self.head[h] = position;
    }

    fn longest_match(&self, input: &[u8], i: usize, base: u32) -> (usize, usize) {
        if i + MIN_MATCH > input.len() {
            return (0, 0);
        }
        let max = (input.len() - i).min(MAX_MATCH);
        let position = base + i as u32;
        let mut candidate = self.head[hash(&input[i..i + MIN_MATCH])];
        let (mut best_length, mut best_distance) = (0, 0);
        for _ in 0..MAX_CHAIN {
            if candidate < base || candidate >= position {
                break;
            }
            let distance = (position - candidate) as usize;
            if distance > WINDOW {
                break;
            }
            let start = (candidate - base) as usize;
            // Cheap rejection: a longer match must agree at the byte just past the best so far.
            if input[start + best_length.min(max - 1)] == input[i + best_length.min(max - 1)] {
                let length = input[start..start + max]
                    .iter()
                    .zip(&input[i..i + max])
                    .take_while(|(a, b)| a == b)
                    .count();
                if length > best_length {
                    best_length = length;
                    best_distance = distance;
                    if length >= NICE_MATCH.min(max) {
                        break;
                    }
                }
            }
            let next = self.prev[candidate as usize % WINDOW];
            if next >= candidate {
                break;
            }
            candidate = next;
        }
        (best_length, best_distance)
    }
}

fn hash(bytes: &[u8]) -> usize {
    let v = u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 is the largest run for which `b` cannot overflow before the reduction.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    b << 16 | a
}

/// Uncompressed deflate blocks of at most 65535 bytes each.
fn stored_zlib(input: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(input.len() + input.len() / 65535 * 5 + 16);
    bytes.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = input.chunks(65535).peekable();
    if chunks.peek().is_none() {
        bytes.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        bytes.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&(!len).to_le_bytes());
        bytes.extend_from_slice(chunk);
    }
    bytes.extend_from_slice(&adler32(input).to_be_bytes());
    bytes
}

/// Bits are packed from the least significant end of each byte (RFC 1951 3.1.1); Huffman
/// codes are sent most significant bit first, hence the reversals.
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    count: u32,
}

impl BitWriter {
    fn with_capacity(capacity: usize) -> BitWriter {
        BitWriter {
            bytes: Vec::with_capacity(capacity),
            acc: 0,
            count: 0,
        }
    }

    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.count;
        self.count += bits;
        if self.count >= 32 {
            self.bytes
                .extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.count -= 32;
        }
    }

    fn code(&mut self, code: u32, bits: u32) {
        self.put(code.reverse_bits() >> (32 - bits), bits);
    }

    fn literal_or_length(&mut self, symbol: u16) {
        let symbol = u32::from(symbol);
        match symbol {
            0..=143 => self.code(0x30 + symbol, 8),
            144..=255 => self.code(0x190 + symbol - 144, 9),
            256..=279 => self.code(symbol - 256, 7),
            _ => self.code(0xC0 + symbol - 280, 8),
        }
    }

    fn length_distance(&mut self, length: usize, distance: usize) {
        let index = LENGTH_BASE.partition_point(|&base| usize::from(base) <= length) - 1;
        self.literal_or_length(257 + index as u16);
        self.put(
            (length - usize::from(LENGTH_BASE[index])) as u32,
            u32::from(LENGTH_EXTRA[index]),
        );
        let index = DISTANCE_BASE.partition_point(|&base| usize::from(base) <= distance) - 1;
        self.code(index as u32, 5);
        self.put(
            (distance - usize::from(DISTANCE_BASE[index])) as u32,
            u32::from(DISTANCE_EXTRA[index]),
        );
    }

    fn finish(mut self) -> Vec<u8> {
        while self.count > 0 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.count = self.count.saturating_sub(8);
        }
        self.bytes
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::{stored_zlib, Deflater};

    /// Just enough of an inflater for the blocks written above (fixed Huffman and stored),
    /// to check them independently of any PDF reader.
    fn inflate(zlib: &[u8]) -> Vec<u8> {
        assert_eq!(&zlib[..2], &[0x78, 0x01]);
        let data = &zlib[2..zlib.len() - 4];
        let mut out = Vec::new();
        let mut bit = 0usize;
        let mut read = |bits: usize| -> usize {
            // usize::MAX asks to skip to the next byte boundary.
            let bits = if bits == usize::MAX {
                (8 - bit % 8) % 8
            } else {
                bits
            };
            let mut value = 0;
            for k in 0..bits {
                let byte = data[(bit + k) / 8];
                value |= usize::from((byte >> ((bit + k) % 8)) & 1) << k;
            }
            bit += bits;
            value
        };
        loop {
            let last = read(1);
            match read(2) {
                0 => {
                    read(usize::MAX);
                    let len = read(16);
                    let nlen = read(16);
                    assert_eq!(len, !nlen & 0xFFFF);
                    for _ in 0..len {
                        out.push(read(8) as u8);
                    }
                }
                1 => loop {
                    // Read a fixed literal/length code MSB first: 7 bits, then up to 9.
                    let mut code = 0;
                    for _ in 0..7 {
                        code = code << 1 | read(1);
                    }
                    let symbol = if code <= 0b0010111 {
                        code + 256
                    } else {
                        code = code << 1 | read(1);
                        if (0x30..=0xBF).contains(&code) {
                            code - 0x30
                        } else if (0xC0..=0xC7).contains(&code) {
                            code - 0xC0 + 280
                        } else {
                            code = code << 1 | read(1);
                            code - 0x190 + 144
                        }
                    };
                    match symbol {
                        0..=255 => out.push(symbol as u8),
                        256 => break,
                        _ => {
                            let index = symbol - 257;
                            let length = usize::from(super::LENGTH_BASE[index])
                                + read(usize::from(super::LENGTH_EXTRA[index]));
                            let mut code = 0;
                            for _ in 0..5 {
                                code = code << 1 | read(1);
                            }
                            let distance = usize::from(super::DISTANCE_BASE[code])
                                + read(usize::from(super::DISTANCE_EXTRA[code]));
                            for _ in 0..length {
                                out.push(out[out.len() - distance]);
                            }
                        }
                    }
                },
                other => panic!("unexpected block type {other}"),
            }
            if last == 1 {
                break;
            }
        }
        let expected = u32::from_be_bytes(zlib[zlib.len() - 4..].try_into().unwrap());
        assert_eq!(super::adler32(&out), expected);
        out
    }

    #[test]
    fn round_trips_through_an_independent_inflater() {
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
        let mixed: Vec<u8> = (0..100_000)
            .map(|i| {
                if random() % 7 == 0 {
                    random() as u8
                } else {
                    b"abcab"[i % 5]
                }
            })
            .collect();
        for input in [
            &b""[..],
            b"a",
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &noise,
            &repetitive,
            &mixed,
            &repetitive,
        ] {
            let compressed = deflater.zlib(input);
            assert_eq!(inflate(&compressed), input);
        }
        let compressed = deflater.zlib(&repetitive);
        assert!(
            compressed.len() < repetitive.len() / 20,
            "{}",
            compressed.len()
        );
        assert_eq!(inflate(&stored_zlib(&noise)), noise);
        assert_eq!(inflate(&stored_zlib(b"")), b"");
    }
}
