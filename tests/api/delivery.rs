//! Delivering a petition: the bundle from the command line and from the dashboard, what it
//! holds, `undersign verify` passing on it and naming every kind of tampering, the record on
//! the public page, and the published signing key.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use awc::http::StatusCode;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use undersign::db::schema::{audit_log, deliveries, delivery_leaves, petitions, signatures};
use undersign::delivery::csv_reader::CsvReader;
use undersign::delivery::manifest::Manifest;
use undersign::delivery::signing_key::InstanceKey;
use undersign::organizers::accounts::Role;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};
use crate::moderation::{sign, sign_and_confirm, signature_id};

backend_tests!(
    the_command_line_delivers_a_bundle_that_verifies,
    any_tampering_is_caught_and_named,
    the_dashboard_delivers_and_downloads_the_bundle,
    the_published_key_is_the_one_key_show_prints,
    the_key_fetched_over_https_pins_the_bundle,
    the_readme_s_checks_by_hand_work_with_common_tools,
);

/// What a run of the `undersign` binary printed.
pub(crate) struct Run {
    pub success: bool,
    /// The exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `undersign` binary against the app's database and signing key.
pub(crate) async fn undersign(app: &TestApp, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let url = app.database.url.clone();
    let dir = app.database.dir.clone();
    let base_url = app.base_url.clone();
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_undersign"))
            .args(&args)
            .env_clear()
            .env("DATABASE_URL", url)
            .env("UNDERSIGN_SIGNING_KEY_FILE", dir.join("signing.key"))
            .env("UNDERSIGN_SECRET_KEY_FILE", dir.join("secret.key"))
            .env("UNDERSIGN_DATA_KEY_FILE", dir.join("data.key"))
            .env("UNDERSIGN_BASE_URL", base_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the undersign binary runs")
    })
    .await
    .unwrap();
    Run {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `undersign verify` on a bundle, with optional extra arguments.
pub(crate) async fn verify(app: &TestApp, bundle: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["verify", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    undersign(app, &args).await
}

/// The instance's public key (base64), as a recipient would pin it.
pub(crate) fn instance_key(app: &TestApp) -> String {
    InstanceKey::load_or_create(&app.database.dir.join("signing.key"))
        .unwrap()
        .public_key()
        .to_base64()
}

/// `undersign verify` on a bundle with the instance's key pinned.
pub(crate) async fn verify_pinned(app: &TestApp, bundle: &Path, extra: &[&str]) -> Run {
    let key = instance_key(app);
    let mut args = vec!["--key", key.as_str()];
    args.extend_from_slice(extra);
    verify(app, bundle, &args).await
}

/// Delivers from the command line into the test's folder and returns the bundle's path.
pub(crate) async fn deliver_cli(app: &TestApp, slug: &str, name: &str) -> PathBuf {
    let out = app.database.dir.join(name);
    let run = undersign(
        app,
        &[
            "deliver",
            "--petition",
            slug,
            "--to",
            "Prime Minister of Norway",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    out
}

/// The entries of a zip, in order.
pub(crate) fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            (entry.name().unwrap().into_owned(), content)
        })
        .collect()
}

pub(crate) fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is in the bundle"))
        .1
}

pub(crate) fn manifest_of(entries: &[(String, Vec<u8>)]) -> Manifest {
    serde_json::from_slice(entry(entries, "manifest.json")).expect("a readable manifest")
}

/// The records of a CSV, header first.
pub(crate) fn csv_records(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut reader = CsvReader::new(bytes);
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        records.push(record);
    }
    records
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Writes a copy of a bundle with entries changed (`None` drops one) and extra ones added.
fn rewrite(
    from: &Path,
    to: &Path,
    change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
    extra: &[(&str, &[u8])],
) {
    let entries = unzip(&std::fs::read(from).unwrap());
    let mut writer = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, content) in entries {
        if let Some(content) = change(&name, content) {
            writer.start_file(name.as_str(), options).unwrap();
            writer.write_all(&content).unwrap();
        }
    }
    for (name, content) in extra {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap();
}

/// Four confirmed signatures in three countries, under two versions of the text (one of them
/// confirmed before receipts existed, so without a commitment), one pending and one
/// invalidated signature.
pub(crate) async fn seed(app: &TestApp, slug: &str) {
    sign_and_confirm(app, slug, "ana@example.org", "Ana Ivanova", "NO").await;
    sign_and_confirm(app, slug, "ales@example.org", "Алесь Бяляцкі", "BY").await;
    sign_and_confirm(app, slug, "pat@example.org", "O'Brien, \"Pat\"", "IE").await;
    let slug_owned = slug.to_owned();
    app.db(move |conn| {
        let id: i64 = petitions::table
            .filter(petitions::slug.eq(&slug_owned))
            .select(petitions::id)
            .first(conn)
            .unwrap();
        undersign::petitions::queries::add_version(
            conn,
            id,
            "Free them all, now",
            "Release every political prisoner.",
            "Dear Prime Minister,\n\nWe ask you to **act now**.",
            undersign::core::clock::now(),
        )
        .unwrap();
    })
    .await;
    sign_and_confirm(app, slug, "formula@example.org", "=SUM(A1)", "NO").await;
    sign(app, slug, "pending@example.org", "Pat Pending", "SE").await;
    sign_and_confirm(app, slug, "ivan@example.org", "Ivan Invalid", "NO").await;
    let ivan = signature_id(app, slug, "ivan@example.org").await;
    let ana = signature_id(app, slug, "ana@example.org").await;
    let slug_owned = slug.to_owned();
    app.db(move |conn| {
        diesel::update(signatures::table.find(ivan))
            .set(signatures::status.eq("invalidated"))
            .execute(conn)
            .unwrap();
        diesel::update(petitions::table.filter(petitions::slug.eq(&slug_owned)))
            .set(petitions::signature_count.eq(petitions::signature_count - 1))
            .execute(conn)
            .unwrap();
        // As if confirmed before receipts existed.
        diesel::update(signatures::table.find(ana))
            .set((
                signatures::commitment.eq(None::<String>),
                signatures::receipt_salt.eq(None::<String>),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
}

/// The confirmed signatures' commitments in id order, from the database.
async fn stored_commitments(app: &TestApp) -> Vec<Option<String>> {
    app.db(|conn| {
        signatures::table
            .filter(signatures::status.eq("confirmed"))
            .order(signatures::id.asc())
            .select(signatures::commitment)
            .load(conn)
            .unwrap()
    })
    .await
}

async fn the_command_line_delivers_a_bundle_that_verifies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    seed(&app, "free-them").await;
    assert_eq!(app.public_count("free-them").await, 4);

    let path = deliver_cli(&app, "free-them", "bundle.zip").await;
    let bytes = std::fs::read(&path).unwrap();
    let entries = unzip(&bytes);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "signatures.csv",
            "dossier.pdf",
            "README.txt",
            "manifest.json",
            "manifest.sig"
        ]
    );
    assert!(!path.with_file_name("bundle.zip.partial").exists());

    // The manifest.
    let manifest = manifest_of(&entries);
    assert_eq!(manifest.format, "undersign delivery bundle");
    assert_eq!(manifest.format_version, 1);
    assert_eq!(manifest.recipient, "Prime Minister of Norway");
    assert_eq!(manifest.instance_url, app.base_url);
    assert_eq!(manifest.petition.slug, "free-them");
    assert_eq!(manifest.petition.title, "Free them all, now");
    assert_eq!(
        manifest.petition.url,
        format!("{}/p/free-them", app.base_url)
    );
    assert_eq!(
        manifest.petition.targets[0].name,
        "The Prime Minister of Norway"
    );
    assert_eq!(manifest.petition.versions.len(), 2);
    for version in &manifest.petition.versions {
        assert_eq!(
            version.text_sha256,
            undersign::petitions::model::text_sha256(
                &version.title,
                &version.summary,
                &version.body
            )
        );
    }
    assert_eq!(
        manifest.petition.delivered_version_sha256,
        manifest.petition.versions[1].text_sha256
    );
    assert_eq!(manifest.signatures.total, 4);
    let countries: Vec<(&str, u64)> = manifest
        .signatures
        .by_country
        .iter()
        .map(|c| (c.country.as_str(), c.count))
        .collect();
    assert_eq!(countries, [("NO", 2), ("BY", 1), ("IE", 1)]);
    assert_eq!(manifest.signatures.by_country[0].name, "Norway");
    let versions: Vec<u64> = manifest
        .signatures
        .by_version
        .iter()
        .map(|v| v.count)
        .collect();
    assert_eq!(versions, [3, 1]);
    assert!(manifest.signatures.first_confirmed_at.is_some());
    assert!(manifest.collection_period.from <= manifest.collection_period.to);
    for file in &manifest.files {
        let content = entry(&entries, &file.name);
        assert_eq!(file.sha256, sha256_hex(content), "{}", file.name);
        assert_eq!(file.bytes, content.len() as u64);
    }
    assert_eq!(manifest.files.len(), 3);
    assert_eq!(manifest.merkle_tree.leaves, 4);
    assert_eq!(manifest.signing_key.algorithm, "Ed25519");

    // The signature, with the instance's key.
    let key = InstanceKey::load_or_create(&app.database.dir.join("signing.key")).unwrap();
    let public = key.public_key();
    assert_eq!(manifest.signing_key.public_key, public.to_base64());
    assert_eq!(manifest.signing_key.fingerprint, public.fingerprint());
    let signature = std::str::from_utf8(entry(&entries, "manifest.sig")).unwrap();
    assert!(public
        .verify(entry(&entries, "manifest.json"), signature)
        .is_ok());

    // The CSV: the confirmed, non-invalidated signatures, no emails, the commitments.
    let records = csv_records(entry(&entries, "signatures.csv"));
    assert!(!entry(&entries, "signatures.csv").starts_with("\u{feff}".as_bytes()));
    assert_eq!(
        records[0],
        [
            "id",
            "name",
            "country",
            "postal_code",
            "comment",
            "disclosure",
            "version_sha256",
            "signed_at",
            "confirmed_at",
            "commitment"
        ]
    );
    let names: Vec<&str> = records[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        names,
        [
            "Ana Ivanova",
            "Алесь Бяляцкі",
            "O'Brien, \"Pat\"",
            "'=SUM(A1)"
        ]
    );
    let csv_text = std::str::from_utf8(entry(&entries, "signatures.csv")).unwrap();
    assert!(!csv_text.contains("@example.org"));
    assert!(!csv_text.contains("Pat Pending") && !csv_text.contains("Ivan Invalid"));
    // The signature confirmed before receipts existed got its commitment at delivery.
    let stored = stored_commitments(&app).await;
    let in_csv: Vec<Option<String>> = records[1..].iter().map(|r| Some(r[9].clone())).collect();
    assert_eq!(stored, in_csv);
    assert!(stored
        .iter()
        .all(|c| c.as_ref().is_some_and(|c| c.len() == 64)));
    let leaves: Vec<[u8; 32]> = stored
        .iter()
        .map(|c| undersign::core::hex::parse_hash(c.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(
        undersign::core::hex::to_hex(&undersign::delivery::merkle::root(&leaves)),
        manifest.merkle_tree.root
    );

    // The dossier is a PDF, and the README says how to check, with the key.
    assert!(entry(&entries, "dossier.pdf").starts_with(b"%PDF-"));
    let readme = std::str::from_utf8(entry(&entries, "README.txt")).unwrap();
    assert!(readme.contains(&public.to_base64()));
    assert!(readme.contains(&public.fingerprint()));
    assert!(readme.contains("undersign verify bundle.zip"));
    assert!(readme.contains("openssl pkeyutl -verify"));
    assert!(readme.contains(&format!(
        "{}/.well-known/undersign/signing-key",
        app.base_url
    )));

    // `undersign verify` on its own finds the bundle intact but cannot say who made it: its
    // own exit status, and no hint taken from the bundle about where to look the key up.
    let run = verify(&app, &path, &[]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("checked only against the key carried in the bundle"));
    assert!(run.stdout.contains(&public.fingerprint()));
    assert!(
        run.stdout.contains(
            "NOT AUTHENTICATED: all 12 checks passed, but the bundle's signer could not be checked"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(&app.base_url), "{}", run.stdout);
    assert!(run.stderr.contains("not authenticated"), "{}", run.stderr);
    // Pinned with --key, or with a keyring (comments, a stranger's key, the PEM form): 0.
    let run = verify(&app, &path, &["--key", &public.to_base64()]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("checked against the key you gave"));
    assert!(
        run.stdout.contains("All 12 checks passed."),
        "{}",
        run.stdout
    );
    let stranger = InstanceKey::load_or_create(&app.database.dir.join("stranger.key"))
        .unwrap()
        .public_key();
    let keyring = app.database.dir.join("keyring.txt");
    std::fs::write(
        &keyring,
        format!(
            "# keys we trust\n{}  # another petition site\n\n{}",
            stranger.to_base64(),
            public.to_pem()
        ),
    )
    .unwrap();
    let run = verify(&app, &path, &["--keyring", keyring.to_str().unwrap()]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&public.fingerprint()));
    let keyring_of_strangers = app.database.dir.join("strangers.txt");
    std::fs::write(&keyring_of_strangers, format!("{}\n", stranger.to_base64())).unwrap();
    let run = verify(
        &app,
        &path,
        &["--keyring", keyring_of_strangers.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("was not signed by the given key"));
    // A keyring that is not one is refused before anything is checked.
    let broken = app.database.dir.join("broken.txt");
    std::fs::write(&broken, "# only a comment\nnot a key\n").unwrap();
    let run = verify(&app, &path, &["--keyring", broken.to_str().unwrap()]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);

    // The record, the state, the audit log and the public page.
    let (count, sha, root): (i64, String, String) = app
        .db(|conn| {
            deliveries::table
                .select((
                    deliveries::signature_count,
                    deliveries::bundle_sha256,
                    deliveries::merkle_root,
                ))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(count, 4);
    assert_eq!(sha, sha256_hex(&bytes));
    assert_eq!(root, manifest.merkle_tree.root);
    assert_eq!(app.count_rows("delivery_leaves").await, 4);
    // The command line is another process, like another instance: the server shows its
    // change within a second (its public views are held that long).
    tokio::time::sleep(undersign::petitions::cache::FRESH_FOR).await;
    let status = app.get("/api/v1/petitions/free-them").await.json()["status"].clone();
    assert_eq!(status, "delivered");
    let actions: Vec<String> = app
        .db(|conn| {
            audit_log::table
                .select(audit_log::action)
                .load(conn)
                .unwrap()
        })
        .await;
    assert!(actions.contains(&"petition.deliver".to_owned()));
    let page = app.get("/p/free-them").await;
    let day = chrono::Utc::now().format("%-d %B %Y").to_string();
    assert!(
        page.body.contains(&format!(
            "On {day}, 4 signatures were handed over to <strong>Prime Minister of Norway</strong> (bundle <code title=\"SHA-256 {sha}\">{}</code>).",
            &sha[..12]
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/p/free-them/receipt\""));
    assert!(!page.body.contains("action=\"/p/free-them/sign\""));

    // A petition is delivered once; nothing is written the second time.
    let again = app.database.dir.join("again.zip");
    let run = undersign(
        &app,
        &[
            "deliver",
            "--petition",
            "free-them",
            "--to",
            "Someone else",
            "--out",
            again.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!run.success);
    assert!(run.stderr.contains("delivered already"), "{}", run.stderr);
    assert!(!again.exists());
    assert_eq!(app.count_rows("deliveries").await, 1);
    // Unknown petitions, drafts, bad recipients and existing files are refused.
    app.create_petition_with("a-draft", |p| {
        p.status = undersign::core::status::PetitionStatus::Draft
    })
    .await;
    app.create_petition("other").await;
    for (args, message) in [
        (vec!["--petition", "nope", "--to", "X"], "no petition"),
        (vec!["--petition", "a-draft", "--to", "X"], "is a draft"),
        (
            vec!["--petition", "other", "--to", " "],
            "1 to 200 characters",
        ),
    ] {
        let mut all = vec!["deliver"];
        all.extend(args);
        all.extend(["--out", again.to_str().unwrap()]);
        let run = undersign(&app, &all).await;
        assert!(!run.success);
        assert!(run.stderr.contains(message), "{message}: {}", run.stderr);
    }
    let run = undersign(
        &app,
        &[
            "deliver",
            "--petition",
            "other",
            "--to",
            "X",
            "--out",
            path.to_str().unwrap(),
            "--allow-empty",
        ],
    )
    .await;
    assert!(run.stderr.contains("exists already"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the bundle is left alone"
    );
    assert_eq!(app.count_rows("deliveries").await, 1);
}

/// Writes to `forged` a copy of `bundle` for another recipient, re-signed with `forger`'s key,
/// which the forged manifest names: intact on its own, made by a stranger.
fn forge(bundle: &Path, forged: &Path, forger: &InstanceKey) {
    let forged_manifest = {
        let entries = unzip(&std::fs::read(bundle).unwrap());
        let mut manifest = manifest_of(&entries);
        manifest.recipient = "Someone else".to_owned();
        manifest.signing_key.public_key = forger.public_key().to_base64();
        manifest.signing_key.fingerprint = forger.public_key().fingerprint();
        manifest.to_bytes()
    };
    let forged_signature = format!("{}\n", forger.sign(&forged_manifest));
    rewrite(
        bundle,
        forged,
        |name, content| match name {
            "manifest.json" => Some(forged_manifest.clone()),
            "manifest.sig" => Some(forged_signature.clone().into_bytes()),
            _ => Some(content),
        },
        &[],
    );
}

async fn any_tampering_is_caught_and_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    seed(&app, "free-them").await;
    let bundle = deliver_cli(&app, "free-them", "bundle.zip").await;
    let dir = app.database.dir.clone();
    let key = InstanceKey::load_or_create(&dir.join("signing.key"))
        .unwrap()
        .public_key()
        .to_base64();
    let failed = |run: &Run, line: &str| {
        assert_eq!(run.code, Some(1), "{}", run.stdout);
        assert!(
            run.stdout
                .lines()
                .any(|l| l.trim_start().starts_with("FAILED") && l.contains(line)),
            "expected a FAILED line with {line:?} in:\n{}",
            run.stdout
        );
        assert!(run.stderr.contains("checks FAILED"), "{}", run.stderr);
    };

    // One changed byte in signatures.csv (a signer's name).
    let csv = dir.join("csv.zip");
    rewrite(
        &bundle,
        &csv,
        |name, mut content| {
            if name == "signatures.csv" {
                let at = content.windows(3).position(|w| w == b"Ana").unwrap();
                content[at] = b'E';
            }
            Some(content)
        },
        &[],
    );
    let run = verify(&app, &csv, &[]).await;
    failed(&run, "signatures.csv: SHA-256 is");
    assert!(
        run.stdout.contains("OK      manifest.sig"),
        "{}",
        run.stdout
    );

    // One changed byte in dossier.pdf.
    let pdf = dir.join("pdf.zip");
    rewrite(
        &bundle,
        &pdf,
        |name, mut content| {
            if name == "dossier.pdf" {
                let middle = content.len() / 2;
                content[middle] ^= 0x01;
            }
            Some(content)
        },
        &[],
    );
    failed(&verify(&app, &pdf, &[]).await, "dossier.pdf: SHA-256 is");

    // A count changed in manifest.json: the signature no longer matches, the count is wrong.
    let count = dir.join("count.zip");
    rewrite(
        &bundle,
        &count,
        |name, content| {
            if name != "manifest.json" {
                return Some(content);
            }
            let text = String::from_utf8(content).unwrap();
            assert!(text.contains("\"total\": 4,"));
            Some(text.replace("\"total\": 4,", "\"total\": 5,").into_bytes())
        },
        &[],
    );
    let run = verify(&app, &count, &[]).await;
    failed(
        &run,
        "manifest.sig: the signature does not match manifest.json",
    );
    failed(
        &run,
        "signature count: 4 rows in signatures.csv, but the manifest says 5 signatures",
    );

    // A missing file, and an extra one.
    let missing = dir.join("missing.zip");
    rewrite(
        &bundle,
        &missing,
        |name, content| (name != "dossier.pdf").then_some(content),
        &[],
    );
    let run = verify(&app, &missing, &[]).await;
    failed(&run, "files: missing: dossier.pdf");
    failed(&run, "dossier.pdf: missing from the bundle");
    let extra = dir.join("extra.zip");
    rewrite(
        &bundle,
        &extra,
        |_, content| Some(content),
        &[("evil.exe", b"MZ")],
    );
    failed(
        &verify(&app, &extra, &[]).await,
        "files: not part of a bundle: evil.exe",
    );

    // A raw byte flipped inside the zip itself.
    let mut raw = std::fs::read(&bundle).unwrap();
    let at = raw.len() / 3;
    raw[at] ^= 0xff;
    let flipped = dir.join("flipped.zip");
    std::fs::write(&flipped, raw).unwrap();
    let run = verify(&app, &flipped, &[]).await;
    assert!(!run.success, "{}", run.stdout);
    assert!(run.stdout.contains("FAILED"));

    // Re-signed with another key after changing the recipient: on its own it is intact but
    // not authenticated (exit status 3, said plainly), and a pinned key shows who did not
    // sign it.
    let forger = InstanceKey::load_or_create(&dir.join("forger.key")).unwrap();
    let forged = dir.join("forged.zip");
    forge(&bundle, &forged, &forger);
    let run = verify(&app, &forged, &[]).await;
    assert_eq!(run.code, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&forger.public_key().fingerprint()));
    assert!(run
        .stdout
        .contains("checked only against the key carried in the bundle"));
    assert!(run.stdout.contains("NOT AUTHENTICATED"), "{}", run.stdout);
    assert!(run.stdout.contains("anybody can make a bundle"));
    assert!(!run.stdout.contains(&app.base_url), "{}", run.stdout);
    let run = verify(&app, &forged, &["--key", &key]).await;
    failed(
        &run,
        "manifest.sig: manifest.json was not signed by the given key",
    );
    assert!(run.stdout.contains("the manifest names another key"));
    let keyring = dir.join("keyring.txt");
    std::fs::write(&keyring, format!("{key}\n")).unwrap();
    failed(
        &verify(&app, &forged, &["--keyring", keyring.to_str().unwrap()]).await,
        "manifest.sig: manifest.json was not signed by the given key",
    );

    // The untouched bundle still passes with the key; a file that is no zip at all fails.
    assert_eq!(verify(&app, &bundle, &["--key", &key]).await.code, Some(0));
    let junk = dir.join("junk.zip");
    std::fs::write(&junk, b"not a zip").unwrap();
    failed(&verify(&app, &junk, &[]).await, "zip archive: cannot read");
    let run = undersign(&app, &["verify"]).await;
    assert!(
        run.code == Some(2) && run.stderr.contains("give the bundle"),
        "{}",
        run.stderr
    );
    let run = verify(&app, &bundle, &["--key", "not-a-key"]).await;
    assert!(
        run.code == Some(2) && run.stderr.contains("--key"),
        "{}",
        run.stderr
    );
}

async fn the_dashboard_delivers_and_downloads_the_bundle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    app.create_petition("theirs").await;
    app.create_petition_with("a-draft", |p| {
        p.status = undersign::core::status::PetitionStatus::Draft
    })
    .await;
    let session = app.signed_in("olga@example.org", Role::Organizer).await;
    app.add_organizer("free-them", "olga@example.org").await;
    app.add_organizer("a-draft", "olga@example.org").await;
    seed(&app, "free-them").await;

    let dashboard = app.get_as(&session, "/admin/petitions/free-them").await;
    assert!(dashboard
        .body
        .contains("<form method=\"post\" action=\"/admin/petitions/free-them/deliver\">"));
    assert!(dashboard
        .body
        .contains("href=\"/admin/petitions/free-them/deliveries\""));
    let page = app
        .get_as(&session, "/admin/petitions/free-them/deliveries")
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No delivery recorded yet."));
    assert!(!page.body.contains("style=\"") && !page.body.contains("<script"));

    // Refusals: no CSRF token, no recipient, another organizer's petition, a draft.
    let response = app
        .post_form_as_raw(
            &session,
            "/admin/petitions/free-them/deliver",
            "to=Prime+Minister",
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    for to in ["", "+++", &"x".repeat(201)] {
        let response = app
            .post_form_as(
                &session,
                "/admin/petitions/free-them/deliver",
                &format!("to={to}"),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{to:?}");
        assert!(response.body.contains("1 to 200 characters"));
    }
    let response = app
        .post_form_as(&session, "/admin/petitions/free-them/deliver", "")
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .post_form_as(&session, "/admin/petitions/theirs/deliver", "to=X")
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let response = app
        .post_form_as(&session, "/admin/petitions/a-draft/deliver", "to=X")
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("is a draft"));
    assert_eq!(app.count_rows("deliveries").await, 0);

    // Delivering downloads the bundle.
    let download = app
        .post_download_as(
            &session,
            "/admin/petitions/free-them/deliver",
            "to=Prime+Minister+of+Norway",
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.header("content-type"), Some("application/zip"));
    let disposition = download.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment; filename=\"free-them-delivery-"));
    assert_eq!(download.header("cache-control"), Some("no-store"));
    let sha = sha256_hex(&download.body);
    assert_eq!(download.header("x-bundle-sha256"), Some(sha.as_str()));
    let path = app.database.dir.join("downloaded.zip");
    std::fs::write(&path, &download.body).unwrap();
    let run = verify_pinned(&app, &path, &[]).await;
    assert!(run.success, "{}", run.stdout);
    let entries = unzip(&download.body);
    let manifest = manifest_of(&entries);
    assert_eq!(manifest.signatures.total, 4);
    assert_eq!(manifest.recipient, "Prime Minister of Norway");

    // Recorded, by whom, and shown.
    let (recorded_sha, by): (String, Option<i64>) = app
        .db(|conn| {
            deliveries::table
                .select((deliveries::bundle_sha256, deliveries::created_by))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(recorded_sha, sha);
    assert!(by.is_some());
    let leaves: i64 = app
        .db(|conn| delivery_leaves::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(leaves, 4);
    let page = app
        .get_as(&session, "/admin/petitions/free-them/deliveries")
        .await;
    assert!(page.body.contains("Prime Minister of Norway"));
    assert!(page.body.contains(&sha));
    assert!(page.body.contains("olga@example.org"));
    assert!(!page
        .body
        .contains("action=\"/admin/petitions/free-them/deliver\""));
    let dashboard = app.get_as(&session, "/admin/petitions/free-them").await;
    assert!(dashboard.body.contains("status-delivered"));
    assert!(!dashboard
        .body
        .contains("action=\"/admin/petitions/free-them/deliver\""));
    let public = app.get("/p/free-them").await;
    assert!(public
        .body
        .contains("handed over to <strong>Prime Minister of Norway</strong>"));

    // Once only.
    let response = app
        .post_form_as(&session, "/admin/petitions/free-them/deliver", "to=X")
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert!(response.body.contains("delivered already"));
    assert_eq!(app.count_rows("deliveries").await, 1);

    // An open petition can be delivered too, and that ends its collection.
    app.add_organizer("theirs", "olga@example.org").await;
    let download = app
        .post_download_as(
            &session,
            "/admin/petitions/theirs/deliver",
            "to=Parliament&allow_empty=yes",
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(manifest_of(&unzip(&download.body)).signatures.total, 0);
    let sign = app.sign_json("theirs", "late@example.org").await;
    assert_eq!(sign.status, StatusCode::CONFLICT);
}

async fn the_published_key_is_the_one_key_show_prints(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert!(
        !app.database.dir.join("signing.key").exists(),
        "created on first use"
    );
    let published = app.get("/.well-known/undersign/signing-key").await;
    assert_eq!(published.status, StatusCode::OK);
    assert!(published
        .header("cache-control")
        .is_some_and(|value| value.contains("max-age")));
    let json = published.json();
    assert_eq!(json["algorithm"], "Ed25519");
    let public_key = json["public_key"].as_str().unwrap().to_owned();
    let fingerprint = json["fingerprint"].as_str().unwrap().to_owned();
    assert!(json["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));

    let run = undersign(&app, &["key", "show"]).await;
    assert!(run.success, "{}", run.stderr);
    let field = |name: &str| {
        run.stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
    };
    assert_eq!(field("Public key:").as_deref(), Some(public_key.as_str()));
    assert_eq!(field("Fingerprint:").as_deref(), Some(fingerprint.as_str()));
    assert!(run.stdout.contains("-----BEGIN PUBLIC KEY-----"));
    // Without UNDERSIGN_BASE_URL it names the address the server recorded, never the bound one.
    let published_at = format!(
        "Published at {}/.well-known/undersign/signing-key",
        app.base_url
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_undersign"))
        .args(["key", "show"])
        .env_clear()
        .env("DATABASE_URL", &app.database.url)
        .env(
            "UNDERSIGN_SIGNING_KEY_FILE",
            app.database.dir.join("signing.key"),
        )
        .env(
            "UNDERSIGN_SECRET_KEY_FILE",
            app.database.dir.join("secret.key"),
        )
        .env("UNDERSIGN_DATA_KEY_FILE", app.database.dir.join("data.key"))
        .env("UNDERSIGN_BIND", "127.0.0.1:1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&published_at), "{stdout}");
    // The key stays the same across calls, and the file is the owner's alone.
    let again = app.get("/.well-known/undersign/signing-key").await.json();
    assert_eq!(again["public_key"], public_key.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.database.dir.join("signing.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// A certificate authority and a certificate for `localhost` that it issued, made with the
/// openssl command line in `dir`: (CA certificate, server certificate, server key) paths.
fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let commands = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout ca.key -out ca.pem -days 2 -subj /CN=undersign-test-ca \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
         && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout server.key -out server.csr -subj /CN=localhost \
         && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -out server.pem -days 2 -extfile server.ext";
    let output = shell(dir, commands).expect("sh runs");
    assert!(
        output.status.success(),
        "openssl (needed for this test): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A small HTTPS server on 127.0.0.1 that answers every request with `body` (JSON); its
/// port. It serves until the test process ends.
fn serve_over_tls(certificate: &Path, key: &Path, body: String) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let chain = vec![CertificateDer::from_pem_file(certificate).unwrap()];
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut stream = rustls::StreamOwned::new(connection, socket);
            let mut request = Vec::new();
            let mut byte = [0_u8; 1];
            // A client that refuses the certificate ends the handshake here.
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => request.push(byte[0]),
                    _ => break,
                }
            }
            if !request.ends_with(b"\r\n\r\n") {
                continue;
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    port
}

async fn the_key_fetched_over_https_pins_the_bundle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_petition("free-them").await;
    seed(&app, "free-them").await;
    let bundle = deliver_cli(&app, "free-them", "bundle.zip").await;
    let dir = app.database.dir.clone();
    let forged = dir.join("forged.zip");
    forge(
        &bundle,
        &forged,
        &InstanceKey::load_or_create(&dir.join("forger.key")).unwrap(),
    );

    // The instance's published key, served over HTTPS as a reverse proxy would.
    let published = app.get("/.well-known/undersign/signing-key").await;
    assert_eq!(published.status, StatusCode::OK);
    let fingerprint = published.json()["fingerprint"].as_str().unwrap().to_owned();
    let (ca, certificate, key) = test_certificates(&dir.join("tls"));
    let port = serve_over_tls(&certificate, &key, published.body.clone());
    let url = format!("https://localhost:{port}/.well-known/undersign/signing-key");
    let ca = ca.to_str().unwrap();

    let run = verify(&app, &bundle, &["--key-url", &url, "--key-url-ca", ca]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&format!(
        "Key: checked against the key you gave, fingerprint {fingerprint}"
    )));
    assert!(!run.stdout.contains("NOT AUTHENTICATED"));
    let run = verify(&app, &forged, &["--key-url", &url, "--key-url-ca", ca]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run
        .stdout
        .contains("manifest.sig: manifest.json was not signed by the given key"));

    // A certificate no authority vouches for is refused, and so is plain HTTP: nothing is
    // checked (exit status 2), nothing passes.
    let run = verify(&app, &bundle, &["--key-url", &url]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("--key-url") && run.stderr.contains("certificate"),
        "{}",
        run.stderr
    );
    let plain = format!("{}/.well-known/undersign/signing-key", app.base_url);
    assert!(plain.starts_with("http://"));
    let run = verify(&app, &bundle, &["--key-url", &plain]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("must be an https:// address"),
        "{}",
        run.stderr
    );
}

/// Runs a shell command line in `dir`; `None` when the shell cannot run.
fn shell(dir: &Path, line: &str) -> Option<std::process::Output> {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .output()
        .ok()
}

async fn the_readme_s_checks_by_hand_work_with_common_tools(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = app.database.dir.join("by-hand");
    std::fs::create_dir_all(&dir).unwrap();
    let tools =
        "command -v sha256sum && command -v base64 && command -v openssl && command -v python3";
    assert!(
        shell(&dir, tools).is_some_and(|output| output.status.success()),
        "this test needs sha256sum, base64, openssl and python3 on the PATH \
         (Debian packages coreutils, openssl, python3)"
    );
    app.create_petition("free-them").await;
    seed(&app, "free-them").await;
    let bundle = deliver_cli(&app, "free-them", "bundle.zip").await;
    let entries = unzip(&std::fs::read(&bundle).unwrap());
    for (name, content) in &entries {
        std::fs::write(dir.join(name), content).unwrap();
    }
    let manifest = manifest_of(&entries);
    let readme = std::str::from_utf8(entry(&entries, "README.txt")).unwrap();

    // 1. sha256sum, as written in the README.
    let line = readme
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("sha256sum "))
        .unwrap();
    let output = shell(&dir, line).unwrap();
    let sums = String::from_utf8(output.stdout).unwrap();
    for file in &manifest.files {
        assert!(
            sums.contains(&format!("{}  {}", file.sha256, file.name)),
            "{sums}"
        );
    }

    // 2. The PEM key and the OpenSSL commands, as written in the README.
    let begin = readme.find("-----BEGIN PUBLIC KEY-----").unwrap();
    let end = readme.find("-----END PUBLIC KEY-----").unwrap() + "-----END PUBLIC KEY-----".len();
    std::fs::write(dir.join("key.pem"), format!("{}\n", &readme[begin..end])).unwrap();
    for prefix in ["base64 -d", "openssl pkeyutl"] {
        let line = readme
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(prefix))
            .unwrap();
        let output = shell(&dir, line).unwrap();
        assert!(
            output.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if prefix == "openssl pkeyutl" {
            assert!(
                String::from_utf8_lossy(&output.stdout).contains("Signature Verified Successfully")
            );
            // And it notices a changed manifest.
            std::fs::write(dir.join("manifest.json"), manifest.to_bytes().repeat(2)).unwrap();
            assert!(!shell(&dir, line).unwrap().status.success());
            std::fs::write(dir.join("manifest.json"), entry(&entries, "manifest.json")).unwrap();
        }
    }

    // 3. The Python script between the cut marks.
    let script: Vec<&str> = readme
        .lines()
        .skip_while(|line| !line.contains("8< -------- check.py"))
        .skip(1)
        .take_while(|line| !line.contains("8<"))
        .collect();
    std::fs::write(dir.join("check.py"), script.join("\n")).unwrap();
    let output = shell(&dir, "python3 check.py").unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(printed.matches(": True").count(), 3, "{printed}");
}
