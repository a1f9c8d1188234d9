//! Signer receipts: shown on the confirmation page and emailed, found in the delivered bundle
//! with an inclusion proof that verifies (in Rust and with `undersign verify`), while made-up
//! receipts are not found and a proof for another leaf fails.

use std::time::Duration;

use awc::http::StatusCode;
use undersign::core::hex::parse_hash;
use undersign::delivery::merkle::InclusionProof;
use undersign::delivery::verify::ProofFile;

use crate::backend_tests;
use crate::delivery::{deliver_cli, manifest_of, undersign, unzip, verify, verify_pinned};
use crate::helpers::{Backend, TestApp};
use crate::moderation::sign;

backend_tests!(
    receipts_are_shown_emailed_and_proven_in_the_delivered_bundle,
    the_receipt_checker_answers_bad_and_unknown_receipts_clearly,
);

/// The receipt shown on a confirmation page.
fn receipt_on_page(body: &str) -> String {
    let marker = "<code class=\"hash\" id=\"receipt\">";
    let start = body.find(marker).expect("the page shows a receipt") + marker.len();
    body[start..start + 64].to_owned()
}

/// Signs, confirms, and returns the receipt from the confirmation page.
async fn sign_and_get_receipt(app: &TestApp, email: &str, name: &str, country: &str) -> String {
    sign(app, "free-them", email, name, country).await;
    let path = app.confirmation_path(email, 1).await;
    let page = app.post_form(&path, "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Your receipt"));
    receipt_on_page(&page.body)
}

fn proof_json(proof: &ProofFile) -> String {
    serde_json::to_string_pretty(proof).unwrap()
}

async fn receipts_are_shown_emailed_and_proven_in_the_delivered_bundle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    let ana = sign_and_get_receipt(&app, "ana@example.org", "Ana Ivanova", "NO").await;
    assert!(parse_hash(&ana).is_some());

    // The receipt email: the same receipt, the checker's link, no name.
    let mails = app
        .smtp
        .wait_for_messages_to("ana@example.org", 2, Duration::from_secs(10))
        .await;
    let receipt_mail = &mails[1];
    assert!(receipt_mail.subject().starts_with("Your receipt"));
    assert!(receipt_mail.has_text_and_html_parts());
    let text = receipt_mail.text_body();
    assert!(text.contains(&ana));
    assert!(!text.contains("Ana Ivanova") && !receipt_mail.html_body().contains("Ana Ivanova"));
    assert!(receipt_mail.links().contains(&format!(
        "{}/p/free-them/receipt?receipt={ana}",
        app.base_url
    )));

    // Confirming again shows the same receipt; so does the link's page.
    let path = app.confirmation_path("ana@example.org", 1).await;
    let again = app.post_form(&path, "").await;
    assert!(again.body.contains("already confirmed"));
    assert_eq!(receipt_on_page(&again.body), ana);
    assert_eq!(receipt_on_page(&app.get(&path).await.body), ana);

    // Before the delivery there is nothing to look in.
    let before = app
        .get(&format!("/p/free-them/receipt?receipt={ana}"))
        .await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);
    assert!(before
        .body
        .contains("No bundle of this petition has been delivered yet"));

    let mut receipts = vec![ana.clone()];
    for (email, name, country) in [
        ("bo@example.org", "Bo Berg", "SE"),
        ("cai@example.org", "Цай", "BY"),
        ("dora@example.org", "Dora", "NO"),
        ("eli@example.org", "Eli", "IE"),
    ] {
        receipts.push(sign_and_get_receipt(&app, email, name, country).await);
    }
    let bundle = deliver_cli(&app, "free-them", "bundle.zip").await;
    let manifest = manifest_of(&unzip(&std::fs::read(&bundle).unwrap()));
    let root = parse_hash(&manifest.merkle_tree.root).unwrap();

    // Every receipt is found, with a proof that verifies against the bundle's root.
    let mut proofs = Vec::new();
    for (index, receipt) in receipts.iter().enumerate() {
        let page = app
            .get(&format!(
                "/p/free-them/receipt?receipt={}",
                receipt.to_uppercase()
            ))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Yes: your signature is in the bundle"));
        assert!(page.body.contains("Prime Minister of Norway"));
        assert!(page.body.contains(&format!(
            "<code class=\"hash\" id=\"merkle-root\">{}</code>",
            manifest.merkle_tree.root
        )));
        assert!(page.body.contains(&format!("leaf {index} of 5")));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        // Nobody else's details.
        for other in ["Bo Berg", "Цай", "Dora", "Ana Ivanova", "@example.org"] {
            assert!(!page.body.contains(other), "{other}");
        }

        let json = app
            .get(&format!(
                "/p/free-them/receipt?receipt={receipt}&format=json"
            ))
            .await;
        assert_eq!(json.status, StatusCode::OK, "{}", json.body);
        assert!(json
            .header("content-disposition")
            .is_some_and(|value| value.starts_with("attachment")));
        let proof: ProofFile = serde_json::from_str(&json.body).unwrap();
        assert_eq!(&proof.receipt, receipt);
        assert_eq!(proof.root, manifest.merkle_tree.root);
        assert_eq!(proof.leaf_index, index as u64);
        assert_eq!(proof.tree_size, 5);
        assert_eq!(proof.delivery.recipient, "Prime Minister of Norway");
        assert_eq!(proof.delivery.signature_count, 5);
        let leaf = parse_hash(receipt).unwrap();
        assert!(proof.proof().unwrap().verify(&leaf, &root));
        proofs.push(proof);
    }

    // A proof for another leaf fails for this receipt.
    let ana_leaf = parse_hash(&ana).unwrap();
    let bo_proof: InclusionProof = proofs[1].proof().unwrap();
    assert!(!bo_proof.verify(&ana_leaf, &root));

    // And with `undersign verify`: against the bundle, against a given root, and the
    // failures.
    let dir = app.database.dir.clone();
    let ana_file = dir.join("ana-proof.json");
    std::fs::write(&ana_file, proof_json(&proofs[0])).unwrap();
    let run = verify_pinned(&app, &bundle, &["--proof", ana_file.to_str().unwrap()]).await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&format!(
        "OK      inclusion proof: receipt {ana} is leaf 0 of 5 under the Merkle root of the bundle's manifest"
    )));
    let run = undersign(
        &app,
        &[
            "verify",
            "--proof",
            ana_file.to_str().unwrap(),
            "--receipt",
            &ana,
            "--root",
            &manifest.merkle_tree.root,
        ],
    )
    .await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let bo_file = dir.join("bo-proof.json");
    std::fs::write(&bo_file, proof_json(&proofs[1])).unwrap();
    let run = undersign(
        &app,
        &[
            "verify",
            "--proof",
            bo_file.to_str().unwrap(),
            "--receipt",
            &ana,
            "--root",
            &manifest.merkle_tree.root,
        ],
    )
    .await;
    assert!(!run.success, "{}", run.stdout);
    assert!(run
        .stdout
        .contains("FAILED  receipt: the proof is for the receipt"));
    assert!(run.stdout.contains("FAILED  inclusion proof"));
    // A made-up receipt with a real proof, and a proof against another root.
    let mut made_up = proofs[2].clone();
    made_up.receipt = "ab".repeat(32);
    let made_up_file = dir.join("made-up.json");
    std::fs::write(&made_up_file, proof_json(&made_up)).unwrap();
    let run = verify(&app, &bundle, &["--proof", made_up_file.to_str().unwrap()]).await;
    assert!(!run.success);
    assert!(
        run.stdout.contains("FAILED  inclusion proof"),
        "{}",
        run.stdout
    );
    let run = undersign(
        &app,
        &[
            "verify",
            "--proof",
            ana_file.to_str().unwrap(),
            "--root",
            &"00".repeat(32),
        ],
    )
    .await;
    assert!(!run.success);
    assert!(
        run.stdout.contains("FAILED  inclusion proof"),
        "{}",
        run.stdout
    );
}

