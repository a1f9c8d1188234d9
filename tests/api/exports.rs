//! Exports of a petition's confirmed signatures, from the dashboard and the command line: CSV
//! and NDJSON parsed back and compared with the database exactly (quotes, commas, line breaks,
//! Cyrillic, right-to-left scripts, emoji, formula-looking names), the byte-order mark and
//! email addresses only on request, the filters, who may export, bad parameters, the audit log,
//! and the PDF dossier read back with `pdftotext`.

use std::process::Command;
use undersign::safety::encryption::Field;

use awc::http::StatusCode;
use chrono::{NaiveDate, NaiveDateTime, SecondsFormat};
use diesel::prelude::*;
use undersign::db::schema::{audit_log, petition_versions, petitions, signatures};
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{Backend, Download, Session, TestApp};

backend_tests!(
    csv_and_ndjson_round_trip_exactly,
    byte_order_mark_and_emails_only_on_request,
    filters_by_country_and_confirmation_day,
    bad_parameters_are_400_and_other_petitions_404,
    only_a_post_with_the_csrf_token_exports,
    the_command_line_writes_the_same_files,
    the_pdf_dossier_lists_the_names_and_never_an_email_address,
);

const SLUG: &str = "export-me";

/// A signer as sent to the public signing API.
struct Signer {
    name: &'static str,
    email: &'static str,
    country: &'static str,
    postal_code: &'static str,
    comment: &'static str,
    public: bool,
}

const fn signer(name: &'static str, email: &'static str, country: &'static str) -> Signer {
    Signer {
        name,
        email,
        country,
        postal_code: "",
        comment: "",
        public: false,
    }
}

/// Names and comments the signing form accepts, each a trap for a careless exporter.
const SIGNERS: &[Signer] = &[
    Signer {
        postal_code: "0150",
        public: true,
        ..signer("Ana \"Nina\" Ivanova", "ana@example.org", "NO")
    },
    Signer {
        comment: "Free them, \"all\" of them",
        ..signer("Ivanov, Ivan", "ivan@example.org", "BY")
    },
    Signer {
        comment: "Першы радок\nдругі радок",
        public: true,
        ..signer("Анна Іваненка", "anna@example.org", "BY")
    },
    signer("مريم الحسن", "maryam@example.org", "EG"),
    signer("שרה לוי", "sara@example.org", "IL"),
    Signer {
        comment: "🌻🌻\r\n🌻",
        ..signer("Zoë 🌻 Smith", "zoe@example.org", "GB")
    },
    signer("=SUM(1)", "formula@example.org", "DE"),
    signer("+1", "plus@example.org", "DE"),
    Signer {
        postal_code: "-0150",
        ..signer("-1", "minus@example.org", "DE")
    },
    Signer {
        comment: "=HYPERLINK(\"http://evil.example\",\"click\")",
        ..signer("@x", "at@example.org", "DE")
    },
    signer("'t Hart", "hart@example.org", "NL"),
    signer("'=SUM(2)", "apostrophe@example.org", "NL"),
];

/// Names the signing form refuses (control characters), inserted directly: an export must
/// still survive whatever is in the database, e.g. rows from an import or an older version.
const STORED_NAMES: &[&str] = &["Line\nBreak", "\tTab", "\rReturn", "Two\r\nLines"];

