//! Anthropic's own usage records: the Admin API's messages usage report
//! (`/v1/organizations/usage_report/messages`, grouped by `model`) and cost report
//! (`/v1/organizations/cost_report`, grouped by `description`), and the Console's usage and
//! cost CSV downloads (columns matched by name; they have grown over time).
//!
//! Field meanings (Anthropic's API reference): `uncached_input_tokens`,
//! `cache_read_input_tokens` and the two `cache_creation` counts are disjoint, so the ledger's
//! `input` is their sum. A cost report `amount` is a decimal string in cents; the Console's
//! `cost_usd` is in dollars.

use serde_json::Value;

use super::cells::{csv_count, field, records, row_location, utc_day, Columns};
use super::decimal::{amount, amount_json};
use super::model_name::from_display_name;
use super::statement::{ExportError, ProviderStatement, TokenCounts};

pub(super) fn read_bucket(
    statement: &mut ProviderStatement,
    name: &str,
    path: &str,
    bucket: &Value,
) -> Result<(), ExportError> {
    let starting_at = bucket
        .get("starting_at")
        .and_then(Value::as_str)
        .unwrap_or("");
    let day = utc_day(starting_at)
        .ok_or_else(|| ExportError::new(name, path, "`starting_at` must be an RFC 3339 time"))?;
    if let Some(ending_at) = bucket.get("ending_at").and_then(Value::as_str) {
        let end = keyward_core::Timestamp::parse_rfc3339(ending_at)
            .map_err(|_| ExportError::new(name, path, "`ending_at` must be an RFC 3339 time"))?;
        let last_day =
            keyward_core::Timestamp::from_unix_millis(end.unix_millis().saturating_sub(1))
                .utc_date();
        if last_day != day {
            statement.warn(format!(
                "a bucket runs from {day} into {last_day}; its usage is counted on {day}: export with bucket_width=1d or 1h"
            ));
        }
    }
    statement.cover_day(&day);
    let Some(Value::Array(results)) = bucket.get("results") else {
        return Err(ExportError::new(name, path, "`results` must be an array"));
    };
    for (index, result) in results.iter().enumerate() {
        let at = format!("{path}.results[{index}]");
        if result.get("uncached_input_tokens").is_some() {
            if statement.first_sighting("usage", starting_at, result) {
                read_usage_result(statement, name, &at, &day, result)?;
            }
        } else if result.get("amount").is_some() {
            if statement.first_sighting("cost", starting_at, result) {
                read_cost_result(statement, name, &at, &day, result)?;
            }
        } else {
            return Err(ExportError::new(
                name,
                at,
                "neither a usage result (`uncached_input_tokens`) nor a cost result (`amount`)",
            ));
        }
    }
    Ok(())
}

fn read_usage_result(
    statement: &mut ProviderStatement,
    name: &str,
    at: &str,
    day: &str,
    result: &Value,
) -> Result<(), ExportError> {
    let count = |path: &[&str]| -> Result<u64, ExportError> {
        match path.iter().try_fold(result, |value, key| value.get(*key)) {
            None | Some(Value::Null) => Ok(0),
            Some(value) => value.as_u64().ok_or_else(|| {
                ExportError::new(
                    name,
                    at,
                    format!("`{}` must be a whole number", path.join(".")),
                )
            }),
        }
    };
    let Some(model) = result.get("model").and_then(Value::as_str) else {
        return Err(ExportError::new(
            name,
            at,
            "`model` is missing: request the usage report with group_by[]=model",
        ));
    };
    let uncached = count(&["uncached_input_tokens"])?;
    let read = count(&["cache_read_input_tokens"])?;
    let write = count(&["cache_creation", "ephemeral_5m_input_tokens"])?
        .saturating_add(count(&["cache_creation", "ephemeral_1h_input_tokens"])?);
    let tokens = TokenCounts {
        input: uncached.saturating_add(read).saturating_add(write),
        cached_input: read,
        cache_write: write,
        output: count(&["output_tokens"])?,
    };
    statement.add_tokens(day, model.trim(), tokens);
    Ok(())
}

