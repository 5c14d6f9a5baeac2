use api::routes::{Paged, images::Image, libraries::Library};
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};
use system_tests::{TestApp, body_as, problem, sample_image};

#[tokio::test]
async fn several_images_upload_in_one_request_and_their_bytes_come_back_unchanged() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let ids = app.upload(library, &["chelsea.png", "rocket.jpg"]).await;
    assert_eq!(ids.len(), 2);

    let image: Image = app
        .get_as(
            &format!("/api/libraries/{library}/images/{}", ids[1]),
            StatusCode::OK,
        )
        .await;
    let original = sample_image("rocket.jpg");
    assert_eq!(image.media_type.as_deref(), Some("image/jpeg"));
    assert_eq!(image.size_bytes, Some(original.len() as i64));
    assert_eq!(
        image.content_hash,
        Some(hex::encode(Sha256::digest(&original)))
    );
    assert_eq!(image.source, "upload");

    let content = app
        .get(image.content_url.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(content.headers()["content-type"], "image/jpeg");
    assert_eq!(content.bytes().await.unwrap().as_ref(), original.as_slice());

    let listed: Paged<Image> = app
        .get_as(&format!("/api/libraries/{library}/images"), StatusCode::OK)
        .await;
    assert_eq!(listed.total, 2);
    let library_view: Library = app
        .get_as(&format!("/api/libraries/{library}"), StatusCode::OK)
        .await;
    assert_eq!(library_view.image_count, 2);
}

#[tokio::test]
async fn a_file_that_is_not_a_supported_image_rejects_the_whole_upload() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(sample_image("coffee.png")).file_name("coffee.png"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"%PDF-1.7 not an image".to_vec()).file_name("doc.pdf"),
        );
    let response = app.upload_form(library, form).await;
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused.errors[0].path, "/files/1");
    let listed: Paged<Image> = app
        .get_as(&format!("/api/libraries/{library}/images"), StatusCode::OK)
        .await;
    assert_eq!(listed.total, 0, "nothing stored");
}

#[tokio::test]
async fn an_image_over_20_mb_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let mut big = sample_image("chelsea.png");
    big.resize(20 * 1024 * 1024 + 1, 0);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(big).file_name("big.png"),
    );
    let response = app.upload_form(library, form).await;
    let refused = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(refused.code, "payload_too_large");
}

#[tokio::test]
async fn uploading_json_instead_of_a_form_is_415() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let response = app
        .post(&format!("/api/libraries/{library}/images"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn an_https_url_can_be_registered_and_other_schemes_cannot() {
    let app = TestApp::spawn().await;
    let library = app.create_library("remote").await;
    let ok = app
        .post(&format!("/api/libraries/{library}/image-urls"))
        .json(&json!({"url": "https://images.example.org/cats/tabby.jpg"}))
        .send()
        .await
        .unwrap();
    let image: Image = body_as(ok, StatusCode::CREATED).await;
    assert_eq!(image.source, "url");
    assert_eq!(image.filename, "tabby.jpg");
    assert_eq!(image.content_url, None);

    let bad = app
        .post(&format!("/api/libraries/{library}/image-urls"))
        .json(&json!({"url": "http://images.example.org/a.jpg"}))
        .send()
        .await
        .unwrap();
    let bad = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(bad.errors[0].path, "/url");
}

#[tokio::test]
async fn a_deleted_image_and_its_bytes_are_gone() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let ids = app.upload(library, &["horse.png"]).await;
    let path = format!("/api/libraries/{library}/images/{}", ids[0]);
    assert_eq!(app.delete(&path).send().await.unwrap().status(), 204);
    assert_eq!(app.get(&path).send().await.unwrap().status(), 404);
    assert_eq!(
        app.get(&format!("{path}/content"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let files = std::fs::read_dir(&app.resources.storage_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    let remaining: usize = walk(&app.resources.storage_dir);
    assert_eq!(
        remaining, 0,
        "storage still holds files ({files} top-level entries)"
    );
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}
