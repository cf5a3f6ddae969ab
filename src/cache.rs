//! A small read-mostly cache of database rows for the request path.
//!
//! An entry is fresh while the audit writer's change generation has not
//! moved since it was loaded (every change goes through an audited
//! transaction) and for at most `ttl` (changes made by another process).
//! It is bounded: when full it is emptied and refills on demand.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

struct Entry<V> {
    generation: u64,
    loaded: Instant,
    value: Option<Arc<V>>,
}

pub struct GenerationCache<V> {
    map: Arc<RwLock<HashMap<String, Entry<V>>>>,
    ttl: Duration,
    max: usize,
}

impl<V> Clone for GenerationCache<V> {
    fn clone(&self) -> Self {
        GenerationCache {
            map: self.map.clone(),
            ttl: self.ttl,
            max: self.max,
        }
    }
}

impl<V> GenerationCache<V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        GenerationCache {
            map: Arc::new(RwLock::new(HashMap::new())),
            ttl,
            max,
        }
    }

    /// `Some(value)` when a fresh entry exists (the value may be `None`:
    /// "known not to exist"); `None` when it must be loaded.
    pub fn fresh(&self, generation: u64, key: &str) -> Option<Option<Arc<V>>> {
        let map = self.map.read().ok()?;
        let e = map.get(key)?;
        (e.generation == generation && e.loaded.elapsed() < self.ttl).then(|| e.value.clone())
    }

    pub fn put(&self, generation: u64, key: String, value: Option<Arc<V>>) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.max {
                map.clear();
            }
            map.insert(
                key,
                Entry {
                    generation,
                    loaded: Instant::now(),
                    value,
                },
            );
        }
    }
}
