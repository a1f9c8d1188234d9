//! Checking a bundle, or a signer's inclusion proof, offline: `undersign verify`.
//!
//! Every check is reported, passed or not, with what exactly does not match, so that a
//! recipient learns not just "invalid" but which file, which count or which signature.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::csv_reader::CsvReader;
use super::manifest::{self, Manifest, BUNDLE_FILES, HASHED_FILES};
use super::merkle::{InclusionProof, RootBuilder};
use super::signing_key::{PublicKey, SignatureProblem};
use crate::core::hex::{parse_hash, to_hex, Hash};
use crate::petitions::model::text_sha256;

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found; for a failure, exactly what does not match.
    pub details: String,
}

impl Check {
    fn pass(name: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            details: details.into(),
        }
    }

    fn fail(name: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: false,
            details: details.into(),
        }
    }
}

/// Which key the manifest's signature was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUsed {
    /// Keys the recipient trusts (`--key`, `--keyring`, `--key-url`): `matched` is the one
    /// that signed the manifest, if any did.
    Pinned {
        matched: Option<String>,
        trusted: usize,
    },
    /// The key the bundle carries in its manifest, which proves only that the bundle is
    /// intact, not who made it.
    Carried { fingerprint: String },
    /// No usable key: neither given nor readable from the bundle.
    None,
}

#[derive(Debug, Clone)]
pub struct BundleReport {
    pub checks: Vec<Check>,
    pub key: KeyUsed,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
}

impl BundleReport {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|check| check.ok)
    }

    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|check| !check.ok).count()
    }

    pub fn failed(&self, name: &str) -> bool {
        self.checks
            .iter()
            .any(|check| !check.ok && check.name == name)
    }

    /// Every check passed against a key the recipient pinned: only then is it known who made
    /// the bundle, not just that it is intact.
    pub fn authenticated(&self) -> bool {
        self.passed()
            && matches!(
                self.key,
                KeyUsed::Pinned {
                    matched: Some(_),
                    ..
                }
            )
    }
}

/// Reads a keyring: one trusted public key per line (base64 as published, or 64 hex digits),
/// or a PEM block over several lines; blank lines and anything after `#` are ignored.
pub fn parse_keyring(text: &str) -> anyhow::Result<Vec<PublicKey>> {
    use anyhow::Context;
    let mut keys = Vec::new();
    let mut pem: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if let Some((start, block)) = pem.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END") {
                keys.push(PublicKey::parse(block).with_context(|| format!("line {start}"))?);
                pem = None;
            }
            continue;
        }
        // Base64, hex and PEM never hold a `#`: the rest of the line is a comment.
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("-----BEGIN") {
            pem = Some((number, format!("{line}\n")));
            continue;
        }
        keys.push(PublicKey::parse(line).with_context(|| format!("line {number}"))?);
    }
    if let Some((start, _)) = pem {
        anyhow::bail!("line {start}: the PEM key has no -----END line");
    }
    anyhow::ensure!(!keys.is_empty(), "it holds no key");
    Ok(keys)
}

/// SHA-256 and size of everything `reader` yields.
fn digest(mut reader: impl Read) -> std::io::Result<(Hash, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut bytes = 0_u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok((hasher.finalize().into(), bytes));
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
}

fn list(names: &[String]) -> String {
    names.join(", ")
}

