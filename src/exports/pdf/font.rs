//! The dossier's fonts: DejaVu Sans, regular and bold, which cover Latin, Greek and Cyrillic.
//! Subsetting is ours because it must keep glyph ids in place: pages already written (streamed)
//! show the original ids, so a subsetter that renumbers glyphs would not fit.
//! Each is embedded as a Type 0 font with a TrueType CIDFont (`Identity-H`, CID = glyph id):
//! text is shown as glyph ids, so any character is safe to write, and a ToUnicode CMap gives
//! viewers the characters back for search and copy-paste.
//!
//! Only the glyphs used are kept in the embedded font program: glyph ids stay where they
//! are (so the CIDs need no remapping) and unused glyphs become empty, which shrinks the
//! ~750 KB font files to the few kilobytes a dossier needs. Characters the font lacks (emoji,
//! CJK) each get a new glyph id past the font's own, drawn as a copy of `.notdef`: they show
//! as a box but still extract as the right character.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Context};
use ttf_parser::{Face, Tag};

pub(super) const REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub(super) const BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// A TrueType font has at most 65535 glyphs (ids 0..=65534).
const MAX_GLYPHS: u32 = 0xFFFF;

#[derive(Clone, Copy)]
pub(super) struct Glyph {
    pub(super) cid: u16,
    /// In font units.
    pub(super) advance: u16,
}

pub(super) struct Font {
    face: Face<'static>,
    /// PostScript name, without the subset tag.
    name: &'static str,
    stem_v: u16,
    units_per_em: f32,
    /// Glyphs in the font file itself.
    glyph_count: u16,
    notdef_advance: u16,
    /// Cache of the Basic Multilingual Plane, indexed by code point: every name of the list
    /// goes through here, so it is a plain array rather than a hash map.
    bmp: Vec<Option<Glyph>>,
    astral: HashMap<char, Glyph>,
    /// Every CID shown so far, with the character it stands for (the first one met, when
    /// several characters share a glyph).
    used: BTreeMap<u16, char>,
    /// Characters the font lacks that were given their own CID past `glyph_count`.
    added: u16,
}

impl Font {
    pub(super) fn new(
        data: &'static [u8],
        name: &'static str,
        stem_v: u16,
    ) -> anyhow::Result<Font> {
        let face = Face::parse(data, 0).with_context(|| format!("reading the font {name}"))?;
        let notdef_advance = face
            .glyph_hor_advance(ttf_parser::GlyphId(0))
            .unwrap_or(face.units_per_em() / 2);
        Ok(Font {
            units_per_em: f32::from(face.units_per_em().max(1)),
            glyph_count: face.number_of_glyphs(),
            notdef_advance,
            face,
            name,
            stem_v,
            bmp: vec![None; 0x10000],
            astral: HashMap::new(),
            used: BTreeMap::new(),
            added: 0,
        })
    }

    pub(super) fn glyph(&mut self, c: char) -> Glyph {
        let code = c as usize;
        let cached = if code < 0x10000 {
            self.bmp[code]
        } else {
            self.astral.get(&c).copied()
        };
        if let Some(glyph) = cached {
            return glyph;
        }
        let glyph = self.lookup(c);
        if code < 0x10000 {
            self.bmp[code] = Some(glyph);
        } else {
            self.astral.insert(c, glyph);
        }
        glyph
    }

    fn lookup(&mut self, c: char) -> Glyph {
        let glyph = match self.face.glyph_index(c) {
            Some(id) if id.0 != 0 => Glyph {
                cid: id.0,
                advance: self
                    .face
                    .glyph_hor_advance(id)
                    .unwrap_or(self.notdef_advance),
            },
            _ => {
                let next = u32::from(self.glyph_count) + u32::from(self.added);
                if next < MAX_GLYPHS {
                    self.added += 1;
                    Glyph {
                        cid: next as u16,
                        advance: self.notdef_advance,
                    }
                } else {
                    Glyph {
                        cid: 0,
                        advance: self.notdef_advance,
                    }
                }
            }
        };
        self.used.entry(glyph.cid).or_insert(c);
        glyph
    }

    /// Width of `text` in points at `size`, without kerning (none is applied when drawing).
    pub(super) fn width(&mut self, text: &str, size: f32) -> f32 {
        let units: u64 = text.chars().map(|c| u64::from(self.glyph(c).advance)).sum();
        units as f32 * size / self.units_per_em
    }

    /// Appends `text` as a PDF hex string of 2-byte CIDs: `<0041…>`.
    pub(super) fn encode(&mut self, text: &str, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push(b'<');
        for c in text.chars() {
            let cid = self.glyph(c).cid;
            for shift in [12, 8, 4, 0] {
                out.push(HEX[usize::from((cid >> shift) & 0xF)]);
            }
        }
        out.push(b'>');
    }

