//! The one outbound HTTP client: rustls, HTTP/1.1 and HTTP/2, pooled; no redirects followed; no
//! proxy taken from the environment; connect, first-byte and idle timeouts. The SSRF guard
//! checks the address actually dialled: hostnames through a resolver that drops refused
//! addresses, address literals before the request is sent.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use keyward_core::egress_policy::EgressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::RouterError;

#[derive(Clone, Debug)]
pub struct EgressConfig {
    pub policy: EgressPolicy,
    /// TCP + TLS connect.
    pub connect_timeout: Duration,
    /// From sending the request to the response headers.
    pub first_byte_timeout: Duration,
    /// Longest silence between two reads of a response body.
    pub idle_timeout: Duration,
    /// The most one stream may take from a provider.
    pub stream_budget: crate::stream::StreamBudget,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            policy: EgressPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(120),
            stream_budget: crate::stream::StreamBudget {
                bytes: 64 << 20,
                duration: Duration::from_secs(1_800),
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct EgressClient {
    pub(crate) client: reqwest::Client,
    policy: Arc<EgressPolicy>,
    pub(crate) first_byte_timeout: Duration,
    pub(crate) stream_budget: crate::stream::StreamBudget,
}

/// Every address a hostname resolved to was refused by the egress policy.
#[derive(Debug, thiserror::Error)]
#[error("{address} is refused by the egress policy")]
struct Refused {
    address: IpAddr,
}

struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|address| policy.permits(address.ip()))
                .collect();
            match (permitted.is_empty(), resolved.first()) {
                (true, Some(address)) => Err(Box::new(Refused {
                    address: address.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(permitted.into_iter()) as Addrs),
            }
        })
    }
}

impl EgressClient {
    pub fn new(config: &EgressConfig) -> Result<Self, RouterError> {
        let policy = Arc::new(config.policy.clone());
        #[expect(
            clippy::disallowed_methods,
            reason = "this is the egress client every outbound call must use"
        )]
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.idle_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .build()
            .map_err(|err| RouterError::Connect {
                reason: format!("cannot build the HTTP client: {err}"),
            })?;
        Ok(Self {
            client,
            policy,
            first_byte_timeout: config.first_byte_timeout,
            stream_budget: config.stream_budget,
        })
    }

    /// Refuses an address-literal host the policy does not permit (literals skip DNS).
    pub(crate) fn check_literal(&self, url: &Url) -> Result<(), RouterError> {
        let literal = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => {
                return Err(RouterError::BadBaseUrl {
                    reason: "the URL has no host",
                })
            }
        };
        if self.policy.permits(literal) {
            Ok(())
        } else {
            Err(RouterError::EgressBlocked {
                address: literal.to_string(),
            })
        }
    }

    /// Maps a send failure, recognising a refusal by the guarded resolver.
    pub(crate) fn classify(&self, err: &reqwest::Error) -> RouterError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = source {
            if let Some(refused) = current.downcast_ref::<Refused>() {
                return RouterError::EgressBlocked {
                    address: refused.address.to_string(),
                };
            }
            source = current.source();
        }
        if err.is_timeout() {
            return RouterError::Timeout {
                seconds: self.first_byte_timeout.as_secs(),
            };
        }
        RouterError::Connect {
            reason: if err.is_connect() {
                "connection failed".to_owned()
            } else {
                "the request failed".to_owned()
            },
        }
    }
}
