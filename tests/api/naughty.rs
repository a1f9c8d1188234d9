//! The bad-input corpus: naughty strings (injection, control characters, bidi overrides,
//! zero-width and astral characters, very long values, header injection, HTML and script
//! payloads, SQL-looking text, invalid UTF-8) pushed through the signing form, the JSON API,
//! the emails, the workspace pages, the petition forms and every export. Never a 500, always
//! escaped where shown, never an injected header. Then a seeded fuzz of form decoding,
//! validation and email normalisation.

use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use awc::http::StatusCode;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use undersign::core::email::EmailAddress;
use undersign::core::form::parse_urlencoded;
use undersign::delivery::csv_reader::CsvReader;
use undersign::organizers::accounts::Role;
use undersign::signatures::domain::SignatureInput;

use crate::backend_tests;
use crate::helpers::smtp::ReceivedMail;
use crate::helpers::{encode, Backend, Session, TestApp};

backend_tests!(
    naughty_signatures_are_refused_or_stored_and_always_escaped,
    naughty_petition_texts_are_escaped_in_the_workspace,
    a_petition_title_cannot_inject_email_headers,
    naughty_paths_and_queries_get_clear_answers,
);

const SLUG: &str = "naughty";

/// The corpus. Each value goes into one field at a time, the others being valid.
fn corpus() -> Vec<String> {
    let mut strings: Vec<String> = [
        "'; DROP TABLE signatures; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM petitions;--",
        "1' UNION SELECT email FROM signatures --",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)' x='",
        "</textarea><script>alert(1)</script>",
        "</title><svg onload=alert(1)>",
        "javascript:alert(1)",
        "{{ 7*7 }} ${7*7} {% raw %}",
        "&lt;script&gt; &amp; &#x3C;",
        "a\u{0}b",
        "%00",
        "bell\u{7} escape\u{1b}[31m del\u{7f}",
        "\u{202E}gnp.exe",
        "\u{2066}Ana\u{2069} \u{200F}",
        "A\u{200B}n\u{200D}a\u{FEFF}",
        "✊🏽 𝕬𝖓𝖆 👩‍👩‍👧 𠜎",
        "Z\u{324}\u{354}\u{367}\u{311}\u{313}a\u{308}\u{356}\u{32d}l\u{36e}\u{312}go",
        "Ana\r\nBcc: victim@example.org",
        "ana@example.org\r\nBcc: victim@example.org",
        "ana@example.org\nBcc: victim@example.org",
        "victim@example.org, other@example.org",
        "\"Ana\" <ana@example.org>",
        "line one\nline two\r\nSubject: hijacked",
        "\u{FFFD}\u{FFFF}\u{10FFFF}",
        "   ",
        "NO\u{0}",
        "no",
        "-0150",
        "=SUM(A1)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    strings.push("A".repeat(10_000));
    strings.push("<b>".repeat(3_000));
    strings
}

const FIELDS: [&str; 5] = ["name", "email", "country", "postal_code", "comment"];

/// A payload that could open a tag must never come back verbatim, and no tag in the page
/// may carry a script: event handlers and `javascript:` links only ever appear as text.
fn assert_escaped(what: &str, page: &str, value: &str) {
    if value.contains('<') {
        assert!(!page.contains(value), "{what}: {value:?} appears unescaped");
    }
    assert!(!page.contains("<script"), "{what}: a script tag");
    for tag in page.split('<').skip(1) {
        let tag = tag
            .split('>')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        for bad in [
            "href=\"javascript:",
            "src=\"javascript:",
            "action=\"javascript:",
        ] {
            assert!(!tag.contains(bad), "{what}: a tag carries {bad:?}: <{tag}>");
        }
        // Outside its quoted values, a tag has only its name and attribute names.
        let names = without_quoted_values(&tag);
        for bad in ["onerror", "onload", "onmouseover", "<", "'"] {
            assert!(
                !names.contains(bad),
                "{what}: a tag carries {bad:?}: <{tag}>"
            );
        }
    }
}

