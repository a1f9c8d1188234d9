//! The printable PDF dossier: a cover page (title, addressees, the full text, the confirmed
//! count, the collection period and where the document comes from), signatures by country,
//! then the list of signatures as a table whose header repeats on every page.
//!
//! The PDF 1.7 file is written by hand (ours so that memory stays bounded) and streamed: each
//! page's content and objects are written as soon as the page is full, and only byte offsets (for the cross-reference
//! table), page object numbers and the glyphs used are kept: a few bytes per page, so a
//! million signatures (some 30,000 pages) need a few megabytes. What can only be known at the end — the fonts' widths, ToUnicode
//! maps and glyph subsets, the page tree — is written by [`DossierWriter::finish`]: PDF
//! objects may come in any order.
//!
//! Text is shown glyph by glyph without shaping: right-to-left lines are put in display order
//! by the Unicode bidirectional algorithm (Arabic letters stay unjoined), and characters
//! DejaVu Sans lacks (emoji, CJK) print as a box, though they still extract and copy as the
//! right characters.

mod bidi;
mod deflate;
mod font;
mod numbers;
mod text;

use numbers::put_number;
use std::io::Write;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime};
use sha2::{Digest, Sha256};

use self::deflate::Deflater;
use self::font::Font;
use self::text::{Block, BlockKind};
use crate::core::format::format_count;

/// What the cover page says about the petition and where the dossier comes from.
pub struct DossierCover {
    pub title: String,
    /// Addressees: name and role.
    pub targets: Vec<(String, String)>,
    /// The petition's text, as Markdown source.
    pub body: String,
    pub version_sha256: String,
    pub confirmed_count: i64,
    pub first_signature: Option<NaiveDateTime>,
    pub last_signature: Option<NaiveDateTime>,
    pub instance_url: String,
    pub generated_at: NaiveDateTime,
}

/// One line of the list. There is deliberately no email address: the dossier is handed over.
pub struct DossierRow<'a> {
    pub name: &'a str,
    /// Postal code or place, or "".
    pub place: &'a str,
    /// The country's name.
    pub country: &'a str,
    pub date: NaiveDate,
}

/// A4 portrait, in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const TOP: f32 = PAGE_HEIGHT - MARGIN;
/// Content stays above this; the footer sits below it.
const BOTTOM: f32 = 62.0;
const FOOTER_BASELINE: f32 = 32.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

/// Tables: font size, line height, padding inside cells, lines a cell may take before it
/// is cut with an ellipsis.
const CELL_SIZE: f32 = 9.0;
const CELL_LEADING: f32 = 11.0;
const CELL_PAD_X: f32 = 4.0;
const CELL_PAD_Y: f32 = 3.0;
const CELL_MAX_LINES: usize = 3;
const HEADER_SIZE: f32 = 8.5;
const STRIPE_GRAY: f32 = 0.93;

const BODY_SIZE: f32 = 10.5;
const BODY_LEADING: f32 = 14.5;
const INDENT: f32 = 18.0;

/// Kids per node of the page tree, so viewers can find page 20,000 without reading a flat
/// array of all pages.
const PAGES_PER_NODE: usize = 32;

/// Objects whose numbers are needed before they can be written.
const CATALOG: u32 = 1;
const INFO: u32 = 2;
const RESOURCES: u32 = 3;
const REGULAR_FONT: u32 = 4;
const BOLD_FONT: u32 = 5;

#[derive(Clone, Copy, PartialEq)]
enum Face {
    Regular,
    Bold,
}

struct Column {
    x: f32,
    width: f32,
    right_aligned: bool,
    header: &'static str,
}

const COUNTRY_COLUMNS: [Column; 3] = [
    Column {
        x: MARGIN,
        width: 305.0,
        right_aligned: false,
        header: "Country",
    },
    Column {
        x: MARGIN + 305.0,
        width: 110.0,
        right_aligned: true,
        header: "Signatures",
    },
    Column {
        x: MARGIN + 415.0,
        width: 80.0,
        right_aligned: true,
        header: "Share",
    },
];

