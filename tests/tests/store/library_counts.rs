//! A library's image count and newest image, kept by triggers on `images`, as whole-library
//! submissions read them.

use system_tests::TestApp;
use uuid::Uuid;

async fn counted(app: &TestApp, library: Uuid) -> (i64, i64) {
    let row = &app
        .sql_rows(
            r#"SELECT l.image_count,
                   (SELECT count(*) FROM images i WHERE i.library_id = l.id)
                 + CASE WHEN l.newest_image_at IS NOT DISTINCT FROM
                        (SELECT max(created_at) FROM images i WHERE i.library_id = l.id)
                   THEN 0 ELSE 1000000 END AS truth
               FROM libraries l WHERE l.id = $1"#,
            [library.into()],
        )
        .await[0];
    (
        row.try_get("", "image_count").unwrap(),
        row.try_get("", "truth").unwrap(),
    )
}

#[tokio::test]
async fn a_librarys_count_and_newest_image_follow_inserts_uploads_and_deletes() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    assert_eq!(counted(&app, library).await, (0, 0));

    // One statement of many rows, as bulk registration and the benchmarks write them.
    app.add_url_images(library, 500).await.unwrap();
    assert_eq!(counted(&app, library).await, (500, 500));
    app.upload(library, &["chelsea.png", "coffee.png"]).await;
    assert_eq!(counted(&app, library).await, (502, 502));

    // Deleting the newest image finds the next newest; deleting older ones only counts down.
    app.sql_execute(
        "DELETE FROM images WHERE id = (SELECT id FROM images WHERE library_id = $1 ORDER BY created_at DESC LIMIT 1)",
        [library.into()],
    )
    .await;
    assert_eq!(counted(&app, library).await, (501, 501));
    app.sql_execute(
        "DELETE FROM images WHERE id IN (SELECT id FROM images WHERE library_id = $1 ORDER BY created_at LIMIT 100)",
        [library.into()],
    )
    .await;
    assert_eq!(counted(&app, library).await, (401, 401));

    // Another library's images leave this one's count alone.
    let other = app.create_library("other").await;
    app.add_url_images(other, 7).await.unwrap();
    assert_eq!(counted(&app, library).await, (401, 401));
    assert_eq!(counted(&app, other).await, (7, 7));
}
