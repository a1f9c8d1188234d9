//! Petition rows and the domain rules about them.

use crate::core::status::PetitionStatus;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::core::text::has_hidden_characters;
use crate::db::schema::{petition_targets, petition_versions, petitions};
use crate::error::FieldErrors;

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

/// A version as listed in the history: when, and the SHA-256 of its text.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = petition_versions)]
pub struct VersionSummary {
    pub id: i64,
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

/// The most addressees a petition may have.
pub const MAX_TARGETS: usize = 50;

/// Slugs that would collide with the workspace's own addresses (`/admin/petitions/new`).
const RESERVED_SLUGS: &[&str] = &["new"];

const HIDDEN_CHARACTERS: &str =
    "Remove the invisible or control characters (line breaks, direction overrides) from this field.";

impl PetitionInput {
    /// Checks every field; the error lists each problem on its own line, named as on the
    /// command line (`slug: …`, `closes-at: …`).
    pub fn parse(self, today: NaiveDate) -> Result<NewPetition, String> {
        self.parse_fields(today).map_err(|problems| {
            problems
                .iter()
                .flat_map(|(field, messages)| {
                    let name = match *field {
                        "closes_on" => "closes-at",
                        "targets" => "target",
                        other => other,
                    };
                    messages
                        .iter()
                        .map(move |message| format!("{name}: {message}"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Checks every field (the body may hold line breaks; one-line fields may not hold control
    /// characters or bidi overrides); the error holds the messages per form field (`slug`, `title`,
    /// `summary`, `body`, `targets`, `goal`, `closes_on`), for showing beside each field.
    pub fn parse_fields(self, today: NaiveDate) -> Result<NewPetition, FieldErrors> {
        let mut problems = FieldErrors::new();
        let mut problem = |field: &'static str, message: String| {
            problems.entry(field).or_default().push(message);
        };
        let slug = self.slug.trim().to_owned();
        let slug_ok = (3..=80).contains(&slug.len())
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if !slug_ok {
            problem(
                "slug",
                "Use 3 to 80 lowercase letters, digits and hyphens, e.g. free-them-all.".to_owned(),
            );
        } else if RESERVED_SLUGS.contains(&slug.as_str()) {
            problem(
                "slug",
                format!("The address \"{slug}\" is reserved: choose another."),
            );
        }
        let title = self.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            problem("title", "Give a title of 1 to 200 characters.".to_owned());
        } else if has_hidden_characters(&title) {
            problem("title", HIDDEN_CHARACTERS.to_owned());
        }
        let summary = self.summary.trim().to_owned();
        if has_hidden_characters(&summary) {
            problem("summary", HIDDEN_CHARACTERS.to_owned());
        } else if summary.chars().count() > 500 {
            problem(
                "summary",
                "Keep the summary to at most 500 characters.".to_owned(),
            );
        }
        let body = self.body.trim().to_owned();
        if body.is_empty() || body.len() > 100_000 {
            problem(
                "body",
                "The text must not be empty (and at most 100 kB).".to_owned(),
            );
        }
        if self.targets.len() > MAX_TARGETS {
            problem("targets", format!("Name at most {MAX_TARGETS} addressees."));
        }
        let mut targets = Vec::new();
        for raw in &self.targets {
            let (name, role) = match raw.split_once(',') {
                Some((name, role)) => (name.trim(), role.trim()),
                None => (raw.trim(), ""),
            };
            if has_hidden_characters(name) || has_hidden_characters(role) {
                problem("targets", HIDDEN_CHARACTERS.to_owned());
            } else if name.is_empty() || name.chars().count() > 200 || role.chars().count() > 200 {
                problem(
                    "targets",
                    format!(
                        "{:?}: write \"Name, Role\" (each at most 200 characters).",
                        raw.trim()
                    ),
                );
            } else {
                targets.push(NewTarget {
                    name: name.to_owned(),
                    role: role.to_owned(),
                });
            }
        }
        if let Some(goal) = self.goal {
            if goal < 1 {
                problem("goal", "The goal must be at least 1.".to_owned());
            }
        }
        if let Some(day) = self.closes_on {
            if day < today {
                problem("closes_on", "The closing date is in the past.".to_owned());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(NewPetition {
            slug,
            title,
            summary,
            body,
            targets,
            goal: self.goal,
            closes_at: self.closes_on.and_then(closes_at_after),
            status: PetitionStatus::Open,
            organizer_ids: Vec::new(),
        })
    }
}

/// `closes_at` for a last open day: open through the whole day (UTC), closed from the next
/// midnight.
pub fn closes_at_after(last_open_day: NaiveDate) -> Option<NaiveDateTime> {
    last_open_day
        .succ_opt()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
}

/// The last day a petition closing at `closes_at` is open: the inverse of [`closes_at_after`].
pub fn last_open_day(closes_at: NaiveDateTime) -> NaiveDate {
    (closes_at - chrono::Duration::seconds(1)).date()
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
    fn reports_problems_per_form_field() {
        let mut raw = input();
        raw.slug = "new".into();
        raw.targets = vec![", no name".into()];
        raw.closes_on = NaiveDate::from_ymd_opt(2026, 11, 27);
        let problems = raw.parse_fields(today()).unwrap_err();
        assert!(problems["slug"][0].contains("reserved"));
        assert!(problems["targets"][0].contains("Name, Role"));
        assert!(problems["closes_on"][0].contains("in the past"));
        let mut raw = input();
        raw.targets = vec!["A, B".into(); MAX_TARGETS + 1];
        assert!(raw
            .parse_fields(today())
            .unwrap_err()
            .contains_key("targets"));
        // The closing day itself is still open.
        let mut raw = input();
        raw.closes_on = Some(today());
        assert!(raw.parse_fields(today()).is_ok());
    }

    #[test]
    fn closing_day_and_closing_time_round_trip() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let closes_at = closes_at_after(day).unwrap();
        assert_eq!(closes_at.to_string(), "2027-01-01 00:00:00");
        assert_eq!(last_open_day(closes_at), day);
    }

    #[test]
    fn text_hash_is_stable() {
        assert_eq!(text_sha256("a", "b", "c"), text_sha256("a", "b", "c"));
        assert_ne!(text_sha256("a", "b", "c"), text_sha256("a", "bc", ""));
    }
}

#[cfg(test)]
mod hidden_character_tests {
    use super::*;

    #[test]
    fn one_line_fields_refuse_control_and_bidi_characters() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        for (title, summary, target) in [
            ("Free\nthem", "", "Minister, Role"),
            ("Free them", "a\u{202E}b", "Minister, Role"),
            ("Free them", "", "Mini\rster, Role"),
        ] {
            let input = PetitionInput {
                slug: "free-them".into(),
                title: title.into(),
                summary: summary.into(),
                body: "Line one\n\nLine two".into(),
                targets: vec![target.into()],
                ..Default::default()
            };
            let problems = input.parse_fields(today).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
        }
    }
}