const LIST_COLUMNS: [Column; 5] = [
    Column {
        x: MARGIN,
        width: 48.0,
        right_aligned: true,
        header: "No.",
    },
    Column {
        x: MARGIN + 48.0,
        width: 172.0,
        right_aligned: false,
        header: "Name",
    },
    Column {
        x: MARGIN + 220.0,
        width: 93.0,
        right_aligned: false,
        header: "Postal code/place",
    },
    Column {
        x: MARGIN + 313.0,
        width: 120.0,
        right_aligned: false,
        header: "Country",
    },
    Column {
        x: MARGIN + 433.0,
        width: 62.0,
        right_aligned: false,
        header: "Date",
    },
];

/// The table being drawn, whose header row starts every new page.
#[derive(Clone, Copy)]
enum Table {
    Countries,
    Signatures,
}

impl Table {
    fn columns(self) -> &'static [Column] {
        match self {
            Table::Countries => &COUNTRY_COLUMNS,
            Table::Signatures => &LIST_COLUMNS,
        }
    }
}

/// Writes a dossier to `W` as it goes: [`new`](Self::new) writes the cover and the table by
/// country, [`add`](Self::add) each signature of the list, [`finish`](Self::finish) the rest.
pub struct DossierWriter<W: Write> {
    out: Output<W>,
    /// Byte offset of each object by number (index 0 is unused).
    offsets: Vec<u64>,
    deflater: Deflater,
    canvas: Canvas,
    /// The current page's top of free space.
    y: f32,
    page_ids: Vec<u32>,
    /// Page tree nodes that hold the pages, [`PAGES_PER_NODE`] each.
    leaves: Vec<u32>,
    table: Option<Table>,
    rows: u64,
    title: String,
    generated_at: NaiveDateTime,
}

