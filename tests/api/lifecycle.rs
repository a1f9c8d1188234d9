//! Petitions in the browser: writing them (with a preview), their states from draft to
//! delivered, text versions that signatures point at, closing on time, and who may do what.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use undersign::core::status::PetitionStatus;
use undersign::db::schema::{audit_log, petition_versions, petitions, signatures};
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{encode, Backend, Response, Session, TestApp};

backend_tests!(
    organizers_write_preview_open_and_correct_a_petition,
    status_changes_follow_the_lifecycle,
    petitions_close_by_themselves_at_their_closing_date,
    invalid_forms_are_shown_again_with_messages_and_the_input_kept,
    other_organizers_petitions_are_not_found,
    admins_choose_who_runs_a_petition,
);

/// A urlencoded petition form.
fn petition_form(action: &str, fields: &[(&str, &str)]) -> String {
    let mut body = format!("action={action}");
    for (name, value) in fields {
        body.push_str(&format!("&{name}={}", encode(value)));
    }
    body
}

const BODY_V1: &str =
    "Dear Minister,\r\n\r\nWe ask you to **act**.\r\n\r\n<script>alert(1)</script>";
const BODY_V2: &str = "Dear Minister,\r\n\r\nWe ask you to **act now**.";

fn full_form(action: &str, slug: &str, body: &str) -> String {
    petition_form(
        action,
        &[
            ("title", "Free them all"),
            ("slug", slug),
            ("summary", "Release every political prisoner."),
            ("body", body),
            (
                "targets",
                "Jonas Gahr Støre, Prime Minister of Norway\r\n\r\nEspen Barth Eide, Minister of Foreign Affairs",
            ),
            ("goal", "10,000"),
            ("closes_on", "2099-12-31"),
        ],
    )
}

async fn status_of(app: &TestApp, slug: &str) -> (String, Option<NaiveDateTime>) {
    let slug = slug.to_owned();
    app.db(move |conn| {
        petitions::table
            .filter(petitions::slug.eq(slug))
            .select((petitions::status, petitions::closes_at))
            .first(conn)
            .unwrap()
    })
    .await
}

/// (id, sha256) of each version, oldest first.
async fn versions_of(app: &TestApp, slug: &str) -> Vec<(i64, String)> {
    let slug = slug.to_owned();
    app.db(move |conn| {
        petition_versions::table
            .inner_join(petitions::table)
            .filter(petitions::slug.eq(slug))
            .order(petition_versions::id.asc())
            .select((petition_versions::id, petition_versions::text_sha256))
            .load(conn)
            .unwrap()
    })
    .await
}

async fn version_signed_by(app: &TestApp, email: &str) -> i64 {
    let email_key = app.email_key(email);
    app.db(move |conn| {
        signatures::table
            .filter(signatures::email_key.eq(email_key))
            .select(signatures::version_id)
            .first(conn)
            .unwrap()
    })
    .await
}

/// (user_id, action, details) of the audit entries, oldest first.
async fn audit_entries(app: &TestApp) -> Vec<(Option<i64>, String, String)> {
    app.db(|conn| {
        audit_log::table
            .order(audit_log::id.asc())
            .select((audit_log::user_id, audit_log::action, audit_log::details))
            .load(conn)
            .unwrap()
    })
    .await
}

async fn set_status(app: &TestApp, session: &Session, slug: &str, body: &str) -> Response {
    app.post_form_as(session, &format!("/admin/petitions/{slug}/status"), body)
        .await
}

fn assert_redirect(response: &Response, location: &str) {
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(response.header("location"), Some(location));
}