/// Checks the bundle at `path`: its files, their SHA-256, the manifest's signature (against
/// the `trusted` keys, or when there are none the key the bundle carries), the counts and the
/// Merkle root.
pub fn verify_bundle(path: &Path, trusted: &[PublicKey]) -> BundleReport {
    let mut checks = Vec::new();
    let report = |checks: Vec<Check>, key: KeyUsed, manifest: Option<Manifest>| BundleReport {
        checks,
        key,
        manifest,
    };
    let opened = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|file| ZipArchive::new(BufReader::new(file)).map_err(|e| e.to_string()));
    let mut archive = match opened {
        Ok(archive) => archive,
        Err(error) => {
            checks.push(Check::fail(
                "zip archive",
                format!("cannot read {} as a zip archive: {error}", path.display()),
            ));
            return report(checks, KeyUsed::None, None);
        }
    };

    // The file list.
    let mut names = Vec::new();
    for index in 0..archive.len() {
        match archive.name_for_index(index) {
            Some(Ok(name)) => names.push(name.into_owned()),
            _ => names.push(format!("(entry {} with an unreadable name)", index + 1)),
        }
    }
    let expected: Vec<String> = BUNDLE_FILES.iter().map(|name| name.to_string()).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|name| !names.contains(name))
        .cloned()
        .collect();
    let mut extra: Vec<String> = names
        .iter()
        .filter(|name| !expected.contains(name))
        .cloned()
        .collect();
    extra.dedup();
    // The archive keeps one entry per name; a second one could hide a different file from
    // some unzip programs.
    let twice = archive.has_duplicate_names();
    if missing.is_empty() && extra.is_empty() && !twice {
        checks.push(Check::pass("files", list(&names)));
    } else {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing: {}", list(&missing)));
        }
        if !extra.is_empty() {
            problems.push(format!("not part of a bundle: {}", list(&extra)));
        }
        if twice {
            problems.push("some names appear more than once".to_owned());
        }
        checks.push(Check::fail("files", problems.join("; ")));
    }

    // The manifest and its signature.
    let manifest_bytes = read_entry(&mut archive, manifest::MANIFEST_FILE);
    let signature_text = read_entry(&mut archive, manifest::SIGNATURE_FILE);
    let manifest: Option<Manifest> = match &manifest_bytes {
        Err(problem) => {
            checks.push(Check::fail(manifest::MANIFEST_FILE, problem.clone()));
            None
        }
        Ok(bytes) => match serde_json::from_slice::<Manifest>(bytes) {
            Ok(manifest)
                if manifest.format == manifest::FORMAT
                    && manifest.format_version == manifest::FORMAT_VERSION =>
            {
                checks.push(Check::pass(
                    manifest::MANIFEST_FILE,
                    format!(
                        "{} version {}, petition {:?} for {}",
                        manifest.format,
                        manifest.format_version,
                        manifest.petition.slug,
                        manifest.recipient
                    ),
                ));
                Some(manifest)
            }
            Ok(manifest) => {
                checks.push(Check::fail(
                    manifest::MANIFEST_FILE,
                    format!(
                        "format {:?} version {} is not {:?} version {}: this undersign cannot \
                         check it",
                        manifest.format,
                        manifest.format_version,
                        manifest::FORMAT,
                        manifest::FORMAT_VERSION
                    ),
                ));
                None
            }
            Err(error) => {
                checks.push(Check::fail(
                    manifest::MANIFEST_FILE,
                    format!("not a readable manifest: {error}"),
                ));
                None
            }
        },
    };
    let carried = manifest
        .as_ref()
        .map(|manifest| PublicKey::parse(&manifest.signing_key.public_key));
    let (check, key_used) = signature_check(
        manifest_bytes.as_deref().ok(),
        signature_text.as_deref(),
        trusted,
        carried.as_ref(),
    );
    checks.push(check);

    let Some(manifest) = manifest else {
        checks.push(Check::fail(
            "contents",
            "the files, counts and Merkle root cannot be checked without a readable manifest",
        ));
        return report(checks, key_used, None);
    };

    // Each file against the manifest.
    for listed in &manifest.files {
        if !HASHED_FILES.contains(&listed.name.as_str()) {
            checks.push(Check::fail(
                listed.name.clone(),
                "the manifest lists a file that is not part of a bundle",
            ));
        }
    }
    for name in HASHED_FILES {
        let Some(listed) = manifest.file(name) else {
            checks.push(Check::fail(name, "the manifest does not list it"));
            continue;
        };
        let found = match archive.by_name(name) {
            Ok(entry) => digest(entry).map_err(|e| format!("cannot read it from the zip: {e}")),
            Err(_) => Err("missing from the bundle".to_owned()),
        };
        checks.push(match found {
            Err(problem) => Check::fail(name, problem),
            Ok((hash, bytes)) => {
                let hash = to_hex(&hash);
                if hash == listed.sha256.to_ascii_lowercase() && bytes == listed.bytes {
                    Check::pass(
                        name,
                        format!("SHA-256 {hash}, {bytes} bytes, as in the manifest"),
                    )
                } else if hash == listed.sha256.to_ascii_lowercase() {
                    Check::fail(
                        name,
                        format!("{bytes} bytes, but the manifest says {}", listed.bytes),
                    )
                } else {
                    Check::fail(
                        name,
                        format!(
                            "SHA-256 is {hash} ({bytes} bytes), but the manifest says {} ({} \
                             bytes): the file was changed",
                            listed.sha256, listed.bytes
                        ),
                    )
                }
            }
        });
    }

    // The petition's text: every version hashes to its SHA-256.
    checks.push(text_check(&manifest));

    // The rows: counts and the Merkle root.
    match archive.by_name(manifest::CSV_FILE) {
        Err(_) => checks.push(Check::fail(
            "signature counts",
            "signatures.csv is missing: nothing to count",
        )),
        Ok(entry) => checks.extend(row_checks(&manifest, entry)),
    }
    report(checks, key_used, Some(manifest))
}