impl<W: Write> DossierWriter<W> {
    /// Writes the cover and the counts by country (country name, signatures).
    pub fn new(out: W, cover: &DossierCover, by_country: &[(String, i64)]) -> anyhow::Result<Self> {
        let canvas = Canvas {
            content: Vec::with_capacity(64 * 1024),
            regular: Font::new(font::REGULAR, "DejaVuSans", 80)?,
            bold: Font::new(font::BOLD, "DejaVuSans-Bold", 120)?,
        };
        let mut writer = DossierWriter {
            out: Output {
                inner: out,
                buffer: Vec::with_capacity(Output::<W>::BUFFER),
                position: 0,
            },
            offsets: vec![0; BOLD_FONT as usize + 1],
            deflater: Deflater::new(),
            canvas,
            y: TOP,
            page_ids: Vec::new(),
            leaves: Vec::new(),
            table: None,
            rows: 0,
            title: text::single_line(&cover.title),
            generated_at: cover.generated_at,
        };
        // The second line's bytes above 127 tell transfer programs the file is binary.
        writer.out.write(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")?;
        writer.object(
            RESOURCES,
            &format!(
                "<< /Font << /F1 {REGULAR_FONT} 0 R /F2 {BOLD_FONT} 0 R >> /ProcSet [/PDF /Text] >>"
            ),
        )?;
        writer.start_page();
        writer.cover(cover)?;
        writer.countries(by_country)?;
        writer.start_list()?;
        Ok(writer)
    }

    /// Adds the next signature to the list; it is numbered from 1 in the order added.
    pub fn add(&mut self, row: &DossierRow<'_>) -> anyhow::Result<()> {
        self.rows += 1;
        let number = self.rows.to_string();
        let name = text::single_line(row.name);
        let place = text::single_line(row.place);
        let country = text::single_line(row.country);
        let date = row.date.format("%Y-%m-%d").to_string();
        let stripe = self.rows.is_multiple_of(2);
        self.table_row(
            Table::Signatures,
            &[&number, &name, &place, &country, &date],
            Face::Regular,
            stripe,
        )
    }

    /// Pages written or begun so far; after the last [`add`](Self::add), the page count of
    /// the finished document.
    pub fn page_count(&self) -> usize {
        self.page_ids.len() + 1
    }

    /// Ends the last page, writes the fonts, the page tree, the document information and
    /// the cross-reference table, and hands back the output, flushed.
    pub fn finish(mut self) -> anyhow::Result<W> {
        if self.rows == 0 {
            self.table = None;
            self.y -= 6.0;
            self.canvas.gray(0.35);
            self.paragraph(
                Face::Regular,
                BODY_SIZE,
                BODY_LEADING,
                MARGIN,
                CONTENT_WIDTH,
                "No signatures.",
            )?;
            self.canvas.gray(0.0);
        }
        self.end_page()?;
        self.write_font(REGULAR_FONT, Face::Regular)?;
        self.write_font(BOLD_FONT, Face::Bold)?;
        let root = self.write_page_tree()?;
        self.object(
            CATALOG,
            &format!(
                "<< /Type /Catalog /Pages {root} 0 R /Lang (en) /ViewerPreferences << /DisplayDocTitle true >> >>"
            ),
        )?;
        let created = self.generated_at.format("D:%Y%m%d%H%M%SZ");
        self.object(
            INFO,
            &format!(
                "<< /Title {} /Producer (undersign) /Creator (undersign) /CreationDate ({created}) >>",
                text_string(&self.title)
            ),
        )?;

        let xref_at = self.out.position;
        let size = self.offsets.len();
        let mut xref = format!("xref\n0 {size}\n0000000000 65535 f \n");
        for &offset in &self.offsets[1..] {
            if offset == 0 {
                xref.push_str("0000000000 00000 f \n");
            } else {
                xref.push_str(&format!("{offset:010} 00000 n \n"));
            }
        }
        self.out.write(xref.as_bytes())?;
        // The file identifier only needs to be unique to this document.
        let id = Sha256::new()
            .chain_update(self.title.as_bytes())
            .chain_update(self.generated_at.and_utc().timestamp_micros().to_be_bytes())
            .chain_update(self.rows.to_be_bytes())
            .chain_update(xref_at.to_be_bytes())
            .finalize();
        let id: String = id[..16].iter().map(|b| format!("{b:02X}")).collect();
        self.out.write(
            format!(
                "trailer\n<< /Size {size} /Root {CATALOG} 0 R /Info {INFO} 0 R /ID [<{id}> <{id}>] >>\nstartxref\n{xref_at}\n%%EOF\n"
            )
            .as_bytes(),
        )?;
        self.out.flush()?;
        Ok(self.out.inner)
    }

    fn cover(&mut self, cover: &DossierCover) -> anyhow::Result<()> {
        self.canvas.gray(0.4);
        self.paragraph(
            Face::Regular,
            10.0,
            14.0,
            MARGIN,
            CONTENT_WIDTH,
            "Dossier of confirmed signatures",
        )?;
        self.canvas.gray(0.0);
        self.y -= 4.0;
        let title = self.title.clone();
        self.paragraph(Face::Bold, 20.0, 25.0, MARGIN, CONTENT_WIDTH, &title)?;
        self.y -= 10.0;

        if !cover.targets.is_empty() {
            let label = "To:";
            let indent = self.canvas.width(Face::Bold, 11.0, label) + 6.0;
            self.room(15.0)?;
            self.canvas
                .text(Face::Bold, 11.0, MARGIN, self.y - 11.0, label);
            for (name, role) in &cover.targets {
                let name = text::single_line(name);
                let role = text::single_line(role);
                let target = if role.is_empty() {
                    name
                } else {
                    format!("{name}, {role}")
                };
                self.paragraph(
                    Face::Regular,
                    11.0,
                    15.0,
                    MARGIN + indent,
                    CONTENT_WIDTH - indent,
                    &target,
                )?;
            }
            self.y -= 10.0;
        }
        self.rule(0.75)?;
        self.y -= 12.0;

        for block in text::blocks(&cover.body) {
            self.block(&block)?;
        }

        self.y -= 6.0;
        self.rule(0.75)?;
        self.y -= 10.0;
        let period = match (cover.first_signature, cover.last_signature) {
            (Some(first), Some(last)) if first.date() != last.date() => format!(
                "{} – {} (UTC)",
                first.format("%Y-%m-%d"),
                last.format("%Y-%m-%d")
            ),
            (Some(day), _) | (None, Some(day)) => format!("{} (UTC)", day.format("%Y-%m-%d")),
            (None, None) => "no signatures yet".to_owned(),
        };
        let facts = [
            ("Confirmed signatures", format_count(cover.confirmed_count)),
            ("Collection period", period),
            (
                "Text version (SHA-256)",
                text::single_line(&cover.version_sha256),
            ),
            ("Instance", text::single_line(&cover.instance_url)),
            (
                "Generated",
                cover.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
        ];
        for (label, value) in facts {
            self.fact(label, &value)?;
        }
        Ok(())
    }

    /// A label and its value side by side, kept together on one page unless the value is
    /// absurdly long.
    fn fact(&mut self, label: &str, value: &str) -> anyhow::Result<()> {
        const SIZE: f32 = 9.0;
        const LEADING: f32 = 13.0;
        // Wide enough for the longest label, and leaves room for a SHA-256 on one line.
        const VALUE_X: f32 = MARGIN + 126.0;
        let lines = self.canvas.wrap(
            Face::Regular,
            SIZE,
            value,
            PAGE_WIDTH - MARGIN - VALUE_X,
            usize::MAX,
        );
        // A freak value (a URL of thousands of characters) may still run over pages.
        self.room((LEADING * lines.len() as f32).min(10.0 * LEADING))?;
        self.canvas
            .text(Face::Bold, SIZE, MARGIN, self.y - SIZE, label);
        for line in &lines {
            self.room(LEADING)?;
            self.canvas
                .text(Face::Regular, SIZE, VALUE_X, self.y - SIZE, line);
            self.y -= LEADING;
        }
        Ok(())
    }

    fn block(&mut self, block: &Block) -> anyhow::Result<()> {
        let x = MARGIN + INDENT * block.depth as f32;
        let width = CONTENT_WIDTH - INDENT * block.depth as f32;
        match &block.kind {
            BlockKind::Heading => {
                self.y -= 4.0;
                // A heading is not left alone at the foot of a page.
                self.room(16.0 + 2.0 * BODY_LEADING)?;
                self.paragraph(Face::Bold, 12.0, 16.0, x, width, &block.text)?;
                self.y -= 4.0;
            }
            BlockKind::Paragraph | BlockKind::Code => {
                self.paragraph(
                    Face::Regular,
                    BODY_SIZE,
                    BODY_LEADING,
                    x,
                    width,
                    &block.text,
                )?;
                self.y -= 6.0;
            }
            BlockKind::Item(marker) => {
                // Items nest one level deeper than their list's text; the marker hangs in
                // the indentation.
                let x = x - INDENT;
                let marker_width = self.canvas.width(Face::Regular, BODY_SIZE, marker);
                let text_x = x + (marker_width + 6.0).max(14.0);
                self.room(BODY_LEADING)?;
                self.canvas
                    .text(Face::Regular, BODY_SIZE, x, self.y - BODY_SIZE, marker);
                let width = PAGE_WIDTH - MARGIN - text_x;
                self.paragraph(
                    Face::Regular,
                    BODY_SIZE,
                    BODY_LEADING,
                    text_x,
                    width,
                    &block.text,
                )?;
                self.y -= 3.0;
            }
            BlockKind::Rule => {
                self.y -= 4.0;
                self.rule(0.5)?;
                self.y -= 10.0;
            }
        }
        Ok(())
    }

    /// Wrapped lines, continuing on the next page when this one is full.
    fn paragraph(
        &mut self,
        face: Face,
        size: f32,
        leading: f32,
        x: f32,
        width: f32,
        text: &str,
    ) -> anyhow::Result<()> {
        for line in self.canvas.wrap(face, size, text, width, usize::MAX) {
            self.room(leading)?;
            let x = if bidi::is_rtl_line(&line) {
                x + width - self.canvas.width(face, size, &line)
            } else {
                x
            };
            self.canvas.text(face, size, x, self.y - size, &line);
            self.y -= leading;
        }
        Ok(())
    }

    fn rule(&mut self, width: f32) -> anyhow::Result<()> {
        self.room(width)?;
        self.canvas.hline(MARGIN, self.y, CONTENT_WIDTH, width, 0.6);
        self.y -= width;
        Ok(())
    }

    fn heading(&mut self, text: &str) -> anyhow::Result<()> {
        self.paragraph(Face::Bold, 14.0, 20.0, MARGIN, CONTENT_WIDTH, text)?;
        self.y -= 6.0;
        Ok(())
    }

    fn countries(&mut self, by_country: &[(String, i64)]) -> anyhow::Result<()> {
        self.new_page()?;
        self.heading("Signatures by country")?;
        if by_country.is_empty() {
            self.canvas.gray(0.35);
            self.paragraph(
                Face::Regular,
                BODY_SIZE,
                BODY_LEADING,
                MARGIN,
                CONTENT_WIDTH,
                "No signatures.",
            )?;
            self.canvas.gray(0.0);
            return Ok(());
        }
        let total: i64 = by_country.iter().map(|(_, count)| *count).sum();
        self.table = Some(Table::Countries);
        self.table_header(Table::Countries)?;
        for (index, (country, count)) in by_country.iter().enumerate() {
            let share = if total > 0 {
                format!("{:.1}%", *count as f64 * 100.0 / total as f64)
            } else {
                "–".to_owned()
            };
            self.table_row(
                Table::Countries,
                &[&text::single_line(country), &format_count(*count), &share],
                Face::Regular,
                index % 2 == 1,
            )?;
        }
        self.room(CELL_LEADING + 2.0 * CELL_PAD_Y + 1.0)?;
        self.canvas.hline(MARGIN, self.y, CONTENT_WIDTH, 0.75, 0.0);
        self.table_row(
            Table::Countries,
            &[
                "Total",
                &format_count(total),
                if total > 0 { "100%" } else { "–" },
            ],
            Face::Bold,
            false,
        )?;
        self.table = None;
        Ok(())
    }

    fn start_list(&mut self) -> anyhow::Result<()> {
        self.y -= 24.0;
        // The heading, the column headers and a first row, or a new page.
        if self.y - 80.0 < BOTTOM {
            self.new_page()?;
        }
        self.heading("List of signatures")?;
        self.table = Some(Table::Signatures);
        self.table_header(Table::Signatures)
    }

    fn table_header(&mut self, table: Table) -> anyhow::Result<()> {
        // Room for the header and a first row, without repeating the header on a new page.
        let current = self.table.take();
        self.room(3.0 * CELL_LEADING + 4.0 * CELL_PAD_Y)?;
        self.table = current;
        let cells: Vec<&str> = table.columns().iter().map(|c| c.header).collect();
        self.canvas.gray(0.25);
        self.cells(table, &cells, Face::Bold, HEADER_SIZE, false)?;
        self.canvas.gray(0.0);
        self.canvas.hline(MARGIN, self.y, CONTENT_WIDTH, 0.75, 0.0);
        self.y -= 0.75;
        Ok(())
    }

    fn table_row(
        &mut self,
        table: Table,
        cells: &[&str],
        face: Face,
        stripe: bool,
    ) -> anyhow::Result<()> {
        self.cells(table, cells, face, CELL_SIZE, stripe)
    }

    /// One row: every cell wrapped to its column, so nothing runs into its neighbour. On a
    /// new page the current table's header comes first (see [`Self::start_page`]).
    fn cells(
        &mut self,
        table: Table,
        cells: &[&str],
        face: Face,
        size: f32,
        stripe: bool,
    ) -> anyhow::Result<()> {
        let columns = table.columns();
        let mut wrapped = Vec::with_capacity(columns.len());
        for (column, cell) in columns.iter().zip(cells) {
            let width = column.width - 2.0 * CELL_PAD_X;
            wrapped.push(self.canvas.wrap(face, size, cell, width, CELL_MAX_LINES));
        }
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let height = lines as f32 * CELL_LEADING + 2.0 * CELL_PAD_Y;
        self.room(height)?;
        if stripe {
            self.canvas
                .fill_rect(MARGIN, self.y - height, CONTENT_WIDTH, height, STRIPE_GRAY);
        }
        for (column, lines) in columns.iter().zip(&wrapped) {
            for (index, line) in lines.iter().enumerate() {
                let baseline = self.y - CELL_PAD_Y - CELL_LEADING * index as f32 - size * 0.95;
                let x = if column.right_aligned {
                    column.x + column.width - CELL_PAD_X - self.canvas.width(face, size, line)
                } else {
                    column.x + CELL_PAD_X
                };
                self.canvas.text(face, size, x, baseline, line);
            }
        }
        self.y -= height;
        Ok(())
    }

    /// Makes room for `height` points, on a new page if needed.
    fn room(&mut self, height: f32) -> anyhow::Result<()> {
        if self.y - height < BOTTOM && self.y < TOP {
            self.end_page()?;
            self.start_page();
            if let Some(table) = self.table {
                self.table_header(table)?;
            }
        }
        Ok(())
    }

    fn new_page(&mut self) -> anyhow::Result<()> {
        self.end_page()?;
        self.start_page();
        Ok(())
    }

    fn start_page(&mut self) {
        self.canvas.content.clear();
        self.y = TOP;
    }

    fn end_page(&mut self) -> anyhow::Result<()> {
        let number = self.page_ids.len() + 1;
        let page_label = format!("Page {number}");
        self.canvas.gray(0.4);
        let label_width = self.canvas.width(Face::Regular, 8.0, &page_label);
        self.canvas.text(
            Face::Regular,
            8.0,
            PAGE_WIDTH - MARGIN - label_width,
            FOOTER_BASELINE,
            &page_label,
        );
        let title = self.canvas.wrap(
            Face::Regular,
            8.0,
            &self.title,
            CONTENT_WIDTH - label_width - 24.0,
            1,
        );
        if let Some(title) = title.first() {
            self.canvas
                .text(Face::Regular, 8.0, MARGIN, FOOTER_BASELINE, title);
        }
        self.canvas.gray(0.0);

        if self.page_ids.len().is_multiple_of(PAGES_PER_NODE) {
            let leaf = self.allocate();
            self.leaves.push(leaf);
        }
        let parent = self.leaves[self.leaves.len() - 1];
        let contents = self.allocate();
        let content = std::mem::take(&mut self.canvas.content);
        self.stream(contents, "", &content)?;
        self.canvas.content = content;
        let page = self.allocate();
        self.object(
            page,
            &format!(
                "<< /Type /Page /Parent {parent} 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] /Resources {RESOURCES} 0 R /Contents {contents} 0 R >>"
            ),
        )?;
        self.page_ids.push(page);
        Ok(())
    }

    /// The Type 0 font (its number fixed, since pages refer to it) and the objects it needs.
    fn write_font(&mut self, id: u32, face: Face) -> anyhow::Result<()> {
        let font = match face {
            Face::Regular => &self.canvas.regular,
            Face::Bold => &self.canvas.bold,
        };
        let name = font.subset_name();
        let widths = font.widths();
        let default_width = font.default_width();
        let descriptor_entries = font.descriptor_entries();
        let to_unicode = font.to_unicode();
        let program = font.subset()?;

        let (cid_font, descriptor, file, cmap) = (
            self.allocate(),
            self.allocate(),
            self.allocate(),
            self.allocate(),
        );
        self.object(
            id,
            &format!(
                "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [{cid_font} 0 R] /ToUnicode {cmap} 0 R >>"
            ),
        )?;
        self.object(
            cid_font,
            &format!(
                "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /CIDToGIDMap /Identity /DW {default_width} /W {widths} >>"
            ),
        )?;
        self.object(
            descriptor,
            &format!("<< /Type /FontDescriptor /FontName /{name} {descriptor_entries} /FontFile2 {file} 0 R >>"),
        )?;
        self.stream(file, &format!("/Length1 {}", program.len()), &program)?;
        self.stream(cmap, "", &to_unicode)
    }

    /// Builds the page tree over the leaves made while writing pages; returns its root.
    fn write_page_tree(&mut self) -> anyhow::Result<u32> {
        struct Node {
            id: u32,
            kids: Vec<u32>,
            count: usize,
        }
        let mut level: Vec<Node> = self
            .leaves
            .iter()
            .zip(self.page_ids.chunks(PAGES_PER_NODE))
            .map(|(&id, pages)| Node {
                id,
                kids: pages.to_vec(),
                count: pages.len(),
            })
            .collect();
        loop {
            if level.len() <= 1 {
                let root = level.pop().context("the dossier has no pages")?;
                self.page_node(&root.kids, root.count, root.id, None)?;
                return Ok(root.id);
            }
            let mut parents = Vec::with_capacity(level.len().div_ceil(PAGES_PER_NODE));
            for group in level.chunks(PAGES_PER_NODE) {
                let parent = self.allocate();
                for node in group {
                    self.page_node(&node.kids, node.count, node.id, Some(parent))?;
                }
                parents.push(Node {
                    id: parent,
                    kids: group.iter().map(|node| node.id).collect(),
                    count: group.iter().map(|node| node.count).sum(),
                });
            }
            level = parents;
        }
    }

    fn page_node(
        &mut self,
        kids: &[u32],
        count: usize,
        id: u32,
        parent: Option<u32>,
    ) -> anyhow::Result<()> {
        let kids: Vec<String> = kids.iter().map(|kid| format!("{kid} 0 R")).collect();
        let parent = parent
            .map(|p| format!(" /Parent {p} 0 R"))
            .unwrap_or_default();
        self.object(
            id,
            &format!(
                "<< /Type /Pages /Kids [{}] /Count {count}{parent} >>",
                kids.join(" ")
            ),
        )
    }

    fn allocate(&mut self) -> u32 {
        self.offsets.push(0);
        (self.offsets.len() - 1) as u32
    }

    fn object(&mut self, id: u32, body: &str) -> anyhow::Result<()> {
        self.offsets[id as usize] = self.out.position;
        self.out
            .write(format!("{id} 0 obj\n{body}\nendobj\n").as_bytes())
    }

    /// A stream object, compressed.
    fn stream(&mut self, id: u32, entries: &str, data: &[u8]) -> anyhow::Result<()> {
        let compressed = self.deflater.zlib(data);
        let separator = if entries.is_empty() { "" } else { " " };
        self.offsets[id as usize] = self.out.position;
        self.out.write(
            format!(
                "{id} 0 obj\n<< /Length {} /Filter /FlateDecode{separator}{entries} >>\nstream\n",
                compressed.len()
            )
            .as_bytes(),
        )?;
        self.out.write(&compressed)?;
        self.out.write(b"\nendstream\nendobj\n")
    }
}

/// The current page's content stream and the fonts that measure and encode its text.
struct Canvas {
    content: Vec<u8>,
    regular: Font,
    bold: Font,
}

impl Canvas {
    fn font(&mut self, face: Face) -> &mut Font {
        match face {
            Face::Regular => &mut self.regular,
            Face::Bold => &mut self.bold,
        }
    }

    fn width(&mut self, face: Face, size: f32, text: &str) -> f32 {
        self.font(face).width(text, size)
    }

    fn wrap(
        &mut self,
        face: Face,
        size: f32,
        text: &str,
        width: f32,
        max_lines: usize,
    ) -> Vec<String> {
        text::wrap(self.font(face), size, text, width, max_lines)
    }

    /// One line of text with its baseline starting at (`x`, `y`).
    fn text(&mut self, face: Face, size: f32, x: f32, y: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        let name = match face {
            Face::Regular => "F1",
            Face::Bold => "F2",
        };
        self.content.extend_from_slice(b"BT /");
        self.content.extend_from_slice(name.as_bytes());
        self.content.push(b' ');
        put_number(&mut self.content, size);
        self.content.extend_from_slice(b" Tf ");
        put_number(&mut self.content, x);
        self.content.push(b' ');
        put_number(&mut self.content, y);
        self.content.extend_from_slice(b" Td ");
        let font = match face {
            Face::Regular => &mut self.regular,
            Face::Bold => &mut self.bold,
        };
        font.encode(&bidi::visual(text), &mut self.content);
        self.content.extend_from_slice(b" Tj ET\n");
    }

    /// Sets the fill colour (text and shapes) to a gray level, 0 being black.
    fn gray(&mut self, level: f32) {
        put_number(&mut self.content, level);
        self.content.extend_from_slice(b" g\n");
    }

    fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, gray: f32) {
        self.content.extend_from_slice(b"q ");
        self.gray(gray);
        for value in [x, y, width, height] {
            put_number(&mut self.content, value);
            self.content.push(b' ');
        }
        self.content.extend_from_slice(b"re f Q\n");
    }

    fn hline(&mut self, x: f32, y: f32, length: f32, thickness: f32, gray: f32) {
        self.content.extend_from_slice(b"q ");
        put_number(&mut self.content, gray);
        self.content.extend_from_slice(b" G ");
        put_number(&mut self.content, thickness);
        self.content.extend_from_slice(b" w ");
        let y = y - thickness / 2.0;
        for value in [x, y] {
            put_number(&mut self.content, value);
            self.content.push(b' ');
        }
        self.content.extend_from_slice(b"m ");
        for value in [x + length, y] {
            put_number(&mut self.content, value);
            self.content.push(b' ');
        }
        self.content.extend_from_slice(b"l S Q\n");
    }
}

/// Buffers small writes and counts bytes, for the cross-reference table's offsets.
struct Output<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    position: u64,
}

impl<W: Write> Output<W> {
    const BUFFER: usize = 64 * 1024;

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.position += bytes.len() as u64;
        if self.buffer.len() + bytes.len() > Self::BUFFER {
            self.inner
                .write_all(&self.buffer)
                .context("writing the PDF dossier")?;
            self.buffer.clear();
        }
        if bytes.len() >= Self::BUFFER {
            self.inner
                .write_all(bytes)
                .context("writing the PDF dossier")
        } else {
            self.buffer.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.inner
            .write_all(&self.buffer)
            .context("writing the PDF dossier")?;
        self.buffer.clear();
        self.inner.flush().context("writing the PDF dossier")
    }
}

/// A PDF text string for the document information: UTF-16BE with a byte order mark, in hex,
/// so that any title is safe.
fn text_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        out.push_str(&format!("{unit:04X}"));
    }
    out.push('>');
    out
}

#[cfg(test)]
mod tests;
