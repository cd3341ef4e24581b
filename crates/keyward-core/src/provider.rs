//! Provider ids from SPEC's provider table, and what each one needs from a credential.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderId {
    OpenAi,
    AzureOpenAi,
    Anthropic,
    Bedrock,
    Mistral,
    Groq,
    OpenAiCompatible,
}

/// The text names no provider Keyward supports.
#[derive(Debug, thiserror::Error)]
#[error("unknown provider; use one of: openai, azure-openai, anthropic, bedrock, mistral, groq, openai-compatible")]
pub struct UnknownProvider;

impl ProviderId {
    pub const ALL: [ProviderId; 7] = [
        Self::OpenAi,
        Self::AzureOpenAi,
        Self::Anthropic,
        Self::Bedrock,
        Self::Mistral,
        Self::Groq,
        Self::OpenAiCompatible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure-openai",
            Self::Anthropic => "anthropic",
            Self::Bedrock => "bedrock",
            Self::Mistral => "mistral",
            Self::Groq => "groq",
            Self::OpenAiCompatible => "openai-compatible",
        }
    }

    /// Credential options this provider understands; any other option is refused.
    pub fn allowed_options(self) -> &'static [&'static str] {
        match self {
            Self::OpenAi => &["base_url", "organization", "project"],
            Self::AzureOpenAi => &["base_url", "resource", "deployments", "api_version"],
            Self::Anthropic => &["base_url", "anthropic_version"],
            Self::Bedrock => &["base_url", "region"],
            Self::Mistral | Self::Groq => &["base_url"],
            Self::OpenAiCompatible => &["base_url"],
        }
    }

    /// Options without which a call cannot be built.
    pub fn required_options(self) -> &'static [&'static str] {
        match self {
            Self::AzureOpenAi => &["api_version"],
            Self::Bedrock => &["region"],
            Self::OpenAiCompatible => &["base_url"],
            _ => &[],
        }
    }

    /// Whether a credential may omit its secret (self-hosted servers without auth).
    pub fn secret_optional(self) -> bool {
        matches!(self, Self::OpenAiCompatible)
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderId {
    type Err = UnknownProvider;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.as_str() == text)
            .ok_or(UnknownProvider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_round_trip() {
        for provider in ProviderId::ALL {
            assert_eq!(provider.as_str().parse::<ProviderId>().unwrap(), provider);
        }
        assert!("OpenAI".parse::<ProviderId>().is_err());
    }
}
