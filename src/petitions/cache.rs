//! The public views of a petition held in memory: the count API's JSON, the petition page and
//! the "check your inbox" page every signer of the form lands on, as finished bytes with a strong ETag, so that a surge of readers costs no database round
//! trip and no rendering.
//!
//! - **At most one second old.** Several instances share one database and each must show the
//!   others' changes within a second, so an entry is served for at most [`FRESH_FOR`]; the
//!   next request after that recomputes it.
//! - **Own writes at once.** Handlers that change what a view shows call [`PublicViews::forget`]
//!   (or [`PublicViews::forget_all`]) after their transaction committed. That bumps a
//!   generation: an entry is served only while its generation is current, and a recomputation
//!   that started before the bump stores a result that is already out of date, so a read that
//!   raced the write cannot bring old data back for a second.
//! - **One recomputation per view at a time.** Requests that find a view out of date queue on
//!   its refresh lock; the first recomputes, the others find its fresh result when their turn
//!   comes. A surge of readers therefore costs about one query and one render per second per
//!   view, and a surge of confirmations (each of which forgets its petition) at most one
//!   recomputation at a time, whose result serves everyone who waited for it.
//! - **Bounded memory.** At most [`MAX_PETITIONS`] petitions are held. A slot is made for a
//!   slug only while its view is being computed and removed again when that fails (unknown
//!   petition, draft, database error), so unknown addresses cannot fill it. When it is full,
//!   slots whose views are all out of date are dropped; if none is, the request is served
//!   without the cache.
//!
//! Only public, anonymous representations are kept: nothing in them depends on the request
//! (no cookies, no session, no language negotiation). The page carries the signing form's
//! `form_token`, the signed time of rendering (`safety::form_token`); a page served from here
//! or from a proxy is at most about two seconds older than its token says, which only makes
//! the "filled in too fast" check (2 s) that much more lenient for a bot that submits a
//! just-fetched page at once, and changes nothing for people.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// How long an entry is served before it is recomputed: the lag the counts may have.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// How many petitions' views are held at most.
pub const MAX_PETITIONS: usize = 1024;

/// What a shared cache (a reverse proxy) may do with these responses: keep them for one
/// second, then revalidate with the ETag. Together with [`FRESH_FOR`] a copy at a proxy can
/// be up to two seconds behind the database; a proxy that must stay within one second can be
/// told to revalidate every request, which costs this instance only a 304 from memory.
pub const CACHE_CONTROL: &str = "public, max-age=1";

/// The public views held per petition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `GET /api/v1/petitions/{slug}`.
    Json = 0,
    /// `GET /p/{slug}`.
    Page = 1,
    /// `GET /p/{slug}/signed`, where every signer of the form lands.
    Signed = 2,
}

const VIEWS: usize = 3;

/// A finished response body and its strong ETag.
pub struct Cached {
    body: Bytes,
    etag: String,
    made: Instant,
    /// The petition's generation when the computation started.
    generation: u64,
}

impl Cached {
    fn new(body: Vec<u8>, generation: u64) -> Self {
        let digest = Sha256::digest(&body);
        // 128 bits of the body's SHA-256 tell versions apart; quoted as RFC 9110 wants.
        let etag = format!("\"{}\"", crate::core::hex::to_hex(&digest[..16]));
        Self {
            body: Bytes::from(body),
            etag,
            made: Instant::now(),
            generation,
        }
    }

    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The finished body, shared (cloning does not copy it).
    pub fn body(&self) -> Bytes {
        self.body.clone()
    }
}

#[derive(Default)]
struct ViewSlot {
    entry: Mutex<Option<Arc<Cached>>>,
    /// Held while this view is recomputed, so that only one request does it.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Slot {
    /// Bumped by every write that changes what the petition's views show.
    generation: AtomicU64,
    views: [ViewSlot; VIEWS],
}

impl Slot {
    fn fresh(&self, view: View) -> Option<Arc<Cached>> {
        let entry = lock(&self.views[view as usize].entry).clone()?;
        let current = entry.generation == self.generation.load(Ordering::SeqCst)
            && entry.made.elapsed() < FRESH_FOR;
        current.then_some(entry)
    }

    /// True when no view would be served from here any more.
    fn idle(&self) -> bool {
        self.views.iter().all(|view| {
            lock(&view.entry)
                .as_ref()
                .is_none_or(|entry| entry.made.elapsed() >= FRESH_FOR)
        })
    }

    fn empty(&self) -> bool {
        self.views.iter().all(|view| lock(&view.entry).is_none())
    }
}

/// A poisoned lock only means another request panicked while holding it; the data (an
/// `Option<Arc<…>>` or the map) is still whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The public views of every petition in memory, shared by the instance's workers.
#[derive(Default)]
pub struct PublicViews {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
}

impl PublicViews {
    pub fn new() -> Self {
        Self::default()
    }