async fn organizers_write_preview_open_and_correct_a_petition(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let olga = app.signed_in("olga@example.org", Role::Organizer).await;

    let form = app.get_as(&olga, "/admin/petitions/new").await;
    assert_eq!(form.status, StatusCode::OK);
    for field in [
        "title",
        "slug",
        "summary",
        "body",
        "targets",
        "goal",
        "closes_on",
    ] {
        assert!(
            form.body.contains(&format!("name=\"{field}\"")),
            "the form has {field}"
        );
    }
    assert!(form.body.contains("value=\"preview\"") && form.body.contains("value=\"save\""));

    // Preview: the Markdown rendered safely, the input kept, nothing saved.
    let preview = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &full_form("preview", "free-them", BODY_V1),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("Preview"));
    assert!(preview.body.contains("<strong>act</strong>"));
    assert!(!preview.body.contains("<script>alert"));
    assert!(preview.body.contains("value=\"free-them\""));
    assert!(preview.body.contains("Jonas Gahr Støre"));
    assert_eq!(app.count_rows("petitions").await, 0);

    // Save: a draft run by its author, invisible to the public.
    let saved = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &full_form("save", "free-them", BODY_V1),
        )
        .await;
    assert_redirect(&saved, "/admin/petitions/free-them");
    let (status, closes_at) = status_of(&app, "free-them").await;
    assert_eq!(status, "draft");
    assert_eq!(closes_at.unwrap().to_string(), "2100-01-01 00:00:00");
    assert_eq!(app.get("/p/free-them").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/petitions/free-them").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(app
        .get_as(&olga, "/admin")
        .await
        .body
        .contains("href=\"/admin/petitions/free-them\""));
    let goal: Option<i64> = app
        .db(|conn| {
            petitions::table
                .select(petitions::goal)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(goal, Some(10_000));

    // The edit form comes back filled in; changing a draft's text makes no new version.
    let edit = app.get_as(&olga, "/admin/petitions/free-them/edit").await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("We ask you to **act**."));
    assert!(edit.body.contains(
        "Jonas Gahr Støre, Prime Minister of Norway\nEspen Barth Eide, Minister of Foreign Affairs"
    ));
    assert!(edit.body.contains("value=\"2099-12-31\""));
    let draft_hash = versions_of(&app, "free-them").await[0].1.clone();
    let saved = app
        .post_form_as(
            &olga,
            "/admin/petitions/free-them/edit",
            &full_form(
                "save",
                "free-them",
                "Dear Minister,\r\n\r\nWe ask you to **act**.",
            ),
        )
        .await;
    assert_redirect(&saved, "/admin/petitions/free-them");
    let versions = versions_of(&app, "free-them").await;
    assert_eq!(versions.len(), 1, "a draft's text is rewritten in place");
    assert_ne!(versions[0].1, draft_hash);
    let v1 = versions[0].clone();
    assert_eq!(
        v1.1,
        undersign::petitions::model::text_sha256(
            "Free them all",
            "Release every political prisoner.",
            "Dear Minister,\n\nWe ask you to **act**."
        ),
        "the text is stored with LF line endings"
    );

    // Open it: the public sees it, with no "changed" notice, and people sign.
    assert_redirect(
        &set_status(&app, &olga, "free-them", "to=open").await,
        "/admin/petitions/free-them",
    );
    let page = app.get("/p/free-them").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("The text was changed"));
    assert_eq!(
        app.sign_json("free-them", "ana@example.org").await.status,
        StatusCode::ACCEPTED
    );
    let path = app.confirmation_path("ana@example.org", 1).await;
    assert_eq!(app.post_form(&path, "").await.status, StatusCode::OK);
    assert_eq!(app.public_count("free-them").await, 1);

    // Correct the text of the open petition: a new version; signatures keep theirs.
    let saved = app
        .post_form_as(
            &olga,
            "/admin/petitions/free-them/edit",
            &full_form("save", "free-them", BODY_V2),
        )
        .await;
    assert_redirect(&saved, "/admin/petitions/free-them");
    let versions = versions_of(&app, "free-them").await;
    assert_eq!(versions.len(), 2);
    let v2 = versions[1].clone();
    assert_eq!(
        v2.1,
        undersign::petitions::model::text_sha256(
            "Free them all",
            "Release every political prisoner.",
            "Dear Minister,\n\nWe ask you to **act now**."
        )
    );
    assert_eq!(
        app.sign_json("free-them", "bo@example.org").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(version_signed_by(&app, "ana@example.org").await, v1.0);
    assert_eq!(version_signed_by(&app, "bo@example.org").await, v2.0);
    assert_eq!(
        app.public_count("free-them").await,
        1,
        "the count is unchanged"
    );

    // The public page shows the new text, that it changed, and the versions, newest first.
    let page = app.get("/p/free-them").await;
    assert!(page.body.contains("<strong>act now</strong>"));
    assert!(
        page.body.contains("The text was changed on "),
        "{}",
        page.body
    );
    let newest = page
        .body
        .find(&v2.1[..12])
        .expect("the new version is listed");
    let oldest = page
        .body
        .find(&v1.1[..12])
        .expect("the old version is listed");
    assert!(newest < oldest, "newest first");

    // Saving the same text again (as a browser would, with CRLF) makes no version; changing
    // only the goal and addressees changes them in place.
    let saved = app
        .post_form_as(
            &olga,
            "/admin/petitions/free-them/edit",
            &petition_form(
                "save",
                &[
                    ("title", "Free them all"),
                    ("slug", "free-them"),
                    ("summary", "Release every political prisoner."),
                    ("body", BODY_V2),
                    ("targets", "The Storting"),
                    ("goal", "20000"),
                    ("closes_on", "2099-12-31"),
                ],
            ),
        )
        .await;
    assert_redirect(&saved, "/admin/petitions/free-them");
    assert_eq!(versions_of(&app, "free-them").await.len(), 2);
    let page = app.get("/p/free-them").await;
    assert!(page.body.contains("<strong>The Storting</strong>"));
    assert!(!page.body.contains("Jonas Gahr Støre"));
    assert!(page.body.contains("of a goal of 20,000"));

    let entries = audit_entries(&app).await;
    let actions: Vec<&str> = entries
        .iter()
        .map(|(_, action, _)| action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "petition.create",
            "petition.edit",
            "petition.status",
            "petition.edit",
            "petition.edit"
        ]
    );
    assert!(entries[1].2.contains("no new version"), "{}", entries[1].2);
    assert_eq!(entries[2].2, "draft → open");
    assert!(
        entries[3].2.contains("new text version"),
        "{}",
        entries[3].2
    );
    assert!(entries[4].2.contains("text unchanged"), "{}", entries[4].2);
    assert!(entries.iter().all(|(user, _, _)| user.is_some()));
}

