//! Reconciliation: the ledger beside the provider's own usage export, per UTC day and model,
//! with every difference listed.
//!
//! Invariants:
//! - Both sides are reduced to the ledger's meaning of tokens and to integer micro-dollars;
//!   nothing is compared through floating point.
//! - Only what the export carries is compared: requests (OpenAI), tokens by kind, cost. A
//!   field the export lacks is shown as absent, never as zero.
//! - The compared range is every UTC day from the export's first to its last; ledger calls
//!   outside it are not read.
//! - Calls the provider may have billed but whose usage the ledger never learnt (client gone,
//!   timeout, interrupted) are counted beside the line, as the usual explanation of a gap.

mod anthropic;
mod aws_cur;
mod cells;
mod decimal;
mod export;
mod model_name;
mod openai;
mod statement;

use std::collections::{BTreeMap, BTreeSet};

use keyward_store::CallRecord;

pub use statement::{ExportError, ProviderLine, ProviderStatement, TokenCounts};

use crate::usage::USAGE_PAGE;
use crate::{DomainError, Keyward, TenantScope};

/// Keyward's side of one (day, model).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerLine {
    /// The model names as the ledger recorded them.
    pub models: BTreeSet<String>,
    /// Calls with usage reported.
    pub requests: u64,
    pub tokens: TokenCounts,
    /// Sum of the priced calls' costs.
    pub cost_micro_usd: i64,
    /// Calls with usage but no price.
    pub unpriced_requests: u64,
    /// Calls the provider may have billed whose usage never reached Keyward.
    pub calls_without_usage: u64,
}

/// One compared field that differs; `delta` = Keyward − provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// `requests`, `input_tokens`, `cached_input_tokens`, `cache_write_tokens`,
    /// `output_tokens` or `cost_micro_usd`.
    pub field: &'static str,
    pub keyward: i64,
    pub provider: i64,
    pub delta: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineStatus {
    Match,
    Differs,
    OnlyInKeyward,
    OnlyInProvider,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Differs => "differs",
            Self::OnlyInKeyward => "only_in_keyward",
            Self::OnlyInProvider => "only_in_provider",
        }
    }
}

/// One (day, model) of the report.
#[derive(Clone, Debug)]
pub struct ReconciledLine {
    pub date: String,
    /// The canonical model name both sides were matched on.
    pub model: String,
    pub keyward: Option<LedgerLine>,
    pub provider: Option<ProviderLine>,
    pub differences: Vec<Difference>,
    pub status: LineStatus,
}

/// Provider cost no model can be named for (tool calls, storage, tax-free extras).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnattributedCost {
    pub date: String,
    pub description: String,
    pub cost_micro_usd: i64,
}

/// The whole report.
#[derive(Clone, Debug)]
pub struct Reconciliation {
    pub provider: keyward_core::ProviderId,
    /// First and last UTC day compared (inclusive).
    pub from: String,
    pub to: String,
    pub lines: Vec<ReconciledLine>,
    pub unattributed: Vec<UnattributedCost>,
    pub warnings: Vec<String>,
}

impl Reconciliation {
    pub fn differing_lines(&self) -> usize {
        self.lines
            .iter()
            .filter(|line| line.status != LineStatus::Match)
            .count()
    }
}