fn without_quoted_values(tag: &str) -> String {
    let mut out = String::new();
    let mut in_value = false;
    for c in tag.chars() {
        match c {
            '"' => in_value = !in_value,
            c if !in_value => out.push(c),
            _ => {}
        }
    }
    out
}

struct Accepted {
    email: String,
    field: &'static str,
    value: String,
}

async fn naughty_signatures_are_refused_or_stored_and_always_escaped(backend: Backend) {
    // The automatic abuse checks would hold hundreds of quick submissions from one address
    // back as suspect; this test is about what happens to the values.
    let app = TestApp::spawn_with(backend, |settings| settings.abuse_checks = false).await;
    app.create_petition_with(SLUG, |petition| {
        petition.title = "Free \"them\" <all> & 'now'".to_owned();
    })
    .await;
    let mut accepted = Vec::new();
    let mut n = 0;
    for value in corpus() {
        for field in FIELDS {
            for channel in ["form", "json"] {
                n += 1;
                let email = format!("signer{n}@example.org");
                let mut values = vec![
                    ("name", "Ana Ivanova".to_owned()),
                    ("email", email.clone()),
                    ("country", "NO".to_owned()),
                    ("postal_code", "0150".to_owned()),
                    ("comment", "Free them.".to_owned()),
                ];
                for (name, slot) in values.iter_mut() {
                    if *name == field {
                        *slot = value.clone();
                    }
                }
                let what = format!("{channel} {field}={value:.40?}");
                let response = if channel == "form" {
                    let mut body: Vec<String> = values
                        .iter()
                        .map(|(name, value)| format!("{name}={}", encode(value)))
                        .collect();
                    body.push("consent=on".to_owned());
                    app.post_form(&format!("/p/{SLUG}/sign"), &body.join("&"))
                        .await
                } else {
                    let mut json = serde_json::Map::new();
                    for (name, value) in &values {
                        json.insert((*name).to_owned(), value.clone().into());
                    }
                    json.insert("consent".to_owned(), true.into());
                    app.post_json(
                        &format!("/api/v1/petitions/{SLUG}/signatures"),
                        &json.into(),
                    )
                    .await
                };
                assert!(
                    !response.status.is_server_error(),
                    "{what}: {}",
                    response.status
                );
                assert_escaped(&what, &response.body, &value);
                match response.status {
                    StatusCode::SEE_OTHER | StatusCode::ACCEPTED => {
                        let typed = values
                            .iter()
                            .find(|(name, _)| *name == "email")
                            .map(|(_, value)| value.trim().to_owned())
                            .unwrap();
                        accepted.push(Accepted {
                            email: typed,
                            field,
                            value: value.clone(),
                        })
                    }
                    StatusCode::UNPROCESSABLE_ENTITY => {
                        if channel == "form" {
                            // Shown again to the signer, escaped, in the page.
                            assert!(response.body.contains("<form"), "{what}");
                        } else {
                            assert!(response.json()["errors"].is_object(), "{what}");
                        }
                    }
                    other => assert!(other.is_client_error(), "{what}: {other}"),
                }
            }
        }
    }
    // Values that are fine in some field (comments, names with HTML) are accepted somewhere.
    assert!(accepted
        .iter()
        .any(|a| a.field == "name" && a.value.contains("<script>")));
    assert!(accepted
        .iter()
        .any(|a| a.field == "comment" && a.value.contains('\n')));
    assert!(!accepted
        .iter()
        .any(|a| a.field == "email" && a.value.contains("Bcc")));

    // Invalid UTF-8, raw and percent-encoded, through both channels.
    for (content_type, body) in [
        (
            "application/x-www-form-urlencoded",
            b"name=\xc3\x28&email=x%40example.org&country=NO&consent=on".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"name=%ED%A0%80&email=x%40example.org&country=NO&consent=on".to_vec(),
        ),
        (
            "application/json",
            b"{\"name\": \"\xed\xa0\x80\", \"email\": \"x@example.org\"}".to_vec(),
        ),
        (
            "application/json",
            br#"{"name": "\ud800", "email": "x@example.org", "country": "NO", "consent": true}"#
                .to_vec(),
        ),
        (
            "application/json",
            br#"{"name": "\udc00\ud800", "email": "x@example.org", "country": "NO", "consent": true}"#
                .to_vec(),
        ),
        ("application/json", b"{\"name\": \"a\0b\"}".to_vec()),
    ] {
        let path = if content_type == "application/json" {
            format!("/api/v1/petitions/{SLUG}/signatures")
        } else {
            format!("/p/{SLUG}/sign")
        };
        let response = app.post_raw(&path, content_type, body.clone()).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}: {}",
            String::from_utf8_lossy(&body),
            response.body
        );
    }

    // The confirmation emails: one recipient each, no injected header, HTML escaped.
    let recipients: std::collections::HashSet<String> =
        accepted.iter().map(|a| a.email.to_lowercase()).collect();
    let sent = app
        .smtp
        .wait_for_messages(recipients.len(), Duration::from_secs(30))
        .await;
    assert_eq!(sent.len(), recipients.len());
    for mail in &sent {
        assert_eq!(mail.envelope_to.len(), 1, "{:?}", mail.envelope_to);
        assert_single_recipient(mail);
        let html = mail.html_body();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<all>"), "the title is escaped in the email");
    }
    assert!(app.smtp.messages_to("victim@example.org").is_empty());
    assert!(app.smtp.messages_to("other@example.org").is_empty());
    let hijacked = sent
        .iter()
        .any(|mail| mail.subject().contains("hijacked") || mail.header("bcc").is_some());
    assert!(!hijacked);

    // Confirm some signatures with naughty names and comments so that they are exported.
    let mut confirmed = 0;
    for signer in accepted
        .iter()
        .filter(|a| matches!(a.field, "name" | "comment" | "postal_code"))
        .take(40)
    {
        let path = app.confirmation_path(&signer.email, 1).await;
        let response = app.post_form(&path, "").await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        confirmed += 1;
    }

    // The workspace shows the names escaped.
    let session = app.signed_in("admin@example.org", Role::Admin).await;
    for path in [
        format!("/admin/petitions/{SLUG}"),
        format!("/admin/petitions/{SLUG}/signatures"),
        format!("/admin/petitions/{SLUG}/signatures?page=2"),
        format!(
            "/admin/petitions/{SLUG}/signatures?name={}",
            encode("<script>")
        ),
    ] {
        let page = app.get_as(&session, &path).await;
        assert!(!page.status.is_server_error(), "{path}: {}", page.status);
        for signer in &accepted {
            assert_escaped(&path, &page.body, &signer.value);
        }
    }

    check_exports(&app, &session, confirmed).await;
}

