//! Read caches keyed by the store's generation: token lookups and rendered integration pages.
//! Every committed write (on any replica, or by an admin command) moves the generation, and a
//! cache filled under an older generation is dropped whole, so nothing stale is ever served.
//! Revoking a token therefore takes effect on the very next request.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use berth_core::Integration;
use berth_store::TokenRecord;

/// Enough for every token and page shape a busy installation uses; past it the cache restarts.
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
}

impl Inner {
    /// Brings the cache to `generation`; false when the caller's view is older than the cache.
    fn at(&mut self, generation: i64) -> bool {
        if generation > self.generation {
            self.generation = generation;
            self.tokens.clear();
            self.pages.clear();
            self.integrations.clear();
        }
        generation == self.generation
    }
}

impl ReadCache {
    pub fn token(&self, generation: i64, id: &str) -> Option<TokenRecord> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.at(generation) {
            return None;
        }
        inner.tokens.get(id).cloned()
    }

    pub fn put_token(&self, generation: i64, record: TokenRecord) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.at(generation) {
            if inner.tokens.len() >= MAX_ENTRIES {
                inner.tokens.clear();
            }
            inner.tokens.insert(record.info.id.clone(), record);
        }
    }

    pub fn page(&self, generation: i64, key: &str) -> Option<Bytes> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.at(generation) {
            return None;
        }
        inner.pages.get(key).cloned()
    }

    pub fn put_page(&self, generation: i64, key: String, body: Bytes) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.at(generation) {
            if inner.pages.len() >= MAX_ENTRIES {
                inner.pages.clear();
            }
            inner.pages.insert(key, body);
        }
    }
}

impl ReadCache {
    /// An integration by case-folded name, as of `generation`.
    pub fn integration(&self, generation: i64, key: &str) -> Option<Integration> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.at(generation) {
            return None;
        }
        inner.integrations.get(key).cloned()
    }

    pub fn put_integration(&self, generation: i64, integration: Integration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.at(generation) {
            if inner.integrations.len() >= MAX_ENTRIES {
                inner.integrations.clear();
            }
            inner
                .integrations
                .insert(integration.name.key(), integration);
        }
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
