//! Public petition pages and their view helpers.

use askama::Template;
use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::core::countries::country_name;
use crate::core::format::format_count;
use crate::core::status::SignatureStatus;
use crate::core::status::{Disclosure, PetitionStatus};
use crate::db::schema::signatures;
use crate::db::AnyConnection;
use crate::petitions::markdown::render_safe;
use crate::petitions::model::{last_open_day, Petition, Target, Version, VersionSummary};
use crate::safety::encryption::{DataKey, Field};
use crate::web::public::sign_form::SignatureForm;

/// How many names the public page lists.
pub const RECENT_SIGNERS: i64 = 20;

#[derive(Template)]
#[template(path = "petitions/index.html")]
pub struct IndexPage {
    pub petitions: Vec<PetitionCard>,
}

/// A petition as listed on the front page.
pub struct PetitionCard {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub count: String,
    /// The count as a number, for the plural in the template.
    pub signature_count: i64,
    pub goal: Option<String>,
    pub progress: Option<i64>,
}

impl PetitionCard {
    pub fn new(petition: &Petition) -> Self {
        Self {
            slug: petition.slug.clone(),
            title: petition.title.clone(),
            summary: petition.summary.clone(),
            count: format_count(petition.signature_count),
            signature_count: petition.signature_count,
            goal: petition.goal.map(format_count),
            progress: petition.progress_percent(),
        }
    }
}

#[derive(Template)]
#[template(path = "petitions/show.html")]
pub struct PetitionPage {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub targets: Vec<Target>,
    pub body_html: String,
    pub count: String,
    pub signature_count: i64,
    pub goal: Option<i64>,
    pub goal_text: Option<String>,
    pub progress: Option<i64>,
    pub accepting: bool,
    pub status: &'static str,
    pub closes_on: Option<String>,
    /// When the text last changed, if it ever did after the petition was first written.
    pub changed_on: Option<String>,
    /// Every version of the text, newest first; shown only when there is more than one.
    pub versions: Vec<VersionLine>,
    pub form: SignatureForm,
    /// Every delivery, newest first (filled in by the caller, from the deliveries record).
    pub deliveries: Vec<DeliveryLine>,
    /// The newest signers who chose to be listed publicly (filled in by the caller).
    pub recent_signers: RecentSigners,
}

/// The public list: only signers who chose "public", newest first, with name and country and
/// no time (a time would let an observer tie a name to someone seen signing).
#[derive(Debug, Clone, Default)]
pub struct RecentSigners {
    /// (name, country name), at most [`RECENT_SIGNERS`].
    pub names: Vec<(String, String)>,
    /// How many confirmed signatures are listed publicly in all.
    pub public_total: String,
    /// The same as a number, for the plural in the template.
    pub public_count: i64,
}

impl RecentSigners {
    pub fn load(conn: &mut AnyConnection, key: &DataKey, petition_id: i64) -> QueryResult<Self> {
        let listed = signatures::table
            .filter(signatures::petition_id.eq(petition_id))
            .filter(signatures::status.eq(SignatureStatus::Confirmed.as_str()))
            .filter(signatures::disclosure.eq(Disclosure::Public.as_str()));
        let total: i64 = listed.count().get_result(conn)?;
        let names: Vec<(String, String)> = listed
            .order(signatures::id.desc())
            .limit(RECENT_SIGNERS)
            .select((signatures::name, signatures::country))
            .load(conn)?;
        let names = names
            .into_iter()
            .map(|(name, code)| Ok((key.open(Field::Name, &name)?, country_name(&code))))
            .collect::<QueryResult<_>>()?;
        Ok(Self {
            names,
            public_total: format_count(total),
            public_count: total,
        })
    }
}

/// "On …, N signatures were handed over to … (bundle …)".
pub struct DeliveryLine {
    pub recipient: String,
    pub date: String,
    pub count: String,
    /// The count as a number, for the plural in the template.
    pub signature_count: i64,
    /// The first 12 hex digits of the bundle's SHA-256; the whole in `full_hash`.
    pub short_hash: String,
    pub full_hash: String,
}

impl DeliveryLine {
    pub fn new(delivery: &crate::delivery::record::DeliveryRow) -> Self {
        Self {
            recipient: delivery.recipient.clone(),
            date: delivery.created_at.format("%-d %B %Y").to_string(),
            count: format_count(delivery.signature_count),
            signature_count: delivery.signature_count,
            short_hash: delivery.bundle_sha256.chars().take(12).collect(),
            full_hash: delivery.bundle_sha256.clone(),
        }
    }
}

/// One version of a petition's text as listed on the public page.
pub struct VersionLine {
    pub date: String,
    /// The first 12 hex digits of the text's SHA-256, enough to tell versions apart.
    pub short_hash: String,
    pub full_hash: String,
}

impl VersionLine {
    pub fn new(version: &VersionSummary) -> Self {
        Self {
            date: version
                .created_at
                .format("%-d %B %Y, %H:%M UTC")
                .to_string(),
            short_hash: version.text_sha256.chars().take(12).collect(),
            full_hash: version.text_sha256.clone(),
        }
    }
}

impl PetitionPage {
    pub fn new(
        petition: &Petition,
        targets: Vec<Target>,
        version: &Version,
        history: &[VersionSummary],
        form: SignatureForm,
        now: NaiveDateTime,
    ) -> Self {
        let status = petition.status_at(now);
        let changed = history.len() > 1;
        Self {
            slug: petition.slug.clone(),
            title: version.title.clone(),
            summary: version.summary.clone(),
            targets,
            body_html: render_safe(&version.body),
            count: format_count(petition.signature_count),
            signature_count: petition.signature_count,
            goal: petition.goal,
            goal_text: petition.goal.map(format_count),
            progress: petition.progress_percent(),
            accepting: status == PetitionStatus::Open,
            status: status.as_str(),
            closes_on: petition.closes_at.map(closing_day),
            changed_on: history
                .first()
                .filter(|_| changed)
                .map(|newest| newest.created_at.format("%-d %B %Y").to_string()),
            versions: if changed {
                history.iter().map(VersionLine::new).collect()
            } else {
                Vec::new()
            },
            form,
            deliveries: Vec::new(),
            recent_signers: RecentSigners::default(),
        }
    }
}

/// `closes_at` is the first moment the petition is closed; people think of the last open day.
fn closing_day(closes_at: NaiveDateTime) -> String {
    last_open_day(closes_at).format("%-d %B %Y").to_string()
}
