//! `undersign deliver`, `undersign verify`, `undersign key show`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use diesel::prelude::*;

use super::bundle::{self, DeliveryRequest, Recipient};
use super::key_url;
use super::signing_key::{InstanceKey, PublicKey, ALGORITHM};
use super::verify::{self, Check, KeyUsed, ProofFile, RootSource};
use crate::config::Settings;
use crate::core::hex::parse_hash;
use crate::db::{self, schema::petitions};
use crate::petitions::Petition;

#[derive(Debug, Args)]
pub struct DeliverArgs {
    /// The petition's slug.
    #[arg(long)]
    pub petition: String,
    /// Who it is handed to, e.g. "Prime Minister of Norway" (1 to 200 characters).
    #[arg(long)]
    pub to: String,
    /// Where to write the bundle (a new file; an existing one is not overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Deliver even when no signature is confirmed (asked for on a terminal; refused without
    /// a terminal unless given).
    #[arg(long)]
    pub allow_empty: bool,
    /// Sign UNDERSIGN_BASE_URL into the bundle even where the server recorded another URL.
    #[arg(long)]
    pub use_env_base_url: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  undersign verify bundle.zip --key PUBLIC_KEY
  undersign verify bundle.zip --keyring trusted-keys.txt
  undersign verify bundle.zip --key-url https://SITE/.well-known/undersign/signing-key
  undersign verify --proof proof.json bundle.zip --key PUBLIC_KEY
  undersign verify --proof proof.json --receipt RECEIPT --root MERKLE_ROOT

Exit status:
  0  every check passed, against a key you pinned (--key, --keyring or --key-url) or a
     root you gave
  1  a check failed: the bundle or the proof is not what it claims
  2  nothing could be checked: bad arguments, an unreadable key, keyring or file
  3  every check passed, but the signer is not authenticated: no key was pinned, so the
     bundle was checked only against the key it carries (anybody can make such a bundle),
     or the proof only against the root written in it")]
pub struct VerifyArgs {
    /// The delivery bundle (zip) to check.
    pub bundle: Option<PathBuf>,
    /// The instance's public key (base64 as published, 64 hex digits, or a PEM file or text),
    /// taken from a source you trust. Without it (or --keyring, --key-url) the bundle is checked only
    /// against the key it carries, which proves it intact but not who made it.
    #[arg(long, value_name = "PUBLIC_KEY")]
    pub key: Option<String>,
    /// A file of trusted public keys: one a line (base64 or 64 hex digits) or PEM blocks;
    /// `#` starts a comment. The bundle must be signed by one of them.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The address of the instance's published key, as you know it (not as the bundle says),
    /// e.g. `https://petitions.example.org/.well-known/undersign/signing-key`. Fetched over
    /// HTTPS, checked against the usual web certificate authorities; the only step online.
    #[arg(long, value_name = "URL")]
    pub key_url: Option<String>,
    /// One more certificate authority (PEM file) to trust for --key-url, e.g. a private one.
    #[arg(long, value_name = "FILE", requires = "key_url")]
    pub key_url_ca: Option<PathBuf>,
    /// An inclusion proof to check (JSON, from /p/SLUG/receipt?receipt=…&format=json).
    #[arg(long, value_name = "FILE")]
    pub proof: Option<PathBuf>,
    /// The receipt the proof must be for (default: the one in the proof file).
    #[arg(long, value_name = "HEX", requires = "proof")]
    pub receipt: Option<String>,
    /// The Merkle root to check the proof against (default: the bundle's, else the proof's own).
    #[arg(long, value_name = "HEX", requires = "proof")]
    pub root: Option<String>,
}

/// The address the instance publishes its key under, for `key show`: `UNDERSIGN_BASE_URL`, else
/// the one `serve` recorded in the database; never a guess from the bound address.
fn known_base_url(settings: &Settings) -> Option<String> {
    if let Some(configured) = &settings.base_url {
        return Some(configured.clone());
    }
    let pool = db::open_existing(&settings.database_url, 1).ok()?;
    let mut conn = pool.get().ok()?;
    db::instance::recorded_base_url(&mut conn).ok().flatten()
}

pub fn deliver(settings: &Settings, args: DeliverArgs) -> anyhow::Result<()> {
    let recipient = Recipient::parse(&args.to).map_err(|problem| anyhow::anyhow!(problem))?;
    // Everything that can refuse comes before anything is created (the signing key, the file).
    let pool = db::open_existing(&settings.database_url, 1)?;
    let (petition, base_url) = {
        let mut conn = pool.get()?;
        // Signed into the manifest and the recipients' README: a delivery cannot be redone.
        let base_url = db::instance::base_url_for_command(
            &mut conn,
            settings.base_url.as_deref(),
            args.use_env_base_url,
        )?;
        let petition: Petition = petitions::table
            .filter(petitions::slug.eq(&args.petition))
            .select(Petition::as_select())
            .first(&mut conn)
            .optional()?
            .with_context(|| format!("there is no petition {:?}", args.petition))?;
        (petition, base_url)
    };
    bundle::check_deliverable(&petition, crate::core::clock::now())
        .map_err(|e| anyhow::anyhow!(e))?;
    if petition.signature_count == 0 && !args.allow_empty {
        confirm_empty_delivery(&petition.slug)?;
    }
    let data_key =
        crate::safety::encryption::open_existing_data_key(&pool, &settings.data_key_file)?;
    let key = InstanceKey::load_or_create(&settings.signing_key_file)?;
    let mut conn = pool.get()?;

    // Written beside the destination and renamed when complete, so that a failed delivery
    // leaves no half-written bundle under the chosen name.
    let partial = partial_path(&args.out);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    let mut file = match std::fs::metadata(&args.out) {
        Ok(_) => bail!(
            "{} exists already: choose another file name",
            args.out.display()
        ),
        Err(_) => options
            .open(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?,
    };
    let delivered = bundle::deliver(
        &mut conn,
        &DeliveryRequest {
            petition_id: petition.id,
            recipient: &recipient,
            created_by: None,
            base_url: &base_url,
            key: &key,
            data_key: &data_key,
        },
        &mut file,
    );
    drop(file);
    let delivered = match delivered {
        Ok(delivered) => delivered,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            bail!("the petition was not delivered: {error:#}");
        }
    };
    if let Err(error) = std::fs::rename(&partial, &args.out) {
        bail!(
            "the delivery was recorded, but the bundle could not be moved to {}: {error}; it is in {}",
            args.out.display(),
            partial.display()
        );
    }
    println!(
        "Delivered {:?} to {}: {} signatures.",
        delivered.slug,
        recipient.as_str(),
        delivered.signature_count
    );
    println!("Bundle:          {}", args.out.display());
    println!("Bundle SHA-256:  {}", delivered.bundle_sha256);
    println!("Merkle root:     {}", delivered.merkle_root);
    println!("Key fingerprint: {}", delivered.fingerprint);
    println!("Keep the bundle: undersign records the delivery, not the file.");
    Ok(())
}

/// A petition with no confirmed signature is delivered only when someone says so: asked on a
/// terminal, refused without one (scripts say `--allow-empty`).
fn confirm_empty_delivery(slug: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !(stdin.is_terminal() && std::io::stderr().is_terminal()) {
        bail!(
            "{slug:?} has no confirmed signatures. Delivering ends the collection and cannot be \
             redone: add --allow-empty to deliver it with none."
        );
    }
    eprint!(
        "{slug:?} has no confirmed signatures. Delivering ends the collection and cannot be \
         redone.\nDeliver it with none? [y/N] "
    );
    let mut answer = String::new();
    stdin
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    match answer.trim().to_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("not delivered: {slug:?} is unchanged"),
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_else(|| "bundle.zip".into());
    name.push(".partial");
    out.with_file_name(name)
}

pub fn show_key(settings: &Settings) -> anyhow::Result<()> {
    let key = InstanceKey::load_or_create(&settings.signing_key_file)?.public_key();
    println!("Algorithm:   {ALGORITHM}");
    println!("Public key:  {}", key.to_base64());
    println!("Fingerprint: {}", key.fingerprint());
    println!("Key file:    {}", settings.signing_key_file.display());
    match known_base_url(settings) {
        Some(base_url) => println!("Published at {base_url}/.well-known/undersign/signing-key"),
        None => println!(
            "Published at /.well-known/undersign/signing-key of the instance's address (unknown \
             here: no `undersign serve` has recorded one and UNDERSIGN_BASE_URL is not set)"
        ),
    }
    print!("{}", key.to_pem());
    Ok(())
}

fn read_key(text: &str) -> anyhow::Result<PublicKey> {
    let path = Path::new(text);
    if text.len() < 1024 && path.is_file() {
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        return PublicKey::parse(&content)
            .with_context(|| format!("the key file {} holds no usable key", path.display()));
    }
    PublicKey::parse(text).context("--key")
}

fn print_checks(out: &mut impl Write, checks: &[Check]) -> std::io::Result<()> {
    for check in checks {
        let mark = if check.ok { "OK    " } else { "FAILED" };
        writeln!(out, "  {mark}  {}: {}", check.name, check.details)?;
    }
    Ok(())
}

/// How `undersign verify` ends when it does not end with status 0.
#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    /// Exit status 1.
    #[error("{0}")]
    ChecksFailed(String),
    /// Exit status 2.
    #[error("{0}")]
    CannotCheck(String),
    /// Exit status 3.
    #[error("{0}")]
    NotAuthenticated(String),
}

