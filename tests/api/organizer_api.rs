//! The organizer API: signatures page by page, newest first; invalidating with a reason and
//! undoing; tokens; and every error as JSON.

use awc::http::StatusCode;
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};
use crate::moderation::{
    insert_signatures, sign, sign_and_confirm, signature_id, signature_status,
};

backend_tests!(
    signatures_are_listed_newest_first_page_by_page,
    bad_paging_is_a_400,
    invalidating_needs_a_reason_and_can_be_undone,
    invalidating_refuses_bad_ids_and_other_petitions_signatures,
    a_missing_or_unknown_token_is_a_401,
);

/// A petition run by olga@example.org, and her API token.
async fn organizer_api(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.create_user("olga@example.org", Role::Organizer).await;
    app.add_organizer("free-them", "olga@example.org").await;
    let token = app.create_api_token("olga@example.org").await;
    (app, token)
}

const LIST: &str = "/api/v1/admin/petitions/free-them/signatures";

fn ids(body: &serde_json::Value) -> Vec<i64> {
    body["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|signature| signature["id"].as_i64().unwrap())
        .collect()
}

async fn signatures_are_listed_newest_first_page_by_page(backend: Backend) {
    let (app, token) = organizer_api(backend).await;
    let inserted = insert_signatures(&app, "free-them", 5).await;
    let newest_first: Vec<i64> = inserted.iter().rev().copied().collect();

    let all = app.api_get(&token, LIST).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let body = all.json();
    assert_eq!(ids(&body), newest_first);
    assert_eq!(body["page"], 1);
    assert_eq!(body["per_page"], 50);
    assert_eq!(body["total"], 5);

    let mut seen = Vec::new();
    for page in 1..=3 {
        let response = app
            .api_get(&token, &format!("{LIST}?page={page}&per_page=2"))
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let body = response.json();
        assert_eq!(body["page"], page);
        assert_eq!(body["per_page"], 2);
        assert_eq!(body["total"], 5);
        seen.extend(ids(&body));
    }
    assert_eq!(seen, newest_first, "three pages, no gaps or repeats");
    let beyond = app
        .api_get(&token, &format!("{LIST}?page=4&per_page=2"))
        .await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert!(ids(&beyond.json()).is_empty());
    assert_eq!(beyond.json()["total"], 5);
    let widest = app.api_get(&token, &format!("{LIST}?per_page=500")).await;
    assert_eq!(widest.status, StatusCode::OK);

    // Every field, with RFC 3339 times in UTC.
    sign_and_confirm(&app, "free-them", "Ana@Example.org", "Ana Ivanova", "NO").await;
    let body = app
        .api_get(&token, &format!("{LIST}?per_page=1"))
        .await
        .json();
    let ana = &body["signatures"][0];
    assert_eq!(ana["name"], "Ana Ivanova");
    assert_eq!(ana["email"], "Ana@Example.org");
    assert_eq!(ana["country"], "NO");
    assert_eq!(ana["postal_code"], serde_json::Value::Null);
    assert_eq!(ana["comment"], serde_json::Value::Null);
    assert_eq!(ana["disclosure"], "recipients");
    assert_eq!(ana["status"], "confirmed");
    assert!(ana["version_id"].is_i64());
    for field in ["created_at", "confirmed_at"] {
        let time = ana[field].as_str().unwrap();
        assert!(time.ends_with('Z'), "{field}: {time}");
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok());
    }
    assert_eq!(ana["invalidated_at"], serde_json::Value::Null);
    assert_eq!(ana["invalidation_reason"], serde_json::Value::Null);
    assert_eq!(body["total"], 6);
}