    /// The name with a subset tag (six capital letters derived from the glyphs kept), as
    /// PDF requires for subset fonts.
    pub(super) fn subset_name(&self) -> String {
        let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
        for cid in self.used.keys() {
            for byte in cid.to_be_bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01B3);
            }
        }
        let mut tag = String::with_capacity(7 + self.name.len());
        for _ in 0..6 {
            tag.push(char::from(b'A' + (hash % 26) as u8));
            hash /= 26;
        }
        tag.push('+');
        tag.push_str(self.name);
        tag
    }

    fn scaled(&self, units: i16) -> i64 {
        (f32::from(units) * 1000.0 / self.units_per_em).round() as i64
    }

    /// The entries of the FontDescriptor other than its type, name and font file.
    pub(super) fn descriptor_entries(&self) -> String {
        let bbox = self.face.global_bounding_box();
        let ascent = self.face.ascender();
        format!(
            // Symbolic (4): the font has glyphs outside the standard Latin set.
            "/Flags 4 /FontBBox [{} {} {} {}] /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight {} /StemV {}",
            self.scaled(bbox.x_min),
            self.scaled(bbox.y_min),
            self.scaled(bbox.x_max),
            self.scaled(bbox.y_max),
            self.scaled(ascent),
            self.scaled(self.face.descender()),
            self.scaled(self.cap_height()),
            self.stem_v,
        )
    }

    /// From the font's OS/2 table when it says, else measured on "H" (DejaVu's OS/2 table
    /// predates the field).
    fn cap_height(&self) -> i16 {
        self.face
            .capital_height()
            .or_else(|| {
                let h = self.face.glyph_index('H')?;
                Some(self.face.glyph_bounding_box(h)?.y_max)
            })
            .unwrap_or(self.face.ascender())
    }

    /// Default width (`/DW`) in thousandths of an em: that of `.notdef`.
    pub(super) fn default_width(&self) -> String {
        super::numbers::number(f32::from(self.notdef_advance) * 1000.0 / self.units_per_em)
    }

    /// The `/W` array: widths of the CIDs used, in thousandths of an em, in runs of
    /// consecutive CIDs (`first [w1 w2 …]`).
    pub(super) fn widths(&self) -> String {
        let mut out = String::from("[");
        let mut previous: Option<u16> = None;
        for (&cid, &c) in &self.used {
            let advance = self.known_glyph(cid, c).advance;
            let width = super::numbers::number(f32::from(advance) * 1000.0 / self.units_per_em);
            if previous.is_some_and(|p| u32::from(p) + 1 == u32::from(cid)) {
                out.push(' ');
            } else {
                if previous.is_some() {
                    out.push_str("]\n");
                }
                out.push_str(&format!("{cid} ["));
            }
            out.push_str(&width);
            previous = Some(cid);
        }
        if previous.is_some() {
            out.push(']');
        }
        out.push(']');
        out
    }

    fn known_glyph(&self, cid: u16, c: char) -> Glyph {
        let code = c as usize;
        let cached = if code < 0x10000 {
            self.bmp[code]
        } else {
            self.astral.get(&c).copied()
        };
        cached.unwrap_or(Glyph {
            cid,
            advance: self.notdef_advance,
        })
    }

    /// The ToUnicode CMap: each CID used to the character it was written for.
    pub(super) fn to_unicode(&self) -> Vec<u8> {
        let mut out = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
             /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
             /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
             1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        // .notdef (CID 0) stands for no character in particular.
        let entries: Vec<(u16, char)> = self
            .used
            .iter()
            .filter(|(&cid, _)| cid != 0)
            .map(|(&cid, &c)| (cid, c))
            .collect();
        // A bfchar section holds at most 100 entries.
        for chunk in entries.chunks(100) {
            out.push_str(&format!("{} beginbfchar\n", chunk.len()));
            for &(cid, c) in chunk {
                out.push_str(&format!("<{cid:04X}> <"));
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("{unit:04X}"));
                }
                out.push_str(">\n");
            }
            out.push_str("endbfchar\n");
        }
        out.push_str("endcmap\nCMapName currentdict /CMapResource defineresource pop\nend\nend\n");
        out.into_bytes()
    }

    /// The font program to embed: the original tables a PDF renderer needs, with the
    /// outlines of unused glyphs removed and the added `.notdef` copies appended.
    pub(super) fn subset(&self) -> anyhow::Result<Vec<u8>> {
        let raw = self.face.raw_face();
        let table = |tag: &[u8; 4]| raw.table(Tag::from_bytes(tag));
        let required = |tag: &[u8; 4]| {
            table(tag).ok_or_else(|| {
                anyhow!(
                    "the font {} has no {} table",
                    self.name,
                    String::from_utf8_lossy(tag)
                )
            })
        };
        let malformed = || anyhow!("the font {} is malformed", self.name);
        let head = required(b"head")?;
        let hhea = required(b"hhea")?;
        let maxp = required(b"maxp")?;
        let hmtx = required(b"hmtx")?;
        let loca = required(b"loca")?;
        let glyf = required(b"glyf")?;
        let long_offsets = read_u16(head, 50).ok_or_else(malformed)? == 1;
        let count = usize::from(self.glyph_count);
        let offset = |glyph: usize| -> Option<usize> {
            if long_offsets {
                read_u32(loca, glyph * 4).map(|o| o as usize)
            } else {
                read_u16(loca, glyph * 2).map(|o| usize::from(o) * 2)
            }
        };
        let outline = |glyph: usize| -> anyhow::Result<&[u8]> {
            let (start, end) = (offset(glyph), offset(glyph + 1));
            start
                .zip(end)
                .and_then(|(start, end)| glyf.get(start..end))
                .ok_or_else(malformed)
        };

        // Composite glyphs draw other glyphs, which must be kept too.
        let mut keep = vec![false; count];
        let mut pending: Vec<usize> = std::iter::once(0)
            .chain(self.used.keys().map(|&cid| usize::from(cid)))
            .filter(|&glyph| glyph < count)
            .collect();
        while let Some(glyph) = pending.pop() {
            if std::mem::replace(&mut keep[glyph], true) {
                continue;
            }
            for component in components(outline(glyph)?).ok_or_else(malformed)? {
                let component = usize::from(component);
                if component < count && !keep[component] {
                    pending.push(component);
                }
            }
        }

        let total = count + usize::from(self.added);
        let notdef = outline(0)?;
        let mut new_glyf = Vec::new();
        let mut new_loca = Vec::with_capacity((total + 1) * 4);
        for glyph in 0..total {
            new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
            let data = match keep.get(glyph) {
                // Past the font's own glyphs: the added copies of .notdef.
                None => notdef,
                Some(true) => outline(glyph)?,
                Some(false) => &[],
            };
            new_glyf.extend_from_slice(data);
            while new_glyf.len() % 4 != 0 {
                new_glyf.push(0);
            }
        }
        new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());

        // Every glyph gets a full metric, so the added glyphs can have .notdef's.
        let long_metrics = usize::from(read_u16(hhea, 34).ok_or_else(malformed)?);
        if long_metrics == 0 {
            return Err(malformed());
        }
        let metric = |glyph: usize| -> Option<(u16, i16)> {
            if glyph < long_metrics {
                Some((
                    read_u16(hmtx, glyph * 4)?,
                    read_u16(hmtx, glyph * 4 + 2)? as i16,
                ))
            } else {
                let advance = read_u16(hmtx, (long_metrics - 1) * 4)?;
                let bearing = read_u16(hmtx, long_metrics * 4 + (glyph - long_metrics) * 2)?;
                Some((advance, bearing as i16))
            }
        };
        let mut new_hmtx = Vec::with_capacity(total * 4);
        for glyph in 0..total {
            let (advance, bearing) =
                metric(if glyph < count { glyph } else { 0 }).ok_or_else(malformed)?;
            new_hmtx.extend_from_slice(&advance.to_be_bytes());
            new_hmtx.extend_from_slice(&bearing.to_be_bytes());
        }

        let total16 = u16::try_from(total).map_err(|_| malformed())?;
        let mut new_head = head.to_vec();
        let mut new_hhea = hhea.to_vec();
        let mut new_maxp = maxp.to_vec();
        if new_head.len() < 54 || new_hhea.len() < 36 || new_maxp.len() < 6 {
            return Err(malformed());
        }
        new_head[8..12].fill(0);
        new_head[50..52].copy_from_slice(&1u16.to_be_bytes());
        new_hhea[34..36].copy_from_slice(&total16.to_be_bytes());
        new_maxp[4..6].copy_from_slice(&total16.to_be_bytes());

        let mut tables: Vec<([u8; 4], Vec<u8>)> = vec![
            (*b"glyf", new_glyf),
            (*b"head", new_head),
            (*b"hhea", new_hhea),
            (*b"hmtx", new_hmtx),
            (*b"loca", new_loca),
            (*b"maxp", new_maxp),
        ];
        // Hinting programs and the naming tables are copied as they are; the glyph names
        // (`post` 2.0) would no longer match, so `post` becomes version 3 (no names).
        for tag in [b"cvt ", b"fpgm", b"prep", b"OS/2", b"name"] {
            if let Some(data) = table(tag) {
                tables.push((*tag, data.to_vec()));
            }
        }
        if let Some(post) = table(b"post").and_then(|post| post.get(..32)) {
            let mut post = post.to_vec();
            post[..4].copy_from_slice(&0x0003_0000u32.to_be_bytes());
            tables.push((*b"post", post));
        }
        tables.sort_by_key(|table| table.0);
        Ok(assemble(&tables))
    }
}