/// `To:` exactly once, no `Bcc:` or `Cc:` at all, in the raw header section.
fn assert_single_recipient(mail: &ReceivedMail) {
    let raw = String::from_utf8_lossy(&mail.raw);
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let names: Vec<String> = head
        .split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .collect();
    assert_eq!(
        names.iter().filter(|name| *name == "to").count(),
        1,
        "{head}"
    );
    assert!(
        !names.iter().any(|name| name == "bcc" || name == "cc"),
        "{head}"
    );
    assert_eq!(
        names.iter().filter(|name| *name == "subject").count(),
        1,
        "{head}"
    );
}

async fn check_exports(app: &TestApp, session: &Session, confirmed: usize) {
    let path = format!("/admin/petitions/{SLUG}/export");
    let export = |format: &str| format!("format={format}&email=1");

    let csv = app.post_download_as(session, &path, &export("csv")).await;
    assert_eq!(csv.status, StatusCode::OK);
    let mut reader = CsvReader::new(std::io::Cursor::new(csv.body.clone()));
    let header = reader.next_record().unwrap().expect("a header row");
    let mut rows = 0;
    while let Some(record) = reader.next_record().expect("the CSV parses") {
        assert_eq!(record.len(), header.len());
        rows += 1;
    }
    assert_eq!(rows, confirmed);

    let ndjson = app
        .post_download_as(session, &path, &export("ndjson"))
        .await;
    assert_eq!(ndjson.status, StatusCode::OK);
    let lines: Vec<serde_json::Value> = ndjson
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), confirmed);
    assert!(lines.iter().any(|line| line["name"]
        .as_str()
        .unwrap_or_default()
        .contains("<script>")));

    let pdf = app.post_download_as(session, &path, &export("pdf")).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.body.starts_with(b"%PDF"));
    let path = app.database.dir.join("naughty.pdf");
    std::fs::write(&path, &pdf.body).unwrap();
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
}