async fn sign(app: &TestApp, signer: &Signer) {
    let response = app
        .post_json(
            &format!("/api/v1/petitions/{SLUG}/signatures"),
            &serde_json::json!({
                "name": signer.name,
                "email": signer.email,
                "country": signer.country,
                "postal_code": signer.postal_code,
                "comment": signer.comment,
                "public": signer.public,
                "consent": true,
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
}

async fn sign_and_confirm(app: &TestApp, signer: &Signer) {
    sign(app, signer).await;
    let path = app.confirmation_path(signer.email, 1).await;
    let confirmed = app.post_form(&path, "").await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
}

/// Inserts a signature directly with the given status and confirmation time.
async fn insert(
    app: &TestApp,
    name: &str,
    email: &str,
    country: &str,
    status: &'static str,
    confirmed_at: Option<NaiveDateTime>,
) -> i64 {
    let (name, email, country) = (name.to_owned(), email.to_owned(), country.to_owned());
    let (key, email_key) = (app.data_key(), app.email_key(&email));
    app.db(move |conn| {
        let petition_id: i64 = petitions::table
            .filter(petitions::slug.eq(SLUG))
            .select(petitions::id)
            .first(conn)
            .unwrap();
        let version_id =
            undersign::petitions::queries::current_version_id(conn, petition_id).unwrap();
        let signed_at =
            confirmed_at.unwrap_or_else(undersign::core::clock::now) - chrono::Duration::hours(1);
        diesel::insert_into(signatures::table)
            .values((
                signatures::petition_id.eq(petition_id),
                signatures::version_id.eq(version_id),
                signatures::email_key.eq(email_key),
                signatures::email.eq(key.seal(Field::Email, &email)),
                signatures::name.eq(key.seal(Field::Name, &name)),
                signatures::country.eq(&country),
                signatures::disclosure.eq("public"),
                signatures::status.eq(status),
                signatures::confirmation_emails.eq(1),
                signatures::created_at.eq(signed_at),
                signatures::confirmed_at.eq(confirmed_at),
                signatures::updated_at.eq(signed_at),
            ))
            .returning(signatures::id)
            .get_result::<i64>(conn)
            .unwrap()
    })
    .await
}

/// A confirmed signature as the database holds it.
#[derive(Debug, Clone)]
struct Stored {
    id: i64,
    name: String,
    email: String,
    country: String,
    postal_code: Option<String>,
    comment: Option<String>,
    disclosure: String,
    version_sha256: String,
    signed_at: NaiveDateTime,
    confirmed_at: Option<NaiveDateTime>,
    commitment: Option<String>,
}

type StoredTuple = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
);

/// Every confirmed signature of the petition, in id order.
async fn confirmed_rows(app: &TestApp) -> Vec<Stored> {
    let rows: Vec<StoredTuple> = app
        .db(|conn| {
            signatures::table
                .inner_join(petitions::table)
                .inner_join(petition_versions::table)
                .filter(petitions::slug.eq(SLUG))
                .filter(signatures::status.eq("confirmed"))
                .order(signatures::id.asc())
                .select((
                    signatures::id,
                    signatures::name,
                    signatures::email,
                    signatures::country,
                    signatures::postal_code,
                    signatures::comment,
                    signatures::disclosure,
                    petition_versions::text_sha256,
                    signatures::created_at,
                    signatures::confirmed_at,
                    signatures::commitment,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    let key = app.data_key();
    rows.into_iter()
        .map(|row| Stored {
            id: row.0,
            name: key.open(Field::Name, &row.1).unwrap(),
            email: key.open(Field::Email, &row.2).unwrap(),
            country: row.3,
            postal_code: key.open_opt(Field::PostalCode, row.4.as_deref()).unwrap(),
            comment: key.open_opt(Field::Comment, row.5.as_deref()).unwrap(),
            disclosure: row.6,
            version_sha256: row.7,
            signed_at: row.8,
            confirmed_at: row.9,
            commitment: row.10,
        })
        .collect()
}

fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A strict RFC 4180 reader: records end with CRLF (the last one too), a field is either
/// plain (no quotes, commas, CR or LF) or quoted with quotes doubled inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c != '"' {
                field.push(c);
            } else if chars.peek() == Some(&'"') {
                chars.next();
                field.push('"');
            } else {
                in_quotes = false;
                assert!(
                    matches!(chars.peek(), Some(',' | '\r')),
                    "{:?} after a closing quote",
                    chars.peek()
                );
            }
            continue;
        }
        match c {
            '"' => {
                assert!(at_field_start, "a quote inside a plain field: {field:?}");
                in_quotes = true;
                at_field_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a CR outside quotes without LF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            '\n' => panic!("a bare LF outside quotes"),
            other => {
                field.push(other);
                at_field_start = false;
            }
        }
    }
    assert!(!in_quotes, "an unterminated quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record does not end with CRLF"
    );
    for record in &records {
        assert_eq!(record.len(), records[0].len(), "ragged record {record:?}");
    }
    records
}

/// Undoes the neutralisation documented in the README: one leading apostrophe goes when what
/// follows it, after any further apostrophes, starts with =, +, -, @, tab or CR.
fn unneutralise(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest)
            if rest
                .trim_start_matches('\'')
                .starts_with(['=', '+', '-', '@', '\t', '\r']) =>
        {
            rest.to_owned()
        }
        _ => cell.to_owned(),
    }
}

const HEADER: &[&str] = &[
    "id",
    "name",
    "country",
    "postal_code",
    "comment",
    "disclosure",
    "version_sha256",
    "signed_at",
    "confirmed_at",
    "commitment",
];

/// The CSV record of a stored signature, before neutralisation.
fn expected_record(row: &Stored, with_email: bool) -> Vec<String> {
    let mut record = vec![row.id.to_string(), row.name.clone()];
    if with_email {
        record.push(row.email.clone());
    }
    record.extend([
        row.country.clone(),
        row.postal_code.clone().unwrap_or_default(),
        row.comment.clone().unwrap_or_default(),
        row.disclosure.clone(),
        row.version_sha256.clone(),
        rfc3339(row.signed_at),
        rfc3339(row.confirmed_at.expect("confirmed")),
        row.commitment.clone().unwrap_or_default(),
    ]);
    record
}

/// A CSV record with the text cells (name, email, postal code, comment) restored.
fn restored(record: &[String], with_email: bool) -> Vec<String> {
    let text_cells: &[usize] = if with_email {
        &[1, 2, 4, 5]
    } else {
        &[1, 3, 4]
    };
    record
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            if text_cells.contains(&i) {
                unneutralise(cell)
            } else {
                cell.clone()
            }
        })
        .collect()
}

