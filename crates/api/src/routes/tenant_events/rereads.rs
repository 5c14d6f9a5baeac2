//! One re-read of a tenant's changed jobs per replica, shared by all of the tenant's streams.
//!
//! Every tenant stream must learn, every few seconds, which jobs changed in ways its events
//! may not have told it. When each stream read the database itself, the idle cost grew with the
//! number of open dashboards (1,000 streams were about 200 transactions per second). One reader
//! per tenant with streams open on this replica makes it grow with the number of tenants: the
//! reader reads the ids and sequence numbers of the changed jobs and broadcasts them, and each
//! stream loads only the jobs it has not seen at that `seq` (normally none).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::DatabaseConnection;
use store::{TenantId, jobs::Changed};
use tokio::{
    sync::broadcast,
    task::AbortHandle,
    time::{Instant, MissedTickBehavior},
};

/// Re-reads a stream may fall behind by before it reads for itself instead.
const BUFFER: usize = 4;

/// What one shared re-read found.
#[derive(Clone)]
pub enum Reread {
    /// The jobs changed since the reader's watermark (at most `limit` + 1 of them, so a
    /// stream can tell "more than it may send").
    Changed(Arc<Changed>),
    /// The read failed; streams send a keep-alive and wait for the next one.
    Failed,
}

type Registry = Mutex<HashMap<TenantId, Weak<Feed>>>;

/// The readers of this replica, one per tenant with at least one stream open.
pub struct Rereads {
    db: DatabaseConnection,
    feeds: Arc<Registry>,
    every: Duration,
    margin: TimeDelta,
    limit: u64,
}

/// A stream's place in its tenant's re-reads; the reader stops when the last one is dropped.
pub struct Subscription {
    _feed: Arc<Feed>,
    pub rereads: broadcast::Receiver<Reread>,
}

struct Feed {
    tenant: TenantId,
    sender: broadcast::Sender<Reread>,
    reader: AbortHandle,
    feeds: Weak<Registry>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(feeds) = self.feeds.upgrade() {
            let mut feeds = feeds.lock().unwrap_or_else(|e| e.into_inner());
            // A new feed may already stand in this one's place; leave it.
            if feeds
                .get(&self.tenant)
                .is_some_and(|feed| feed.strong_count() == 0)
            {
                feeds.remove(&self.tenant);
            }
        }
    }
}

impl Rereads {
    /// Readers re-read every `every`, looking back `margin` before their last read (a change
    /// may commit that much after its `updated_at`), and read at most `limit` + 1 jobs.
    pub fn new(db: DatabaseConnection, every: Duration, margin: TimeDelta, limit: u64) -> Self {
        Self {
            db,
            feeds: Arc::default(),
            every,
            margin,
            limit,
        }
    }

    /// Joins the tenant's re-reads, starting a reader when there is none. `since` is the
    /// watermark of the caller's own first read: a new reader starts there, and a running one
    /// is already at or before it (it moves on only to its last read's time minus the margin).
    pub fn subscribe(&self, tenant: TenantId, since: DateTime<Utc>) -> Subscription {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = feeds.get(&tenant).and_then(Weak::upgrade) {
            return Subscription {
                rereads: feed.sender.subscribe(),
                _feed: feed,
            };
        }
        let (sender, rereads) = broadcast::channel(BUFFER);
        let reader = tokio::spawn(read_every(
            self.db.clone(),
            tenant,
            since,
            sender.clone(),
            (self.every, self.margin, self.limit),
        ))
        .abort_handle();
        let feed = Arc::new(Feed {
            tenant,
            sender,
            reader,
            feeds: Arc::downgrade(&self.feeds),
        });
        feeds.insert(tenant, Arc::downgrade(&feed));
        Subscription {
            _feed: feed,
            rereads,
        }
    }

    /// How many tenants have a reader running.
    #[cfg(test)]
    fn readers(&self) -> usize {
        let feeds = self.feeds.lock().unwrap();
        feeds.values().filter(|f| f.strong_count() > 0).count()
    }
}

async fn read_every(
    db: DatabaseConnection,
    tenant: TenantId,
    mut since: DateTime<Utc>,
    sender: broadcast::Sender<Reread>,
    (every, margin, limit): (Duration, TimeDelta, u64),
) {
    // Tenants whose streams opened together (a deploy, a network blip) read at spread-out moments.
    let first = every.mul_f64(rand::random_range(0.5..1.0));
    let mut tick = tokio::time::interval_at(Instant::now() + first, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let reread = match store::jobs::changed_since(&db, tenant, since, limit + 1).await {
            Ok(changed) => {
                since = since.max(changed.now - margin);
                Reread::Changed(Arc::new(changed))
            }
            Err(error) => {
                tracing::debug!(%error, "re-reading the tenant's changed jobs failed");
                Reread::Failed
            }
        };
        // No receiver only between the last stream's end and this task's abort.
        let _ = sender.send(reread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rereads() -> Rereads {
        // Never connected: the readers' first read is far off in these tests.
        let db = DatabaseConnection::default();
        Rereads::new(db, Duration::from_secs(3600), TimeDelta::seconds(10), 200)
    }

    #[tokio::test]
    async fn streams_of_one_tenant_share_one_reader_that_stops_with_the_last_stream() {
        let rereads = rereads();
        let (one, other) = (
            TenantId(uuid::Uuid::now_v7()),
            TenantId(uuid::Uuid::now_v7()),
        );
        let first = rereads.subscribe(one, Utc::now());
        let second = rereads.subscribe(one, Utc::now());
        assert!(Arc::ptr_eq(&first._feed, &second._feed));
        let third = rereads.subscribe(other, Utc::now());
        assert_eq!(rereads.readers(), 2);

        drop(first);
        assert_eq!(
            rereads.readers(),
            2,
            "one stream of the tenant is still open"
        );
        let reader = second._feed.reader.clone();
        drop(second);
        assert_eq!(rereads.readers(), 1);
        assert!(rereads.feeds.lock().unwrap().get(&one).is_none());
        // Aborting is asynchronous: the task ends at its next await point.
        tokio::task::yield_now().await;
        assert!(reader.is_finished());

        let again = rereads.subscribe(one, Utc::now());
        assert!(!Arc::ptr_eq(&again._feed, &third._feed));
        assert_eq!(rereads.readers(), 2);
    }
}
