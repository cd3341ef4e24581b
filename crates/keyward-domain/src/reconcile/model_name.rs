//! One name per model on both sides of a reconciliation. Providers bill dated snapshots
//! (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-5-20250929`) while clients may call the alias;
//! Bedrock adds geographic inference-profile prefixes (`us.`, `global.`) and version suffixes
//! (`-v1:0`). Both sides are reduced to the same canonical name, so a snapshot and its alias
//! meet on one line; no fuzzy matching beyond these three rules.

/// Bedrock cross-region inference-profile prefixes.
const GEO_PREFIXES: [&str; 8] = [
    "us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.",
];

/// The canonical name: without a geo prefix, a Bedrock version suffix and a date suffix.
pub(crate) fn canonical(model: &str) -> String {
    let mut name = model.trim();
    for prefix in GEO_PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix) {
            // `us.anthropic.claude-…`: a provider segment must follow the geo prefix.
            if rest.contains('.') {
                name = rest;
            }
            break;
        }
    }
    name = strip_version(name);
    name = strip_date(name);
    name.to_owned()
}

/// `-v1:0`, `-v2`.
fn strip_version(name: &str) -> &str {
    let Some(at) = name.rfind("-v") else {
        return name;
    };
    let suffix = &name[at + 2..];
    let (major, minor) = suffix.split_once(':').unwrap_or((suffix, "0"));
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if numeric(major) && numeric(minor) {
        &name[..at]
    } else {
        name
    }
}

/// `-2024-07-18` or `-20250929`.
fn strip_date(name: &str) -> &str {
    let bytes = name.as_bytes();
    let is_digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let len = bytes.len();
    if len > 11
        && bytes[len - 11] == b'-'
        && bytes[len - 6] == b'-'
        && bytes[len - 3] == b'-'
        && is_digits(len - 10..len - 6)
        && is_digits(len - 5..len - 3)
        && is_digits(len - 2..len)
    {
        return &name[..len - 11];
    }
    if len > 9 && bytes[len - 9] == b'-' && is_digits(len - 8..len) {
        return &name[..len - 9];
    }
    name
}

/// Whether `name` has the shape of a Bedrock model id: `provider.model…`, lowercase provider.
pub(crate) fn looks_like_model_id(name: &str) -> bool {
    let stem = canonical(name);
    match stem.split_once('.') {
        Some((provider, rest)) => {
            !provider.is_empty()
                && !rest.is_empty()
                && !stem.contains(' ')
                && provider
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
        None => false,
    }
}

/// A console display name (`Claude Sonnet 4.5`, `Claude 3.5 Haiku`) as an API id stem
/// (`claude-sonnet-4-5`, `claude-3-5-haiku`).
pub(crate) fn from_display_name(name: &str) -> String {
    name.trim()
        .to_ascii_lowercase()
        .split([' ', '.'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_profiles_and_versions_meet_their_alias() {
        for (model, expected) in [
            ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
            ("gpt-4o-mini", "gpt-4o-mini"),
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            (
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                "anthropic.claude-sonnet-4-5",
            ),
            (
                "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "anthropic.claude-sonnet-4-5",
            ),
            (
                "global.anthropic.claude-sonnet-4-6",
                "anthropic.claude-sonnet-4-6",
            ),
            ("amazon.nova-pro-v1:0", "amazon.nova-pro"),
            ("text-embedding-3-small", "text-embedding-3-small"),
            ("o3-mini", "o3-mini"),
            // Not a geo prefix followed by a provider segment.
            ("us.model", "us.model"),
            ("llama3.1:8b", "llama3.1:8b"),
        ] {
            assert_eq!(canonical(model), expected, "{model}");
        }
    }

    #[test]
    fn display_names_become_id_stems() {
        assert_eq!(from_display_name("Claude Sonnet 4.5"), "claude-sonnet-4-5");
        assert_eq!(from_display_name("Claude 3.5 Haiku"), "claude-3-5-haiku");
        assert_eq!(from_display_name(" Claude  Opus 4.1 "), "claude-opus-4-1");
    }
}
