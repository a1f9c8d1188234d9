//! Bad input of every kind gets a clear 4xx and leaves nothing behind.

use awc::http::StatusCode;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    malformed_bodies_get_clear_client_errors,
    unknown_and_closed_petitions_refuse_signatures,
);

async fn malformed_bodies_get_clear_client_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let api = "/api/v1/petitions/free-them/signatures";
    let form = "/p/free-them/sign";

    let cases: Vec<(&str, &str, Vec<u8>, StatusCode)> = vec![
        (
            api,
            "application/json",
            b"{\"name\": ".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            api,
            "application/json",
            b"[1, 2]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            api,
            "application/json",
            br#"{"name": 5, "email": "a@example.org", "country": "NO", "consent": true}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            api,
            "application/json",
            br#"{"name": "A", "email": "a@example.org", "country": "NO", "consent": "yes"}"#
                .to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            api,
            "application/json",
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            api,
            "text/plain",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            api,
            "application/json",
            vec![b' '; 17 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            form,
            "application/x-www-form-urlencoded",
            b"name=%FF%FE&consent=on".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            form,
            "application/x-www-form-urlencoded",
            b"name=\xff".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            form,
            "application/x-www-form-urlencoded",
            b"name=%zz".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            form,
            "application/json",
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            form,
            "application/x-www-form-urlencoded",
            format!("name={}", "a".repeat(17 * 1024)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (path, content_type, body, expected) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let response = app.post_raw(path, content_type, body).await;
        assert_eq!(
            response.status, expected,
            "{path} {content_type} {shown:?}: {}",
            response.body
        );
        if path == api {
            let message = response.json()["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                message.len() > 10,
                "a clear message for {shown:?}: {}",
                response.body
            );
        } else {
            assert!(
                response.body.contains("<h1>"),
                "an error page for {shown:?}"
            );
        }
    }
    // A field that is too long is a validation error, not a crash.
    let long_name = format!(
        "name={}&email=a%40example.org&country=NO&consent=on",
        "n".repeat(300)
    );
    let response = app.post_form(form, &long_name).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("at most 200 characters"));

    assert_eq!(app.count_rows("signatures").await, 0);
    assert_eq!(app.count_rows("outbox").await, 0);
    assert_eq!(app.count_rows("confirmation_tokens").await, 0);
}

async fn unknown_and_closed_petitions_refuse_signatures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let valid_form = "name=Ana&email=ana%40example.org&country=NO&consent=on";

    let response = app.sign_json("no-such-petition", "ana@example.org").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.json()["error"]
        .as_str()
        .unwrap()
        .contains("no petition"));
    let response = app.post_form("/p/no-such-petition/sign", valid_form).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);

    let yesterday = undersign::core::clock::now() - chrono::Duration::days(1);
    app.create_petition_with("closed-by-date", |p| p.closes_at = Some(yesterday))
        .await;
    app.create_petition_with("closed-by-hand", |p| {
        p.status = undersign::core::status::PetitionStatus::Closed
    })
    .await;
    for slug in ["closed-by-date", "closed-by-hand"] {
        let response = app.sign_json(slug, "ana@example.org").await;
        assert_eq!(response.status, StatusCode::CONFLICT);
        assert!(response.json()["error"]
            .as_str()
            .unwrap()
            .contains("closed"));
        let response = app.post_form(&format!("/p/{slug}/sign"), valid_form).await;
        assert_eq!(response.status, StatusCode::CONFLICT);
        assert!(response.body.contains("no longer accepts signatures"));
        let page = app.get(&format!("/p/{slug}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains("<form"),
            "a closed petition shows no form"
        );
        let api = app.get(&format!("/api/v1/petitions/{slug}")).await;
        assert_eq!(api.json()["status"], "closed");
    }
    assert_eq!(app.count_rows("signatures").await, 0);
}