/// The glyphs a composite glyph is made of (none for a simple or empty glyph), or `None` if
/// its data is cut short.
fn components(outline: &[u8]) -> Option<Vec<u16>> {
    const ARGS_ARE_WORDS: u16 = 0x0001;
    const HAVE_SCALE: u16 = 0x0008;
    const MORE_COMPONENTS: u16 = 0x0020;
    const HAVE_XY_SCALE: u16 = 0x0040;
    const HAVE_2X2: u16 = 0x0080;
    let mut found = Vec::new();
    if outline.is_empty() || (read_u16(outline, 0)? as i16) >= 0 {
        return Some(found);
    }
    let mut at = 10;
    loop {
        let flags = read_u16(outline, at)?;
        found.push(read_u16(outline, at + 2)?);
        at += 4;
        at += if flags & ARGS_ARE_WORDS != 0 { 4 } else { 2 };
        if flags & HAVE_SCALE != 0 {
            at += 2;
        } else if flags & HAVE_XY_SCALE != 0 {
            at += 4;
        } else if flags & HAVE_2X2 != 0 {
            at += 8;
        }
        if flags & MORE_COMPONENTS == 0 {
            return Some(found);
        }
    }
}

/// An sfnt file from its tables (sorted by tag), with checksums and `head`'s adjustment.
fn assemble(tables: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let count = tables.len() as u16;
    let power = if count == 0 {
        0
    } else {
        15 - count.leading_zeros() as u16
    };
    let search_range = (1u16 << power) * 16;
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for value in [count, search_range, power, count * 16 - search_range] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = None;
    for (tag, data) in tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        if tag == b"head" {
            head_at = Some(offset);
        }
        offset += data.len().next_multiple_of(4);
    }
    for (_, data) in tables {
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use ttf_parser::{Face, GlyphId};

    use super::{Font, REGULAR};

    #[test]
    fn subset_keeps_used_glyphs_and_adds_missing_characters() {
        let mut font = Font::new(REGULAR, "DejaVuSans", 80).unwrap();
        let original = Face::parse(REGULAR, 0).unwrap();
        // "Á" is drawn from "A" and an accent in DejaVu; "🌻" and "中" are not in the font.
        for c in "Hя Á🌻中🌻".chars() {
            font.glyph(c);
        }
        let sunflower = font.glyph('🌻');
        let chinese = font.glyph('中');
        assert_eq!(sunflower.cid, original.number_of_glyphs());
        assert_eq!(chinese.cid, original.number_of_glyphs() + 1);

        let subset = font.subset().unwrap();
        assert!(subset.len() < REGULAR.len() / 4, "{}", subset.len());
        let face = Face::parse(&subset, 0).unwrap();
        assert_eq!(face.number_of_glyphs(), original.number_of_glyphs() + 2);
        let bbox = |face: &Face, c: char| face.glyph_bounding_box(original.glyph_index(c).unwrap());
        assert_eq!(bbox(&face, 'H'), bbox(&original, 'H'));
        // Kept as a component though never written.
        assert_eq!(bbox(&face, 'A'), bbox(&original, 'A'));
        assert_eq!(bbox(&face, 'я'), bbox(&original, 'я'));
        assert_eq!(bbox(&face, 'Á'), bbox(&original, 'Á'));
        assert!(bbox(&face, 'B').is_none());
        assert_eq!(
            face.glyph_bounding_box(GlyphId(sunflower.cid)),
            original.glyph_bounding_box(GlyphId(0))
        );
        assert_eq!(
            face.glyph_hor_advance(GlyphId(chinese.cid)),
            original.glyph_hor_advance(GlyphId(0))
        );
        let unicode = String::from_utf8(font.to_unicode()).unwrap();
        assert!(
            unicode.contains(&format!("<{:04X}> <D83CDF3B>", sunflower.cid)),
            "{unicode}"
        );
        assert!(unicode.contains("<002B> <0048>"), "{unicode}");
    }
}