/// Whether the provider may have billed a call whose usage the ledger lacks. Credential
/// verifications (a free model listing) are not model calls.
fn possibly_billed(call: &CallRecord) -> bool {
    call.endpoint != crate::inference::VERIFY_ENDPOINT
        && crate::budget::may_have_been_billed(call.status, call.http_status)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The fields both sides carry, compared.
fn differences(
    statement: &ProviderStatement,
    day: &str,
    keyward: &LedgerLine,
    provider: &ProviderLine,
) -> Vec<Difference> {
    let mut compared: Vec<(&'static str, i64, i64)> = Vec::new();
    // Only what the provider reported: the line's own figures, or, for a day it reported but
    // a model it did not, that day's kinds (as zeros). Never a kind it left out.
    let reported = |days: &BTreeSet<String>, present: bool| present || days.contains(day);
    if reported(&statement.requests_days, provider.requests.is_some()) {
        compared.push((
            "requests",
            signed(keyward.requests),
            signed(provider.requests.unwrap_or(0)),
        ));
    }
    if reported(&statement.tokens_days, provider.tokens.is_some()) && !provider.tokens_incomplete {
        let theirs = provider.tokens.unwrap_or_default();
        let ours = keyward.tokens;
        compared.extend([
            ("input_tokens", signed(ours.input), signed(theirs.input)),
            (
                "cached_input_tokens",
                signed(ours.cached_input),
                signed(theirs.cached_input),
            ),
            (
                "cache_write_tokens",
                signed(ours.cache_write),
                signed(theirs.cache_write),
            ),
            ("output_tokens", signed(ours.output), signed(theirs.output)),
        ]);
    }
    if reported(&statement.cost_days, provider.cost_micro_usd.is_some()) {
        compared.push((
            "cost_micro_usd",
            keyward.cost_micro_usd,
            provider.cost_micro_usd.unwrap_or(0),
        ));
    }
    compared
        .into_iter()
        .filter(|(_, ours, theirs)| ours != theirs)
        .map(|(field, keyward, provider)| Difference {
            field,
            keyward,
            provider,
            delta: keyward.saturating_sub(provider),
        })
        .collect()
}

/// Compares the ledger lines with the statement's.
fn compare(
    statement: ProviderStatement,
    ledger: BTreeMap<(String, String), LedgerLine>,
    (from, to): (String, String),
) -> Reconciliation {
    let keys: BTreeSet<(String, String)> = ledger
        .keys()
        .chain(statement.lines.keys())
        .cloned()
        .collect();
    let mut ledger = ledger;
    let mut provider_lines = statement.lines.clone();
    let lines = keys
        .into_iter()
        .map(|key| {
            let ours = ledger.remove(&key);
            let theirs = provider_lines.remove(&key);
            let differences = differences(
                &statement,
                &key.0,
                ours.as_ref().unwrap_or(&LedgerLine::default()),
                theirs.as_ref().unwrap_or(&ProviderLine::default()),
            );
            let status = match (&ours, &theirs) {
                (Some(_), None) => LineStatus::OnlyInKeyward,
                (None, Some(_)) => LineStatus::OnlyInProvider,
                _ if differences.is_empty() => LineStatus::Match,
                _ => LineStatus::Differs,
            };
            ReconciledLine {
                date: key.0,
                model: key.1,
                keyward: ours,
                provider: theirs,
                differences,
                status,
            }
        })
        .collect();
    let mut warnings: Vec<String> = statement.warnings.iter().cloned().collect();
    if statement.warnings_dropped > 0 {
        warnings.push(format!(
            "{} more warnings not shown",
            statement.warnings_dropped
        ));
    }
    Reconciliation {
        provider: statement.provider(),
        from,
        to,
        lines,
        unattributed: statement
            .unattributed
            .iter()
            .map(|((date, description), cost)| UnattributedCost {
                date: date.clone(),
                description: description.clone(),
                cost_micro_usd: *cost,
            })
            .collect(),
        warnings,
    }
}

impl Keyward {
    /// Compares the tenant's ledger for the statement's provider and days with the statement.
    /// The statement's model map decides which billed names meet which ledger models.
    pub async fn reconcile(
        &self,
        scope: &TenantScope,
        statement: ProviderStatement,
    ) -> Result<Reconciliation, DomainError> {
        let (Some(first), Some(last)) = (statement.days.first(), statement.days.last()) else {
            return Err(DomainError::invalid(
                "exports",
                "the exports hold no usage or cost lines for this provider",
            ));
        };
        let (from, to) = (first.clone(), last.clone());
        // Whole UTC days, `to` included: the usage export's own reading of two dates.
        let range = crate::usage::usage_range(Some(&from), Some(&to))?;
        let provider = statement.provider().as_str();
        let mut ledger: BTreeMap<(String, String), LedgerLine> = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.usage_page(scope, range, after.as_deref()).await?;
            for call in page.iter().filter(|call| call.provider == provider) {
                let usage_known = call.input_tokens.is_some();
                if !usage_known && !possibly_billed(call) {
                    continue;
                }
                let recorded = call
                    .model_reported
                    .as_deref()
                    .unwrap_or(&call.model_requested);
                let key = (call.created_at.utc_date(), model_name::canonical(recorded));
                let line = ledger.entry(key).or_default();
                line.models.insert(recorded.to_owned());
                if !usage_known {
                    line.calls_without_usage += 1;
                    continue;
                }
                line.requests += 1;
                line.tokens.add(TokenCounts {
                    input: call.input_tokens.unwrap_or(0),
                    cached_input: call.cached_input_tokens.unwrap_or(0),
                    cache_write: call.cache_write_tokens.unwrap_or(0),
                    output: call.output_tokens.unwrap_or(0),
                });
                match call.cost_micro_usd {
                    Some(cost) => line.cost_micro_usd = line.cost_micro_usd.saturating_add(cost),
                    None => line.unpriced_requests += 1,
                }
            }
            match page.last() {
                Some(last) if page.len() == USAGE_PAGE as usize => {
                    after = Some(last.request_id.clone())
                }
                _ => break,
            }
        }
        let report = compare(statement, ledger, (from, to));
        self.audit(
            scope,
            "reconciliation.run",
            report.provider.as_str(),
            serde_json::json!({
                "from": report.from,
                "to": report.to,
                "lines": report.lines.len(),
                "differing_lines": report.differing_lines(),
            }),
        )
        .await;
        Ok(report)
    }
}

impl From<ExportError> for DomainError {
    fn from(err: ExportError) -> Self {
        Self::invalid("exports", err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::ProviderId;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../fixtures/provider-exports/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    fn statement(provider: ProviderId, files: &[&str], map: &[(&str, &str)]) -> ProviderStatement {
        let map = map
            .iter()
            .map(|(billed, model)| ((*billed).to_owned(), (*model).to_owned()))
            .collect();
        let mut statement = ProviderStatement::new(provider, map).unwrap();
        for name in files {
            statement.read(name, fixture(name).as_slice()).unwrap();
        }
        statement
    }

    fn line<'a>(statement: &'a ProviderStatement, day: &str, model: &str) -> &'a ProviderLine {
        statement
            .lines
            .get(&(day.to_owned(), model.to_owned()))
            .unwrap_or_else(|| panic!("no line {day} {model}: {:?}", statement.lines.keys()))
    }

    fn tokens(input: u64, cached_input: u64, cache_write: u64, output: u64) -> Option<TokenCounts> {
        Some(TokenCounts {
            input,
            cached_input,
            cache_write,
            output,
        })
    }

    #[test]
    fn openai_usage_and_costs_pages() {
        let statement = statement(
            ProviderId::OpenAi,
            &["openai-usage-completions.json", "openai-costs.json"],
            &[],
        );
        let mini = line(&statement, "2026-09-01", "gpt-4o-mini");
        assert_eq!(mini.requests, Some(60));
        assert_eq!(mini.tokens, tokens(120_000, 40_000, 0, 15_000));
        assert_eq!(mini.cost_micro_usd, Some(24_000));
        assert!(mini.models.contains("gpt-4o-mini-2024-07-18"));
        let gpt41 = line(&statement, "2026-09-01", "gpt-4.1");
        assert_eq!(gpt41.tokens, tokens(50_000, 10_240, 0, 6_000));
        assert_eq!(gpt41.cost_micro_usd, Some(132_640));
        // One amount is a JSON string ("0.0066"): read exactly all the same.
        assert_eq!(
            line(&statement, "2026-09-02", "gpt-4o-mini").cost_micro_usd,
            Some(17_796)
        );
        assert_eq!(
            line(&statement, "2026-09-02", "gpt-4.1").cost_micro_usd,
            Some(60_000)
        );
        assert_eq!(
            statement
                .unattributed
                .get(&("2026-09-02".to_owned(), "web search tool calls".to_owned())),
            Some(&10_000)
        );
        assert_eq!(statement.lines.len(), 4);
    }

    #[test]
    fn a_page_read_twice_counts_once_and_old_fields_default_to_zero() {
        let mut statement = ProviderStatement::new(ProviderId::OpenAi, BTreeMap::new()).unwrap();
        let usage = fixture("openai-usage-completions.json");
        statement.read("a.json", usage.as_slice()).unwrap();
        statement.read("b.json", usage.as_slice()).unwrap();
        assert_eq!(
            line(&statement, "2026-09-01", "gpt-4o-mini").requests,
            Some(60)
        );
        // The pre-2026 result shape: no cache-write or uncached fields.
        let old = br#"{"object":"page","data":[{"object":"bucket","start_time":1788480000,"end_time":1788566400,"results":[
            {"object":"organization.usage.completions.result","input_tokens":120000,"output_tokens":15000,"num_model_requests":60,"project_id":null,"user_id":null,"api_key_id":null,"model":"gpt-4o-mini-2024-07-18","batch":null,"input_cached_tokens":40000,"input_audio_tokens":0,"output_audio_tokens":0}]}],
            "has_more":false,"next_page":null}
            {"object":"page","data":[],"has_more":false,"next_page":null}"#;
        statement.read("old.jsonl", old.as_slice()).unwrap();
        assert_eq!(
            line(&statement, "2026-09-04", "gpt-4o-mini").tokens,
            tokens(120_000, 40_000, 0, 15_000)
        );
    }

    #[test]
    fn anthropic_reports_and_console_csvs_agree() {
        let api = statement(
            ProviderId::Anthropic,
            &["anthropic-usage-report.json", "anthropic-cost-report.json"],
            &[],
        );
        let console = statement(
            ProviderId::Anthropic,
            &["anthropic-console-usage.csv", "anthropic-console-cost.csv"],
            &[],
        );
        for statement in [&api, &console] {
            let sonnet = line(statement, "2026-09-01", "claude-sonnet-4-5");
            assert_eq!(sonnet.tokens, tokens(242_000, 200_000, 12_000, 8_000));
            assert_eq!(sonnet.cost_micro_usd, Some(315_000));
            assert_eq!(sonnet.requests, None);
            let haiku = line(statement, "2026-09-02", "claude-haiku-4-5");
            assert_eq!(haiku.tokens, tokens(62_000, 20_000, 2_000, 7_000));
            // "0.20" + "0.25" + "3.50" + "4.00" cents-strings … = $0.0795.
            assert_eq!(haiku.cost_micro_usd, Some(79_500));
            let sonnet = line(statement, "2026-09-02", "claude-sonnet-4-5");
            assert_eq!(sonnet.tokens, tokens(179_000, 150_000, 4_000, 6_000));
            assert_eq!(sonnet.cost_micro_usd, Some(234_000));
            assert_eq!(statement.lines.len(), 4);
        }
    }

    #[test]
    fn bedrock_cost_and_usage_reports() {
        let legacy = statement(ProviderId::Bedrock, &["aws-cur-bedrock.csv"], &[]);
        let sonnet = line(&legacy, "2026-09-01", "anthropic.claude-sonnet-4-6");
        assert_eq!(sonnet.tokens, tokens(242_000, 200_000, 12_000, 8_000));
        assert_eq!(sonnet.cost_micro_usd, Some(315_000));
        let nova = line(&legacy, "2026-09-01", "amazon.nova-pro");
        assert_eq!(nova.tokens, tokens(50_000, 0, 0, 10_000));
        assert_eq!(nova.cost_micro_usd, Some(72_000));
        // The global inference profile's output line joins the in-region one.
        let sonnet = line(&legacy, "2026-09-02", "anthropic.claude-sonnet-4-6");
        assert_eq!(sonnet.tokens, tokens(175_000, 150_000, 0, 6_000));
        assert_eq!(sonnet.cost_micro_usd, Some(210_000));
        assert_eq!(
            line(&legacy, "2026-09-02", "amazon.nova-pro").cost_micro_usd,
            Some(58_400)
        );
        assert_eq!(legacy.lines.len(), 4);
        assert!(legacy.unattributed.is_empty(), "the Tax line is skipped");

        let cur2 = statement(ProviderId::Bedrock, &["aws-cur2-bedrock.csv"], &[]);
        assert_eq!(
            line(&cur2, "2026-09-01", "anthropic.claude-sonnet-4-6").tokens,
            tokens(230_000, 200_000, 0, 0)
        );

        let unmapped = statement(ProviderId::Bedrock, &["aws-cur-marketplace.csv"], &[]);
        assert!(unmapped
            .warnings
            .iter()
            .any(|warning| warning.contains("--model-map 'Claude Sonnet 4.5=MODEL_ID'")));
        let mapped = statement(
            ProviderId::Bedrock,
            &["aws-cur-marketplace.csv"],
            &[(
                "Claude Sonnet 4.5",
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
            )],
        );
        let sonnet = line(&mapped, "2026-09-01", "anthropic.claude-sonnet-4-5");
        assert_eq!(sonnet.tokens, tokens(242_000, 200_000, 12_000, 8_000));
        assert_eq!(sonnet.cost_micro_usd, Some(315_000));
    }

    #[test]
    fn tool_costs_are_not_a_models_cost_and_a_kind_missing_on_a_day_is_not_compared() {
        let mut statement = ProviderStatement::new(ProviderId::Anthropic, BTreeMap::new()).unwrap();
        // Cost for 09-01 and 09-02 (one web-search row carries a model), usage for 09-01 only.
        let cost = br#"{"data": [
            {"starting_at": "2026-09-01T00:00:00Z", "ending_at": "2026-09-02T00:00:00Z", "results": [
                {"amount": "100", "currency": "USD", "model": "claude-sonnet-4-5-20250929", "cost_type": "tokens", "token_type": "output_tokens"},
                {"amount": "50", "currency": "USD", "model": "claude-sonnet-4-5-20250929", "cost_type": "web_search", "description": "Web Search"}]},
            {"starting_at": "2026-09-02T00:00:00Z", "ending_at": "2026-09-03T00:00:00Z", "results": [
                {"amount": "200", "currency": "USD", "model": "claude-sonnet-4-5-20250929", "cost_type": "tokens", "token_type": "output_tokens"}]}]}"#;
        let usage = br#"{"data": [{"starting_at": "2026-09-01T00:00:00Z", "ending_at": "2026-09-02T00:00:00Z", "results": [
            {"model": "claude-sonnet-4-5-20250929", "uncached_input_tokens": 10, "cache_read_input_tokens": 0,
             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 5}]}]}"#;
        statement.read("cost", cost.as_slice()).unwrap();
        statement.read("usage", usage.as_slice()).unwrap();
        assert_eq!(
            line(&statement, "2026-09-01", "claude-sonnet-4-5").cost_micro_usd,
            Some(1_000_000)
        );
        assert_eq!(
            statement
                .unattributed
                .get(&("2026-09-01".to_owned(), "Web Search".to_owned())),
            Some(&500_000)
        );
        // The ledger agrees on 09-02's cost; the export has no usage for 09-02, so tokens there
        // are not compared (not treated as zero).
        let ledger = BTreeMap::from([(
            ("2026-09-02".to_owned(), "claude-sonnet-4-5".to_owned()),
            LedgerLine {
                requests: 3,
                tokens: TokenCounts {
                    input: 30,
                    cached_input: 0,
                    cache_write: 0,
                    output: 15,
                },
                cost_micro_usd: 2_000_000,
                ..LedgerLine::default()
            },
        )]);
        let report = compare(
            statement,
            ledger,
            ("2026-09-01".into(), "2026-09-02".into()),
        );
        let day2 = report
            .lines
            .iter()
            .find(|line| line.date == "2026-09-02")
            .unwrap();
        assert_eq!(day2.status, LineStatus::Match, "{:?}", day2.differences);
    }

    #[test]
    fn wrong_provider_and_malformed_exports_are_named_without_values() {
        let mut statement = ProviderStatement::new(ProviderId::OpenAi, BTreeMap::new()).unwrap();
        let err = statement
            .read("cur.csv", fixture("aws-cur-bedrock.csv").as_slice())
            .unwrap_err()
            .to_string();
        assert!(err.contains("provider `bedrock`"), "{err}");
        for (export, expected) in [
            (&b""[..], "empty"),
            (b"{\"data\": [", "malformed JSON"),
            (b"a,b\n1,2\n", "unrecognised CSV header"),
            (
                br#"{"data":[{"start_time":1788220800,"end_time":1788307200,"results":[{"object":"organization.usage.completions.result","input_tokens":"sk-canary","num_model_requests":1,"model":"m"}]}]}"#,
                "`input_tokens` must be a whole number",
            ),
            (
                br#"{"data":[{"start_time":1788220800,"end_time":1788307200,"results":[{"object":"organization.usage.completions.result","input_tokens":1,"num_model_requests":1}]}]}"#,
                "group_by=model",
            ),
        ] {
            let err = statement.read("x", export).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("sk-canary"), "{err}");
        }
        assert!(ProviderStatement::new(ProviderId::Groq, BTreeMap::new()).is_err());
    }
}