fn read_entry<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let mut entry = archive
        .by_name(name)
        .map_err(|_| "missing from the bundle".to_owned())?;
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(64 * 1024 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it from the zip: {e}"))?;
    Ok(bytes)
}

/// The manifest's signature, and which key it was checked against.
fn signature_check(
    manifest: Option<&[u8]>,
    signature: Result<&[u8], &String>,
    trusted: &[PublicKey],
    carried: Option<&anyhow::Result<PublicKey>>,
) -> (Check, KeyUsed) {
    let name = manifest::SIGNATURE_FILE;
    let carried = carried.and_then(|carried| carried.as_ref().ok());
    let key_used = |matched: Option<&PublicKey>| {
        if trusted.is_empty() {
            carried.map_or(KeyUsed::None, |key| KeyUsed::Carried {
                fingerprint: key.fingerprint(),
            })
        } else {
            KeyUsed::Pinned {
                matched: matched.map(PublicKey::fingerprint),
                trusted: trusted.len(),
            }
        }
    };
    let fail = |details: String| (Check::fail(name, details), key_used(None));
    let Some(manifest) = manifest else {
        return fail("there is no manifest.json to check the signature of".to_owned());
    };
    let signature = match signature {
        Ok(signature) => signature,
        Err(problem) => return fail(problem.clone()),
    };
    let Ok(signature) = std::str::from_utf8(signature) else {
        return fail("it is not text (base64 expected)".to_owned());
    };

    if trusted.is_empty() {
        // Nothing pinned: the carried key can show the bundle intact, never who made it.
        let Some(key) = carried else {
            return fail(
                "the key in the manifest is not usable, and no key was given with --key, \
                 --keyring or --key-url"
                    .to_owned(),
            );
        };
        return match key.verify(manifest, signature) {
            Err(SignatureProblem::Malformed(problem)) => {
                fail(format!("not an Ed25519 signature: {problem}"))
            }
            Err(SignatureProblem::Invalid) => fail(format!(
                "the signature does not match manifest.json and the key it carries \
                 (fingerprint {}): the manifest was changed after signing",
                key.fingerprint()
            )),
            Ok(()) => (
                Check::pass(
                    name,
                    format!(
                        "a valid Ed25519 signature of manifest.json by the key the bundle \
                         carries, fingerprint {} (not a key you trust)",
                        key.fingerprint()
                    ),
                ),
                key_used(None),
            ),
        };
    }

    let mut malformed = None;
    let mut matched = None;
    for key in trusted {
        match key.verify(manifest, signature) {
            Ok(()) => {
                matched = Some(key);
                break;
            }
            Err(SignatureProblem::Malformed(problem)) => malformed = Some(problem),
            Err(SignatureProblem::Invalid) => {}
        }
    }
    let named = match carried {
        Some(carried) if !trusted.contains(carried) => format!(
            "; the manifest names another key, fingerprint {}",
            carried.fingerprint()
        ),
        _ => String::new(),
    };
    match (matched, malformed) {
        (None, Some(problem)) => fail(format!("not an Ed25519 signature: {problem}")),
        (None, None) => {
            let by = match trusted {
                [key] => format!("the given key (fingerprint {})", key.fingerprint()),
                keys => format!("any of the {} trusted keys", keys.len()),
            };
            fail(format!(
                "manifest.json was not signed by {by}, or was changed after signing{named}"
            ))
        }
        (Some(key), _) if carried != Some(key) => (
            Check::fail(
                name,
                format!(
                    "signed by the trusted key with fingerprint {}, but the manifest names \
                     another key{}",
                    key.fingerprint(),
                    carried.map_or_else(String::new, |carried| format!(
                        " (fingerprint {})",
                        carried.fingerprint()
                    ))
                ),
            ),
            key_used(Some(key)),
        ),
        (Some(key), _) => (
            Check::pass(
                name,
                format!(
                    "a valid Ed25519 signature of manifest.json by the trusted key with \
                     fingerprint {}",
                    key.fingerprint()
                ),
            ),
            key_used(Some(key)),
        ),
    }
}

fn text_check(manifest: &Manifest) -> Check {
    let name = "petition text";
    let versions = &manifest.petition.versions;
    let mut problems = Vec::new();
    for (number, version) in versions.iter().enumerate() {
        let computed = text_sha256(&version.title, &version.summary, &version.body);
        if computed != version.text_sha256 {
            problems.push(format!(
                "version {} hashes to {computed}, not {}",
                number + 1,
                version.text_sha256
            ));
        }
    }
    let delivered = &manifest.petition.delivered_version_sha256;
    if !versions
        .iter()
        .any(|version| &version.text_sha256 == delivered)
    {
        problems.push(format!(
            "the delivered version {delivered} is not among the versions"
        ));
    }
    if problems.is_empty() {
        Check::pass(
            name,
            format!(
                "{} version(s), each matching its SHA-256; delivered: {delivered}",
                versions.len()
            ),
        )
    } else {
        Check::fail(name, problems.join("; "))
    }
}

