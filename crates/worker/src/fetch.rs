//! Getting an image's bytes: from the object store for uploads, or from its https URL with a
//! size limit, a timeout and no requests to private or loopback addresses (unless allowed for
//! development).

use std::{net::IpAddr, time::Duration};

use bytes::{Bytes, BytesMut};
use domain::media::{self, MediaType};
use futures::StreamExt;
use store::{objects::Objects, work::ImageSource};

/// Why an image could not be had, split by whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The image is gone, too large, not an image, or not allowed: retrying cannot help.
    #[error("{0}")]
    Permanent(String),
    /// The store or the remote host did not answer properly; retrying later may work.
    #[error("{0}")]
    Transient(String),
}

pub struct Fetcher {
    objects: Objects,
    http: reqwest::Client,
    max_bytes: usize,
    allow_private: bool,
}

impl Fetcher {
    pub fn new(
        objects: Objects,
        timeout: Duration,
        max_bytes: usize,
        allow_private: bool,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect could lead to a private address after the check; follow none.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            objects,
            http,
            max_bytes,
            allow_private,
        })
    }

    /// The image's bytes and their media type (checked by magic bytes).
    pub async fn fetch(&self, image: &ImageSource) -> Result<(MediaType, Bytes), FetchError> {
        let bytes = match (&image.object_key, &image.url) {
            (Some(key), _) => self.objects.get(key).await.map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    FetchError::Permanent("the image's bytes are missing from storage".into())
                }
                other => FetchError::Transient(format!("image storage: {other}")),
            })?,
            (None, Some(url)) => self.download(url).await?,
            (None, None) => {
                return Err(FetchError::Permanent(
                    "the image has neither bytes nor a URL".into(),
                ));
            }
        };
        let media_type = media::sniff(&bytes).map_err(|e| FetchError::Permanent(e.to_string()))?;
        Ok((media_type, bytes))
    }

    async fn download(&self, url: &str) -> Result<Bytes, FetchError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| FetchError::Permanent(format!("invalid image URL: {e}")))?;
        let allowed_scheme =
            parsed.scheme() == "https" || (self.allow_private && parsed.scheme() == "http");
        if !allowed_scheme {
            return Err(FetchError::Permanent("image URLs must be https".into()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| FetchError::Permanent("the image URL has no host".into()))?;
        if !self.allow_private {
            let port = parsed.port_or_known_default().unwrap_or(443);
            let addresses = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| FetchError::Transient(format!("cannot resolve {host}: {e}")))?;
            for address in addresses {
                if !is_public(address.ip()) {
                    return Err(FetchError::Permanent(format!(
                        "{host} resolves to a private or loopback address"
                    )));
                }
            }
        }
        let response = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| FetchError::Transient(format!("fetching the image: {e}")))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(FetchError::Transient(format!(
                "the image host answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(FetchError::Permanent(format!(
                "the image host answered {status}"
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > self.max_bytes)
        {
            return Err(self.too_large());
        }
        let mut body = BytesMut::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| FetchError::Transient(format!("reading the image: {e}")))?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn too_large(&self) -> FetchError {
        FetchError::Permanent(format!("the image is larger than {} bytes", self.max_bytes))
    }
}

/// False for loopback, private, link-local, unspecified and other non-global addresses.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| !is_public(IpAddr::V4(v4))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_private_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