async fn naughty_petition_texts_are_escaped_in_the_workspace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let session = app.signed_in("olga@example.org", Role::Organizer).await;
    for (n, value) in corpus().into_iter().enumerate() {
        for field in ["title", "summary", "body", "targets"] {
            let slug = format!("naughty-{n}-{field}");
            let mut fields = [
                ("title", "Free them all".to_owned()),
                ("slug", slug.clone()),
                ("summary", "Release every political prisoner.".to_owned()),
                ("body", "Dear Prime Minister,\n\nact.".to_owned()),
                ("targets", "Jonas Gahr Støre, Prime Minister".to_owned()),
                ("goal", "100".to_owned()),
                ("closes_on", String::new()),
            ];
            for (name, slot) in fields.iter_mut() {
                if *name == field {
                    *slot = value.clone();
                }
            }
            let form = |action: &str| {
                let mut body = vec![format!("action={action}")];
                body.extend(
                    fields
                        .iter()
                        .map(|(name, value)| format!("{name}={}", encode(value))),
                );
                body.join("&")
            };
            let what = format!("{field}={value:.40?}");
            let preview = app
                .post_form_as(&session, "/admin/petitions", &form("preview"))
                .await;
            if value.contains('\0') {
                assert_eq!(preview.status, StatusCode::BAD_REQUEST, "preview {what}");
                continue;
            }
            assert_eq!(preview.status, StatusCode::OK, "preview {what}");
            assert_escaped(&format!("preview {what}"), &preview.body, &value);

            let saved = app
                .post_form_as(&session, "/admin/petitions", &form("save"))
                .await;
            assert!(
                !saved.status.is_server_error(),
                "save {what}: {}",
                saved.status
            );
            assert_escaped(&format!("save {what}"), &saved.body, &value);
            if saved.status == StatusCode::SEE_OTHER {
                for path in [
                    format!("/admin/petitions/{slug}"),
                    format!("/admin/petitions/{slug}/edit"),
                    "/admin".to_owned(),
                ] {
                    let page = app.get_as(&session, &path).await;
                    assert_eq!(page.status, StatusCode::OK, "{path} after {what}");
                    assert_escaped(&format!("{path} after {what}"), &page.body, &value);
                }
            } else {
                assert!(saved.status.is_client_error(), "save {what}");
            }
        }
    }
}

/// Titles reach the email subject. Even a title that never passed the form's checks (written
/// to the database directly) cannot add a header or a recipient.
async fn a_petition_title_cannot_inject_email_headers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.abuse_checks = false).await;
    let titles = [
        "Free them\r\nBcc: victim@example.org",
        "Free them\nTo: victim@example.org\n\n<script>alert(1)</script>",
        "=?utf-8?b?QmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?= \u{202E}",
    ];
    for (n, title) in titles.iter().enumerate() {
        let slug = format!("title-{n}");
        app.create_petition_with(&slug, |petition| petition.title = title.to_string())
            .await;
        let email = format!("signer{n}@example.org");
        let response = app.sign_json(&slug, &email).await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
        let mails = app
            .smtp
            .wait_for_messages_to(&email, 1, Duration::from_secs(10))
            .await;
        assert_single_recipient(&mails[0]);
        assert!(mails[0].header("bcc").is_none());
        assert!(!mails[0].html_body().contains("<script>alert"));
    }
    assert!(app.smtp.messages_to("victim@example.org").is_empty());
}

