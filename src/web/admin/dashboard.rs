//! The dashboard of one petition (`GET /admin/petitions/{slug}`): counts, confirmed
//! signatures per day as an SVG chart drawn on the server, confirmed signatures by country,
//! the latest signatures, the health of its confirmation emails, and links to edit, share
//! and moderate it. Moderation routes live in [`crate::web::admin::signatures`].

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use askama::Template;
use chrono::{NaiveDate, NaiveDateTime};

use crate::core::countries::country_name;
use crate::core::format::format_count;
use crate::core::status::PetitionStatus;
use crate::db;
use crate::error::AppError;
use crate::organizers::accounts::User;
use crate::petitions::Petition;
use crate::safety::fraud::{self, FraudReport};
use crate::signatures::moderation::SignatureRow;
use crate::signatures::queries::pending_count;
use crate::signatures::stats::{self, OutboxHealth};
use crate::web::admin::petitions::status_buttons;
use crate::web::admin::workspace::Nav;
use crate::web::errors::render_page;
use crate::web::extract::ManagedPetition;
use crate::{core::clock::now, web::AppState};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard);
}

/// How many of the newest signatures the dashboard lists.
const LATEST_SIGNATURES: i64 = 20;
/// The chart shows at most this many days: the last ones of the collection period.
const MAX_CHART_DAYS: usize = 366;
/// Short periods are drawn as if this many days long (bars from the left), so that a few
/// bars are not stretched across the whole page.
const MIN_CHART_DAYS: usize = 14;
/// Chart geometry in SVG user units; the SVG is scaled to the page width by CSS.
const CHART_HEIGHT: u32 = 100;
const BAR_STEP: usize = 10;
const BAR_WIDTH: usize = 8;

/// One day's bar.
pub struct Bar {
    pub x: usize,
    pub y: u32,
    pub width: usize,
    pub height: u32,
    /// `2026-11-28: 12 confirmed`, shown as the bar's tooltip.
    pub label: String,
}

/// Confirmed signatures per day over the collection period, ready to draw.
pub struct Chart {
    pub bars: Vec<Bar>,
    /// The SVG's viewBox width.
    pub width: usize,
    pub height: u32,
    pub first_day: String,
    pub last_day: String,
    /// Days that had confirmations, with their counts: the chart's table alternative.
    pub rows: Vec<(String, String)>,
    /// The whole chart in one sentence, for screen readers.
    pub summary: String,
    /// True when the period was longer than the chart and only its end is shown.
    pub truncated: bool,
}

impl Chart {
    /// Draws `days` (confirmed count per day, any order) from `start` to `end`, widened to
    /// include every day that has data and cut to the last `MAX_CHART_DAYS`.
    pub fn build(days: &[(NaiveDate, i64)], start: NaiveDate, end: NaiveDate) -> Chart {
        let mut start = days.iter().map(|(day, _)| *day).fold(start, NaiveDate::min);
        let end = days
            .iter()
            .map(|(day, _)| *day)
            .fold(end, NaiveDate::max)
            .max(start);
        let span = usize::try_from((end - start).num_days()).unwrap_or(0) + 1;
        let truncated = span > MAX_CHART_DAYS;
        if truncated {
            start = end - chrono::Duration::days(MAX_CHART_DAYS as i64 - 1);
        }
        let mut counts: HashMap<NaiveDate, i64> = HashMap::new();
        for (day, n) in days {
            *counts.entry(*day).or_default() += n;
        }
        let shown: Vec<(NaiveDate, i64)> = start
            .iter_days()
            .take_while(|day| *day <= end)
            .map(|day| (day, counts.get(&day).copied().unwrap_or(0)))
            .collect();
        let peak = shown.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let total: i64 = shown.iter().map(|(_, n)| *n).sum();
        let bars = shown
            .iter()
            .enumerate()
            .map(|(i, (day, count))| {
                // Rounded up, so that a single signature beside thousands still shows.
                let height = if *count <= 0 || peak <= 0 {
                    0
                } else {
                    let scaled = (count.saturating_mul(CHART_HEIGHT as i64) + peak - 1) / peak;
                    u32::try_from(scaled.clamp(1, CHART_HEIGHT as i64)).unwrap_or(CHART_HEIGHT)
                };
                Bar {
                    x: i * BAR_STEP + (BAR_STEP - BAR_WIDTH) / 2,
                    y: CHART_HEIGHT - height,
                    width: BAR_WIDTH,
                    height,
                    label: format!("{day}: {} confirmed", format_count(*count)),
                }
            })
            .collect();
        let rows = shown
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(day, n)| (day.to_string(), format_count(*n)))
            .collect();
        let first_day = start.to_string();
        let last_day = end.to_string();
        let summary = if total == 0 {
            format!("No confirmed signatures from {first_day} to {last_day}.")
        } else {
            let (peak_day, _) = shown
                .iter()
                .find(|(_, n)| *n == peak)
                .copied()
                .unwrap_or((end, 0));
            let noun = if total == 1 {
                "signature"
            } else {
                "signatures"
            };
            format!(
                "{} confirmed {noun} from {first_day} to {last_day}; the most in one day \
                 was {} on {peak_day}.",
                format_count(total),
                format_count(peak)
            )
        };
        Chart {
            width: shown.len().max(MIN_CHART_DAYS) * BAR_STEP,
            height: CHART_HEIGHT,
            bars,
            first_day,
            last_day,
            rows,
            summary,
            truncated,
        }
    }
}

