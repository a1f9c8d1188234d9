//! The site's icon: `/favicon.ico` for clients that ask for it by that name, and the SVG the
//! pages link to. Both are drawn by us (`assets/icons/icon.svg`; the ICO holds it rendered at
//! 16, 32 and 48 pixels).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{get, web, HttpResponse};

const ICON_SVG: &str = include_str!("../../assets/icons/icon.svg");
const FAVICON_ICO: &[u8] = include_bytes!("../../assets/icons/favicon.ico");

/// A year: the icon changes about never, and a new one would get a new file name.
const CACHE_FOR_A_YEAR: &str = "public, max-age=31536000";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(favicon).service(icon_svg);
}

#[get("/favicon.ico")]
async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "image/x-icon"))
        .insert_header((CACHE_CONTROL, CACHE_FOR_A_YEAR))
        .body(FAVICON_ICO)
}

#[get("/static/icon.svg")]
async fn icon_svg() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "image/svg+xml"))
        .insert_header((CACHE_CONTROL, CACHE_FOR_A_YEAR))
        .body(ICON_SVG)
}