/// Naughty values in paths (slugs, tokens) and in the workspace's search and export queries.
async fn naughty_paths_and_queries_get_clear_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition(SLUG).await;
    let session = app.signed_in("admin@example.org", Role::Admin).await;
    let mut values = corpus();
    values.truncate(values.len() - 2);
    values.push("%ZZ".to_owned());
    app.sign_json(SLUG, "ana@example.org").await;
    let id = crate::moderation::signature_id(&app, SLUG, "ana@example.org").await;
    let token = app.create_api_token("admin@example.org").await;
    for value in &values {
        let text = encode(value);
        let forms = [
            (
                "/admin/users".to_owned(),
                format!("email={text}&role=organizer&password=a+long+enough+password"),
            ),
            ("/admin/tokens".to_owned(), format!("name={text}")),
            (
                format!("/admin/petitions/{SLUG}/signatures/invalidate"),
                format!("id={id}&reason={text}"),
            ),
            (
                format!("/admin/petitions/{SLUG}/signatures/restore"),
                format!("id={id}"),
            ),
        ];
        for (path, body) in forms {
            let response = app.post_form_as(&session, &path, &body).await;
            assert!(
                !response.status.is_server_error(),
                "{path} {value:.40?}: {}",
                response.status
            );
            assert_escaped(&path, &response.body, value);
        }
        // The recipient of a delivery is shown on the public page afterwards; the first
        // acceptable one delivers the petition, later ones are a 409.
        let delivered = app
            .post_download_as(
                &session,
                &format!("/admin/petitions/{SLUG}/deliver"),
                // Nobody has confirmed: the form's box says to deliver it anyway.
                &format!("to={text}&allow_empty=yes"),
            )
            .await;
        assert!(
            !delivered.status.is_server_error(),
            "deliver {value:.40?}: {}",
            delivered.status
        );
        let api = format!("/api/v1/admin/petitions/{SLUG}/signatures/{id}");
        let invalidated = app
            .api_post(
                &token,
                &format!("{api}/invalidate"),
                &serde_json::json!({ "reason": value }),
            )
            .await;
        assert!(!invalidated.status.is_server_error(), "{value:.40?}");
        let restored = app
            .api_post(&token, &format!("{api}/restore"), &serde_json::json!({}))
            .await;
        assert!(!restored.status.is_server_error(), "{value:.40?}");
    }
    assert_eq!(app.count_rows("deliveries").await, 1);
    for path in [
        "/admin/users".to_owned(),
        "/admin/tokens".to_owned(),
        format!("/admin/petitions/{SLUG}"),
        format!("/admin/petitions/{SLUG}/signatures"),
        format!("/admin/petitions/{SLUG}/deliveries"),
        format!("/p/{SLUG}"),
    ] {
        let page = app.get_as(&session, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for value in &values {
            assert_escaped(&path, &page.body, value);
        }
    }
    for value in &values {
        let segment = encode(value);
        for path in [
            format!("/p/{segment}"),
            format!("/confirm/{segment}"),
            format!("/withdraw/{segment}"),
            format!("/api/v1/petitions/{segment}"),
            format!("/p/{SLUG}/receipt?receipt={segment}"),
        ] {
            let response = app.get(&path).await;
            assert!(
                response.status.is_client_error() || response.status.is_success(),
                "{path}: {}",
                response.status
            );
            assert_escaped(&path, &response.body, value);
        }
        let posted = app.post_form(&format!("/confirm/{segment}"), "").await;
        assert!(posted.status.is_client_error(), "{}", posted.status);
        for query in ["name", "email", "country", "status", "from", "to", "page"] {
            let path = format!("/admin/petitions/{SLUG}/signatures?{query}={segment}");
            let response = app.get_as(&session, &path).await;
            assert!(
                response.status.is_client_error() || response.status.is_success(),
                "{path}: {}",
                response.status
            );
            assert_escaped(&path, &response.body, value);
        }
        for query in ["format", "country", "from", "to", "email", "bom"] {
            let path = format!("/admin/petitions/{SLUG}/export");
            let form = format!("format=csv&{query}={segment}");
            let download = app.post_download_as(&session, &path, &form).await;
            assert!(
                download.status.is_client_error() || download.status.is_success(),
                "{form}: {}",
                download.status
            );
        }
    }
}

