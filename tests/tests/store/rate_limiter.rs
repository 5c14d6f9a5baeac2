//! The cluster-wide rate limiter (`resilience::RateLimiter`) against a real PostgreSQL: several
//! limiters on one database stand for several worker replicas.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use resilience::RateLimiter;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use system_tests::TestResources;

const MODEL: &str = "command-a-vision-07-2025";
const FREE_MODEL: &str = "c4ai-aya-vision-32b";

/// A "replica": its own connection pool to the test database, 600 rpm for `MODEL`, no limit
/// for any other model.
async fn replica(resources: &TestResources) -> (RateLimiter, DatabaseConnection) {
    let db = sea_orm::Database::connect(resources.database_url())
        .await
        .unwrap();
    let mut settings = settings::CohereSettings::default();
    settings
        .model_requests_per_minute
        .insert(MODEL.to_string(), 600);
    (RateLimiter::from_settings(db.clone(), &settings), db)
}

async fn rows(db: &DatabaseConnection, model: &str) -> i64 {
    db.query_one_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT count(*) FROM cohere_rate_limits WHERE model = $1",
        [model.into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

async fn backoff_until(db: &DatabaseConnection, model: &str) -> DateTime<Utc> {
    db.query_one_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT backoff_until FROM cohere_rate_limits WHERE model = $1",
        [model.into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<DateTime<Utc>>(0)
    .unwrap()
}

#[tokio::test]
async fn two_replicas_share_one_slot_sequence_100_ms_apart_at_600_rpm() {
    let resources = TestResources::new();
    let db = resources.create_database().await.unwrap();
    let (a, _) = replica(&resources).await;
    let (b, _) = replica(&resources).await;

    let started = Instant::now();
    let mut reservations = Vec::new();
    for i in 0..8 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        let reservation = limiter.reserve_slot(MODEL).await.unwrap().unwrap();
        reservations.push((reservation, started.elapsed()));
    }

    let first = reservations[0].0.slot;
    let step = Duration::from_millis(100);
    for (k, (reservation, elapsed)) in reservations.iter().enumerate() {
        let k32 = u32::try_from(k).unwrap();
        // Slots exactly 60 s / 600 apart, whichever replica reserved them.
        assert_eq!(
            (reservation.slot - first).to_std().unwrap(),
            step * k32,
            "slot {k}"
        );
        // The wait is the slot minus the database's now, which lies between the first
        // reservation and this one.
        let ceiling = step * k32 + Duration::from_millis(1);
        let floor = (step * k32).saturating_sub(*elapsed + Duration::from_millis(1));
        assert!(
            reservation.wait <= ceiling && reservation.wait >= floor,
            "wait {k}: {:?} not within [{floor:?}, {ceiling:?}]",
            reservation.wait
        );
    }
    // `reserve` returns the same waits, continuing the sequence.
    let wait = b.reserve(MODEL).await.unwrap();
    assert!(wait <= step * 8 + Duration::from_millis(1), "{wait:?}");
    assert!(wait >= (step * 8).saturating_sub(started.elapsed() + Duration::from_millis(1)));
    assert_eq!(rows(&db, MODEL).await, 1, "one row per model");
}

#[tokio::test]
async fn a_back_off_by_one_replica_holds_back_the_other() {
    let resources = TestResources::new();
    let db = resources.create_database().await.unwrap();
    let (a, _) = replica(&resources).await;
    let (b, _) = replica(&resources).await;

    a.reserve(MODEL).await.unwrap();
    let retry_after = Duration::from_secs(2);
    let before_back_off = Instant::now();
    a.back_off(MODEL, retry_after).await.unwrap();
    let until = backoff_until(&db, MODEL).await;

    let reservation = b.reserve_slot(MODEL).await.unwrap().unwrap();
    assert_eq!(reservation.slot, until, "the first slot after the back-off");
    assert!(reservation.wait <= retry_after, "{:?}", reservation.wait);
    assert!(
        reservation.wait >= retry_after.saturating_sub(before_back_off.elapsed()),
        "{:?}",
        reservation.wait
    );
    // And the sequence goes on from there, for both replicas.
    let next = a.reserve_slot(MODEL).await.unwrap().unwrap();
    assert_eq!(
        (next.slot - until).to_std().unwrap(),
        Duration::from_millis(100)
    );

    // A shorter back-off never shortens the one in place.
    b.back_off(MODEL, Duration::from_millis(10)).await.unwrap();
    assert_eq!(backoff_until(&db, MODEL).await, until);
}

#[tokio::test]
async fn a_model_without_a_limit_costs_no_row_until_it_is_backed_off() {
    let resources = TestResources::new();
    let db = resources.create_database().await.unwrap();
    let (a, _) = replica(&resources).await;

    for _ in 0..5 {
        assert_eq!(a.reserve(FREE_MODEL).await.unwrap(), Duration::ZERO);
        assert_eq!(a.reserve_slot(FREE_MODEL).await.unwrap(), None);
    }
    assert_eq!(a.acquire(FREE_MODEL).await.unwrap(), Duration::ZERO);
    assert_eq!(
        rows(&db, FREE_MODEL).await,
        0,
        "no row for an unlimited model"
    );

    // After a 429 this replica waits for the back-off, without reserving slots.
    a.back_off(FREE_MODEL, Duration::from_secs(3))
        .await
        .unwrap();
    let until = backoff_until(&db, FREE_MODEL).await;
    let reservation = a.reserve_slot(FREE_MODEL).await.unwrap().unwrap();
    assert_eq!(reservation.slot, until);
    assert!(reservation.wait > Duration::from_secs(2), "{reservation:?}");
    assert!(
        reservation.wait <= Duration::from_secs(3),
        "{reservation:?}"
    );
    let again = a.reserve_slot(FREE_MODEL).await.unwrap().unwrap();
    assert_eq!(again.slot, until, "reading the back-off reserves nothing");
}
