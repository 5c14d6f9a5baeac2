//! Reading Prometheus text, as the dashboards and alert rules do.

/// The value of one series (`name{labels}` exactly as exposed) in Prometheus text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

/// Asserts that `series` has `value` in `text` (the whole text is shown when not).
pub fn assert_sample(text: &str, series: &str, value: f64) {
    assert_eq!(sample(text, series), Some(value), "{series} in {text}");
}

/// GETs a `/metrics` endpoint, asserting that it answers Prometheus text.
pub async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("a content type")
            .starts_with("text/plain"),
        "Prometheus text format"
    );
    response.text().await.expect("metrics text")
}
