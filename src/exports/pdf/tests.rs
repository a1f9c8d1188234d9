//! The dossier is checked with poppler's tools (poppler-utils: pdfinfo, pdftotext, pdftoppm),
//! which read it as a viewer would and complain on standard error about anything malformed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Duration, NaiveDate};

use super::{DossierCover, DossierRow, DossierWriter};

fn cover(title: &str, body: &str, confirmed_count: i64) -> DossierCover {
    let first = NaiveDate::from_ymd_opt(2026, 3, 2)
        .unwrap()
        .and_hms_opt(9, 15, 0)
        .unwrap();
    DossierCover {
        title: title.to_owned(),
        targets: vec![
            (
                "Jonas Gahr Støre".to_owned(),
                "Prime Minister of Norway".to_owned(),
            ),
            ("Стортинг".to_owned(), String::new()),
        ],
        body: body.to_owned(),
        version_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            .to_owned(),
        confirmed_count,
        first_signature: (confirmed_count > 0).then_some(first),
        last_signature: (confirmed_count > 0).then_some(first + Duration::days(40)),
        instance_url: "https://petitions.example.org".to_owned(),
        generated_at: first + Duration::days(41),
    }
}

/// A path in the temporary directory for this test; removed when dropped.
struct TempPdf(PathBuf);

impl TempPdf {
    fn new(name: &str) -> TempPdf {
        TempPdf(std::env::temp_dir().join(format!(
            "undersign-dossier-{}-{name}.pdf",
            std::process::id()
        )))
    }
}

impl Drop for TempPdf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        for page in 1..=3 {
            let _ = std::fs::remove_file(format!("{}-{page}.png", self.0.display()));
        }
    }
}

/// Runs a poppler tool and returns its standard output; fails if it is missing, fails, or
/// says anything on standard error.
fn poppler(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {tool} ({error}): install poppler-utils (pdfinfo, pdftotext, pdftoppm)"
            )
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{tool} failed: {stderr}");
    assert!(stderr.trim().is_empty(), "{tool} complained: {stderr}");
    String::from_utf8(output.stdout).expect("poppler writes UTF-8")
}

/// The header and end of file, and the cross-reference table: poppler silently rebuilds a
/// broken one, so every entry is checked to point at its object.
fn check_envelope(pdf: &Path) {
    let bytes = std::fs::read(pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-1.7\n"));
    assert!(bytes.trim_ascii_end().ends_with(b"%%EOF"));
    let tail = String::from_utf8_lossy(&bytes[bytes.len() - 40..]).into_owned();
    let xref_at: usize = tail
        .split("startxref\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|offset| offset.parse().ok())
        .unwrap_or_else(|| panic!("no startxref in {tail:?}"));
    let xref = &bytes[xref_at..];
    let header_end = xref.iter().skip(5).position(|&b| b == b'\n').unwrap() + 6;
    let header = std::str::from_utf8(&xref[..header_end]).unwrap();
    let size: usize = header
        .strip_prefix("xref\n0 ")
        .and_then(|size| size.trim().parse().ok())
        .unwrap_or_else(|| panic!("bad xref header {header:?}"));
    for id in 0..size {
        let entry =
            std::str::from_utf8(&xref[header_end + 20 * id..header_end + 20 * (id + 1)]).unwrap();
        assert_eq!(entry.len(), 20);
        assert!(entry.ends_with(" \n"), "{entry:?}");
        if id == 0 {
            assert_eq!(entry, "0000000000 65535 f \n");
            continue;
        }
        assert!(
            entry.ends_with("n \n"),
            "object {id} is not in use: {entry:?}"
        );
        let offset: usize = entry[..10].parse().unwrap();
        assert!(
            bytes[offset..].starts_with(format!("{id} 0 obj\n").as_bytes()),
            "object {id} is not at {offset}"
        );
    }
    let trailer = String::from_utf8_lossy(&xref[header_end + 20 * size..]).into_owned();
    assert!(
        trailer.starts_with(&format!("trailer\n<< /Size {size} ")),
        "{trailer}"
    );
}

fn info_field<'a>(info: &'a str, field: &str) -> &'a str {
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
}

const NAMES: [&str; 12] = [
    "Ingrid Solberg",
    "Дарына Ковальчык-Сямёнава",
    "Святослав Огієнко",
    "Małgorzata Żółkiewska",
    "Řehoř Šťastný",
    "Zoë 🌻 Lindqvist",
    "سارة المنصوري",
    "נועה בן דוד",
    "Anna\nLena \"Lenni\" Berg, Jr.",
    "Maximiliana Wilhelmina Theodora von Hohenzollern-Sigmaringen-Württemberg zu Oberschwaben-Allgäu und Lichtenstein-Rheinfelden",
    "Hubertblainewolfeschlegelsteinhausenbergerdorffvoralternwarengewissenhaftschaferswessenschafewarenwohlgepflegeundsorgfaltigkeitbeschutzenvorangreifendurchihrraubgierigfeinde",
    "O'Brien, Siobhán",
];