/// Reads `signatures.csv` once: row count, per-country and per-version counts, and the
/// Merkle root from the commitment column.
fn row_checks(manifest: &Manifest, entry: impl Read) -> Vec<Check> {
    let mut reader = CsvReader::new(BufReader::new(entry));
    let header = match reader.next_record() {
        Ok(Some(header)) => header,
        Ok(None) => {
            return vec![Check::fail(
                "signature counts",
                "signatures.csv is empty (not even a header)",
            )]
        }
        Err(error) => {
            return vec![Check::fail(
                "signature counts",
                format!("signatures.csv: {error}"),
            )]
        }
    };
    let column = |name: &str| header.iter().position(|column| column == name);
    let (Some(country_at), Some(commitment_at)) = (column("country"), column("commitment")) else {
        return vec![Check::fail(
            "signature counts",
            format!(
                "signatures.csv has no country or commitment column (its header: {})",
                header.join(",")
            ),
        )];
    };
    let version_at = column("version_sha256");
    let mut rows = 0_u64;
    let mut root = RootBuilder::new();
    let mut countries: BTreeMap<String, u64> = BTreeMap::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut row_problems: Vec<String> = Vec::new();
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(error) => {
                row_problems.push(format!("signatures.csv: {error}"));
                break;
            }
        };
        rows += 1;
        let line = rows + 1;
        if record.len() != header.len() {
            row_problems.push(format!(
                "row {rows} (line {line}) has {} fields, the header {}",
                record.len(),
                header.len()
            ));
            continue;
        }
        *countries.entry(record[country_at].clone()).or_default() += 1;
        if let Some(at) = version_at {
            *versions.entry(record[at].clone()).or_default() += 1;
        }
        match parse_hash(&record[commitment_at]) {
            Some(commitment) => root.push(&commitment),
            None => row_problems.push(format!(
                "row {rows} (line {line}) has no valid commitment: {:?}",
                record[commitment_at]
            )),
        }
    }
    let mut checks = Vec::new();
    let claimed = &manifest.signatures;
    let mut shortened = row_problems.clone();
    if shortened.len() > 5 {
        let more = shortened.len() - 5;
        shortened.truncate(5);
        shortened.push(format!("and {more} more"));
    }
    checks.push(if row_problems.is_empty() {
        Check::pass("signatures.csv rows", format!("{rows} well-formed rows"))
    } else {
        Check::fail("signatures.csv rows", shortened.join("; "))
    });
    checks.push(
        if rows == claimed.total && rows == manifest.merkle_tree.leaves {
            Check::pass(
                "signature count",
                format!(
                    "{rows} rows in signatures.csv, {} in the manifest",
                    claimed.total
                ),
            )
        } else {
            Check::fail(
                "signature count",
                format!(
                    "{rows} rows in signatures.csv, but the manifest says {} signatures and {} \
                     Merkle leaves",
                    claimed.total, manifest.merkle_tree.leaves
                ),
            )
        },
    );
    let claimed_countries: BTreeMap<String, u64> = claimed
        .by_country
        .iter()
        .map(|country| (country.country.clone(), country.count))
        .collect();
    checks.push(compare_counts(
        "counts by country",
        &countries,
        &claimed_countries,
    ));
    if version_at.is_some() {
        let claimed_versions: BTreeMap<String, u64> = claimed
            .by_version
            .iter()
            .map(|version| (version.text_sha256.clone(), version.count))
            .collect();
        checks.push(compare_counts(
            "counts by version",
            &versions,
            &claimed_versions,
        ));
    }
    let computed = to_hex(&root.root());
    checks.push(
        if computed == manifest.merkle_tree.root.to_ascii_lowercase() {
            Check::pass(
                "Merkle root",
                format!("{computed}, recomputed from {} commitments", root.leaves()),
            )
        } else {
            Check::fail(
                "Merkle root",
                format!(
                    "recomputed from signatures.csv: {computed}; the manifest says {}",
                    manifest.merkle_tree.root
                ),
            )
        },
    );
    checks
}