    /// The view of `slug`, from memory when fresh, otherwise from `compute` (which gives the
    /// finished body, or the error to answer with; errors are never kept).
    pub async fn get<E, F, Fut>(&self, view: View, slug: &str, compute: F) -> Result<Arc<Cached>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let existing = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(slug)
            .cloned();
        if let Some(entry) = existing.as_ref().and_then(|slot| slot.fresh(view)) {
            return Ok(entry);
        }
        let Some(slot) = existing.or_else(|| self.make_slot(slug)) else {
            // Full of petitions read within the last second: serve this one uncached.
            return Ok(Arc::new(Cached::new(compute().await?, 0)));
        };
        let _refreshing = slot.views[view as usize].refresh.lock().await;
        if let Some(entry) = slot.fresh(view) {
            return Ok(entry);
        }
        // Read before the database is: a write that commits after this bumps it, so a result
        // that might predate the write is never taken as current.
        let generation = slot.generation.load(Ordering::SeqCst);
        match compute().await {
            Ok(body) => {
                let entry = Arc::new(Cached::new(body, generation));
                *lock(&slot.views[view as usize].entry) = Some(entry.clone());
                Ok(entry)
            }
            Err(error) => {
                if slot.empty() {
                    self.remove_if_same(slug, &slot);
                }
                Err(error)
            }
        }
    }

    /// After a committed change to the petition at `slug`: its views are recomputed on the
    /// next request.
    pub fn forget(&self, slug: &str) {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // No slot means no view held and none being computed (a computation holds its slot).
        if let Some(slot) = slots.get(slug) {
            slot.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// After a committed change whose petition the caller does not name (organizers'
    /// changes, which are rare): every view is recomputed on its next request.
    pub fn forget_all(&self) {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for slot in slots.values() {
            slot.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many petitions have a slot (for tests).
    pub fn len(&self) -> usize {
        self.slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make_slot(&self, slug: &str) -> Option<Arc<Slot>> {
        let mut slots = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = slots.get(slug) {
            return Some(slot.clone());
        }
        if slots.len() >= MAX_PETITIONS {
            // A slot someone is computing in holds its refresh lock and is kept.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1 || !slot.idle());
        }
        if slots.len() >= MAX_PETITIONS {
            return None;
        }
        let slot = Arc::new(Slot::default());
        slots.insert(slug.to_owned(), slot.clone());
        Some(slot)
    }

    fn remove_if_same(&self, slug: &str, slot: &Arc<Slot>) {
        let mut slots = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.get(slug).is_some_and(|held| Arc::ptr_eq(held, slot)) {
            slots.remove(slug);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Result<Vec<u8>, String> {
        Ok(text.as_bytes().to_vec())
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn serves_from_memory_until_forgotten() {
        block_on(async {
            let views = PublicViews::new();
            let first = views.get(View::Json, "a", || async { body("1") }).await;
            assert_eq!(first.unwrap().body, "1");
            let hit = views.get(View::Json, "a", || async { body("2") }).await;
            assert_eq!(hit.unwrap().body, "1", "a fresh entry is served");
            let page = views.get(View::Page, "a", || async { body("page") }).await;
            assert_eq!(page.unwrap().body, "page", "each view has its own entry");
            views.forget("a");
            let after = views.get(View::Json, "a", || async { body("3") }).await;
            assert_eq!(after.unwrap().body, "3", "a forgotten entry is recomputed");
            views.forget_all();
            let all = views
                .get(View::Page, "a", || async { body("page 2") })
                .await;
            assert_eq!(all.unwrap().body, "page 2");
        });
    }

    #[test]
    fn a_computation_that_raced_a_write_is_not_served_again() {
        block_on(async {
            let views = PublicViews::new();
            let stale = views
                .get(View::Json, "a", || async {
                    // The write commits and forgets while this reads.
                    views.forget("a");
                    body("old")
                })
                .await;
            assert_eq!(stale.unwrap().body, "old");
            let next = views.get(View::Json, "a", || async { body("new") }).await;
            assert_eq!(next.unwrap().body, "new");
        });
    }

    #[test]
    fn errors_are_not_kept_and_leave_no_slot() {
        block_on(async {
            let views = PublicViews::new();
            for n in 0..10 {
                let slug = format!("unknown-{n}");
                let answer = views
                    .get(View::Page, &slug, || async { Err::<Vec<u8>, _>("404") })
                    .await;
                assert!(answer.is_err());
            }
            assert!(views.is_empty());
        });
    }

    #[test]
    fn holds_at_most_the_cap() {
        block_on(async {
            let views = PublicViews::new();
            for n in 0..MAX_PETITIONS + 10 {
                let slug = format!("p-{n}");
                let got = views.get(View::Json, &slug, || async { body("x") }).await;
                assert_eq!(got.unwrap().body, "x", "served even when full");
            }
            assert_eq!(views.len(), MAX_PETITIONS);
        });
    }

    #[test]
    fn etag_is_the_body_hash() {
        let a = Cached::new(b"same".to_vec(), 0);
        let b = Cached::new(b"same".to_vec(), 7);
        let c = Cached::new(b"other".to_vec(), 0);
        assert_eq!(a.etag(), b.etag());
        assert_ne!(a.etag(), c.etag());
        assert!(a.etag().starts_with('"') && a.etag().ends_with('"'));
    }
}
