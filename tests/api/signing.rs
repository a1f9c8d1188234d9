//! Signing through the form and the JSON API, duplicates and concurrency.

use std::time::Duration;

use awc::http::StatusCode;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    signing_through_the_form_sends_a_confirmation_email,
    signing_through_json_is_accepted_for_confirmation,
    signing_again_looks_the_same_and_resends_at_most_three_emails,
    fifty_concurrent_signings_of_one_address_make_one_signature,
    invalid_form_is_shown_again_with_input_and_messages,
    invalid_json_lists_every_bad_field,
);

async fn signing_through_the_form_sends_a_confirmation_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    let response = app
        .post_form(
            "/p/free-them/sign",
            "name=Ana+Ivanova&email=ana%40example.org&country=NO&postal_code=0150&comment=&public=on&consent=on",
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.header("location"), Some("/p/free-them/signed"));

    let inbox = app.get("/p/free-them/signed").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.body.contains("Check your inbox"));

    let mails = app
        .smtp
        .wait_for_messages_to("ana@example.org", 1, Duration::from_secs(10))
        .await;
    let mail = &mails[0];
    assert!(
        mail.subject().contains("Free them all (free-them)"),
        "{}",
        mail.subject()
    );
    assert!(mail.has_text_and_html_parts());
    assert!(mail.text_body().contains("Hello Ana Ivanova"));
    assert!(mail.text_body().contains("Did not sign this petition?"));
    assert!(mail.html_body().contains("Confirm my signature"));
    let link = app.confirmation_path("ana@example.org", 1).await;
    assert!(
        mail.html_body().contains(&link),
        "the HTML part has the same link"
    );

    // Not counted until confirmed.
    assert_eq!(app.public_count("free-them").await, 0);
    assert_eq!(app.count_rows("signatures").await, 1);
}

async fn signing_through_json_is_accepted_for_confirmation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    let response = app.sign_json("free-them", "boris@example.org").await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    assert_eq!(
        response.json(),
        serde_json::json!({ "status": "pending_confirmation" })
    );
    let path = app.confirmation_path("boris@example.org", 1).await;
    let confirmed = app.post_form(&path, "").await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
}

async fn signing_again_looks_the_same_and_resends_at_most_three_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    let first = app.sign_json("free-them", "Clara@Example.org").await;
    for variant in [
        "clara@example.org",
        "  CLARA@EXAMPLE.ORG ",
        "clara@example.org",
        "clara@example.org",
    ] {
        let again = app.sign_json("free-them", variant).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.body, first.body);
    }
    assert_eq!(app.count_rows("signatures").await, 1);
    // The first email and two more, then no more.
    app.smtp.wait_for_messages(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.smtp.messages().len(), 3);
    assert_eq!(app.count_rows("outbox").await, 3);

    // Every link works; the first confirmation counts, the others change nothing.
    let second_link = app.confirmation_path("Clara@Example.org", 2).await;
    let first_link = app.confirmation_path("Clara@Example.org", 1).await;
    assert_eq!(app.post_form(&second_link, "").await.status, StatusCode::OK);
    let again = app.post_form(&first_link, "").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("already confirmed"));
    assert_eq!(app.public_count("free-them").await, 1);

    // Signing after confirming: same answer, no email (besides the receipt of the
    // confirmation above), same count.
    let after = app.sign_json("free-them", "clara@example.org").await;
    assert_eq!(after.body, first.body);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.smtp.messages().len(), 4);
    assert_eq!(app.public_count("free-them").await, 1);

    // The form answers a repeated signing exactly like a first one.
    let form = "name=Clara&email=clara%40example.org&country=NO&consent=on";
    let repeated = app.post_form("/p/free-them/sign", form).await;
    assert_eq!(repeated.status, StatusCode::SEE_OTHER);
    assert_eq!(repeated.header("location"), Some("/p/free-them/signed"));
}

async fn fifty_concurrent_signings_of_one_address_make_one_signature(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    let signings = (0..50).map(|_| app.sign_json("free-them", "dana@example.org"));
    let responses = futures_util::future::join_all(signings).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    }
    assert_eq!(app.count_rows("signatures").await, 1);
    assert_eq!(app.count_rows("outbox").await, 3);
    assert_eq!(app.count_rows("confirmation_tokens").await, 3);
}

async fn invalid_form_is_shown_again_with_input_and_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    let response = app
        .post_form(
            "/p/free-them/sign",
            "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E&email=not-an-email&country=ZZ&comment=kept+comment",
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = &response.body;
    assert!(
        page.contains("Please enter a valid email address"),
        "{page}"
    );
    assert!(page.contains("Please choose a country from the list."));
    assert!(page.contains("Please tick this box"));
    // The input is kept, escaped.
    assert!(page.contains("value=\"not-an-email\""));
    assert!(page.contains("kept comment"));
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!page.contains("<script>alert(1)"));
    // Messages sit beside their fields and are announced.
    assert!(page.contains("id=\"email-error\""));
    assert!(page.contains("aria-invalid=\"true\""));
    assert_eq!(app.count_rows("signatures").await, 0);
    assert_eq!(app.count_rows("outbox").await, 0);
}

async fn invalid_json_lists_every_bad_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;

    let response = app
        .post_json(
            "/api/v1/petitions/free-them/signatures",
            &serde_json::json!({
                "name": "",
                "email": "x@",
                "country": "Norway",
                "postal_code": "<b>",
                "comment": "c".repeat(501),
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = response.json()["errors"].clone();
    for field in [
        "name",
        "email",
        "country",
        "postal_code",
        "comment",
        "consent",
    ] {
        let messages = errors[field]
            .as_array()
            .unwrap_or_else(|| panic!("no {field} in {errors}"));
        assert!(!messages.is_empty());
        assert!(messages[0].as_str().unwrap().len() > 10);
    }
    // A missing body field is a per-field error too, not a parse failure.
    let response = app
        .post_json(
            "/api/v1/petitions/free-them/signatures",
            &serde_json::json!({ "email": "eva@example.org", "country": "NO", "consent": true }),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.json()["errors"]["name"].is_array());
    assert_eq!(app.count_rows("signatures").await, 0);
}
