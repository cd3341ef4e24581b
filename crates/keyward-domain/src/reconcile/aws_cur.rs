//! Bedrock lines of an AWS Cost and Usage Report, legacy (`lineItem/UsageType`) or CUR 2.0 /
//! Data Exports (`line_item_usage_type`) CSV, columns matched by name.
//!
//! A CUR has no per-request lines and no model-id column. Each Bedrock token line is read as
//! (UTC day, model, token kind): the model from the resource ARN when resource ids are on, else
//! the usage type's model segment (`USE1-Claude4.6Sonnet-input-tokens` → `Claude4.6Sonnet`),
//! else the product name; names that are not model ids need the model map. Token kind from
//! the usage type (cache read, cache write, input, output, tested in that order); tokens are
//! `UsageAmount` × the `pricing/unit` (`1K tokens`, `1M tokens`, `tokens`); cost is
//! `UnblendedCost`. Tax, credits, refunds and other services' lines are skipped; Bedrock lines
//! that are not tokens are unattributed cost.

use super::cells::{field, records, row_location, utc_day, Columns};
use super::decimal::{amount, count};
use super::model_name::looks_like_model_id;
use super::statement::{ExportError, ProviderStatement, TokenCounts};

const USAGE_TYPE: [&str; 2] = ["lineItem/UsageType", "line_item_usage_type"];

pub(super) fn recognises(columns: &Columns) -> bool {
    columns.find(&USAGE_TYPE).is_some()
}

#[derive(Clone, Copy)]
enum TokenKind {
    CacheRead,
    CacheWrite,
    Input,
    Output,
}

impl TokenKind {
    fn of(usage_type: &str) -> Option<Self> {
        let folded: String = usage_type
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        if !folded.contains("token") {
            return None;
        }
        if folded.contains("cacheread") {
            Some(Self::CacheRead)
        } else if folded.contains("cachewrite") {
            Some(Self::CacheWrite)
        } else if folded.contains("input") {
            Some(Self::Input)
        } else if folded.contains("output") {
            Some(Self::Output)
        } else {
            None
        }
    }

    fn tokens(self, count: u64) -> TokenCounts {
        match self {
            Self::Input => TokenCounts {
                input: count,
                ..TokenCounts::default()
            },
            Self::CacheRead => TokenCounts {
                input: count,
                cached_input: count,
                ..TokenCounts::default()
            },
            Self::CacheWrite => TokenCounts {
                input: count,
                cache_write: count,
                ..TokenCounts::default()
            },
            Self::Output => TokenCounts {
                output: count,
                ..TokenCounts::default()
            },
        }
    }
}

struct CurColumns {
    line_item_type: Option<usize>,
    start: Option<usize>,
    product_code: Option<usize>,
    usage_type: Option<usize>,
    resource_id: Option<usize>,
    amount: Option<usize>,
    cost: Option<usize>,
    currency: Option<usize>,
    unit: Option<usize>,
    product_name: Option<usize>,
    product_family: Option<usize>,
    product_model: Option<usize>,
    product_map: Option<usize>,
}

impl CurColumns {
    fn new(columns: &Columns) -> Self {
        Self {
            line_item_type: columns.find(&["lineItem/LineItemType", "line_item_line_item_type"]),
            start: columns.find(&["lineItem/UsageStartDate", "line_item_usage_start_date"]),
            product_code: columns.find(&["lineItem/ProductCode", "line_item_product_code"]),
            usage_type: columns.find(&USAGE_TYPE),
            resource_id: columns.find(&["lineItem/ResourceId", "line_item_resource_id"]),
            amount: columns.find(&["lineItem/UsageAmount", "line_item_usage_amount"]),
            cost: columns.find(&["lineItem/UnblendedCost", "line_item_unblended_cost"]),
            currency: columns.find(&["lineItem/CurrencyCode", "line_item_currency_code"]),
            unit: columns.find(&["pricing/unit", "pricing_unit"]),
            product_name: columns.find(&["product/ProductName", "product_product_name"]),
            product_family: columns.find(&["product/productFamily", "product_product_family"]),
            product_model: columns.find(&["product/model", "product_model"]),
            product_map: columns.find(&["product"]),
        }
    }

    fn missing(&self) -> Option<&'static str> {
        [
            (self.line_item_type, "lineItem/LineItemType"),
            (self.start, "lineItem/UsageStartDate"),
            (self.product_code, "lineItem/ProductCode"),
            (self.amount, "lineItem/UsageAmount"),
            (self.cost, "lineItem/UnblendedCost"),
        ]
        .into_iter()
        .find_map(|(at, name)| at.is_none().then_some(name))
    }
}