fn expected_json(row: &Stored, with_email: bool) -> serde_json::Value {
    let mut value = serde_json::json!({
        "id": row.id,
        "name": row.name,
        "country": row.country,
        "postal_code": row.postal_code,
        "comment": row.comment,
        "disclosure": row.disclosure,
        "version_sha256": row.version_sha256,
        "signed_at": rfc3339(row.signed_at),
        "confirmed_at": rfc3339(row.confirmed_at.expect("confirmed")),
        "commitment": row.commitment,
    });
    if with_email {
        value["email"] = serde_json::Value::String(row.email.clone());
    }
    value
}

fn parse_ndjson(text: &str) -> Vec<serde_json::Value> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line ends with LF"
    );
    text.split_terminator('\n')
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// An app with the petition, run by a signed-in organizer.
async fn app_with_organizer(backend: Backend) -> (TestApp, Session) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    let session = app
        .signed_in("organizer@example.org", Role::Organizer)
        .await;
    app.add_organizer(SLUG, "organizer@example.org").await;
    (app, session)
}

/// Where the dashboard's Export form posts.
fn export_path() -> String {
    format!("/admin/petitions/{SLUG}/export")
}

/// Downloads an export as the dashboard's form does: a POST with the session's CSRF token.
async fn post_export(app: &TestApp, session: &Session, form: &str) -> Download {
    app.post_download_as(session, &export_path(), form).await
}

async fn csv_records(app: &TestApp, session: &Session, query: &str) -> Vec<Vec<String>> {
    let download = post_export(app, session, query).await;
    assert_eq!(download.status, StatusCode::OK, "{}", download.text());
    parse_csv(download.text())
}

async fn csv_ids(app: &TestApp, session: &Session, query: &str) -> Vec<i64> {
    csv_records(app, session, &format!("format=csv&{query}"))
        .await
        .iter()
        .skip(1)
        .map(|record| record[0].parse().unwrap())
        .collect()
}