fn read_cost_result(
    statement: &mut ProviderStatement,
    name: &str,
    at: &str,
    day: &str,
    result: &Value,
) -> Result<(), ExportError> {
    let currency = result
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or("USD");
    if !statement.accepts_currency(currency) {
        return Ok(());
    }
    // Cents → micro-dollars: × 10^4.
    let micro = result
        .get("amount")
        .and_then(|amount| amount_json(amount, 4))
        .ok_or_else(|| ExportError::new(name, at, "`amount` must be a decimal string (cents)"))?;
    // Only token costs belong to a model's line; web search, code execution and the like are
    // listed apart, as OpenAI's tool costs are.
    let token_cost = result
        .get("cost_type")
        .and_then(Value::as_str)
        .is_none_or(|kind| kind == "tokens");
    match result.get("model").and_then(Value::as_str) {
        Some(model) if token_cost && !model.trim().is_empty() => {
            statement.add_cost(day, model.trim(), micro)
        }
        _ => {
            let description = ["description", "cost_type"]
                .iter()
                .find_map(|key| result.get(*key).and_then(Value::as_str))
                .unwrap_or("cost without a model");
            statement.add_unattributed(day, description, micro);
        }
    }
    Ok(())
}

pub(super) fn recognises_usage_csv(columns: &Columns) -> bool {
    columns.has("usage_input_tokens_no_cache")
}

pub(super) fn recognises_cost_csv(columns: &Columns) -> bool {
    columns.has("cost_usd") && columns.has("usage_date_utc")
}

/// The Console usage CSV: a row per day, model, key and workspace; rows are summed.
pub(super) fn read_usage_csv(
    statement: &mut ProviderStatement,
    name: &str,
    columns: &Columns,
    csv: &mut csv::Reader<impl std::io::Read>,
) -> Result<(), ExportError> {
    let day_at = columns.find(&["usage_date_utc"]);
    let model_at = columns.find(&["model_version", "model"]);
    let uncached_at = columns.find(&["usage_input_tokens_no_cache"]);
    let write_5m_at = columns.find(&["usage_input_tokens_cache_write_5m"]);
    let write_1h_at = columns.find(&["usage_input_tokens_cache_write_1h"]);
    let read_at = columns.find(&["usage_input_tokens_cache_read"]);
    let output_at = columns.find(&["usage_output_tokens"]);
    for record in records(csv, name) {
        let record = record?;
        let at = row_location(&record);
        let day = field(&record, day_at)
            .and_then(utc_day)
            .ok_or_else(|| ExportError::new(name, &at, "`usage_date_utc` must be a date"))?;
        statement.cover_day(&day);
        let Some(model) = field(&record, model_at) else {
            return Err(ExportError::new(name, &at, "`model_version` is empty"));
        };
        let count = |column, label| csv_count(&record, column, label, name, &at);
        let uncached = count(uncached_at, "usage_input_tokens_no_cache")?;
        let read = count(read_at, "usage_input_tokens_cache_read")?;
        let write = count(write_5m_at, "usage_input_tokens_cache_write_5m")?
            .saturating_add(count(write_1h_at, "usage_input_tokens_cache_write_1h")?);
        let tokens = TokenCounts {
            input: uncached.saturating_add(read).saturating_add(write),
            cached_input: read,
            cache_write: write,
            output: count(output_at, "usage_output_tokens")?,
        };
        let model = model.to_owned();
        statement.add_tokens(&day, &model, tokens);
    }
    Ok(())
}

/// The Console cost CSV: `cost_usd` in dollars; `model` is a display name ("Claude Sonnet 4.5").
pub(super) fn read_cost_csv(
    statement: &mut ProviderStatement,
    name: &str,
    columns: &Columns,
    csv: &mut csv::Reader<impl std::io::Read>,
) -> Result<(), ExportError> {
    let day_at = columns.find(&["usage_date_utc"]);
    let model_at = columns.find(&["model", "model_version"]);
    let cost_at = columns.find(&["cost_usd"]);
    let kind_at = columns.find(&["cost_type", "token_type"]);
    for record in records(csv, name) {
        let record = record?;
        let at = row_location(&record);
        let day = field(&record, day_at)
            .and_then(utc_day)
            .ok_or_else(|| ExportError::new(name, &at, "`usage_date_utc` must be a date"))?;
        statement.cover_day(&day);
        let micro = field(&record, cost_at)
            .and_then(|text| amount(text, 6))
            .ok_or_else(|| ExportError::new(name, &at, "`cost_usd` must be a decimal number"))?;
        let token_cost = field(&record, columns.find(&["cost_type"]))
            .is_none_or(|kind| kind == "token" || kind == "tokens");
        match field(&record, model_at).filter(|_| token_cost) {
            Some(model) => {
                let model = if model.contains(' ') {
                    from_display_name(model)
                } else {
                    model.to_owned()
                };
                statement.add_cost(&day, &model, micro);
            }
            None => {
                let description = field(&record, kind_at)
                    .unwrap_or("cost without a model")
                    .to_owned();
                statement.add_unattributed(&day, &description, micro);
            }
        }
    }
    Ok(())
}