async fn status_changes_follow_the_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let olga = app.signed_in("olga@example.org", Role::Organizer).await;
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    app.create_petition_with("free-them", |p| p.status = PetitionStatus::Draft)
        .await;
    app.add_organizer("free-them", "olga@example.org").await;

    let refused = |response: Response, status: StatusCode, message: &str| {
        assert_eq!(response.status, status, "{}", response.body);
        assert!(response.body.contains(message), "{}", response.body);
    };
    refused(
        set_status(&app, &olga, "free-them", "to=closed").await,
        StatusCode::CONFLICT,
        "A draft must be opened before",
    );
    refused(
        set_status(&app, &olga, "free-them", "to=banana").await,
        StatusCode::BAD_REQUEST,
        "Choose the new status",
    );
    assert_redirect(
        &set_status(&app, &olga, "free-them", "to=open").await,
        "/admin/petitions/free-them",
    );
    refused(
        set_status(&app, &olga, "free-them", "to=open").await,
        StatusCode::CONFLICT,
        "already open",
    );
    refused(
        set_status(&app, &olga, "free-them", "to=delivered").await,
        StatusCode::CONFLICT,
        "use Deliver on its dashboard",
    );
    refused(
        set_status(&app, &olga, "free-them", "to=draft").await,
        StatusCode::CONFLICT,
        "cannot become a draft again",
    );
    app.sign_json("free-them", "ana@example.org").await;
    let path = app.confirmation_path("ana@example.org", 1).await;
    app.post_form(&path, "").await;

    // Closing by hand records when; the public page shows the final count and no form.
    assert_redirect(
        &set_status(&app, &olga, "free-them", "to=closed").await,
        "/admin/petitions/free-them",
    );
    let (status, closes_at) = status_of(&app, "free-them").await;
    assert_eq!(status, "closed");
    assert!(closes_at.unwrap() <= undersign::core::clock::now());
    let page = app.get("/p/free-them").await;
    assert!(page.body.contains("This petition is closed"));
    assert!(page.body.contains("signed by 1 person"));
    assert!(!page.body.contains("action=\"/p/free-them/sign\""));
    let late = app.sign_json("free-them", "bo@example.org").await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(late.body.contains("closed"));

    // Only an admin reopens.
    refused(
        set_status(&app, &olga, "free-them", "to=open").await,
        StatusCode::FORBIDDEN,
        "Only an administrator can reopen a closed petition.",
    );
    assert_eq!(status_of(&app, "free-them").await.0, "closed");
    assert_redirect(
        &set_status(&app, &admin, "free-them", "to=open").await,
        "/admin/petitions/free-them",
    );
    let (status, closes_at) = status_of(&app, "free-them").await;
    assert_eq!(status, "open");
    assert_eq!(closes_at, None, "a closing date that has passed is cleared");
    assert_eq!(
        app.sign_json("free-them", "bo@example.org").await.status,
        StatusCode::ACCEPTED
    );

    // Reopening may set a new closing date, which must not be in the past.
    assert_redirect(
        &set_status(&app, &olga, "free-them", "to=closed").await,
        "/admin/petitions/free-them",
    );
    refused(
        set_status(&app, &admin, "free-them", "to=open&closes_on=2001-01-01").await,
        StatusCode::BAD_REQUEST,
        "in the past",
    );
    assert_redirect(
        &set_status(&app, &admin, "free-them", "to=open&closes_on=2099-06-30").await,
        "/admin/petitions/free-them",
    );
    assert_eq!(
        status_of(&app, "free-them").await.1.unwrap().to_string(),
        "2099-07-01 00:00:00"
    );

    // An open petition past its closing date counts as closed: it can be delivered at once,
    // by delivering it (a bare status change to delivered is refused).
    app.db(|conn| {
        diesel::update(petitions::table)
            .set(
                petitions::closes_at
                    .eq(undersign::core::clock::now() - chrono::Duration::seconds(5)),
            )
            .execute(conn)
            .unwrap()
    })
    .await;
    refused(
        set_status(&app, &olga, "free-them", "to=closed").await,
        StatusCode::CONFLICT,
        "already closed",
    );
    refused(
        set_status(&app, &olga, "free-them", "to=delivered").await,
        StatusCode::CONFLICT,
        "use Deliver on its dashboard",
    );
    let bundle = app
        .post_download_as(
            &olga,
            "/admin/petitions/free-them/deliver",
            "to=The+Prime+Minister+of+Norway",
        )
        .await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert_eq!(status_of(&app, "free-them").await.0, "delivered");
    let page = app.get("/p/free-them").await;
    assert!(page.body.contains("This petition is delivered"));

    // Delivered is final, even for admins; its text is frozen.
    refused(
        set_status(&app, &admin, "free-them", "to=open").await,
        StatusCode::CONFLICT,
        "can no longer change",
    );
    refused(
        app.get_as(&olga, "/admin/petitions/free-them/edit").await,
        StatusCode::CONFLICT,
        "was delivered",
    );
    refused(
        app.post_form_as(
            &admin,
            "/admin/petitions/free-them/edit",
            &full_form("save", "free-them", BODY_V2),
        )
        .await,
        StatusCode::CONFLICT,
        "was delivered",
    );

    // A draft whose closing date has passed is not opened (it would close at once).
    app.create_petition_with("stale", |p| {
        p.status = PetitionStatus::Draft;
        p.closes_at = Some(undersign::core::clock::now() - chrono::Duration::days(1));
    })
    .await;
    refused(
        set_status(&app, &admin, "stale", "to=open").await,
        StatusCode::CONFLICT,
        "Edit the petition to choose a new closing date",
    );

    let transitions: Vec<String> = audit_entries(&app)
        .await
        .into_iter()
        .filter(|(_, action, _)| action == "petition.status")
        .map(|(_, _, details)| details)
        .collect();
    assert_eq!(transitions[0], "draft → open");
    assert!(
        transitions[1].starts_with("open → closed; closes at"),
        "{transitions:?}"
    );
    assert_eq!(transitions[2], "closed → open; no closing date");
    assert!(transitions[3].starts_with("open → closed; closes at"));
    assert_eq!(
        transitions[4],
        "closed → open; closes at 2099-07-01 00:00:00 UTC"
    );
    // Whether the maintenance task or the request noticed first, the log says it once.
    assert_eq!(transitions[5], "open → closed (closing date reached)");
    assert_eq!(transitions.len(), 6);
    let deliveries = audit_entries(&app)
        .await
        .into_iter()
        .filter(|(_, action, _)| action == "petition.deliver")
        .count();
    assert_eq!(deliveries, 1);
}