async fn csv_and_ndjson_round_trip_exactly(backend: Backend) {
    let (app, session) = app_with_organizer(backend).await;
    for signer in SIGNERS {
        sign_and_confirm(&app, signer).await;
    }
    let now = undersign::core::clock::now();
    for (i, name) in STORED_NAMES.iter().enumerate() {
        insert(
            &app,
            name,
            &format!("stored{i}@example.org"),
            "SE",
            "confirmed",
            Some(now),
        )
        .await;
    }
    // Neither a pending nor an invalidated signature is exported.
    sign(&app, &signer("Pending Person", "pending@example.org", "NO")).await;
    insert(
        &app,
        "Invalidated Person",
        "invalid@example.org",
        "NO",
        "invalidated",
        Some(now),
    )
    .await;

    let stored = confirmed_rows(&app).await;
    assert_eq!(stored.len(), SIGNERS.len() + STORED_NAMES.len());

    let records = csv_records(&app, &session, "format=csv").await;
    assert_eq!(records[0], HEADER);
    assert_eq!(records.len() - 1, stored.len());
    for (record, row) in records[1..].iter().zip(&stored) {
        assert_eq!(restored(record, false), expected_record(row, false));
    }
    let written = |name: &str| -> String {
        let id = stored.iter().find(|row| row.name == name).unwrap().id;
        records[1..]
            .iter()
            .find(|record| record[0] == id.to_string())
            .unwrap()[1]
            .clone()
    };
    assert_eq!(written("=SUM(1)"), "'=SUM(1)");
    assert_eq!(written("+1"), "'+1");
    assert_eq!(written("-1"), "'-1");
    assert_eq!(written("@x"), "'@x");
    assert_eq!(written("\tTab"), "'\tTab");
    assert_eq!(written("\rReturn"), "'\rReturn");
    assert_eq!(written("'=SUM(2)"), "''=SUM(2)");
    assert_eq!(written("'t Hart"), "'t Hart");
    assert_eq!(written("Анна Іваненка"), "Анна Іваненка");
    let hyperlink = records[1..]
        .iter()
        .find(|record| record[1] == "'@x")
        .unwrap();
    assert_eq!(
        hyperlink[4],
        "'=HYPERLINK(\"http://evil.example\",\"click\")"
    );
    let minus = records[1..]
        .iter()
        .find(|record| record[1] == "'-1")
        .unwrap();
    assert_eq!(minus[3], "'-0150", "postal codes are text cells too");

    let download = post_export(&app, &session, "format=ndjson").await;
    assert_eq!(download.status, StatusCode::OK);
    let lines = parse_ndjson(download.text());
    assert_eq!(lines.len(), stored.len());
    for (line, row) in lines.iter().zip(&stored) {
        assert_eq!(
            line,
            &expected_json(row, false),
            "NDJSON is never neutralised"
        );
    }
}

async fn byte_order_mark_and_emails_only_on_request(backend: Backend) {
    let (app, session) = app_with_organizer(backend).await;
    for signer in &SIGNERS[..3] {
        sign_and_confirm(&app, signer).await;
    }
    let stored = confirmed_rows(&app).await;
    let dashboard = app
        .get_as(&session, &format!("/admin/petitions/{SLUG}"))
        .await;
    assert!(dashboard
        .body
        .contains(&format!("action=\"/admin/petitions/{SLUG}/export\"")));

    let plain = post_export(&app, &session, "format=csv").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(
        plain.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        plain.header("content-disposition"),
        Some("attachment; filename=\"export-me-signatures.csv\"")
    );
    assert_eq!(plain.header("cache-control"), Some("no-store"));
    assert!(plain.body.starts_with(b"id,name,country,"));
    for row in &stored {
        assert!(!plain.text().contains(&row.email), "no email addresses");
    }

    let full = post_export(&app, &session, "format=csv&email=1&bom=1").await;
    assert_eq!(full.status, StatusCode::OK);
    assert!(full.body.starts_with(b"\xEF\xBB\xBFid,name,email,country,"));
    let records = parse_csv(full.text().strip_prefix('\u{feff}').unwrap());
    assert_eq!(records[0][2], "email");
    assert_eq!(records.len() - 1, stored.len());
    for (record, row) in records[1..].iter().zip(&stored) {
        assert_eq!(restored(record, true), expected_record(row, true));
    }

    let plain = post_export(&app, &session, "format=ndjson&bom=1").await;
    assert_eq!(plain.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        plain.header("content-disposition"),
        Some("attachment; filename=\"export-me-signatures.ndjson\"")
    );
    assert!(plain.body.starts_with(b"{\"id\":"), "no byte-order mark");
    for (line, row) in parse_ndjson(plain.text()).iter().zip(&stored) {
        assert_eq!(line, &expected_json(row, false));
        assert!(line.get("email").is_none());
    }
    let full = post_export(&app, &session, "format=ndjson&email=1").await;
    let lines = parse_ndjson(full.text());
    assert_eq!(lines.len(), stored.len());
    for (line, row) in lines.iter().zip(&stored) {
        assert_eq!(line, &expected_json(row, true));
    }

    // Every export is traceable: who, which petition, which filter, whether emails left.
    let entries: Vec<(Option<i64>, Option<i64>, String, String)> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.like("export.%"))
                .order(audit_log::id.asc())
                .select((
                    audit_log::user_id,
                    audit_log::petition_id,
                    audit_log::action,
                    audit_log::details,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|(_, _, action, details)| (action.as_str(), details.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("export.csv", "all signatures; without email addresses"),
            ("export.csv", "all signatures; with email addresses"),
            ("export.ndjson", "all signatures; without email addresses"),
            ("export.ndjson", "all signatures; with email addresses"),
        ]
    );
    assert!(entries
        .iter()
        .all(|(user, petition, _, _)| user.is_some() && petition.is_some()));
}

