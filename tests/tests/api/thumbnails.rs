//! `GET /api/libraries/{id}/images/{id}/thumbnail`: small JPEGs for grids, made once and
//! cached.

use api::routes::images::Image;
use reqwest::{Method, StatusCode};
use serde_json::json;
use system_tests::{TestApp, problem, sample_image};

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).expect("a JPEG")
}

#[tokio::test]
async fn a_thumbnail_is_a_small_jpeg_of_the_asked_size_stored_and_cached() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let names = ["hubble_deep_field.jpg", "coffee.png", "horse.png"];
    let ids = app.upload(library, &names).await;

    for (name, id) in names.iter().zip(&ids) {
        let original = sample_image(name);
        let response = app
            .get(&format!("/api/libraries/{library}/images/{id}/thumbnail"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(
            response.headers()["cache-control"],
            "private, max-age=86400"
        );
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        let bytes = response.bytes().await.unwrap();
        assert!(
            bytes.len() < original.len(),
            "{name}: smaller than the original"
        );
        let thumb = decode(&bytes);
        assert_eq!(thumb.width().max(thumb.height()), 256, "{name}");

        // Asked again with its ETag: not modified.
        let again = app
            .get(&format!("/api/libraries/{library}/images/{id}/thumbnail"))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    }

    // Other sizes; the wide photo keeps its aspect ratio.
    let coffee = ids[1];
    for size in [128u32, 512] {
        let bytes = app
            .get(&format!(
                "/api/libraries/{library}/images/{coffee}/thumbnail?size={size}"
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let thumb = decode(&bytes);
        assert_eq!(thumb.width(), size);
        assert!(
            thumb.height().abs_diff(size * 2 / 3) <= 1,
            "{}",
            thumb.height()
        );
    }

    // Stored next to the image, served from there, and removed with it.
    let stored = app.resources.storage_dir.join(
        std::fs::read_dir(&app.resources.storage_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name(),
    );
    let thumbnails = stored
        .join(library.to_string())
        .join("thumbnails")
        .join(coffee.to_string());
    let files: Vec<_> = std::fs::read_dir(&thumbnails).unwrap().collect();
    assert_eq!(files.len(), 3, "one per size asked");
    let response = app
        .delete(&format!("/api/libraries/{library}/images/{coffee}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let left = std::fs::read_dir(&thumbnails).map_or(0, |dir| dir.count());
    assert_eq!(left, 0, "the thumbnails went with the image");
}

#[tokio::test]
async fn url_images_bad_sizes_and_other_tenants_get_clear_errors() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let ids = app.upload(library, &["chelsea.png"]).await;
    let url_image: Image = app
        .post_as(
            &format!("/api/libraries/{library}/image-urls"),
            &json!({ "url": "https://images.example.org/cat.jpg" }),
            StatusCode::CREATED,
        )
        .await;
    let url_id = url_image.id;

    let response = app
        .get(&format!(
            "/api/libraries/{library}/images/{url_id}/thumbnail"
        ))
        .send()
        .await
        .unwrap();
    let unavailable = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(unavailable.code, "thumbnail_unavailable");

    for size in ["100", "1024", "big"] {
        let response = app
            .get(&format!(
                "/api/libraries/{library}/images/{}/thumbnail?size={size}",
                ids[0]
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{size}");
    }

    let other = app.other_tenant_key("tenant-b").await;
    let response = app
        .request_with_key(
            &other,
            Method::GET,
            &format!("/api/libraries/{library}/images/{}/thumbnail", ids[0]),
        )
        .send()
        .await
        .unwrap();
    let not_found = problem(response, StatusCode::NOT_FOUND).await;
    assert_eq!(not_found.code, "not_found");
}
