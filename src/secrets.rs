//! The instance's secret key: one random value in a file, from which purpose-specific keys are
//! derived (cookie encryption, keyed hashes). Instances that share a database must share it.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

const SECRET_BYTES: usize = 64;

pub struct Secrets {
    master: [u8; SECRET_BYTES],
}

impl Secrets {
    /// Reads the key file, or creates it (readable by its owner only) when it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let (bytes, created) = read_or_create_key_file(path, SECRET_BYTES)
            .with_context(|| format!("the secret key file {} is not usable", path.display()))?;
        if created {
            log::warn!(
                "created a new secret key in {}: back it up, and give every instance the same file",
                path.display()
            );
        }
        let mut master = [0_u8; SECRET_BYTES];
        master.copy_from_slice(&bytes);
        Ok(Self { master })
    }

    /// A 32-byte key for one purpose; different purposes get unrelated keys.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.master).expect("HMAC takes any key");
        mac.update(b"undersign key derivation: ");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A keyed hash (HMAC-SHA256, hex) of `value`: stable for this instance, useless to anyone
    /// without the key file.
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        let key = self.derive(purpose);
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(value.as_bytes());
        format!("{:x}", mac.finalize().into_bytes())
    }
}

/// Reads a key of `len` random bytes kept as base64 in `path`, or creates the file (readable by
/// its owner only); says whether it was created, so the caller can ask for a backup. Two
/// instances starting at once on a shared folder end up with the same key: the second one reads
/// the first one's file.
pub(crate) fn read_or_create_key_file(path: &Path, len: usize) -> anyhow::Result<(Vec<u8>, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((decode_key(&text, len)?, false)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0_u8; len];
            rand::rng().fill_bytes(&mut key);
            let contents = format!("{}\n", STANDARD.encode(&key));
            match publish_new_file(path, contents.as_bytes()) {
                Ok(true) => Ok((key, true)),
                // Another process created it first: its key is the one.
                Ok(false) => read_or_create_key_file(path, len),
                Err(error) => {
                    Err(error).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Creates `path` holding `contents` (mode 0600) unless it exists; `false` if it did. The file
/// is written beside it first and then linked into place, so no other process ever reads it
/// empty or half-written (a server and a command starting at once both read the key file).
fn publish_new_file(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(
        ".new-{}-{}",
        std::process::id(),
        rand::rng().next_u64()
    ));
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    // A hard link fails if `path` exists, where a rename would replace another process's key.
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

fn decode_key(text: &str, len: usize) -> anyhow::Result<Vec<u8>> {
    let bytes = STANDARD.decode(text.trim())?;
    if bytes.len() != len {
        bail!("expected {len} bytes of base64, found {}", bytes.len());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_the_same_key() {
        let dir = std::env::temp_dir().join(format!("undersign-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let _ = std::fs::remove_file(&path);
        let first = Secrets::load_or_create(&path).unwrap();
        let again = Secrets::load_or_create(&path).unwrap();
        assert_eq!(
            first.keyed_hash("x", "value"),
            again.keyed_hash("x", "value")
        );
        assert_ne!(
            first.keyed_hash("x", "value"),
            first.keyed_hash("y", "value")
        );
        std::fs::write(&path, "too short").unwrap();
        assert!(Secrets::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Processes starting at once (the server and a command) must all get the one key; a
    /// reader used to find the file empty while its creator was still writing it.
    #[test]
    fn racing_creators_all_read_the_same_key() {
        for round in 0..20 {
            let dir = std::env::temp_dir().join(format!(
                "undersign-secret-race-{}-{round}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("secret.key");
            let keys: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            Secrets::load_or_create(&path)
                                .unwrap()
                                .keyed_hash("race", "value")
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
            let leftovers = std::fs::read_dir(&dir).unwrap().count();
            assert_eq!(leftovers, 1, "only the key file stays");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