fn compare_counts(
    name: &str,
    found: &BTreeMap<String, u64>,
    claimed: &BTreeMap<String, u64>,
) -> Check {
    let mut problems = Vec::new();
    for key in found.keys().chain(claimed.keys()) {
        let (here, there) = (
            found.get(key).copied().unwrap_or(0),
            claimed.get(key).copied().unwrap_or(0),
        );
        let line = format!("{key}: {here} in signatures.csv, {there} in the manifest");
        if here != there && !problems.contains(&line) {
            problems.push(line);
        }
    }
    if problems.is_empty() {
        let summary: Vec<String> = found.iter().map(|(key, n)| format!("{key} {n}")).collect();
        Check::pass(
            name,
            if summary.is_empty() {
                "none".to_owned()
            } else {
                summary.join(", ")
            },
        )
    } else {
        Check::fail(name, problems.join("; "))
    }
}

/// An inclusion proof as served by `GET /p/{slug}/receipt?receipt=…&format=json` and read by
/// `undersign verify --proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofFile {
    pub petition: String,
    pub receipt: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Partner hashes from the leaf up, hex.
    pub path: Vec<String>,
    pub root: String,
    pub delivery: ProofDelivery,
    /// The rules, in words.
    pub rules: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofDelivery {
    pub recipient: String,
    pub delivered_at: String,
    pub signature_count: i64,
    pub bundle_sha256: String,
}

pub const PROOF_RULES: &str = "leaf = SHA-256(0x00 || receipt bytes); node = SHA-256(0x01 || \
     left || right); path lists the partner on each level from the leaf up, skipping levels \
     where the node has no partner (it moves up unchanged); RFC 6962";

impl ProofFile {
    pub fn proof(&self) -> Result<InclusionProof, String> {
        let path = self
            .path
            .iter()
            .enumerate()
            .map(|(i, hash)| {
                parse_hash(hash).ok_or_else(|| format!("path entry {} is not a SHA-256", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(InclusionProof {
            leaf_index: self.leaf_index,
            tree_size: self.tree_size,
            path,
        })
    }
}

/// Where the root a proof is checked against comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootSource {
    /// `--root` on the command line.
    Given,
    /// The manifest of a bundle that was checked too.
    Bundle,
    /// The proof file itself: proves consistency only, not that it is the delivered root.
    ProofFile,
}

/// Checks that `receipt` (or the proof's own) is the leaf the proof speaks of under `root`.
pub fn verify_proof(
    proof_file: &ProofFile,
    receipt: Option<&Hash>,
    root: Option<(Hash, RootSource)>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let own = parse_hash(&proof_file.receipt);
    let receipt = match (receipt, own) {
        (Some(given), Some(own)) if given != &own => {
            checks.push(Check::fail(
                "receipt",
                format!(
                    "the proof is for the receipt {}, not {}",
                    proof_file.receipt,
                    to_hex(given)
                ),
            ));
            *given
        }
        (Some(given), _) => *given,
        (None, Some(own)) => own,
        (None, None) => {
            checks.push(Check::fail(
                "receipt",
                "no receipt: the proof file has none and none was given with --receipt",
            ));
            return checks;
        }
    };
    let (root, source) = match root {
        Some(root) => root,
        None => match parse_hash(&proof_file.root) {
            Some(root) => (root, RootSource::ProofFile),
            None => {
                checks.push(Check::fail(
                    "inclusion proof",
                    "no root to check against: the proof file has none; give --root or the bundle",
                ));
                return checks;
            }
        },
    };
    let proof = match proof_file.proof() {
        Ok(proof) => proof,
        Err(problem) => {
            checks.push(Check::fail("inclusion proof", problem));
            return checks;
        }
    };
    let from = match source {
        RootSource::Given => "the root given with --root",
        RootSource::Bundle => "the Merkle root of the bundle's manifest",
        RootSource::ProofFile => {
            "the root written in the proof file (compare it with the bundle's manifest)"
        }
    };
    checks.push(match proof.root_for(&receipt) {
        None => Check::fail(
            "inclusion proof",
            format!(
                "the path has the wrong number of hashes for leaf {} of {}",
                proof.leaf_index, proof.tree_size
            ),
        ),
        Some(found) if found == root => Check::pass(
            "inclusion proof",
            format!(
                "receipt {} is leaf {} of {} under {} {}",
                to_hex(&receipt),
                proof.leaf_index,
                proof.tree_size,
                from,
                to_hex(&root)
            ),
        ),
        Some(found) => Check::fail(
            "inclusion proof",
            format!(
                "receipt {} with this proof leads to {}, not to {} {}",
                to_hex(&receipt),
                to_hex(&found),
                from,
                to_hex(&root)
            ),
        ),
    });
    checks
}