pub(super) fn read(
    statement: &mut ProviderStatement,
    name: &str,
    columns: &Columns,
    csv: &mut csv::Reader<impl std::io::Read>,
) -> Result<(), ExportError> {
    let cur = CurColumns::new(columns);
    if let Some(missing) = cur.missing() {
        return Err(ExportError::new(
            name,
            "line 1",
            format!("the report has no `{missing}` column (or its CUR 2.0 equivalent)"),
        ));
    }
    for record in records(csv, name) {
        let row = Row {
            cur: &cur,
            record: record?,
            export: name,
            product_map: std::cell::OnceCell::new(),
        };
        row.read_into(statement)?;
    }
    Ok(())
}

/// One row of a report, read through the report's columns.
struct Row<'a> {
    cur: &'a CurColumns,
    record: csv::StringRecord,
    /// The export's name, for errors.
    export: &'a str,
    /// The CUR 2.0 `product` map column, parsed once when first needed.
    product_map: std::cell::OnceCell<Option<serde_json::Value>>,
}

impl Row<'_> {
    fn field(&self, at: Option<usize>) -> Option<&str> {
        field(&self.record, at)
    }

    fn error(&self, reason: &str) -> ExportError {
        ExportError::new(self.export, row_location(&self.record), reason.to_owned())
    }

    /// A key of the CUR 2.0 `product` map column.
    fn product_map_value(&self, key: &str) -> Option<String> {
        self.product_map
            .get_or_init(|| {
                self.field(self.cur.product_map)
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            })
            .as_ref()
            .and_then(|map| map.get(key)?.as_str().map(str::to_owned))
    }

    fn product_name(&self) -> Option<String> {
        self.field(self.cur.product_name)
            .map(str::to_owned)
            .or_else(|| self.product_map_value("product_name"))
    }

    /// A usage line (not a fee, tax or credit) of Amazon Bedrock or a Bedrock Edition product.
    fn is_bedrock_usage(&self) -> bool {
        let line_item_type = self.field(self.cur.line_item_type).unwrap_or("");
        if !matches!(
            line_item_type,
            "Usage" | "SavingsPlanCoveredUsage" | "DiscountedUsage"
        ) {
            return false;
        }
        self.field(self.cur.product_code) == Some("AmazonBedrock")
            || self.field(self.cur.product_family) == Some("Amazon Bedrock")
            || self
                .product_name()
                .is_some_and(|name| name.ends_with("(Amazon Bedrock Edition)"))
    }

    /// The model a line bills: from the resource ARN, the usage type, the product's model or
    /// the Bedrock Edition product's name.
    fn model(&self, usage_type: &str) -> Option<String> {
        self.field(self.cur.resource_id)
            .and_then(model_of_arn)
            .or_else(|| model_of_usage_type(usage_type))
            .or_else(|| self.field(self.cur.product_model).map(str::to_owned))
            .or_else(|| self.product_map_value("model"))
            .or_else(|| {
                self.product_name().map(|name| {
                    name.trim_end_matches("(Amazon Bedrock Edition)")
                        .trim()
                        .to_owned()
                })
            })
    }

    fn read_into(&self, statement: &mut ProviderStatement) -> Result<(), ExportError> {
        if !self.is_bedrock_usage() {
            return Ok(());
        }
        let day = self
            .field(self.cur.start)
            .and_then(utc_day)
            .ok_or_else(|| self.error("`lineItem/UsageStartDate` must be a date-time"))?;
        statement.cover_day(&day);
        let currency = self.field(self.cur.currency).unwrap_or("USD");
        if !statement.accepts_currency(currency) {
            return Ok(());
        }
        let cost = self
            .field(self.cur.cost)
            .and_then(|text| amount(text, 6))
            .ok_or_else(|| self.error("`lineItem/UnblendedCost` must be a decimal number"))?;
        let usage_type = self.field(self.cur.usage_type).unwrap_or("");
        let Some(kind) = TokenKind::of(usage_type) else {
            let description = if usage_type.is_empty() {
                "Bedrock usage without a usage type".to_owned()
            } else {
                format!("Bedrock {usage_type}")
            };
            statement.add_unattributed(&day, &description, cost);
            return Ok(());
        };
        let Some(model) = self.model(usage_type) else {
            statement.add_unattributed(&day, &format!("Bedrock {usage_type}"), cost);
            return Ok(());
        };
        if !looks_like_model_id(&model) && !statement.is_mapped(&model) {
            statement.warn(format!(
                "the report names a model `{model}`, which is not a Bedrock model id: map it with --model-map '{model}=MODEL_ID' (API: model_map)"
            ));
        }
        statement.add_cost(&day, &model, cost);
        self.add_tokens(statement, &day, &model, usage_type, kind)
    }

    /// The line's tokens, from its usage amount in its pricing unit; a unit that is not a
    /// token count leaves the day's tokens for that model uncompared.
    fn add_tokens(
        &self,
        statement: &mut ProviderStatement,
        day: &str,
        model: &str,
        usage_type: &str,
        kind: TokenKind,
    ) -> Result<(), ExportError> {
        let unit = self.field(self.cur.unit).unwrap_or("");
        let scale = match unit {
            "1K tokens" => Some(3),
            "1M tokens" => Some(6),
            "tokens" | "Tokens" => Some(0),
            "Units" if usage_type.contains("MP:") => {
                statement.warn(
                    "Marketplace (Amazon Bedrock Edition) lines in `Units` are read as millions of tokens; AWS does not document this unit, so check their token counts against the cost"
                        .to_owned(),
                );
                Some(6)
            }
            _ => None,
        };
        let Some(scale) = scale else {
            statement.warn(format!(
                "pricing unit `{unit}` cannot be converted to tokens: those lines' tokens are not compared, their cost is"
            ));
            statement.mark_tokens_incomplete(day, model);
            return Ok(());
        };
        let tokens = self
            .field(self.cur.amount)
            .and_then(|amount| count(amount, scale))
            .ok_or_else(|| {
                self.error("`lineItem/UsageAmount` must be a non-negative decimal number")
            })?;
        statement.add_tokens(day, model, kind.tokens(tokens));
        Ok(())
    }
}

