//! The re-driver (drainer + admin API) started in this process for one test, and a client of
//! its admin API.

use redriver::RunningRedriver;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::{Serialize, de::DeserializeOwned};
use settings::Settings;

use crate::body_as;

/// The admin token of a [`RedriverAdmin`]; every request of its client carries it.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running re-driver on a free port and a client of its admin API. Its policy timer is off:
/// tests run the policy's pass themselves.
pub struct RedriverAdmin {
    pub address: String,
    pub client: reqwest::Client,
    pub running: RunningRedriver,
}

impl RedriverAdmin {
    /// Starts a re-driver with `settings` (the test's database and broker prefix) whose admin
    /// API takes [`ADMIN_TOKEN`].
    pub async fn start(settings: &Settings) -> Self {
        Self::start_with_token(settings, Some(ADMIN_TOKEN)).await
    }

    /// Starts a re-driver whose admin API takes `token` (none: the admin API is closed).
    pub async fn start_with_token(settings: &Settings, token: Option<&str>) -> Self {
        let mut settings = settings.clone();
        settings.redriver.host = "127.0.0.1".into();
        settings.redriver.port = 0;
        settings.redriver.admin_token = token.map(SecretString::from);
        settings.redriver.auto_redrive = false;
        let running = redriver::Application::build(&settings)
            .await
            .expect("build the redriver")
            .start();
        RedriverAdmin {
            address: format!("http://127.0.0.1:{}", running.port()),
            client: reqwest::Client::new(),
            running,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    pub fn post(&self, path: &str, body: &impl Serialize) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
    }

    /// GETs `path` and reads the body as `T` (asserting 200).
    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> T {
        body_as(self.get(path).send().await.expect("GET"), StatusCode::OK).await
    }

    /// POSTs `body` to `path` on behalf of `requested_by` (the `X-Requested-By` header, when
    /// given) and reads the answer as `T` (asserting 200).
    pub async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        requested_by: Option<&str>,
    ) -> T {
        let mut request = self.post(path, body);
        if let Some(who) = requested_by {
            request = request.header("X-Requested-By", who);
        }
        body_as(request.send().await.expect("POST"), StatusCode::OK).await
    }

    /// The re-driver's `/metrics` text.
    pub async fn metrics(&self) -> String {
        crate::metrics::scrape(&self.url("/metrics")).await
    }

    /// Stops the re-driver (it hands back what it had not acknowledged).
    pub async fn stop(self) {
        self.running.stop().await;
    }
}
