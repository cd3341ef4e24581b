//! The HTTP client for key managers: operator-configured endpoints (not tenant `base_url`s,
//! so not the router's egress client), no redirects, no proxy, bounded answers.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::CustodyError;

/// Largest answer read from a key manager; real answers are a few KiB.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct ManagerHttp {
    client: reqwest::Client,
}

/// A manager's answer: status and (bounded) body.
pub(crate) struct Answer {
    pub status: u16,
    /// Zeroized on drop: answers carry data keys, secrets and tokens.
    pub body: Zeroizing<Vec<u8>>,
}

impl ManagerHttp {
    pub fn new() -> Result<Self, CustodyError> {
        #[expect(
            clippy::disallowed_methods,
            reason = "key managers are the operator's own endpoints, not tenant base URLs: no SSRF guard applies; redirects and proxies are still off"
        )]
        let builder = reqwest::Client::builder();
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|err| CustodyError::NotConfigured {
                manager: "HTTP client",
                hint: format!("cannot initialise TLS ({err})"),
            })?;
        Ok(Self { client })
    }

    pub(crate) fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends and reads the answer up to [`MAX_ANSWER_BYTES`].
    pub(crate) async fn send(
        &self,
        manager: &'static str,
        endpoint: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, CustodyError> {
        let unreachable = |err: reqwest::Error| CustodyError::Unreachable {
            manager,
            endpoint: endpoint.to_owned(),
            reason: if err.is_timeout() {
                "timed out".to_owned()
            } else if err.is_connect() {
                "connection failed".to_owned()
            } else {
                "request failed".to_owned()
            },
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(CustodyError::Malformed {
                    manager,
                    action: "its answer".to_owned(),
                    reason: format!("longer than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body })
    }
}