impl VerifyFailure {
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::ChecksFailed(_) => 1,
            Self::CannotCheck(_) => 2,
            Self::NotAuthenticated(_) => 3,
        }
    }
}

/// Where to get the key to pin. Never the address in the manifest: a forger writes that too.
const WHERE_TO_GET_THE_KEY: &str = "     \
     Get the petition site's public key from a source you trust: its page\n     \
     /.well-known/undersign/signing-key at the site's address as you know it (not an address\n     \
     written in this bundle), or the fingerprint from the organizers in person; then run\n     \
     again with --key PUBLIC_KEY, --keyring FILE, or\n     \
     --key-url https://SITE/.well-known/undersign/signing-key with the site's address.";

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    match run_verify(args) {
        Err(error) if !error.is::<VerifyFailure>() => {
            Err(VerifyFailure::CannotCheck(format!("{error:#}")).into())
        }
        result => result,
    }
}

fn trusted_keys(args: &VerifyArgs) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    if let Some(key) = args.key.as_deref() {
        keys.push(read_key(key)?);
    }
    if let Some(path) = &args.keyring {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the keyring {}", path.display()))?;
        keys.extend(
            verify::parse_keyring(&text)
                .with_context(|| format!("--keyring {}", path.display()))?,
        );
    }
    if let Some(url) = args.key_url.as_deref() {
        keys.push(key_url::fetch(url, args.key_url_ca.as_deref())?);
    }
    Ok(keys)
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<()> {
    if args.bundle.is_none() && args.proof.is_none() {
        bail!("give the bundle to check (undersign verify bundle.zip), or an inclusion proof with --proof");
    }
    let trusted = trusted_keys(&args)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failures = 0;
    let mut total = 0;
    let mut bundle_root = None;
    // What passed without being tied to anything the recipient trusts.
    let mut unauthenticated = Vec::new();

    if let Some(bundle) = &args.bundle {
        let report = verify::verify_bundle(bundle, &trusted);
        writeln!(out, "Bundle {}", bundle.display())?;
        print_checks(&mut out, &report.checks)?;
        match &report.key {
            KeyUsed::Pinned {
                matched: Some(fingerprint),
                ..
            } => writeln!(
                out,
                "Key: checked against the key you gave, fingerprint {fingerprint}."
            )?,
            KeyUsed::Pinned {
                matched: None,
                trusted,
            } => writeln!(
                out,
                "Key: the manifest was not signed by the key you gave ({trusted} trusted key(s))."
            )?,
            KeyUsed::Carried { fingerprint } => {
                writeln!(
                    out,
                    "Key: checked only against the key carried in the bundle itself, fingerprint \
                     {fingerprint}.\n     This shows the bundle is intact, not who made it: \
                     anybody can make a bundle\n     that passes this way.\n{WHERE_TO_GET_THE_KEY}"
                )?;
                unauthenticated.push("the bundle's signer");
            }
            KeyUsed::None => writeln!(out, "Key: none could be used.")?,
        }
        failures += report.failures();
        total += report.checks.len();
        bundle_root = report.manifest.as_ref().and_then(|manifest| {
            parse_hash(&manifest.merkle_tree.root).map(|root| (root, manifest.merkle_tree.leaves))
        });
    }

    if let Some(proof_path) = &args.proof {
        let text = std::fs::read_to_string(proof_path)
            .with_context(|| format!("cannot read the proof {}", proof_path.display()))?;
        let proof: ProofFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not an inclusion proof from undersign",
                proof_path.display()
            )
        })?;
        let receipt =
            match args.receipt.as_deref() {
                None => None,
                Some(text) => Some(parse_hash(text).context(
                    "--receipt: a receipt is 64 hex digits, as on the confirmation page",
                )?),
            };
        let root = match (args.root.as_deref(), bundle_root) {
            (Some(text), _) => Some((
                parse_hash(text).context("--root: a Merkle root is 64 hex digits")?,
                RootSource::Given,
            )),
            (None, Some((root, _))) => Some((root, RootSource::Bundle)),
            (None, None) => None,
        };
        let mut checks = verify::verify_proof(&proof, receipt.as_ref(), root);
        if let (Some((_, leaves)), None) = (bundle_root, args.root.as_deref()) {
            if proof.tree_size != leaves {
                checks.push(Check {
                    name: "tree size".to_owned(),
                    ok: false,
                    details: format!(
                        "the proof is for a tree of {} leaves, the bundle has {leaves}",
                        proof.tree_size
                    ),
                });
            }
        }
        writeln!(out, "Inclusion proof {}", proof_path.display())?;
        print_checks(&mut out, &checks)?;
        if root.is_none() {
            unauthenticated.push("the proof's Merkle root");
            writeln!(
                out,
                "Root: the proof was checked against the root written in it, {}. Compare it \
                 with the Merkle root\n      in the bundle's manifest, or give the bundle or \
                 --root.",
                proof.root
            )?;
        }
        failures += checks.iter().filter(|check| !check.ok).count();
        total += checks.len();
    }

    if failures > 0 {
        out.flush()?;
        return Err(
            VerifyFailure::ChecksFailed(format!("{failures} of {total} checks FAILED")).into(),
        );
    }
    if !unauthenticated.is_empty() {
        writeln!(
            out,
            "NOT AUTHENTICATED: all {total} checks passed, but {} could not be checked against \
             anything you trust.",
            unauthenticated.join(" and ")
        )?;
        out.flush()?;
        return Err(VerifyFailure::NotAuthenticated(format!(
            "intact, but not authenticated: {} is not checked against a key or root you trust \
             (exit status 3)",
            unauthenticated.join(" and ")
        ))
        .into());
    }
    writeln!(out, "All {total} checks passed.")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_sit_beside_the_destination() {
        assert_eq!(
            partial_path(Path::new("/tmp/out/bundle.zip")),
            PathBuf::from("/tmp/out/bundle.zip.partial")
        );
    }
}
