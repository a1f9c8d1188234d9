//! What a new organiser tripped over on the pages, in the words the pages now use (the
//! browser tests in tests/browser/ show the same in screenshots): a way to the form from the
//! top, radio buttons in a labelled group, singular and plural counts, an absolute address to
//! share, and the stylesheet's password field.

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    the_petition_page_leads_from_the_top_to_the_form,
    the_disclosure_choice_is_one_labelled_group,
    counts_say_signature_for_one_and_signatures_for_more,
    the_confirmation_page_shares_the_absolute_address,
    the_password_field_is_styled_as_the_other_fields,
);

async fn the_petition_page_leads_from_the_top_to_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition_with("free-them", |p| {
        p.body = "A long letter. ".repeat(400);
    })
    .await;
    let body = app.get("/p/free-them").await.body;
    let link = body
        .find("<a class=\"button\" href=\"#sign\">Sign this petition</a>")
        .expect("a link to the form");
    let letter = body.find("A long letter.").expect("the letter");
    let form = body
        .find("<section class=\"sign\" id=\"sign\"")
        .expect("the form's anchor");
    assert!(link < letter, "the link comes before the letter's text");
    assert!(letter < form);

    // A closed petition has no form, and so no link to one.
    app.create_petition_with("closed-one", |p| {
        p.status = undersign::core::status::PetitionStatus::Closed
    })
    .await;
    let closed = app.get("/p/closed-one").await.body;
    assert!(!closed.contains("href=\"#sign\""));
}

async fn the_disclosure_choice_is_one_labelled_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let body = app.get("/p/free-them").await.body;
    let start = body
        .find("<fieldset class=\"field disclosure")
        .expect("a fieldset");
    let fieldset = &body[start..start + body[start..].find("</fieldset>").unwrap()];
    assert!(fieldset.contains("<legend>Who may see your name?</legend>"));
    for (value, label) in [
        ("public", "Public"),
        ("recipients", "Addressees only"),
        ("count_only", "Count only"),
    ] {
        // Each radio is followed directly by its own label.
        let radio = fieldset
            .find(&format!(
                "<input id=\"{value}\" name=\"disclosure\" type=\"radio\""
            ))
            .unwrap_or_else(|| panic!("the {value} radio"));
        let after = &fieldset[radio..];
        let tag_end = after.find('>').unwrap() + 1;
        assert!(
            after[tag_end..]
                .trim_start()
                .starts_with(&format!("<label for=\"{value}\">{label}</label>")),
            "the {value} radio and its label sit together"
        );
    }
}

async fn counts_say_signature_for_one_and_signatures_for_more(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    for email in ["a@example.org", "b@example.org"] {
        app.sign_json("free-them", email).await;
    }
    let first = app.confirmation_path("a@example.org", 1).await;
    let second = app.confirmation_path("b@example.org", 1).await;

    let page = app.post_form(&first, "").await.body;
    assert!(
        page.contains("<strong>1</strong> confirmed signature of a goal of 100."),
        "{page}"
    );
    tokio::time::sleep(undersign::petitions::cache::FRESH_FOR).await;
    let petition = app.get("/p/free-them").await.body;
    assert!(petition.contains("<strong>1</strong> confirmed signature of a goal of 100"));
    let front = app.get("/").await.body;
    assert!(front.contains("<strong>1</strong> signature of 100"));
    let admin = app
        .signed_in(
            "admin@example.org",
            undersign::organizers::accounts::Role::Admin,
        )
        .await;
    let dashboard = app.get_as(&admin, "/admin/petitions/free-them").await.body;
    assert!(
        dashboard.contains("1 confirmed signature from"),
        "{dashboard}"
    );

    let page = app.post_form(&second, "").await.body;
    assert!(page.contains("<strong>2</strong> confirmed signatures of a goal of 100."));
    tokio::time::sleep(undersign::petitions::cache::FRESH_FOR).await;
    let petition = app.get("/p/free-them").await.body;
    assert!(petition.contains("<strong>2</strong> confirmed signatures of a goal of 100"));
    let front = app.get("/").await.body;
    assert!(front.contains("<strong>2</strong> signatures of 100"));
}

async fn the_confirmation_page_shares_the_absolute_address(backend: Backend) {
    // The public origin is spelled differently from the address the server listens on (as
    // behind a proxy), and still reaches it: `localhost` instead of 127.0.0.1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = format!("http://localhost:{port}");
    let app = TestApp::spawn_with(backend, |settings| {
        settings.bind = format!("127.0.0.1:{port}");
        settings.base_url = Some(origin.clone());
    })
    .await;
    app.create_petition("free-them").await;
    app.sign_json("free-them", "a@example.org").await;
    let link = app.confirmation_path("a@example.org", 1).await;
    let page = app.post_form(&link, "").await.body;
    assert!(
        page.contains(&format!(
            "<a href=\"{origin}/p/free-them\">{origin}/p/free-them</a>"
        )),
        "{page}"
    );
    assert!(!page.contains(">/p/free-them</a>"), "no relative address");
}

async fn the_password_field_is_styled_as_the_other_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.get("/login").await.body;
    assert!(login.contains("<input id=\"password\" name=\"password\" type=\"password\""));
    let css = app.get("/static/style.css").await.body;
    let rule_start = css
        .find("input[type=\"text\"], input[type=\"email\"], input[type=\"password\"]")
        .expect("the text fields' rule names the password field");
    let rule = &css[rule_start..rule_start + css[rule_start..].find('}').unwrap()];
    assert!(rule.contains("border: 2px solid"));
    assert!(rule.contains("width: 100%"));
}