#[test]
fn dossier_renders_every_script_and_reads_back() {
    let rows = 3000;
    let body =
        "We, the undersigned, ask the **Storting** to protect the *Hardangervidda* plateau.\n\n\
                - stop the new road\n- fund the [reindeer survey](https://example.org/survey)\n\n\
                Мы просім захаваць плато для будучых пакаленняў.\n\n"
            .repeat(4);
    let cover = cover(
        "Protect the Hardangervidda: no road through the reindeer's winter grounds",
        &body,
        rows,
    );
    let by_country = vec![
        ("Norway".to_owned(), 2400),
        ("Belarus".to_owned(), 350),
        ("Congo, The Democratic Republic of the".to_owned(), 150),
        ("Poland".to_owned(), 100),
    ];
    let pdf = TempPdf::new("scripts");
    let mut writer =
        DossierWriter::new(File::create(&pdf.0).unwrap(), &cover, &by_country).unwrap();
    let start = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    for i in 0..rows {
        writer
            .add(&DossierRow {
                name: NAMES[i as usize % NAMES.len()],
                place: if i % 3 == 0 { "" } else { "0150 Oslo" },
                country: if i % 5 == 0 {
                    "Congo, The Democratic Republic of the"
                } else {
                    "Norway"
                },
                date: start + Duration::days(i / 75),
            })
            .unwrap();
    }
    let pages = writer.page_count();
    writer.finish().unwrap();
    check_envelope(&pdf.0);

    let path = pdf.0.to_str().unwrap();
    let info = poppler("pdfinfo", &[path]);
    assert_eq!(info_field(&info, "Pages"), pages.to_string());
    assert!(pages > 3000 / 60, "{pages} pages");
    assert_eq!(info_field(&info, "Producer"), "undersign");
    assert_eq!(info_field(&info, "Title"), cover.title);
    assert!(info_field(&info, "CreationDate").contains("2026"), "{info}");

    // In layout mode, text keeps its lines (labels beside their values, rows of the table).
    let text = poppler("pdftotext", &["-layout", "-enc", "UTF-8", path, "-"]);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        &cover.title[..],
        "To: Jonas Gahr Støre, Prime Minister of Norway",
        "Стортинг",
        "We, the undersigned, ask the Storting to protect the Hardangervidda plateau.",
        "fund the reindeer survey (https://example.org/survey)",
        "Мы просім захаваць плато для будучых пакаленняў.",
        "Confirmed signatures 3,000",
        "2026-03-02 – 2026-04-11 (UTC)",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "https://petitions.example.org",
        "2026-04-12 09:15 UTC",
        "Signatures by country",
        "Norway 2,400 80.0%",
        "Total 3,000 100%",
        "List of signatures",
        "Postal code/place",
        "Lena \"Lenni\" Berg, Jr.",
        "O'Brien, Siobhán",
        &format!("Page {pages}"),
    ] {
        assert!(
            flat.contains(expected),
            "{expected:?} missing from the text"
        );
    }
    assert!(!flat.contains("**"), "emphasis markers are printed");
    // Every row is there, one name per cell.
    // Right-to-left names are drawn in display order, and read back in logical order.
    for name in &NAMES[..8] {
        let count = text.matches(name).count();
        assert_eq!(count, 3000 / NAMES.len(), "{name}");
    }
    assert!(text.contains("3000"));
    // The very long names were cut with an ellipsis rather than run into the next column.
    assert!(text.contains('…'));

    // Rendering goes through the embedded fonts, which poppler checks as it draws.
    let last = pages.to_string();
    poppler(
        "pdftoppm",
        &["-r", "20", "-png", "-f", "1", "-l", "3", path, path],
    );
    poppler(
        "pdftoppm",
        &["-r", "20", "-png", "-f", &last, "-l", &last, path, path],
    );
    let _ = std::fs::remove_file(format!("{path}-{last}.png"));
}

#[test]
fn an_empty_dossier_is_a_valid_pdf() {
    let mut cover = cover("", "", 0);
    cover.targets.clear();
    let pdf = TempPdf::new("empty");
    let writer = DossierWriter::new(File::create(&pdf.0).unwrap(), &cover, &[]).unwrap();
    assert_eq!(writer.page_count(), 2);
    writer.finish().unwrap();
    check_envelope(&pdf.0);
    let path = pdf.0.to_str().unwrap();
    let info = poppler("pdfinfo", &[path]);
    assert_eq!(info_field(&info, "Pages"), "2");
    let text = poppler("pdftotext", &["-enc", "UTF-8", path, "-"]);
    assert!(text.contains("No signatures."), "{text}");
    assert!(text.contains("no signatures yet"), "{text}");
    poppler(
        "pdftoppm",
        &["-r", "20", "-png", "-f", "1", "-l", "2", path, path],
    );
}

#[test]
fn finish_hands_back_the_output() {
    let cover = cover("Короткая петыцыя", "Текст.", 1);
    let mut writer = DossierWriter::new(Vec::new(), &cover, &[("Belarus".to_owned(), 1)]).unwrap();
    writer
        .add(&DossierRow {
            name: "Ян Шчасны",
            place: "220030 Мінск",
            country: "Belarus",
            date: NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        })
        .unwrap();
    let bytes = writer.finish().unwrap();
    assert!(bytes.starts_with(b"%PDF-1.7"));
    assert!(bytes.ends_with(b"%%EOF\n"));
}

/// `cargo test --release dossier_of_a_million -- --ignored --nocapture`
#[test]
#[ignore = "slow: measures a million rows"]
fn dossier_of_a_million_rows() {
    struct Counting(u64);
    impl std::io::Write for Counting {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let rows = 1_000_000;
    let started = Instant::now();
    let cover = cover("A million signatures", "Text.", rows);
    let mut writer =
        DossierWriter::new(Counting(0), &cover, &[("Norway".to_owned(), rows)]).unwrap();
    let start = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    for i in 0..rows {
        let name = format!("{} {i}", NAMES[i as usize % 9].replace('\n', " "));
        writer
            .add(&DossierRow {
                name: &name,
                place: "0150 Oslo",
                country: "Norway",
                date: start + Duration::days(i / 10_000),
            })
            .unwrap();
    }
    let pages = writer.page_count();
    let out = writer.finish().unwrap();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!(
        "{rows} rows: {pages} pages, {:.1} MB in {:.1?}; {peak}",
        out.0 as f64 / 1e6,
        started.elapsed()
    );
}
