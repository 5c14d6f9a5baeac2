//! A small time-bounded, size-bounded in-memory cache, shared by API-key look-ups and the
//! job-details micro-cache.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// Entries expire `ttl` after insertion; when `capacity` is reached the cache starts over
/// (cheap, and adequate for entries that are cheap to recompute). A zero `ttl` disables it.
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
    /// One gate per key being loaded by [`get_or_load`](Self::get_or_load).
    loading: Mutex<HashMap<K, Arc<Gate>>>,
}

/// Where concurrent misses of one key wait for the one load.
#[derive(Default)]
struct Gate {
    turn: tokio::sync::Mutex<()>,
    /// The key was removed while it loaded: the load may have read what the removal was for,
    /// so its value is returned but not kept.
    removed: AtomicBool,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value, or the one `load` gives (then cached). Concurrent misses of one key
    /// load it once: when an entry expires under load, one request goes to the database and
    /// the others wait for its answer instead of all querying at once.
    pub async fn get_or_load<F, Fut, E>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        if self.ttl.is_zero() {
            return load().await;
        }
        let gate = {
            let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
            loading.entry(key.clone()).or_default().clone()
        };
        let turn = gate.turn.lock().await;
        let result = match self.get(&key) {
            Some(value) => Ok(value),
            None => {
                gate.removed.store(false, Ordering::SeqCst);
                load().await.inspect(|value| {
                    if !gate.removed.load(Ordering::SeqCst) {
                        self.put(key.clone(), value.clone());
                    }
                })
            }
        };
        drop(turn);
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        // The map's and this call's handles only: nobody else waits at this gate.
        if Arc::strong_count(&gate) <= 2 {
            loading.remove(&key);
        }
        result
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    pub fn remove(&self, key: &K) {
        if let Ok(loading) = self.loading.lock()
            && let Some(gate) = loading.get(key)
        {
            gate.removed.store(true, Ordering::SeqCst);
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = TtlCache::new(Duration::ZERO, 10);
        cache.put(1, "a");
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn entries_are_returned_until_removed() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        cache.put(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.remove(&1);
        assert_eq!(cache.get(&1), None);
    }

    #[tokio::test]
    async fn a_load_that_overlaps_a_removal_is_not_kept() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        let loaded = cache
            .get_or_load(1, || async {
                // What this load read may be what the removal is about.
                cache.remove(&1);
                Ok::<_, ()>("old")
            })
            .await;
        assert_eq!(loaded, Ok("old"));
        assert_eq!(cache.get(&1), None);
        let again = cache.get_or_load(1, || async { Ok::<_, ()>("new") }).await;
        assert_eq!(again, Ok("new"));
        assert_eq!(cache.get(&1), Some("new"));
    }

    #[tokio::test]
    async fn removing_another_key_does_not_stop_a_load_being_kept() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        let loaded = cache
            .get_or_load(1, || async {
                cache.remove(&2);
                Ok::<_, ()>("one")
            })
            .await;
        assert_eq!(loaded, Ok("one"));
        assert_eq!(cache.get(&1), Some("one"));
    }

    #[tokio::test]
    async fn concurrent_misses_of_one_key_load_it_once() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(60), 10));
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, loads, mut released) = (cache.clone(), loads.clone(), released.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load(1, || async move {
                            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // Every other caller arrives while this load is in progress.
                            let _ = released.wait_for(|r| *r).await;
                            Ok::<_, ()>("loaded")
                        })
                        .await
                })
            })
            .collect();
        while cache.loading.lock().unwrap().get(&1).map(Arc::strong_count) != Some(17) {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok("loaded"));
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            cache.loading.lock().unwrap().is_empty(),
            "no gate left behind"
        );
    }

    #[tokio::test]
    async fn a_failed_load_is_not_cached() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        assert_eq!(
            cache
                .get_or_load(1, || async { Err::<&str, _>("down") })
                .await,
            Err("down")
        );
        assert_eq!(
            cache.get_or_load(1, || async { Ok::<_, ()>("up") }).await,
            Ok("up")
        );
        assert_eq!(cache.get(&1), Some("up"));
    }

    #[test]
    fn reaching_capacity_starts_over_instead_of_growing() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.put(1, "a");
        cache.put(2, "b");
        cache.put(3, "c");
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&3), Some("c"));
    }
}
