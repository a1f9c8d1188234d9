//! `manifest.json`: everything the bundle claims, signed as a whole in `manifest.sig`.
//!
//! The manifest names the petition with every version of its text (and each text's SHA-256:
//! title, summary and body joined by two line feeds, UTF-8), the version current at delivery,
//! the recipient, the counts (total, by country, by version), the collection period, the
//! SHA-256 and size of every other file, the root and size of the Merkle tree over the
//! commitments in `signatures.csv`, the time of creation, the instance's base URL and the
//! public key that signed it. Times are RFC 3339 in UTC. `manifest.sig` is the Ed25519
//! signature of the exact bytes of `manifest.json`, in base64.

use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "undersign delivery bundle";
pub const FORMAT_VERSION: u32 = 1;

pub const CSV_FILE: &str = "signatures.csv";
pub const PDF_FILE: &str = "dossier.pdf";
pub const README_FILE: &str = "README.txt";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// Every file of a bundle, in the order they are written.
pub const BUNDLE_FILES: [&str; 5] = [
    CSV_FILE,
    PDF_FILE,
    README_FILE,
    MANIFEST_FILE,
    SIGNATURE_FILE,
];

/// The files whose SHA-256 the manifest lists (all but the manifest and its signature).
pub const HASHED_FILES: [&str; 3] = [CSV_FILE, PDF_FILE, README_FILE];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: String,
    /// The public origin of the instance that made the bundle.
    pub instance_url: String,
    pub recipient: String,
    pub petition: PetitionPart,
    pub collection_period: Period,
    pub signatures: Counts,
    pub files: Vec<FileEntry>,
    pub merkle_tree: MerklePart,
    pub signing_key: KeyPart,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PetitionPart {
    pub slug: String,
    pub title: String,
    pub url: String,
    pub targets: Vec<TargetPart>,
    /// The text current at delivery, by its SHA-256.
    pub delivered_version_sha256: String,
    /// How `text_sha256` is computed, in words.
    pub text_sha256_of: String,
    /// Oldest first.
    pub versions: Vec<VersionPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPart {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionPart {
    pub text_sha256: String,
    pub created_at: String,
    pub title: String,
    pub summary: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// When the petition was created.
    pub from: String,
    /// When it stopped collecting (its closing time, or the delivery when it was still open).
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Rows of `signatures.csv`: confirmed, not invalidated signatures.
    pub total: u64,
    /// Most first, ties by code.
    pub by_country: Vec<CountryCount>,
    /// Signatures per version of the text their signers saw, oldest version first.
    pub by_version: Vec<VersionCount>,
    pub first_confirmed_at: Option<String>,
    pub last_confirmed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryCount {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionCount {
    pub text_sha256: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerklePart {
    pub root: String,
    pub leaves: u64,
    /// The rules, in words, so the recipient can recompute the root without our code.
    pub leaf_order: String,
    pub leaf_hash: String,
    pub node_hash: String,
    pub construction: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPart {
    pub algorithm: String,
    /// The 32 bytes of the Ed25519 public key, base64.
    pub public_key: String,
    pub fingerprint: String,
}

pub const TEXT_SHA256_OF: &str =
    "SHA-256 of the UTF-8 text: title, two line feeds, summary, two line feeds, body";

impl MerklePart {
    pub fn new(root: String, leaves: u64) -> Self {
        Self {
            root,
            leaves,
            leaf_order: "the commitment column of signatures.csv, top to bottom".to_owned(),
            leaf_hash: "SHA-256(0x00 || the 32 bytes of the commitment)".to_owned(),
            node_hash: "SHA-256(0x01 || left || right)".to_owned(),
            construction: "RFC 6962 Merkle Tree Hash: pair neighbours from the left, promote \
                           a node left without a partner unchanged to the next level; no \
                           leaves: SHA-256 of nothing"
                .to_owned(),
        }
    }
}

impl Manifest {
    /// The exact bytes written to `manifest.json` (and signed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("a manifest is plain data and serialises");
        bytes.push(b'\n');
        bytes
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|file| file.name == name)
    }
}
