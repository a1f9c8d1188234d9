//! The demo petition seeded by `undersign serve --demo`.

use chrono::NaiveDateTime;

use super::model::{NewPetition, NewTarget};
use super::queries;
use crate::core::status::PetitionStatus;
use crate::db::AnyConnection;
use crate::error::AppError;

pub const DEMO_SLUG: &str = "belarus-political-prisoners";

/// Seeds the demo petition unless a petition with its slug exists. Returns whether it seeded.
pub fn seed_if_absent(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<bool, AppError> {
    if queries::slug_exists(conn, DEMO_SLUG)? {
        return Ok(false);
    }
    let demo = NewPetition {
        slug: DEMO_SLUG.to_owned(),
        title: "Norway: join the EU in demanding freedom for all political prisoners in Belarus"
            .to_owned(),
        summary: "An open letter from a coalition of civic groups to the Prime Minister and the \
                  Foreign Minister of Norway."
            .to_owned(),
        body: include_str!("demo.md").to_owned(),
        targets: vec![
            NewTarget {
                name: "The Prime Minister of Norway".to_owned(),
                role: "Office of the Prime Minister".to_owned(),
            },
            NewTarget {
                name: "The Minister of Foreign Affairs of Norway".to_owned(),
                role: "Ministry of Foreign Affairs".to_owned(),
            },
        ],
        goal: Some(10_000),
        closes_at: None,
        status: PetitionStatus::Open,
        organizer_ids: Vec::new(),
    };
    match queries::create(conn, &demo, now) {
        Ok(_) => Ok(true),
        // Another instance seeded it at the same moment.
        Err(AppError::Conflict(_)) => Ok(false),
        Err(other) => Err(other),
    }
}