// ---- fuzz and property tests (pure functions, no server) ----

/// Bytes that matter to the decoders, mixed with random ones.
fn random_bytes(rng: &mut StdRng, max_len: usize) -> Vec<u8> {
    const INTERESTING: &[u8] = b"%&=+;aZ09.-_~ \r\n\t\0\xff\xc3\xa9\xed\xa0\x80\xf0\x9f";
    let len = rng.random_range(0..=max_len);
    (0..len)
        .map(|_| {
            if rng.random_bool(0.7) {
                INTERESTING[rng.random_range(0..INTERESTING.len())]
            } else {
                rng.random()
            }
        })
        .collect()
}

/// Random text, weighted towards characters that break naive code.
fn random_text(rng: &mut StdRng, max_chars: usize) -> String {
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "0",
        " ",
        ".",
        "+",
        "@",
        "-",
        "_",
        "\"",
        "'",
        "<",
        ">",
        "&",
        "%",
        "\r",
        "\n",
        "\t",
        "\0",
        "\u{7f}",
        "\u{202E}",
        "\u{200B}",
        "\u{FEFF}",
        "é",
        "İ",
        "ß",
        "Σ",
        "🌻",
        "𝕬",
        "\u{301}",
        "ﬃ",
        "K",
        "gmail.com",
        "googlemail.com",
        "example.org",
        "Bcc:",
    ];
    let len = rng.random_range(0..=max_chars);
    (0..len)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// An address that is valid or nearly so: dots, tags, case, spaces and odd characters.
fn near_valid_email(rng: &mut StdRng) -> String {
    const LOCAL: &[&str] = &[
        "ana",
        "Ana",
        "a.na",
        ".ana",
        "ana.",
        "a..na",
        "ana+tag",
        "ana+",
        "+tag",
        "ANA.IVANOVA",
        "a_b-c",
        "\"quoted\"",
        "ana\u{301}",
        "ü",
        "a b",
        "ana@b",
        "",
        "x",
    ];
    const DOMAINS: &[&str] = &[
        "example.org",
        "Example.ORG",
        "gmail.com",
        "GMail.com",
        "googlemail.com",
        "GoogleMail.COM",
        "sub.example.org",
        "example",
        "[127.0.0.1]",
        "exa mple.org",
        "例え.jp",
        "-example.org",
        "",
    ];
    let mut email = String::new();
    for _ in 0..rng.random_range(1..=3) {
        email.push_str(LOCAL[rng.random_range(0..LOCAL.len())]);
    }
    if rng.random_bool(0.95) {
        email.push('@');
    }
    email.push_str(DOMAINS[rng.random_range(0..DOMAINS.len())]);
    if rng.random_bool(0.2) {
        email = format!("  {email} ");
    }
    if rng.random_bool(0.05) {
        let boundaries: Vec<usize> = email
            .char_indices()
            .map(|(i, _)| i)
            .chain([email.len()])
            .collect();
        let at = boundaries[rng.random_range(0..boundaries.len())];
        email.insert_str(at, "\r\n");
    }
    if rng.random_bool(0.02) {
        email.push_str(&"x".repeat(300));
    }
    email
}