async fn bad_paging_is_a_400(backend: Backend) {
    let (app, token) = organizer_api(backend).await;
    for query in [
        "page=0",
        "page=-2",
        "page=x",
        "page=1.0",
        "per_page=0",
        "per_page=501",
        "per_page=ten",
        "per_page=99999999999999999999",
        "page=%FF",
    ] {
        let response = app.api_get(&token, &format!("{LIST}?{query}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(response.json()["error"].is_string(), "{query}");
    }
    let unknown = app
        .api_get(
            &token,
            "/api/v1/admin/petitions/no-such-petition/signatures",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.json()["error"].is_string());
}

async fn invalidating_needs_a_reason_and_can_be_undone(backend: Backend) {
    let (app, token) = organizer_api(backend).await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    sign_and_confirm(&app, "free-them", "bo@example.org", "Bo Berg", "SE").await;
    let id = signature_id(&app, "free-them", "ana@example.org").await;
    let path = format!("{LIST}/{id}/invalidate");

    // Without a usable reason: 422 naming the field, and nothing changes.
    for body in [
        serde_json::json!({}),
        serde_json::json!({ "reason": null }),
        serde_json::json!({ "reason": "   " }),
        serde_json::json!({ "reason": "x".repeat(501) }),
    ] {
        let response = app.api_post(&token, &path, &body).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            response.body
        );
        assert!(response.json()["errors"]["reason"][0].is_string());
    }
    let wrong_type = app
        .api_post(&token, &path, &serde_json::json!({ "reason": 42 }))
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    let request = app
        .client
        .post(app.url(&path))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Content-Type", "text/plain"));
    let not_json = request.send_body("duplicate").await.unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(signature_status(&app, id).await, "confirmed");
    assert_eq!(app.public_count("free-them").await, 2);

    // With a reason: invalidated, and the count drops at once.
    let response = app
        .api_post(
            &token,
            &path,
            &serde_json::json!({ "reason": "Signed twice under two addresses" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = response.json();
    assert_eq!(body["signature_count"], 1);
    assert_eq!(body["signature"]["id"], id);
    assert_eq!(body["signature"]["status"], "invalidated");
    assert_eq!(
        body["signature"]["invalidation_reason"],
        "Signed twice under two addresses"
    );
    assert!(body["signature"]["invalidated_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(body["signature"]["confirmed_at"].is_string());
    assert_eq!(app.public_count("free-them").await, 1);
    let listed = app.api_get(&token, LIST).await.json();
    let ana = listed["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(ana["status"], "invalidated");

    let again = app
        .api_post(&token, &path, &serde_json::json!({ "reason": "again" }))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalidated"));
    assert_eq!(app.public_count("free-them").await, 1);

    // Undo.
    let restore = format!("{LIST}/{id}/restore");
    let response = app.api_post(&token, &restore, &serde_json::json!({})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let body = response.json();
    assert_eq!(body["signature_count"], 2);
    assert_eq!(body["signature"]["status"], "confirmed");
    assert_eq!(
        body["signature"]["invalidation_reason"],
        serde_json::Value::Null
    );
    assert_eq!(app.public_count("free-them").await, 2);
    let again = app.api_post(&token, &restore, &serde_json::json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // A pending signature goes back to pending.
    sign(&app, "free-them", "cy@example.org", "Cy Pending", "NO").await;
    let cy = signature_id(&app, "free-them", "cy@example.org").await;
    let response = app
        .api_post(
            &token,
            &format!("{LIST}/{cy}/invalidate"),
            &serde_json::json!({ "reason": "test entry" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["signature_count"], 2);
    let response = app
        .api_post(
            &token,
            &format!("{LIST}/{cy}/restore"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(response.json()["signature"]["status"], "pending");
    let actions: Vec<String> = app
        .db(|conn| {
            use diesel::prelude::*;
            use undersign::db::schema::audit_log;
            audit_log::table
                .filter(audit_log::action.like("signature%"))
                .order(audit_log::id.asc())
                .select(audit_log::action)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        actions,
        vec![
            "signatures.invalidate",
            "signatures.restore",
            "signatures.invalidate",
            "signatures.restore"
        ]
    );
}

async fn invalidating_refuses_bad_ids_and_other_petitions_signatures(backend: Backend) {
    let (app, token) = organizer_api(backend).await;
    app.create_petition("other").await;
    sign_and_confirm(&app, "other", "eva@example.org", "Eva Other", "NO").await;
    let foreign = signature_id(&app, "other", "eva@example.org").await;
    let reason = serde_json::json!({ "reason": "not ours" });
    for action in ["invalidate", "restore"] {
        let response = app
            .api_post(&token, &format!("{LIST}/{foreign}/{action}"), &reason)
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{action}");
        assert!(response.json()["error"].is_string());
        let response = app
            .api_post(&token, &format!("{LIST}/424242/{action}"), &reason)
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{action}");
        for bad in ["abc", "0", "-1", "1e3", "99999999999999999999"] {
            let response = app
                .api_post(&token, &format!("{LIST}/{bad}/{action}"), &reason)
                .await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{action} {bad}");
            assert!(response.json()["error"].is_string());
        }
    }
    assert_eq!(signature_status(&app, foreign).await, "confirmed");
    assert_eq!(app.public_count("other").await, 1);
}

async fn a_missing_or_unknown_token_is_a_401(backend: Backend) {
    let (app, _token) = organizer_api(backend).await;
    sign_and_confirm(&app, "free-them", "ana@example.org", "Ana Ivanova", "NO").await;
    let id = signature_id(&app, "free-them", "ana@example.org").await;

    let anonymous = app.get(LIST).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.json()["error"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    let forged = app.api_get("ust_not-a-real-token", LIST).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    for action in ["invalidate", "restore"] {
        let path = format!("{LIST}/{id}/{action}");
        let body = serde_json::json!({ "reason": "no token" });
        let anonymous = app.post_json(&path, &body).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{action}");
        let forged = app.api_post("ust_not-a-real-token", &path, &body).await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{action}");
        assert!(forged.json()["error"].is_string());
    }
    assert_eq!(signature_status(&app, id).await, "confirmed");
    assert_eq!(app.public_count("free-them").await, 1);
}