async fn the_receipt_checker_answers_bad_and_unknown_receipts_clearly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.create_petition_with("a-draft", |p| {
        p.status = undersign::core::status::PetitionStatus::Draft
    })
    .await;
    let form = app.get("/p/free-them/receipt").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form
        .body
        .contains("<form method=\"get\" action=\"/p/free-them/receipt\""));
    assert!(!form.body.contains("style=\"") && !form.body.contains("<script"));
    assert_eq!(
        app.get("/p/a-draft/receipt").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/nope/receipt").await.status,
        StatusCode::NOT_FOUND
    );

    for bad in ["abc", &"g".repeat(64), &"a".repeat(65), "%FF"] {
        let page = app
            .get(&format!("/p/free-them/receipt?receipt={bad}"))
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.body.contains("A receipt is 64 characters"));
        let json = app
            .get(&format!("/p/free-them/receipt?receipt={bad}&format=json"))
            .await;
        assert_eq!(json.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(json.json()["error"].as_str().is_some(), "{}", json.body);
    }
    let format = app.get("/p/free-them/receipt?format=xml").await;
    assert_eq!(format.status, StatusCode::BAD_REQUEST);

    let receipt = sign_and_get_receipt(&app, "ana@example.org", "Ana Ivanova", "NO").await;
    sign(&app, "free-them", "late@example.org", "Late", "NO").await;
    let late = app.confirmation_path("late@example.org", 1).await;
    deliver_cli(&app, "free-them", "bundle.zip").await;
    let made_up = "0123456789abcdef".repeat(4);
    let page = app
        .get(&format!("/p/free-them/receipt?receipt={made_up}"))
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page
        .body
        .contains("This receipt is not in the bundle delivered to Prime Minister of Norway"));
    let json = app
        .get(&format!(
            "/p/free-them/receipt?receipt={made_up}&format=json"
        ))
        .await;
    assert_eq!(json.status, StatusCode::NOT_FOUND);
    assert!(json.json()["error"]
        .as_str()
        .unwrap()
        .contains("not in the bundle"));
    // The one real receipt: a tree of one leaf, an empty path.
    let json = app
        .get(&format!(
            "/p/free-them/receipt?receipt={receipt}&format=json"
        ))
        .await;
    let proof: ProofFile = serde_json::from_str(&json.body).unwrap();
    assert!(proof.path.is_empty());
    assert_eq!(proof.tree_size, 1);
    let page = app
        .get(&format!("/p/free-them/receipt?receipt={receipt}"))
        .await;
    assert!(page.body.contains("No hashes are needed"));

    // After the delivery, a pending signature can no longer be confirmed.
    let refused = app.post_form(&late, "").await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(app.public_count("free-them").await, 1);
}