fn at(day: u32, hour: u32, minute: u32, second: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 3, day)
        .unwrap()
        .and_hms_opt(hour, minute, second)
        .unwrap()
}

async fn filters_by_country_and_confirmation_day(backend: Backend) {
    let (app, session) = app_with_organizer(backend).await;
    let last_moment_of_the_1st = at(1, 23, 59, 59);
    let a = insert(
        &app,
        "A",
        "a@example.org",
        "NO",
        "confirmed",
        Some(last_moment_of_the_1st),
    )
    .await;
    let b = insert(
        &app,
        "B",
        "b@example.org",
        "BY",
        "confirmed",
        Some(at(2, 0, 0, 0)),
    )
    .await;
    let late_on_the_2nd = at(2, 23, 59, 59) + chrono::Duration::milliseconds(999);
    let c = insert(
        &app,
        "C",
        "c@example.org",
        "NO",
        "confirmed",
        Some(late_on_the_2nd),
    )
    .await;
    let d = insert(
        &app,
        "D",
        "d@example.org",
        "BY",
        "confirmed",
        Some(at(3, 0, 0, 0)),
    )
    .await;
    let e = insert(
        &app,
        "E",
        "e@example.org",
        "DE",
        "confirmed",
        Some(at(4, 12, 0, 0)),
    )
    .await;

    assert_eq!(csv_ids(&app, &session, "").await, vec![a, b, c, d, e]);
    assert_eq!(csv_ids(&app, &session, "country=BY").await, vec![b, d]);
    assert_eq!(csv_ids(&app, &session, "country=no").await, vec![a, c]);
    assert_eq!(
        csv_ids(&app, &session, "country=FR").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        csv_ids(&app, &session, "from=2026-03-02&to=2026-03-02").await,
        vec![b, c],
        "both ends of the range are whole days, inclusive"
    );
    assert_eq!(csv_ids(&app, &session, "from=2026-03-03").await, vec![d, e]);
    assert_eq!(csv_ids(&app, &session, "to=2026-03-01").await, vec![a]);
    assert_eq!(
        csv_ids(&app, &session, "country=BY&from=2026-03-03&to=").await,
        vec![d]
    );
    let download = post_export(&app, &session, "format=ndjson&country=DE").await;
    let lines = parse_ndjson(download.text());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], e);
    assert_eq!(lines[0]["confirmed_at"], "2026-03-04T12:00:00Z");

    let details: Vec<String> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("export.csv"))
                .order(audit_log::id.desc())
                .select(audit_log::details)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        details[0],
        "country BY, confirmed from 2026-03-03; without email addresses"
    );
}

async fn bad_parameters_are_400_and_other_petitions_404(backend: Backend) {
    let (app, member) = app_with_organizer(backend).await;
    sign_and_confirm(&app, &SIGNERS[0]).await;
    let outsider = app.signed_in("outsider@example.org", Role::Organizer).await;

    for query in [
        "format=csv",
        "format=pdf",
        "format=ndjson&email=1",
        "format=xlsx",
    ] {
        let response = app.post_form_as(&outsider, &export_path(), query).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{query}");
        assert!(!response.body.contains("Ivanova"));
    }
    let response = app.post_form(&export_path(), "format=csv").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "sign in first");
    assert_eq!(response.header("location"), Some("/login"));
    let response = app
        .post_form_as(
            &member,
            "/admin/petitions/no-such-petition/export",
            "format=csv",
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);

    for query in [
        "",
        "format=",
        "format=xlsx",
        "format=CSV%00",
        "format=csv&country=XX",
        "format=csv&country=NOR",
        "format=csv&from=2026-13-01",
        "format=csv&to=yesterday",
        "format=csv&from=2026-03-02&to=2026-03-01",
        "format=csv&email=please",
        "format=ndjson&bom=2",
        "format=csv&name=%FF",
    ] {
        let response = app.post_form_as(&member, &export_path(), query).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            response
                .header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "{query}: an error page, not a download"
        );
        assert!(!response.body.contains("Ivanova"));
    }
    let exports: i64 = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.like("export.%"))
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(exports, 0, "refused exports are not exports");
}

