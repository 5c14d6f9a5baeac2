use reqwest::Method;
use system_tests::TestApp;

const COMMITTED: &str = include_str!("../../../openapi/openapi.json");

#[test]
fn the_committed_openapi_document_is_what_the_code_generates() {
    let generated = api::openapi::spec_json();
    assert!(
        generated == COMMITTED,
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    );
}

#[test]
fn every_operation_documents_its_error_responses() {
    let spec: serde_json::Value = serde_json::from_str(&api::openapi::spec_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "401", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("422"), "{method} {path} lacks 422");
            }
        }
    }
}

#[tokio::test]
async fn the_api_serves_its_document_and_browsable_docs_without_a_cdn() {
    let app = TestApp::spawn().await;
    let served: serde_json::Value = app
        .anonymous(Method::GET, "/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated: serde_json::Value = serde_json::from_str(&api::openapi::spec_json()).unwrap();
    assert_eq!(served, generated);
    let docs = app.anonymous(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "docs page");
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn."),
        "assets come from the api itself"
    );
}

/// What client generators name and group operations by, in both documents.
#[test]
fn every_operation_has_a_unique_id_tags_and_a_summary() {
    for (document, json) in [
        ("openapi.json", api::openapi::spec_json()),
        ("redriver.json", redriver::openapi::spec_json()),
    ] {
        let spec: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap_or_default();
                assert!(
                    !id.is_empty(),
                    "{document}: {method} {path} has no operationId"
                );
                assert!(ids.insert(id.to_string()), "{document}: {id} twice");
                assert!(
                    operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{document}: {method} {path} has no tag"
                );
                assert!(
                    operation["summary"]
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty()),
                    "{document}: {method} {path} has no summary"
                );
            }
        }
        assert!(ids.len() > 3, "{document}: operations found");
    }
}

/// The shape generators need: tagged unions as `oneOf` of named variants with a discriminator.
#[test]
fn unions_are_named_variants_with_a_discriminator() {
    let spec: serde_json::Value = serde_json::from_str(&api::openapi::spec_json()).unwrap();
    let schemas = &spec["components"]["schemas"];
    for (union, tags) in [
        ("Filter", &["all", "any", "field", "not", "regex"][..]),
        ("JobEvent", &["cancel_requested", "created", "progress"][..]),
    ] {
        let schema = &schemas[union];
        assert_eq!(schema["discriminator"]["propertyName"], "type", "{union}");
        let mapping = schema["discriminator"]["mapping"].as_object().unwrap();
        assert_eq!(
            mapping.keys().collect::<Vec<_>>(),
            tags.iter().collect::<Vec<_>>(),
            "{union}"
        );
        for (tag, target) in mapping {
            let name = target.as_str().unwrap().rsplit('/').next().unwrap();
            assert_eq!(
                schemas[name]["properties"]["type"]["enum"],
                serde_json::json!([tag]),
                "{union}: {tag} → {name}"
            );
            assert!(
                schema["oneOf"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!({"$ref": target})),
                "{union}: {name} is an alternative"
            );
        }
    }
    assert_eq!(
        schemas["FilterNot"]["properties"]["filter"],
        serde_json::json!({"$ref": "#/components/schemas/Filter", "description": "The filter to invert."}),
        "recursion goes through the named union"
    );
}
