//! Read caches keyed by the store's generation: token lookups, rendered integration pages,
//! integrations by name, the integration serving a registry host, web sessions and the web
//! list's rows. Every committed write (on
//! any replica, or by an admin command) moves the generation, and a cache filled under an older
//! generation is dropped whole, so nothing stale is ever served. Revoking a token therefore
//! takes effect on the very next request.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use berth_core::Integration;
use std::sync::Arc;

use berth_store::{Session, TokenRecord};

use crate::pages::ListData;

/// Enough for every token and page shape a busy installation uses; past it a map restarts.
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct ReadCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: i64,
    tokens: HashMap<String, TokenRecord>,
    pages: HashMap<String, Bytes>,
    integrations: HashMap<String, Integration>,
    /// Registry host (and caller's subscription) → (integration name, region).
    hosts: HashMap<String, (String, String)>,
    /// Hex of a session's id hash → the session.
    sessions: HashMap<String, Session>,
    /// The web list's query (with the caller's confinement) → its rows and count.
    web_lists: HashMap<String, Arc<ListData>>,
}

impl Inner {
    /// Brings the cache to `generation`; false when the caller's view is older than the cache.
    fn at(&mut self, generation: i64) -> bool {
        if generation > self.generation {
            *self = Inner {
                generation,
                ..Default::default()
            };
        }
        generation == self.generation
    }
}

impl ReadCache {
    fn get<T: Clone>(
        &self,
        generation: i64,
        map: fn(&mut Inner) -> &mut HashMap<String, T>,
        key: &str,
    ) -> Option<T> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.at(generation) {
            return None;
        }
        map(&mut inner).get(key).cloned()
    }

    fn put<T>(
        &self,
        generation: i64,
        map: fn(&mut Inner) -> &mut HashMap<String, T>,
        key: String,
        value: T,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.at(generation) {
            let m = map(&mut inner);
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(key, value);
        }
    }

    pub fn token(&self, generation: i64, id: &str) -> Option<TokenRecord> {
        self.get(generation, |i| &mut i.tokens, id)
    }

    pub fn put_token(&self, generation: i64, record: TokenRecord) {
        self.put(
            generation,
            |i| &mut i.tokens,
            record.info.id.clone(),
            record,
        )
    }

    pub fn page(&self, generation: i64, key: &str) -> Option<Bytes> {
        self.get(generation, |i| &mut i.pages, key)
    }

    pub fn put_page(&self, generation: i64, key: String, body: Bytes) {
        self.put(generation, |i| &mut i.pages, key, body)
    }

    /// An integration by case-folded name, as of `generation`.
    pub fn integration(&self, generation: i64, key: &str) -> Option<Integration> {
        self.get(generation, |i| &mut i.integrations, key)
    }

    pub fn put_integration(&self, generation: i64, integration: Integration) {
        self.put(
            generation,
            |i| &mut i.integrations,
            integration.name.key(),
            integration,
        )
    }

    pub fn host(&self, generation: i64, key: &str) -> Option<(String, String)> {
        self.get(generation, |i| &mut i.hosts, key)
    }

    pub fn put_host(&self, generation: i64, key: String, integration: String, region: String) {
        self.put(generation, |i| &mut i.hosts, key, (integration, region))
    }
}

impl ReadCache {
    pub fn session(&self, generation: i64, key: &str) -> Option<Session> {
        self.get(generation, |i| &mut i.sessions, key)
    }

    pub fn put_session(&self, generation: i64, key: String, session: Session) {
        self.put(generation, |i| &mut i.sessions, key, session)
    }

    pub fn web_list(&self, generation: i64, key: &str) -> Option<Arc<ListData>> {
        self.get(generation, |i| &mut i.web_lists, key)
    }

    pub fn put_web_list(&self, generation: i64, key: String, list: Arc<ListData>) {
        self.put(generation, |i| &mut i.web_lists, key, list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_generation_drops_everything_and_older_views_are_not_cached() {
        let c = ReadCache::default();
        c.put_page(3, "k".into(), Bytes::from_static(b"v3"));
        assert_eq!(c.page(3, "k").unwrap(), "v3");
        assert!(
            c.page(4, "k").is_none(),
            "a write happened: the page is gone"
        );
        c.put_page(3, "k".into(), Bytes::from_static(b"old"));
        assert!(
            c.page(4, "k").is_none(),
            "a lagging reader cannot plant old data"
        );
        assert!(c.page(3, "k").is_none());
    }
}
