//! Per-tenant calls-per-minute caps: a token bucket per capped tenant, spent by releases.
//!
//! A released item may make one call per remaining stage, so a release spends that many
//! tokens: filters can only make the tenant's calls fewer than what was spent. The buckets
//! live in the leading scheduler; a new leader starts them full (at most one burst more).

use std::{collections::HashMap, time::Instant};

use uuid::Uuid;

/// Seconds of a cap a full bucket holds: the most a capped tenant can be released at once.
const BURST_SECONDS: f64 = 10.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct Caps {
    buckets: HashMap<Uuid, Bucket>,
}

impl Caps {
    /// Calls `tenant` may be released now under `calls_per_minute`, the bucket refilled to `now`.
    /// The bucket holds at least `one_release` tokens (the calls one item may make), so a cap
    /// smaller than a burst of one item still releases, at the cap's pace.
    pub fn available(
        &mut self,
        tenant: Uuid,
        calls_per_minute: u32,
        one_release: u32,
        now: Instant,
    ) -> u32 {
        let rate = f64::from(calls_per_minute) / 60.0;
        let capacity = (rate * BURST_SECONDS).max(f64::from(one_release.max(1)));
        let bucket = self.buckets.entry(tenant).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        bucket.tokens.floor() as u32
    }

    /// Spends `calls` of `tenant`'s tokens.
    pub fn spend(&mut self, tenant: Uuid, calls: u32) {
        if let Some(bucket) = self.buckets.get_mut(&tenant) {
            bucket.tokens -= f64::from(calls);
        }
    }

    /// Forgets tenants that are no longer capped or have no work.
    pub fn retain(&mut self, keep: impl Fn(&Uuid) -> bool) {
        self.buckets.retain(|tenant, _| keep(tenant));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_starts_with_a_burst_and_refills_at_the_cap() {
        let mut caps = Caps::default();
        let tenant = Uuid::from_u128(1);
        let start = Instant::now();
        // 60 calls/min: 1 per second, a burst of 10.
        assert_eq!(caps.available(tenant, 60, 1, start), 10);
        caps.spend(tenant, 10);
        assert_eq!(caps.available(tenant, 60, 1, start), 0);
        assert_eq!(
            caps.available(tenant, 60, 1, start + Duration::from_secs(3)),
            3
        );
        // Never more than the burst, however long it waited.
        assert_eq!(
            caps.available(tenant, 60, 1, start + Duration::from_secs(600)),
            10
        );
    }

    #[test]
    fn a_cap_below_one_items_calls_still_releases_at_its_pace() {
        let mut caps = Caps::default();
        let tenant = Uuid::from_u128(1);
        let start = Instant::now();
        // 12 calls/min, 3 stages an item: a burst of 2 would never allow one item.
        assert_eq!(caps.available(tenant, 12, 3, start), 3);
        caps.spend(tenant, 3);
        assert_eq!(
            caps.available(tenant, 12, 3, start + Duration::from_secs(10)),
            2
        );
        assert_eq!(
            caps.available(tenant, 12, 3, start + Duration::from_secs(15)),
            3
        );
    }
}
