//! Disposable email domains: the bundled list (`assets/disposable-domains.txt`) and the
//! operator's own (`UNDERSIGN_DISPOSABLE_DOMAINS_FILE`). A subdomain of a listed domain counts
//! as listed.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;

const BUNDLED: &str = include_str!("../../assets/disposable-domains.txt");

pub struct DisposableDomains {
    domains: HashSet<String>,
}

impl DisposableDomains {
    /// The bundled list, plus the lines of `extra` when given (an unreadable file stops the
    /// start-up: a list the operator asked for must not be silently missing).
    pub fn load(extra: Option<&Path>) -> anyhow::Result<Self> {
        let mut domains = HashSet::new();
        read_lines(BUNDLED, &mut domains);
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read UNDERSIGN_DISPOSABLE_DOMAINS_FILE {}",
                    path.display()
                )
            })?;
            read_lines(&text, &mut domains);
        }
        Ok(Self { domains })
    }

    pub fn from_text(text: &str) -> Self {
        let mut domains = HashSet::new();
        read_lines(text, &mut domains);
        Self { domains }
    }

    /// True for a listed domain and its subdomains (`x.mailinator.com`).
    pub fn contains(&self, domain: &str) -> bool {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        loop {
            if self.domains.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

fn read_lines(text: &str, into: &mut HashSet<String>) {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if !line.is_empty() {
            into.insert(line.trim_end_matches('.').to_ascii_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_listed_domains_and_their_subdomains() {
        let list = DisposableDomains::from_text("# comment\nMailinator.com\n  trash.example # x\n");
        assert_eq!(list.len(), 2);
        assert!(list.contains("mailinator.com"));
        assert!(list.contains("a.b.MAILINATOR.com"));
        assert!(list.contains("trash.example"));
        assert!(!list.contains("notmailinator.com"));
        assert!(!list.contains("com"));
        assert!(!list.contains("example.org"));
        let bundled = DisposableDomains::load(None).unwrap();
        assert!(bundled.contains("guerrillamail.com"));
        assert!(!bundled.contains("gmail.com"));
    }
}
