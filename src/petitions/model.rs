//! Petition rows and the domain rules about them.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::schema::{petition_targets, petition_versions, petitions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PetitionStatus {
    Draft,
    Open,
    Closed,
    Delivered,
}

impl PetitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PetitionStatus::Draft => "draft",
            PetitionStatus::Open => "open",
            PetitionStatus::Closed => "closed",
            PetitionStatus::Delivered => "delivered",
        }
    }

    fn from_db(value: &str) -> Self {
        match value {
            "draft" => PetitionStatus::Draft,
            "open" => PetitionStatus::Open,
            "delivered" => PetitionStatus::Delivered,
            // The column has a CHECK constraint; anything else can only mean "not accepting".
            _ => PetitionStatus::Closed,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = petitions)]
pub struct Petition {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub status: String,
    pub goal: Option<i64>,
    pub closes_at: Option<NaiveDateTime>,
    pub signature_count: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Petition {
    /// The status as the public sees it: an open petition whose closing time has passed is closed.
    pub fn status_at(&self, now: NaiveDateTime) -> PetitionStatus {
        match PetitionStatus::from_db(&self.status) {
            PetitionStatus::Open if self.closes_at.is_some_and(|closes| closes <= now) => {
                PetitionStatus::Closed
            }
            status => status,
        }
    }

    pub fn accepts_signatures(&self, now: NaiveDateTime) -> bool {
        self.status_at(now) == PetitionStatus::Open
    }

    /// Progress toward the goal in whole percent, capped at 100.
    pub fn progress_percent(&self) -> Option<i64> {
        self.goal
            .map(|goal| (self.signature_count.saturating_mul(100) / goal.max(1)).min(100))
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = petition_targets)]
pub struct Target {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = petition_versions)]
pub struct Version {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub text_sha256: String,
    pub created_at: NaiveDateTime,
}

/// The SHA-256 of a petition's text, as recorded for each version: title, summary and body
/// joined by blank lines, UTF-8, hex-encoded.
pub fn text_sha256(title: &str, summary: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(title.as_bytes());
    hasher.update(b"\n\n");
    hasher.update(summary.as_bytes());
    hasher.update(b"\n\n");
    hasher.update(body.as_bytes());
    format!("{:x}", hasher.finalize())
}

/// A petition checked and ready to be stored.
#[derive(Debug, Clone)]
pub struct NewPetition {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub targets: Vec<NewTarget>,
    pub goal: Option<i64>,
    pub closes_at: Option<NaiveDateTime>,
    pub status: PetitionStatus,
    /// Accounts that run the petition from the start.
    pub organizer_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTarget {
    pub name: String,
    pub role: String,
}

/// What an organizer typed, before checking.
#[derive(Debug, Clone, Default)]
pub struct PetitionInput {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub targets: Vec<String>,
    pub goal: Option<i64>,
    pub closes_on: Option<NaiveDate>,
}

impl PetitionInput {
    /// Checks every field; the error lists each problem on its own line.
    pub fn parse(self, today: NaiveDate) -> Result<NewPetition, String> {
        let mut problems = Vec::new();
        let slug = self.slug.trim().to_owned();
        let slug_ok = (3..=80).contains(&slug.len())
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if !slug_ok {
            problems.push(
                "slug: use 3 to 80 lowercase letters, digits and hyphens, e.g. free-them-all"
                    .to_owned(),
            );
        }
        let title = self.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            problems.push("title: give a title of 1 to 200 characters".to_owned());
        }
        let summary = self.summary.trim().to_owned();
        if summary.chars().count() > 500 {
            problems.push("summary: at most 500 characters".to_owned());
        }
        let body = self.body.trim().to_owned();
        if body.is_empty() || body.len() > 100_000 {
            problems.push("body: the text must not be empty (and at most 100 kB)".to_owned());
        }
        let mut targets = Vec::new();
        for raw in &self.targets {
            let (name, role) = match raw.split_once(',') {
                Some((name, role)) => (name.trim(), role.trim()),
                None => (raw.trim(), ""),
            };
            if name.is_empty() || name.chars().count() > 200 || role.chars().count() > 200 {
                problems.push(format!(
                    "target {raw:?}: write \"Name, Role\" (each at most 200 characters)"
                ));
            } else {
                targets.push(NewTarget {
                    name: name.to_owned(),
                    role: role.to_owned(),
                });
            }
        }
        if let Some(goal) = self.goal {
            if goal < 1 {
                problems.push("goal: must be at least 1".to_owned());
            }
        }
        if let Some(day) = self.closes_on {
            if day < today {
                problems.push("closes-at: the closing date is in the past".to_owned());
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(NewPetition {
            slug,
            title,
            summary,
            body,
            targets,
            goal: self.goal,
            // Open through the whole closing day (UTC).
            closes_at: self
                .closes_on
                .and_then(|day| day.succ_opt())
                .and_then(|day| day.and_hms_opt(0, 0, 0)),
            status: PetitionStatus::Open,
            organizer_ids: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PetitionInput {
        PetitionInput {
            slug: "free-them-all".into(),
            title: "Free them all".into(),
            body: "Dear Minister".into(),
            targets: vec!["Jonas Gahr Støre, Prime Minister of Norway".into()],
            ..Default::default()
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    #[test]
    fn parses_targets_and_closing_day() {
        let mut raw = input();
        raw.closes_on = NaiveDate::from_ymd_opt(2026, 12, 31);
        let petition = raw.parse(today()).unwrap();
        assert_eq!(
            petition.targets,
            vec![NewTarget {
                name: "Jonas Gahr Støre".into(),
                role: "Prime Minister of Norway".into()
            }]
        );
        assert_eq!(
            petition.closes_at.unwrap().to_string(),
            "2027-01-01 00:00:00"
        );
    }

    #[test]
    fn reports_every_problem() {
        let mut raw = input();
        raw.slug = "Not A Slug".into();
        raw.title = " ".into();
        raw.goal = Some(0);
        let problems = raw.parse(today()).unwrap_err();
        assert!(problems.contains("slug:"));
        assert!(problems.contains("title:"));
        assert!(problems.contains("goal:"));
    }

    #[test]
    fn text_hash_is_stable() {
        assert_eq!(text_sha256("a", "b", "c"), text_sha256("a", "b", "c"));
        assert_ne!(text_sha256("a", "b", "c"), text_sha256("a", "bc", ""));
    }
}