async fn petitions_close_by_themselves_at_their_closing_date(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition_with("expired", |p| {
        p.closes_at = Some(undersign::core::clock::now() - chrono::Duration::seconds(1));
    })
    .await;
    app.create_petition_with("running", |p| {
        p.closes_at = Some(undersign::core::clock::now() + chrono::Duration::days(1));
    })
    .await;
    // The public sees it closed at once, whatever the task has done yet.
    assert_eq!(
        app.sign_json("expired", "ana@example.org").await.status,
        StatusCode::CONFLICT
    );

    let started = Instant::now();
    while status_of(&app, "expired").await.0 != "closed" {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the maintenance task closes it within a second"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status_of(&app, "running").await.0, "open");
    let entries = audit_entries(&app).await;
    assert_eq!(
        entries,
        [(
            None,
            "petition.status".to_owned(),
            "open → closed (closing date reached)".to_owned()
        )],
        "logged once, by nobody"
    );
    // Later rounds change nothing.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(audit_entries(&app).await.len(), 1);
}

async fn invalid_forms_are_shown_again_with_messages_and_the_input_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let olga = app.signed_in("olga@example.org", Role::Organizer).await;

    let response = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &petition_form(
                "save",
                &[
                    ("title", "  "),
                    ("slug", "Not A Slug"),
                    ("summary", "Kept summary"),
                    ("body", "Kept <body> text"),
                    ("targets", ", no name"),
                    ("goal", "lots"),
                    ("closes_on", "2001-02-03"),
                ],
            ),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = &response.body;
    assert!(body.contains("The petition was not saved"));
    for (field, message) in [
        ("title", "Give a title of 1 to 200 characters."),
        ("slug", "Use 3 to 80 lowercase letters"),
        ("targets", "no name"),
        ("goal", "Write the goal as a whole number"),
        ("closes_on", "The closing date is in the past."),
    ] {
        let error = body
            .find(&format!("id=\"{field}-error\""))
            .unwrap_or_else(|| panic!("a message beside {field}: {body}"));
        let beside = &body[error..(error + 300).min(body.len())];
        assert!(beside.contains(message), "{field}: {message} in {beside}");
        assert!(body.contains(&format!("id=\"{field}\"")));
    }
    assert!(body.contains("value=\"Not A Slug\""));
    assert!(body.contains(">Kept summary</textarea>"));
    assert!(body.contains(">Kept &#60;body&#62; text</textarea>"));
    assert!(body.contains("value=\"lots\""));
    assert!(body.contains("value=\"2001-02-03\""));
    assert_eq!(app.count_rows("petitions").await, 0);

    // A slug that is taken, or reserved, is refused beside the slug field.
    app.create_petition("taken").await;
    let response = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &full_form("save", "taken", BODY_V2),
        )
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("id=\"slug-error\""));
    assert!(response
        .body
        .contains("Another petition already has this address"));
    assert!(
        response.body.contains("value=\"Free them all\""),
        "input kept"
    );
    let response = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &full_form("save", "new", BODY_V2),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("is reserved"));
    assert_eq!(app.count_rows("petitions").await, 1);

    // Neither Preview nor Save, or no CSRF token: refused, nothing saved.
    let response = app
        .post_form_as(&olga, "/admin/petitions", "title=x&slug=free-them&body=x")
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let response = app
        .post_form_as_raw(
            &olga,
            "/admin/petitions",
            &full_form("save", "free-them", BODY_V2),
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count_rows("petitions").await, 1);

    // Editing an open petition: its address is fixed, and its closing date cannot go back.
    app.create_petition_with("open-one", |p| p.title = "Open one".to_owned())
        .await;
    app.add_organizer("open-one", "olga@example.org").await;
    let response = app
        .post_form_as(
            &olga,
            "/admin/petitions/open-one/edit",
            &petition_form(
                "save",
                &[
                    ("title", "Changed title"),
                    ("slug", "renamed"),
                    ("body", "Changed body"),
                    ("closes_on", "2001-01-01"),
                ],
            ),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .body
        .contains("The address can change only while the petition is a draft"));
    assert!(response.body.contains("The closing date is in the past."));
    assert!(response.body.contains("value=\"Changed title\""));
    assert_eq!(
        versions_of(&app, "open-one").await.len(),
        1,
        "nothing saved"
    );
    let title: String = app
        .db(|conn| {
            petitions::table
                .filter(petitions::slug.eq("open-one"))
                .select(petitions::title)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(title, "Open one");

    // A draft's address can change.
    app.create_petition_with("draft-one", |p| p.status = PetitionStatus::Draft)
        .await;
    app.add_organizer("draft-one", "olga@example.org").await;
    let saved = app
        .post_form_as(
            &olga,
            "/admin/petitions/draft-one/edit",
            &full_form("save", "draft-two", BODY_V2),
        )
        .await;
    assert_redirect(&saved, "/admin/petitions/draft-two");
    assert_eq!(
        app.get_as(&olga, "/admin/petitions/draft-one/edit")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_as(&olga, "/admin/petitions/draft-two/edit")
            .await
            .status,
        StatusCode::OK
    );
    // …but not to one that is taken.
    let response = app
        .post_form_as(
            &olga,
            "/admin/petitions/draft-two/edit",
            &full_form("save", "taken", BODY_V2),
        )
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response
        .body
        .contains("Another petition already has this address"));

    // Petition texts may be far longer than a signature form, up to 100 kB.
    let long = "Long text. ".repeat(5_000);
    let saved = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &full_form("save", "long-one", &long),
        )
        .await;
    assert_redirect(&saved, "/admin/petitions/long-one");
    let too_long = "Too long. ".repeat(11_000);
    let response = app
        .post_form_as(
            &olga,
            "/admin/petitions",
            &full_form("save", "too-long", &too_long),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body.contains("at most 100 kB"));
}

