//! A provider's own account of a tenant's usage, read from its exports and reduced to one line
//! per (UTC day, model), plus the costs no model can be named for.
//!
//! Invariants:
//! - Token counts have the ledger's meaning: `input` is all input (cache reads and cache
//!   writes included), `cached_input` the cache reads, `cache_write` the cache writes.
//! - Costs are integer micro-dollars, read from the export's decimal text, never via floats.
//! - A JSON result seen twice (overlapping pages given twice) is counted once.
//! - Errors name the export and a position (line, JSON path, column), never a value.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use keyward_core::ProviderId;
use serde_json::Value;

use super::model_name::canonical;

/// Distinct warnings kept; more are counted, not stored.
const MAX_WARNINGS: usize = 50;

/// Why an export could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{export}: {location}{reason}")]
pub struct ExportError {
    export: String,
    /// `line 12: `, `data[0].results[3]: ` or empty.
    location: String,
    reason: String,
}

impl ExportError {
    pub(crate) fn new(
        export: &str,
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let location = location.into();
        Self {
            export: export.to_owned(),
            location: if location.is_empty() {
                location
            } else {
                format!("{location}: ")
            },
            reason: reason.into(),
        }
    }
}

/// Tokens in the ledger's meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// All input: uncached, cache reads and cache writes.
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
}

impl TokenCounts {
    pub(crate) fn add(&mut self, other: Self) {
        self.input = self.input.saturating_add(other.input);
        self.cached_input = self.cached_input.saturating_add(other.cached_input);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.output = self.output.saturating_add(other.output);
    }
}

/// What the provider reports for one (day, model).
#[derive(Clone, Debug, Default)]
pub struct ProviderLine {
    /// The model names as the provider billed them.
    pub models: BTreeSet<String>,
    pub requests: Option<u64>,
    pub tokens: Option<TokenCounts>,
    /// Some of this line's token lines were in a unit Keyward cannot convert: its tokens are
    /// not compared.
    pub tokens_incomplete: bool,
    pub cost_micro_usd: Option<i64>,
}

/// The provider's side of a reconciliation.
#[derive(Debug)]
pub struct ProviderStatement {
    provider: ProviderId,
    model_map: BTreeMap<String, String>,
    pub(crate) lines: BTreeMap<(String, String), ProviderLine>,
    /// (day, description) → cost the export does not attribute to a model.
    pub(crate) unattributed: BTreeMap<(String, String), i64>,
    /// Every UTC day the exports cover, with or without usage.
    pub(crate) days: BTreeSet<String>,
    pub(crate) warnings: BTreeSet<String>,
    pub(crate) warnings_dropped: u64,
    /// The UTC days on which the exports carry each kind of figure: a ledger line with no
    /// provider line is compared only on what the provider reported for that day.
    pub(crate) requests_days: BTreeSet<String>,
    pub(crate) tokens_days: BTreeSet<String>,
    pub(crate) cost_days: BTreeSet<String>,
    seen: HashSet<String>,
}

impl ProviderStatement {
    /// An empty statement for `provider`; `model_map` maps names the provider bills under
    /// (e.g. a Bedrock usage-type segment `Claude4.6Sonnet`) to the model ids Keyward calls.
    pub fn new(
        provider: ProviderId,
        model_map: BTreeMap<String, String>,
    ) -> Result<Self, ExportError> {
        if !matches!(
            provider,
            ProviderId::OpenAi | ProviderId::Anthropic | ProviderId::Bedrock
        ) {
            return Err(ExportError::new(
                "provider",
                "",
                format!(
                    "no usage export format is known for `{}`: reconciliation reads OpenAI, Anthropic and AWS (Bedrock) exports",
                    provider.as_str()
                ),
            ));
        }
        Ok(Self {
            provider,
            model_map,
            lines: BTreeMap::new(),
            unattributed: BTreeMap::new(),
            days: BTreeSet::new(),
            warnings: BTreeSet::new(),
            warnings_dropped: 0,
            requests_days: BTreeSet::new(),
            tokens_days: BTreeSet::new(),
            cost_days: BTreeSet::new(),
            seen: HashSet::new(),
        })
    }

    pub fn provider(&self) -> ProviderId {
        self.provider
    }

    /// The line of `day` for the model billed as `billed`, after the model map.
    fn line(&mut self, day: &str, billed: &str) -> &mut ProviderLine {
        let model = canonical(self.model_map.get(billed).map_or(billed, String::as_str));
        self.days.insert(day.to_owned());
        let line = self.lines.entry((day.to_owned(), model)).or_default();
        line.models.insert(billed.to_owned());
        line
    }

    pub(crate) fn is_mapped(&self, billed: &str) -> bool {
        self.model_map.contains_key(billed)
    }

    pub(crate) fn add_tokens(&mut self, day: &str, billed: &str, tokens: TokenCounts) {
        self.tokens_days.insert(day.to_owned());
        self.line(day, billed)
            .tokens
            .get_or_insert_with(TokenCounts::default)
            .add(tokens);
    }

    pub(crate) fn add_requests(&mut self, day: &str, billed: &str, requests: u64) {
        self.requests_days.insert(day.to_owned());
        let line = self.line(day, billed);
        line.requests = Some(line.requests.unwrap_or(0).saturating_add(requests));
    }

    pub(crate) fn mark_tokens_incomplete(&mut self, day: &str, billed: &str) {
        self.line(day, billed).tokens_incomplete = true;
    }

    pub(crate) fn add_cost(&mut self, day: &str, billed: &str, micro_usd: i64) {
        self.cost_days.insert(day.to_owned());
        let line = self.line(day, billed);
        line.cost_micro_usd = Some(line.cost_micro_usd.unwrap_or(0).saturating_add(micro_usd));
    }

    pub(crate) fn add_unattributed(&mut self, day: &str, description: &str, micro_usd: i64) {
        self.cost_days.insert(day.to_owned());
        self.days.insert(day.to_owned());
        let entry = self
            .unattributed
            .entry((day.to_owned(), description.to_owned()))
            .or_insert(0);
        *entry = entry.saturating_add(micro_usd);
    }

    /// Marks a day as covered by the export even when it holds no usage.
    pub(crate) fn cover_day(&mut self, day: &str) {
        self.days.insert(day.to_owned());
    }

    /// Whether costs in `currency` can be compared (the ledger is in USD); warns once if not.
    pub(crate) fn accepts_currency(&mut self, currency: &str) -> bool {
        let usd = currency.eq_ignore_ascii_case("usd");
        if !usd {
            self.warn(format!(
                "costs in `{currency}` are not compared: Keyward's ledger is in USD"
            ));
        }
        usd
    }

    pub(crate) fn warn(&mut self, warning: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.insert(warning);
        } else if !self.warnings.contains(&warning) {
            self.warnings_dropped += 1;
        }
    }

    /// False when this exact JSON result was already counted (the same page read twice).
    pub(crate) fn first_sighting(
        &mut self,
        kind: &str,
        bucket_start: &str,
        result: &Value,
    ) -> bool {
        self.seen
            .insert(format!("{kind}\u{1f}{bucket_start}\u{1f}{result}"))
    }
}