async fn export_audit_entries(app: &TestApp) -> i64 {
    app.db(|conn| {
        audit_log::table
            .filter(audit_log::action.like("export.%"))
            .count()
            .get_result(conn)
            .unwrap()
    })
    .await
}

/// A link or an image on another site can make a signed-in browser send a GET, or a POST
/// without the session's CSRF token: neither exports anything or writes an audit entry.
async fn only_a_post_with_the_csrf_token_exports(backend: Backend) {
    let (app, session) = app_with_organizer(backend).await;
    sign_and_confirm(&app, &SIGNERS[0]).await;
    let email = SIGNERS[0].email;

    // The address a download used to have, with every parameter.
    for query in ["", "?format=csv&email=1", "?format=pdf", "?format=ndjson"] {
        let get = app
            .download_as(&session, &format!("{}{query}", export_path()))
            .await;
        assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED, "{query}");
        assert_eq!(get.header("allow"), Some("POST"));
        assert!(get.header("content-disposition").is_none(), "no file");
        assert!(!get.text().contains(email), "no signature in the answer");
    }
    assert_eq!(
        export_audit_entries(&app).await,
        0,
        "a GET is not an export"
    );

    let forged = [
        "format=csv&email=1".to_owned(),
        "csrf_token=&format=csv&email=1".to_owned(),
        "csrf_token=forged&format=csv&email=1".to_owned(),
        // Another session's token is not this one's.
        format!(
            "csrf_token={}&format=csv&email=1",
            app.signed_in("other@example.org", Role::Organizer)
                .await
                .csrf_token
        ),
    ];
    for body in &forged {
        let response = app.post_form_as_raw(&session, &export_path(), body).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{body}");
        assert!(response.header("content-disposition").is_none());
        assert!(!response.body.contains(email));
    }
    assert_eq!(
        export_audit_entries(&app).await,
        0,
        "a forged POST is not an export"
    );

    let download = post_export(&app, &session, "format=csv&email=1").await;
    assert_eq!(download.status, StatusCode::OK, "{}", download.text());
    assert!(download.text().contains(email));
    assert_eq!(export_audit_entries(&app).await, 1);
}

fn undersign_export(
    database_url: &str,
    data_key_file: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_undersign"))
        .arg("export")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("UNDERSIGN_DATA_KEY_FILE", data_key_file)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

async fn run_export(app: &TestApp, args: &[&str]) -> std::process::Output {
    let url = app.database.url.clone();
    let key_file = app.database.dir.join("data.key");
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    actix_web::rt::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        undersign_export(&url, &key_file, &args)
    })
    .await
    .unwrap()
}