/// The first and last day (UTC) the petition collects signatures, as far as today.
fn collection_period(petition: &Petition, now: NaiveDateTime) -> (NaiveDate, NaiveDate) {
    let start = petition.created_at.date();
    let end = match petition.closes_at {
        // `closes_at` is the first moment the petition is closed.
        Some(closes_at) if closes_at <= now => (closes_at - chrono::Duration::seconds(1)).date(),
        _ => now.date(),
    };
    (start, end.max(start))
}

pub struct CountryRow {
    pub code: String,
    pub name: String,
    pub count: String,
    /// Share of the confirmed signatures, e.g. "12.5%".
    pub share: String,
}

pub struct LatestRow {
    pub name: String,
    pub country: String,
    pub status: String,
    pub signed_at: String,
}

impl LatestRow {
    fn new(row: SignatureRow) -> Self {
        Self {
            country: country_name(&row.country),
            signed_at: row.created_at.format("%Y-%m-%d %H:%M").to_string(),
            name: row.name,
            status: row.status,
        }
    }
}

/// A lifecycle button: `POST /admin/petitions/{slug}/status` with `to`.
pub struct Transition {
    pub to: &'static str,
    pub label: &'static str,
}

/// The status changes the user may make now, from the petition lifecycle
/// (`petitions::admin`, which also handles the form).
fn lifecycle_transitions(petition: &Petition, user: &User, now: NaiveDateTime) -> Vec<Transition> {
    status_buttons(petition, user, now)
        .into_iter()
        .map(|(to, label)| Transition { to, label })
        .collect()
}

/// The notice at the top of the dashboard while signatures wait in the suspect list.
pub struct HeldBackNotice {
    /// "3 signatures are" / "1 signature is"
    pub count: String,
    /// Why, largest group first: "2 over a rate limit", "1 form sent too fast".
    pub reasons: Vec<String>,
    /// Most of them were held back by a rate limit: typical of a meeting on one network.
    pub mostly_limited: bool,
}