/// `…:foundation-model/anthropic.claude-sonnet-4-6` → `anthropic.claude-sonnet-4-6`; also
/// `inference-profile/…`, `application-inference-profile/…` and `provisioned-model/…`.
fn model_of_arn(arn: &str) -> Option<String> {
    if !arn.starts_with("arn:") {
        return None;
    }
    // `arn:aws:bedrock:REGION:ACCOUNT:RESOURCE`; the resource may itself contain `:` (`-v1:0`).
    let resource = arn.splitn(6, ':').nth(5)?;
    let (_, id) = resource.split_once('/')?;
    let id = id.split('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// `USE1-Claude4.6Sonnet-input-tokens` → `Claude4.6Sonnet`;
/// `USE1-openai.gpt-oss-120b-mantle-input-tokens-standard` → `openai.gpt-oss-120b`.
/// Marketplace usage types (`USE1-MP:USE1_InputTokenCount-Units`) name no model.
fn model_of_usage_type(usage_type: &str) -> Option<String> {
    if usage_type.contains("MP:") {
        return None;
    }
    let (_, rest) = usage_type.split_once('-')?;
    let lower = rest.to_ascii_lowercase();
    let end = ["-mantle-", "-input-", "-output-", "-cache-"]
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()?;
    let model = &rest[..end];
    (!model.is_empty()).then(|| model.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_types_name_model_and_token_kind() {
        for (usage_type, model) in [
            ("USE1-Claude4.6Sonnet-input-tokens", Some("Claude4.6Sonnet")),
            (
                "USE1-Claude4.6Sonnet-cache-read-input-token-count",
                Some("Claude4.6Sonnet"),
            ),
            (
                "USE1-Claude4.6Sonnet-output-tokens-cross-region-global",
                Some("Claude4.6Sonnet"),
            ),
            (
                "USE1-openai.gpt-oss-120b-mantle-input-tokens-standard",
                Some("openai.gpt-oss-120b"),
            ),
            ("EU-Qwen3-32B-output-tokens-batch", Some("Qwen3-32B")),
            ("USE1-MP:USE1_InputTokenCount-Units", None),
        ] {
            assert_eq!(
                model_of_usage_type(usage_type).as_deref(),
                model,
                "{usage_type}"
            );
        }
        let kind = |usage_type| TokenKind::of(usage_type).map(|kind| kind.tokens(1));
        assert_eq!(
            kind("USE1-NovaPro-cache-read-input-token-count")
                .unwrap()
                .cached_input,
            1
        );
        assert_eq!(
            kind("USE1-NovaPro-cache-write-input-token-count")
                .unwrap()
                .cache_write,
            1
        );
        assert_eq!(
            kind("USE1-MP:USE1_CacheReadInputTokenCount-Units")
                .unwrap()
                .cached_input,
            1
        );
        assert_eq!(
            kind("USE1-MP:USE1_OutputTokenCount_Global-Units")
                .unwrap()
                .output,
            1
        );
        assert_eq!(kind("USE1-Claude4.6Sonnet-input-tokens").unwrap().input, 1);
        assert!(kind("USE1-ProvisionedThroughput-hours").is_none());
    }

    #[test]
    fn resource_arns_name_the_model_or_profile() {
        assert_eq!(
            model_of_arn("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0")
                .as_deref(),
            Some("amazon.nova-pro-v1:0")
        );
        assert_eq!(
            model_of_arn("arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-6")
                .as_deref(),
            Some("global.anthropic.claude-sonnet-4-6")
        );
        assert_eq!(model_of_arn("i-0abc"), None);
    }
}