async fn other_organizers_petitions_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let olga = app.signed_in("olga@example.org", Role::Organizer).await;
    app.create_user("ivan@example.org", Role::Organizer).await;
    app.create_petition("theirs").await;
    app.add_organizer("theirs", "ivan@example.org").await;
    app.create_petition_with("their-draft", |p| p.status = PetitionStatus::Draft)
        .await;
    app.add_organizer("their-draft", "ivan@example.org").await;

    for slug in ["theirs", "their-draft", "nonexistent"] {
        for path in ["edit", "organizers"] {
            let response = app
                .get_as(&olga, &format!("/admin/petitions/{slug}/{path}"))
                .await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "GET {slug}/{path}");
        }
        let posts = [
            ("edit", full_form("save", slug, BODY_V2)),
            ("edit", full_form("preview", slug, BODY_V2)),
            ("status", "to=open".to_owned()),
            ("status", "to=closed".to_owned()),
            (
                "organizers",
                "action=add&email=olga%40example.org".to_owned(),
            ),
            ("organizers", "action=remove&user_id=1".to_owned()),
        ];
        for (path, body) in posts {
            let response = app
                .post_form_as(&olga, &format!("/admin/petitions/{slug}/{path}"), &body)
                .await;
            assert_eq!(
                response.status,
                StatusCode::NOT_FOUND,
                "POST {slug}/{path} {body}"
            );
            assert!(response
                .body
                .contains("There is no petition at this address."));
        }
    }
    assert_eq!(status_of(&app, "theirs").await.0, "open");
    assert_eq!(status_of(&app, "their-draft").await.0, "draft");
    assert!(audit_entries(&app).await.is_empty());
    // Signed out, every route asks for sign-in.
    for path in ["/admin/petitions/new", "/admin/petitions/theirs/edit"] {
        assert_eq!(app.get(path).await.status, StatusCode::SEE_OTHER);
    }
}

