//! Everything that speaks HTTP, laid out as the URL tree: `public/` (the petition pages, signing,
//! confirming, withdrawing, receipts), `admin/` (the workspace under `/admin/…` and sign-in),
//! `api/` (`/api/v1/admin/…`; the public JSON sits beside its page in `public/`). Around them:
//! the shared state, request parsing (`http`), the extractors, the hardening middleware and the
//! one mapping of errors to responses.

pub mod admin;
pub mod api;
pub mod errors;
pub mod extract;
pub mod favicon;
pub mod hardening;
pub mod head;
pub mod http;
pub mod public;
pub mod site;
pub mod state;

use std::net::TcpListener;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};

pub use actix_web::dev::{Server, ServerHandle};
pub use state::AppState;

/// Every route. Order matters where paths overlap: `/admin/petitions/new` before
/// `/admin/petitions/{slug}`, and the site's catch-all 404 last.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    public::petitions::configure(cfg);
    public::signing::configure(cfg);
    public::withdraw::configure(cfg);
    admin::petitions::configure(cfg);
    admin::login::configure(cfg);
    admin::workspace::configure(cfg);
    admin::dashboard::configure(cfg);
    admin::signatures::configure(cfg);
    admin::events::configure(cfg);
    api::admin::configure(cfg);
    admin::exports::configure(cfg);
    public::signing_key::configure(cfg);
    admin::deliveries::configure(cfg);
    public::receipts::configure(cfg);
    favicon::configure(cfg);
    site::configure(cfg);
}

/// The HTTP server on `listener`, with the hardening middleware and every route.
pub fn server(
    state: AppState,
    listener: TcpListener,
    workers: Option<usize>,
) -> std::io::Result<Server> {
    let state = actix_web::web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(hardening::middleware))
            // Outermost: it changes the request's method, which needs the only handle on it.
            .wrap(from_fn(head::as_get))
            .configure(configure)
    })
    .listen(listener)?
    // Slow clients cannot hold connections open: the request head must arrive within
    // 5 s, an idle connection is closed after 15 s, and a closing one gets 2 s to go.
    // Bodies have their own deadline (`http::BODY_TIMEOUT`).
    .client_request_timeout(std::time::Duration::from_secs(5))
    .keep_alive(std::time::Duration::from_secs(15))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .shutdown_timeout(10);
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Runs `future` on the runtime the HTTP server needs (actix's system on Tokio).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}