#[test]
fn form_decoding_never_panics_and_round_trips() {
    let mut rng = StdRng::seed_from_u64(0x5eed_f0e5);
    for _ in 0..20_000 {
        let bytes = random_bytes(&mut rng, 64);
        if let Ok(fields) = parse_urlencoded(&bytes) {
            // Whatever is accepted is text; a field can be looked up by any name.
            let _ = fields.get("name");
        }
    }
    // Encoding any pairs of strings and decoding them gives the same pairs back.
    for _ in 0..5_000 {
        let pairs: Vec<(String, String)> = (0..rng.random_range(1..5))
            .map(|_| (random_text(&mut rng, 6), random_text(&mut rng, 12)))
            .filter(|(key, _)| !key.is_empty())
            .collect();
        let body: Vec<String> = pairs
            .iter()
            .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
            .collect();
        let decoded = parse_urlencoded(body.join("&").as_bytes());
        // NUL is refused everywhere (PostgreSQL cannot store it); everything else comes back.
        if pairs
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            assert!(decoded.is_err());
            continue;
        }
        let fields = decoded.expect("well-formed");
        for (key, _) in &pairs {
            let expected: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(fields.all(key), expected);
        }
    }
}

#[test]
fn validation_never_panics_and_keeps_its_promises() {
    let mut rng = StdRng::seed_from_u64(0xba5e_ba11);
    for round in 0..5_000 {
        let input = SignatureInput {
            name: random_text(&mut rng, 30),
            email: if round % 2 == 0 {
                near_valid_email(&mut rng)
            } else {
                random_text(&mut rng, 20)
            },
            country: ["NO", "no", " by ", "XX", "", "N\u{0}O", "🇳🇴"][rng.random_range(0..7)]
                .to_owned(),
            postal_code: random_text(&mut rng, 8),
            comment: random_text(&mut rng, 40),
            consent: rng.random_bool(0.9),
            ..SignatureInput::default()
        };
        let Ok(signature) = input.parse() else {
            continue;
        };
        let name = signature.name.as_str();
        assert!(!name.is_empty() && name.chars().count() <= 200);
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(!name.contains('\u{202E}'), "{name:?}");
        assert!(lettre::Address::from_str(signature.email.as_str()).is_ok());
        if let Some(comment) = &signature.comment {
            assert!(!comment.contains('\0') && !comment.contains('\u{202E}'));
        }
        if let Some(code) = &signature.postal_code {
            assert!(code
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-'));
        }
    }
}

#[test]
fn email_normalisation_is_stable() {
    let mut rng = StdRng::seed_from_u64(0x0e4a_11ed);
    let mut accepted = 0;
    for round in 0..10_000 {
        let raw = if round % 4 == 0 {
            random_text(&mut rng, 24)
        } else {
            near_valid_email(&mut rng)
        };
        let Ok(email) = EmailAddress::parse(&raw) else {
            continue;
        };
        accepted += 1;
        // Where the email is sent: a deliverable address, exactly as typed (trimmed).
        assert!(
            lettre::Address::from_str(email.as_str()).is_ok(),
            "{raw:?} was accepted but is not deliverable"
        );
        assert_eq!(email.as_str(), raw.trim());
        assert!(!email.as_str().contains(['\r', '\n']));
        // The key identifies the owner: normalising it again changes nothing.
        let key = email.key();
        assert!(!key.is_empty());
        match EmailAddress::parse(key) {
            Ok(again) => assert_eq!(again.key(), key, "{raw:?}"),
            Err(_) => assert!(
                !raw.is_ascii(),
                "the key {key:?} of {raw:?} is not an address"
            ),
        }
        // Case and surrounding spaces never make a different signer.
        if let Ok(upper) = EmailAddress::parse(&format!(" {} ", raw.to_ascii_uppercase())) {
            assert_eq!(upper.key(), key, "{raw:?}");
        }
    }
    assert!(accepted > 1_000, "only {accepted} addresses were accepted");
}