async fn admins_choose_who_runs_a_petition(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.signed_in("admin@example.org", Role::Admin).await;
    let ivan = app.signed_in("ivan@example.org", Role::Organizer).await;
    let olga = app.signed_in("olga@example.org", Role::Organizer).await;
    app.create_petition("free-them").await;
    app.add_organizer("free-them", "ivan@example.org").await;

    // Members see who runs it, but only admins change it.
    let page = app
        .get_as(&ivan, "/admin/petitions/free-them/organizers")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ivan@example.org"));
    assert!(!page.body.contains("name=\"email\""));
    let refused = app
        .post_form_as(
            &ivan,
            "/admin/petitions/free-them/organizers",
            "action=add&email=olga%40example.org",
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused
        .body
        .contains("Only an administrator can change who runs a petition."));

    // An admin adds Olga, who can then edit it.
    assert_eq!(
        app.get_as(&olga, "/admin/petitions/free-them/edit")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let added = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/organizers",
            "action=add&email=Olga%40Example.org",
        )
        .await;
    assert_redirect(&added, "/admin/petitions/free-them/organizers");
    assert_eq!(
        app.get_as(&olga, "/admin/petitions/free-them/edit")
            .await
            .status,
        StatusCode::OK
    );
    // Adding twice changes nothing; an unknown account is explained beside the field.
    let again = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/organizers",
            "action=add&email=olga%40example.org",
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let unknown = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/organizers",
            "action=add&email=nobody%40example.org",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("id=\"email-error\""));
    assert!(unknown
        .body
        .contains("There is no account for nobody@example.org"));
    assert!(unknown.body.contains("value=\"nobody@example.org\""));
    let page = app
        .get_as(&admin, "/admin/petitions/free-them/organizers")
        .await;
    assert!(page.body.contains("olga@example.org") && page.body.contains("ivan@example.org"));

    // Removing: Ivan goes; Olga, now the last, stays.
    let ids: Vec<(i64, String)> = app
        .db(|conn| {
            use undersign::db::schema::users;
            users::table
                .select((users::id, users::email))
                .load(conn)
                .unwrap()
        })
        .await;
    let id_of = |email: &str| ids.iter().find(|(_, e)| e == email).unwrap().0;
    let removed = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/organizers",
            &format!("action=remove&user_id={}", id_of("ivan@example.org")),
        )
        .await;
    assert_redirect(&removed, "/admin/petitions/free-them/organizers");
    assert_eq!(
        app.get_as(&ivan, "/admin/petitions/free-them/edit")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let last = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/organizers",
            &format!("action=remove&user_id={}", id_of("olga@example.org")),
        )
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert!(last.body.contains("at least one organizer"));
    let not_member = app
        .post_form_as(
            &admin,
            "/admin/petitions/free-them/organizers",
            &format!("action=remove&user_id={}", id_of("ivan@example.org")),
        )
        .await;
    assert_eq!(not_member.status, StatusCode::NOT_FOUND);

    let admin_id = id_of("admin@example.org");
    let entries = audit_entries(&app).await;
    assert_eq!(
        entries,
        [
            (
                Some(admin_id),
                "petition.organizer.add".to_owned(),
                "olga@example.org".to_owned()
            ),
            (
                Some(admin_id),
                "petition.organizer.remove".to_owned(),
                "ivan@example.org".to_owned()
            ),
        ]
    );
}
