//! Where a request came from: over https or not, and whether the browser says it was sent by
//! this site's own pages (the CSRF defence of cookie-authenticated requests).
//!
//! `X-Forwarded-Proto` and `X-Forwarded-Host` are believed only from the configured trusted
//! proxies; anyone else could send them.

use actix_web::{HttpRequest, http::header};
use ipnet::IpNet;
use settings::{HttpSettings, SecureCookies};

/// How the api judges requests' origins, registered as app data.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    pub secure_cookies: SecureCookies,
    pub trusted_proxies: Vec<IpNet>,
}

impl OriginPolicy {
    pub fn from_settings(http: &HttpSettings) -> Self {
        Self {
            secure_cookies: http.secure_cookies,
            trusted_proxies: http.trusted_proxies.clone(),
        }
    }

    fn sent_by_trusted_proxy(&self, req: &HttpRequest) -> bool {
        req.peer_addr()
            .is_some_and(|peer| self.trusted_proxies.iter().any(|n| n.contains(&peer.ip())))
    }

    fn forwarded<'r>(&self, req: &'r HttpRequest, name: &str) -> Option<&'r str> {
        if !self.sent_by_trusted_proxy(req) {
            return None;
        }
        let value = req.headers().get(name)?.to_str().ok()?;
        // The first value is the one the client-facing proxy set.
        let first = value.split(',').next()?.trim();
        (!first.is_empty()).then_some(first)
    }

    /// `https` or `http`: the trusted proxy's word, else the connection's.
    pub fn scheme(&self, req: &HttpRequest) -> String {
        match self.forwarded(req, "x-forwarded-proto") {
            Some(proto) => proto.to_ascii_lowercase(),
            // Not `connection_info()`, which believes forwarding headers from anyone.
            None if req.app_config().secure() => "https".to_string(),
            None => "http".to_string(),
        }
    }

    /// The host (and port) the client addressed.
    fn host<'r>(&self, req: &'r HttpRequest) -> Option<&'r str> {
        self.forwarded(req, "x-forwarded-host").or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
        })
    }

    /// Whether the session cookie set in answer to `req` is marked `Secure`.
    pub fn secure_cookie(&self, req: &HttpRequest) -> bool {
        match self.secure_cookies {
            SecureCookies::Always => true,
            SecureCookies::Auto => self.scheme(req) == "https",
        }
    }

    /// What the browser says about who sent `req`: `Sec-Fetch-Site`, or when a browser sends
    /// no such header, `Origin` compared with this request's own origin (scheme and host).
    pub fn sender(&self, req: &HttpRequest) -> Sender {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(site) = header("sec-fetch-site") {
            return match site.trim() {
                // `none`: the user typed the address or used a bookmark.
                "same-origin" | "none" => Sender::SameOrigin,
                _ => Sender::OtherSite,
            };
        }
        let Some(origin) = header(header::ORIGIN.as_str()) else {
            return Sender::Unknown;
        };
        let own = self
            .host(req)
            .map(|host| format!("{}://{}", self.scheme(req), host));
        if own.is_some_and(|own| origin.trim().eq_ignore_ascii_case(&own)) {
            Sender::SameOrigin
        } else {
            Sender::OtherSite
        }
    }
}

/// Who sent a request, as far as the browser says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    SameOrigin,
    /// Another site (or a sibling subdomain, or an opaque `null` origin).
    OtherSite,
    /// Neither `Sec-Fetch-Site` nor `Origin`: not a browser's cross-site request, but not
    /// provably same-origin either.
    Unknown,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use actix_web::test::TestRequest;

    use super::*;

    fn policy() -> OriginPolicy {
        OriginPolicy::from_settings(&HttpSettings::default())
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::default()
            .peer_addr(peer.parse().unwrap())
            .insert_header((header::HOST, "dash.example:8080"));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        req.to_http_request()
    }

    #[test]
    fn sec_fetch_site_decides_when_present() {
        let p = policy();
        let sender = |site| p.sender(&request("127.0.0.1:1", &[("sec-fetch-site", site)]));
        assert_eq!(sender("same-origin"), Sender::SameOrigin);
        assert_eq!(sender("none"), Sender::SameOrigin);
        assert_eq!(sender("same-site"), Sender::OtherSite);
        assert_eq!(sender("cross-site"), Sender::OtherSite);
        let both = request(
            "127.0.0.1:1",
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://dash.example:8080"),
            ],
        );
        assert_eq!(p.sender(&both), Sender::OtherSite);
    }

    #[test]
    fn without_sec_fetch_site_the_origin_must_be_this_one() {
        let p = policy();
        let sender = |origin| p.sender(&request("10.1.1.1:1", &[("origin", origin)]));
        assert_eq!(sender("http://dash.example:8080"), Sender::SameOrigin);
        assert_eq!(sender("https://dash.example:8080"), Sender::OtherSite);
        assert_eq!(sender("http://evil.example"), Sender::OtherSite);
        assert_eq!(sender("null"), Sender::OtherSite);
        assert_eq!(p.sender(&request("10.1.1.1:1", &[])), Sender::Unknown);
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let p = policy();
        let forwarded = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "dash.example"),
            ("origin", "https://dash.example"),
        ];
        let via_proxy = request("127.0.0.1:1", &forwarded);
        assert_eq!(p.scheme(&via_proxy), "https");
        assert!(p.secure_cookie(&via_proxy));
        assert_eq!(p.sender(&via_proxy), Sender::SameOrigin);

        let direct = request("203.0.113.9:1", &forwarded);
        assert_eq!(p.scheme(&direct), "http");
        assert!(!p.secure_cookie(&direct));
        assert_eq!(p.sender(&direct), Sender::OtherSite);

        let always = OriginPolicy {
            secure_cookies: SecureCookies::Always,
            ..policy()
        };
        assert!(always.secure_cookie(&direct));
    }
}
