use anyhow::bail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL whose scheme has been checked. Only `sqlite://PATH`, `postgres://…` and
/// `postgresql://…` are accepted, so a typo never silently creates a SQLite file.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let raw = raw.trim();
        let backend = if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("DATABASE_URL {raw:?} names no file: use sqlite://PATH, for example sqlite://undersign.db");
            }
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            bail!(
                "DATABASE_URL {} has an unsupported scheme: use sqlite://PATH or postgres://USER@HOST/DB",
                redact(raw)
            );
        };
        Ok(Self {
            raw: raw.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The file path of a SQLite URL.
    pub fn sqlite_path(&self) -> &str {
        self.raw.strip_prefix("sqlite://").unwrap_or(&self.raw)
    }

    /// The URL with any password replaced by `***`, safe for logs and error messages.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }
}

fn redact(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return raw.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_backend_from_the_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://undersign.db")
                .unwrap()
                .backend(),
            Backend::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db")
                .unwrap()
                .sqlite_path(),
            "/tmp/x.db"
        );
    }

    #[test]
    fn refuses_unknown_schemes_without_leaking_the_password() {
        let error = DatabaseUrl::parse("mysql://admin:hunter2@db/x").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("mysql://admin:***@db/x"), "{message}");
        assert!(!message.contains("hunter2"));
        assert!(DatabaseUrl::parse("undersign.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn redacts_passwords() {
        let url =
            DatabaseUrl::parse("postgres://me:s3cret@localhost:5432/db?sslmode=require").unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://me:***@localhost:5432/db?sslmode=require"
        );
        let url = DatabaseUrl::parse("postgres://me@localhost/db").unwrap();
        assert_eq!(url.redacted(), "postgres://me@localhost/db");
    }
}
