//! Checks of client-supplied names, lists and URLs. Messages name the field and the rule; they
//! quote a value only where it is a name the client chose (never a secret).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use keyward_core::egress_policy::EgressPolicy;
use url::{Host, Url};

use crate::DomainError;

/// Labels and names: they appear in model addresses (`label/model`) and URLs.
pub(crate) fn name(field: &str, value: &str) -> Result<(), DomainError> {
    let valid_start = value
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric());
    let valid_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if value.is_empty() || value.len() > 64 || !valid_start || !valid_chars {
        return Err(DomainError::invalid(
            field,
            "use 1 to 64 characters: letters, digits, '-', '_' or '.', starting with a letter or digit",
        ));
    }
    if let Some(prefix) = secret_prefix(value) {
        return Err(DomainError::invalid(
            field,
            format!("this looks like a secret key (it starts with `{prefix}`), not a name: paste secrets only into the secret field; nothing was saved"),
        ));
    }
    Ok(())
}

/// The prefix of a provider or Keyward key a name starts with, if any: a secret pasted into
/// the wrong field must not become a label that every listing shows.
fn secret_prefix(value: &str) -> Option<&'static str> {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "kw_",
        "AKIA",
        "ASIA",
        "gsk_",
        "xai-",
        "AIza",
        "ghp_",
        "github_pat_",
    ];
    PREFIXES
        .iter()
        .find(|prefix| value.starts_with(*prefix) && value.len() >= 20)
        .copied()
}

/// A model allow-list: `None` allows every model; an empty list is refused as a likely mistake.
pub(crate) fn models(
    field: &str,
    models: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, DomainError> {
    let Some(models) = models else {
        return Ok(None);
    };
    if models.is_empty() {
        return Err(DomainError::invalid(
            field,
            "an empty list would allow no model; omit the field to allow every model",
        ));
    }
    if models.len() > 1000 {
        return Err(DomainError::invalid(field, "at most 1000 models"));
    }
    let mut cleaned = Vec::with_capacity(models.len());
    for model in models {
        let model = model.trim().to_owned();
        if model.is_empty() || model.len() > 200 || model.chars().any(char::is_whitespace) {
            return Err(DomainError::invalid(
                field,
                "each model is 1 to 200 characters without spaces, e.g. gpt-4o-mini or team-openai/gpt-4o",
            ));
        }
        if !cleaned.contains(&model) {
            cleaned.push(model);
        }
    }
    Ok(Some(cleaned))
}

/// A provider `base_url`: http(s), a host, no user info (it would be stored in clear), no query
/// or fragment, and — when the host is an address literal — an address the egress policy
/// permits. Hostnames are checked again at connect time against the address actually dialled.
pub(crate) fn base_url(value: &str, egress: &EgressPolicy) -> Result<String, DomainError> {
    let field = "base_url";
    if value.len() > 2048 {
        return Err(DomainError::invalid(field, "at most 2048 characters"));
    }
    let url = Url::parse(value).map_err(|_| {
        DomainError::invalid(
            field,
            "not an absolute URL such as https://api.openai.com/v1",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DomainError::invalid(
            field,
            "the scheme must be https or http",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(
            field,
            "user info in the URL would be stored unencrypted; put the key in `secret` instead",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(DomainError::invalid(
            field,
            "no query string or fragment; Keyward adds the provider's paths and parameters",
        ));
    }
    let literal = match url.host() {
        None => return Err(DomainError::invalid(field, "the URL has no host")),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            (domain == "localhost" || domain.ends_with(".localhost"))
                .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
    };
    if let Some(address) = literal {
        let loopback_v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let refused = !egress.permits(address)
            && (address != IpAddr::V4(Ipv4Addr::LOCALHOST) || !egress.permits(loopback_v6));
        if refused {
            return Err(DomainError::invalid(
                field,
                format!(
                    "{address} is a private, loopback, link-local or reserved address; the operator can allow it with egress.allow_private"
                ),
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_pasted_as_a_name_is_refused_without_echoing_it() {
        for secret in [
            "sk-proj-0123456789abcdefghij",
            "kw_abcdefghijkl0123456789",
            "AKIAIOSFODNN7EXAMPLE",
        ] {
            let refused = name("label", secret)
                .err()
                .unwrap_or_else(|| unreachable!("{secret} accepted"));
            assert!(!refused.to_string().contains(&secret[4..]), "{refused}");
            assert!(refused.to_string().contains("secret"));
        }
        for fine in ["sk-team", "kw_prod", "skunkworks-openai"] {
            assert!(name("label", fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn names_allow_safe_characters_only() {
        for good in ["team-openai", "local_ollama", "a", "Prod.Anthropic2"] {
            assert!(name("label", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-lead",
            "has/slash",
            "has space",
            "ünï",
            &"x".repeat(65),
        ] {
            assert!(name("label", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_urls_refuse_internal_targets_in_every_spelling() {
        let policy = EgressPolicy::default();
        for refused in [
            "http://127.0.0.1:11434/v1",
            "http://2130706433/v1",
            "http://0x7f.0.0.1/v1",
            "http://0177.0.0.1/v1",
            "http://[::1]:8000/v1",
            "http://[::ffff:169.254.169.254]/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/v1",
            "http://api.localhost./v1",
            "http://10.0.0.5/v1",
        ] {
            assert!(base_url(refused, &policy).is_err(), "{refused}");
        }
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com/v1",
            "https://example.com/v1?key=abc",
            "not a url",
        ] {
            assert!(base_url(bad, &policy).is_err(), "{bad}");
        }
        assert_eq!(
            base_url("https://api.openai.com/v1/", &policy).unwrap(),
            "https://api.openai.com/v1"
        );
    }

    #[test]
    fn allow_listed_private_targets_pass() {
        let policy = EgressPolicy::parse_list("127.0.0.1,10.0.0.0/8").unwrap();
        assert!(base_url("http://127.0.0.1:11434/v1", &policy).is_ok());
        assert!(base_url("http://localhost:11434/v1", &policy).is_ok());
        assert!(base_url("http://10.1.2.3/v1", &policy).is_ok());
        assert!(base_url("http://192.168.0.1/v1", &policy).is_err());
    }

    #[test]
    fn empty_model_lists_are_refused_and_duplicates_dropped() {
        assert!(models("models", Some(vec![])).is_err());
        assert_eq!(
            models("models", Some(vec!["a".into(), " a ".into(), "b".into()])).unwrap(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert!(models("models", Some(vec!["has space".into()])).is_err());
    }
}