impl HeldBackNotice {
    fn new(report: &FraudReport) -> Option<Self> {
        if report.still_suspect <= 0 {
            return None;
        }
        let waiting = &report.waiting;
        let mut reasons: Vec<(i64, &str)> = [
            (
                waiting.limited,
                "over a rate limit (many signatures from one address or email domain)",
            ),
            (waiting.honeypot, "hidden field filled in"),
            (waiting.too_fast, "form sent too fast"),
            (waiting.disposable, "disposable email domain"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .collect();
        reasons.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        let n = report.still_suspect;
        Some(Self {
            count: if n == 1 {
                "1 signature is".to_owned()
            } else {
                format!("{} signatures are", format_count(n))
            },
            reasons: reasons
                .into_iter()
                .map(|(n, why)| format!("{}: {why}", format_count(n)))
                .collect(),
            mostly_limited: waiting.limited * 2 > n,
        })
    }
}

#[derive(Template)]
#[template(path = "organizers/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    slug: String,
    title: String,
    status: &'static str,
    is_public: bool,
    confirmed: String,
    pending: String,
    goal: Option<String>,
    chart: Chart,
    countries: Vec<CountryRow>,
    latest: Vec<LatestRow>,
    outbox: OutboxHealth,
    transitions: Vec<Transition>,
    fraud: FraudReport,
    fraud_hours: i64,
    held_back: Option<HeldBackNotice>,
}

#[get("/admin/petitions/{slug}")]
async fn dashboard(
    state: web::Data<AppState>,
    managed: ManagedPetition,
) -> Result<HttpResponse, AppError> {
    let ManagedPetition {
        signed_in,
        petition,
    } = managed;
    let key = state.data_key.clone();
    let page = db::run(&state.pool, move |conn| {
        let now = now();
        let user = &signed_in.user;
        let pending = pending_count(conn, petition.id)?;
        let days = stats::confirmed_per_day(conn, petition.id)?;
        let (start, end) = collection_period(&petition, now);
        let confirmed_total = petition.signature_count.max(1) as f64;
        let countries = stats::confirmed_by_country(conn, petition.id)?
            .into_iter()
            .map(|(code, count)| CountryRow {
                name: country_name(&code),
                share: format!("{:.1}%", count as f64 * 100.0 / confirmed_total),
                count: format_count(count),
                code,
            })
            .collect();
        let latest = stats::latest(conn, &key, petition.id, LATEST_SIGNATURES)?
            .into_iter()
            .map(LatestRow::new)
            .collect();
        let outbox = stats::outbox_health(conn, petition.id)?;
        let status = petition.status_at(now);
        let fraud = fraud::report(conn, petition.id, now)?;
        Ok(DashboardPage {
            nav: Nav::new(&signed_in),
            status: status.as_str(),
            is_public: status != PetitionStatus::Draft,
            confirmed: format_count(petition.signature_count),
            pending: format_count(pending),
            goal: petition.goal.map(format_count),
            chart: Chart::build(&days, start, end),
            countries,
            latest,
            outbox,
            transitions: lifecycle_transitions(&petition, user, now),
            held_back: HeldBackNotice::new(&fraud),
            fraud,
            fraud_hours: fraud::HOURS,
            slug: petition.slug,
            title: petition.title,
        })
    })
    .await?;
    // Signers' names: `web::hardening` makes every signed-in response `no-store`.
    render_page(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn draws_one_bar_per_day_scaled_to_the_peak() {
        let chart = Chart::build(&[(day(3), 10), (day(1), 1)], day(1), day(4));
        assert_eq!(chart.bars.len(), 4);
        assert_eq!(
            chart.width,
            MIN_CHART_DAYS * BAR_STEP,
            "short periods keep bars narrow"
        );
        let heights: Vec<u32> = chart.bars.iter().map(|bar| bar.height).collect();
        assert_eq!(heights, vec![10, 0, 100, 0]);
        assert_eq!(chart.bars[2].y, 0);
        assert_eq!(chart.bars[2].label, "2026-11-03: 10 confirmed");
        assert_eq!(
            chart.rows,
            vec![
                ("2026-11-01".to_owned(), "1".to_owned()),
                ("2026-11-03".to_owned(), "10".to_owned())
            ]
        );
        assert!(chart.summary.contains("11 confirmed signatures"));
        assert!(chart.summary.contains("10 on 2026-11-03"));
        assert!(!chart.truncated);
    }

    #[test]
    fn widens_to_the_data_and_keeps_the_last_days_of_long_periods() {
        let chart = Chart::build(&[(day(5), 2)], day(6), day(6));
        assert_eq!(chart.first_day, "2026-11-05");
        assert_eq!(chart.bars.len(), 2);

        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let chart = Chart::build(&[], start, day(30));
        assert!(chart.truncated);
        assert_eq!(chart.bars.len(), MAX_CHART_DAYS);
        assert_eq!(chart.width, MAX_CHART_DAYS * BAR_STEP);
        assert_eq!(chart.last_day, "2026-11-30");
        assert!(chart.summary.starts_with("No confirmed signatures"));
    }
}