async fn the_command_line_writes_the_same_files(backend: Backend) {
    let (app, session) = app_with_organizer(backend).await;
    for signer in &SIGNERS[..8] {
        sign_and_confirm(&app, signer).await;
    }
    insert(
        &app,
        "Two\r\nLines",
        "two@example.org",
        "SE",
        "confirmed",
        Some(undersign::core::clock::now()),
    )
    .await;

    let out = app.database.dir.join("signatures.csv");
    let out_arg = out.to_str().unwrap();
    let output = run_export(
        &app,
        &[
            "--petition",
            SLUG,
            "--format",
            "csv",
            "--include-email",
            "--bom",
            "--out",
            out_arg,
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stdout.is_empty(),
        "the file goes to --out, not stdout"
    );
    let from_route = post_export(&app, &session, "format=csv&email=1&bom=1").await;
    assert_eq!(std::fs::read(&out).unwrap(), from_route.body);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Exported 9 confirmed signatures"),
        "{stderr}"
    );
    assert!(!stderr.contains('\r'), "no progress bar without a terminal");

    let output = run_export(&app, &["--petition", SLUG, "--format", "csv"]).await;
    assert!(output.status.success());
    let from_route = post_export(&app, &session, "format=csv").await;
    assert_eq!(output.stdout, from_route.body, "standard output by default");

    let output = run_export(
        &app,
        &[
            "--petition",
            SLUG,
            "--format",
            "ndjson",
            "--country",
            "by",
            "--from",
            "2020-01-01",
        ],
    )
    .await;
    assert!(output.status.success());
    let from_route = post_export(&app, &session, "format=ndjson&country=BY&from=2020-01-01").await;
    assert_eq!(output.stdout, from_route.body);
    assert_eq!(
        parse_ndjson(&String::from_utf8(output.stdout).unwrap()).len(),
        2
    );

    let entries: Vec<(Option<i64>, String)> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::details.like("%from the command line"))
                .order(audit_log::id.asc())
                .select((audit_log::user_id, audit_log::details))
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[0],
        (
            None,
            "all signatures; with email addresses; from the command line".to_owned()
        )
    );

    let missing = app.database.dir.join("missing.csv");
    let failures: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "--petition",
                "no-such-petition",
                "--format",
                "csv",
                "--out",
                missing.to_str().unwrap(),
            ],
            "no petition \"no-such-petition\"",
        ),
        (
            vec!["--petition", SLUG, "--format", "xlsx"],
            "not an export format",
        ),
        (
            vec!["--petition", SLUG, "--format", "csv", "--country", "XX"],
            "country code",
        ),
        (
            vec!["--petition", SLUG, "--format", "csv", "--to", "2026-02-30"],
            "YYYY-MM-DD",
        ),
    ];
    for (args, message) in failures {
        let output = run_export(&app, &args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    assert!(!missing.exists(), "no file for a failed export");
}

/// The text of a PDF as `pdftotext` (poppler) extracts it.
fn pdf_text(dir: &std::path::Path, pdf: &[u8]) -> String {
    let path = dir.join("dossier.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(
        output.status.success(),
        "pdftotext cannot read the dossier: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn the_pdf_dossier_lists_the_names_and_never_an_email_address(backend: Backend) {
    let (app, session) = app_with_organizer(backend).await;
    for signer in &SIGNERS[..3] {
        sign_and_confirm(&app, signer).await;
    }

    // Asking for email addresses changes nothing: the dossier is handed over.
    let download = post_export(&app, &session, "format=pdf&email=1&bom=1").await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.header("content-type"), Some("application/pdf"));
    assert_eq!(
        download.header("content-disposition"),
        Some("attachment; filename=\"export-me-dossier.pdf\"")
    );
    assert_eq!(download.header("cache-control"), Some("no-store"));
    assert!(download.body.starts_with(b"%PDF-"));
    let text = pdf_text(&app.database.dir, &download.body);
    for expected in [
        "Free them all (export-me)",
        "The Prime Minister of Norway",
        "Ana \"Nina\" Ivanova",
        "Ivanov, Ivan",
        "Анна Іваненка",
        "Norway",
        "Belarus",
        "0150",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} is missing from:\n{text}"
        );
    }
    assert!(!text.contains('@'), "no email address in:\n{text}");

    let download = post_export(&app, &session, "format=pdf&country=BY").await;
    let text = pdf_text(&app.database.dir, &download.body);
    assert!(text.contains("Анна Іваненка") && text.contains("Ivanov, Ivan"));
    assert!(!text.contains("Ana \"Nina\" Ivanova"), "{text}");

    let details: Vec<String> = app
        .db(|conn| {
            audit_log::table
                .filter(audit_log::action.eq("export.pdf"))
                .order(audit_log::id.asc())
                .select(audit_log::details)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        details,
        vec![
            "all signatures; without email addresses",
            "country BY; without email addresses"
        ]
    );

    let out = app.database.dir.join("from-the-command-line.pdf");
    let output = run_export(
        &app,
        &[
            "--petition",
            SLUG,
            "--format",
            "pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = pdf_text(&app.database.dir, &std::fs::read(&out).unwrap());
    assert!(text.contains("Анна Іваненка") && text.contains("Ana \"Nina\" Ivanova"));
    let output = run_export(
        &app,
        &["--petition", SLUG, "--format", "pdf", "--include-email"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("never lists email addresses"));
}
