//! Following the emailed link: a button page, confirmation, repeats, expiry, unknown tokens.

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::db::schema::confirmation_tokens;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    opening_the_link_shows_a_button_and_confirms_nothing,
    confirming_counts_once_and_shows_the_new_count,
    expired_links_are_gone_and_offer_to_sign_again,
    unknown_links_are_not_found,
    a_petition_closed_before_confirmation_refuses_it,
    links_of_the_first_token_format_still_confirm,
);

async fn opening_the_link_shows_a_button_and_confirms_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;

    // A mail scanner pre-fetching the link twice changes nothing.
    for _ in 0..2 {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Confirm my signature"));
        assert!(page.body.contains(&format!("action=\"{path}\"")));
        assert_eq!(page.header("cache-control"), Some("no-store"));
    }
    assert_eq!(app.public_count("free-them").await, 0);
}

async fn confirming_counts_once_and_shows_the_new_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    for email in ["a@example.org", "b@example.org"] {
        app.sign_json("free-them", email).await;
    }
    let first = app.confirmation_path("a@example.org", 1).await;
    let second = app.confirmation_path("b@example.org", 1).await;

    let page = app.post_form(&first, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("your signature is confirmed"));
    assert!(page
        .body
        .contains("<strong>1</strong> confirmed signature of"));

    let page = app.post_form(&second, "").await;
    assert!(page
        .body
        .contains("<strong>2</strong> confirmed signatures"));

    // Confirming twice is harmless.
    let again = app.post_form(&first, "").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("already confirmed"));
    let page = app.get(&first).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("already confirmed"));

    assert_eq!(app.public_count("free-them").await, 2);
    let petition_page = app.get("/p/free-them").await;
    assert!(petition_page
        .body
        .contains("<strong>2</strong> confirmed signatures"));
}

async fn expired_links_are_gone_and_offer_to_sign_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;

    let past = undersign::core::clock::now() - chrono::Duration::minutes(1);
    app.db(move |conn| {
        diesel::update(confirmation_tokens::table)
            .set(confirmation_tokens::expires_at.eq(past))
            .execute(conn)
            .unwrap()
    })
    .await;

    let page = app.get(&path).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("This link has expired"));
    assert!(page.body.contains("href=\"/p/free-them\""));
    let page = app.post_form(&path, "").await;
    assert_eq!(page.status, StatusCode::GONE);
    assert_eq!(app.public_count("free-them").await, 0);

    // Signing again sends a fresh link that works.
    app.sign_json("free-them", "ana@example.org").await;
    let fresh = app.confirmation_path("ana@example.org", 2).await;
    assert_eq!(app.post_form(&fresh, "").await.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);
}

async fn unknown_links_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unknown = "/confirm/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for response in [
        app.get(unknown).await,
        app.post_form(unknown, "").await,
        app.get("/confirm/not-a-token").await,
        app.post_form("/confirm/%2e%2e%2f", "").await,
    ] {
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        assert!(response.body.contains("This link is not valid"));
        assert!(response.body.contains("sign again"));
    }
}

async fn a_petition_closed_before_confirmation_refuses_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;

    app.db(|conn| {
        use undersign::db::schema::petitions;
        diesel::update(petitions::table)
            .set(petitions::status.eq("closed"))
            .execute(conn)
            .unwrap()
    })
    .await;
    let page = app.post_form(&path, "").await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("This petition has closed"));
    assert_eq!(app.public_count("free-them").await, 0);
}

/// Links sent before tokens carried their issue time (43 characters, keyed by their SHA-256
/// alone) work until they expire.
async fn links_of_the_first_token_format_still_confirm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;
    assert_eq!(path.len(), "/confirm/".len() + 44);

    // 43 characters of base64url: 32 bytes.
    let first_format = "Zmlyc3QtZm9ybWF0LXRva2VuLW9mLWFuYS1hdC1leGF";
    assert_eq!(first_format.len(), 43);
    let key = undersign::core::tokens::hash_token(first_format);
    app.db(move |conn| {
        diesel::update(confirmation_tokens::table)
            .set(confirmation_tokens::token_hash.eq(key))
            .execute(conn)
            .unwrap()
    })
    .await;

    assert_eq!(app.post_form(&path, "").await.status, StatusCode::NOT_FOUND);
    let old_link = format!("/confirm/{first_format}");
    let page = app.get(&old_link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Confirm my signature"));
    let page = app.post_form(&old_link, "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("your signature is confirmed"));
    assert_eq!(app.public_count("free-them").await, 1);
}
