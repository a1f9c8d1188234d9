//! Every private route, web and API, as an organizer who does not belong to the petition:
//! always 404, never a 403 that would confirm the petition exists, and nothing changes.

use awc::http::StatusCode;
use diesel::prelude::*;
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(a_non_member_finds_nothing_on_any_private_route);

async fn a_non_member_finds_nothing_on_any_private_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("theirs").await;
    app.create_user("member@example.org", Role::Organizer).await;
    app.add_organizer("theirs", "member@example.org").await;
    app.sign_json("theirs", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;
    app.post_form(&path, "").await;
    let signature_id: i64 = app
        .db(|conn| {
            use undersign::db::schema::signatures;
            signatures::table
                .select(signatures::id)
                .first(conn)
                .unwrap()
        })
        .await;

    let outsider = app.signed_in("outsider@example.org", Role::Organizer).await;
    let token = app.create_api_token("outsider@example.org").await;
    let id = signature_id;

    let web_gets = [
        "/admin/petitions/theirs".to_owned(),
        "/admin/petitions/theirs/edit".to_owned(),
        "/admin/petitions/theirs/organizers".to_owned(),
        "/admin/petitions/theirs/signatures".to_owned(),
        "/admin/petitions/theirs/signatures?name=ana".to_owned(),
        "/admin/users".to_owned(),
    ];
    let web_posts = [
        (
            "/admin/petitions/theirs/edit".to_owned(),
            "action=save&title=Hijacked&slug=theirs&body=x".to_owned(),
        ),
        (
            "/admin/petitions/theirs/status".to_owned(),
            "to=closed".to_owned(),
        ),
        (
            "/admin/petitions/theirs/organizers".to_owned(),
            "action=add&email=outsider%40example.org".to_owned(),
        ),
        (
            "/admin/petitions/theirs/signatures/invalidate".to_owned(),
            format!("id={id}&reason=spam"),
        ),
        (
            "/admin/petitions/theirs/signatures/restore".to_owned(),
            format!("id={id}"),
        ),
        (
            format!("/admin/petitions/theirs/signatures/{id}/resend"),
            String::new(),
        ),
        (
            "/admin/users".to_owned(),
            "email=x%40example.org&role=admin&password=twelve+chars+at+least".to_owned(),
        ),
    ];
    for path in &web_gets {
        let response = app.get_as(&outsider, path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(
            !response.body.contains("Free them all"),
            "GET {path} leaks the title"
        );
    }
    for (path, body) in &web_posts {
        let response = app.post_form_as(&outsider, path, body).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "POST {path}");
    }

    let api_gets = ["/api/v1/admin/petitions/theirs/signatures".to_owned()];
    let api_posts = [
        format!("/api/v1/admin/petitions/theirs/signatures/{id}/invalidate"),
        format!("/api/v1/admin/petitions/theirs/signatures/{id}/restore"),
    ];
    for path in &api_gets {
        let response = app.api_get(&token, path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(response.json()["error"].is_string());
    }
    for path in &api_posts {
        let response = app
            .api_post(&token, path, &serde_json::json!({ "reason": "spam" }))
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "POST {path}");
    }
    let listed = app.api_get(&token, "/api/v1/admin/petitions").await;
    assert_eq!(listed.json()["petitions"].as_array().unwrap().len(), 0);
    let home = app.get_as(&outsider, "/admin").await;
    assert!(!home.body.contains("theirs"));

    // Nothing changed.
    assert_eq!(app.public_count("theirs").await, 1);
    let page = app.get("/p/theirs").await;
    assert!(page.body.contains("Free them all (theirs)"));
    assert_eq!(app.count_rows("petition_organizers").await, 1);
    // The confirmation email and the receipt.
    assert_eq!(app.count_rows("outbox").await, 2);

    // The member and an admin do reach every page.
    let member_password = "a long password for member@example.org";
    let member = app.sign_in("member@example.org", member_password).await;
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    for session in [&member, &admin] {
        for path in &web_gets[..5] {
            let response = app.get_as(session, path).await;
            assert_eq!(response.status, StatusCode::OK, "GET {path}");
        }
    }
}
