//! OpenAI's own usage records: the Usage API pages (`/v1/organization/usage/completions` and
//! `/embeddings`, grouped by `model`), the Costs API pages (`/v1/organization/costs`, grouped
//! by `line_item`), and the dashboard's usage CSV (columns named as the API's fields).
//!
//! Field meanings (OpenAI's OpenAPI spec): `input_tokens` is all input, cached and cache-write
//! tokens included, as in the ledger; `input_cached_tokens` and `input_cache_write_tokens`
//! may be absent (older exports) and then count 0. Cost line items read
//! `"<model snapshot>, input|cached input|output"`; any other item is unattributed cost.

use keyward_core::Timestamp;
use serde_json::Value;

use super::cells::{csv_count, field, records, row_location, utc_day, Columns};
use super::decimal::amount_json;
use super::statement::{ExportError, ProviderStatement, TokenCounts};

const COMPLETIONS: &str = "organization.usage.completions.result";
const EMBEDDINGS: &str = "organization.usage.embeddings.result";
const COSTS: &str = "organization.costs.result";

pub(super) fn read_bucket(
    statement: &mut ProviderStatement,
    name: &str,
    path: &str,
    bucket: &Value,
) -> Result<(), ExportError> {
    let seconds = |key: &str| {
        bucket.get(key).and_then(Value::as_i64).ok_or_else(|| {
            ExportError::new(
                name,
                path,
                format!("`{key}` must be a Unix time in seconds"),
            )
        })
    };
    let start = seconds("start_time")?;
    let end = seconds("end_time")?;
    let day = Timestamp::from_unix_millis(start.saturating_mul(1000)).utc_date();
    let last_day =
        Timestamp::from_unix_millis(end.saturating_mul(1000).saturating_sub(1)).utc_date();
    if day != last_day {
        statement.warn(format!(
            "a bucket runs from {day} into {last_day}; its usage is counted on {day}: export with bucket_width=1d or 1h"
        ));
    }
    statement.cover_day(&day);
    let Some(Value::Array(results)) = bucket.get("results") else {
        return Err(ExportError::new(name, path, "`results` must be an array"));
    };
    let start_text = start.to_string();
    for (index, result) in results.iter().enumerate() {
        let at = format!("{path}.results[{index}]");
        let kind = result.get("object").and_then(Value::as_str).unwrap_or("");
        if !statement.first_sighting(kind, &start_text, result) {
            continue;
        }
        match kind {
            COMPLETIONS | EMBEDDINGS => read_usage_result(statement, name, &at, &day, result)?,
            COSTS => read_cost_result(statement, name, &at, &day, result)?,
            other => statement.warn(format!(
                "results of type `{other}` are not reconciled (only completions, embeddings and costs)"
            )),
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
    let count = |key: &str, required: bool| -> Result<u64, ExportError> {
        match result.get(key) {
            None | Some(Value::Null) if !required => Ok(0),
            None | Some(Value::Null) => {
                Err(ExportError::new(name, at, format!("`{key}` is missing")))
            }
            Some(value) => value.as_u64().ok_or_else(|| {
                ExportError::new(name, at, format!("`{key}` must be a whole number"))
            }),
        }
    };
    let model = model_of(result, name, at)?;
    let tokens = TokenCounts {
        input: count("input_tokens", true)?,
        cached_input: count("input_cached_tokens", false)?,
        cache_write: count("input_cache_write_tokens", false)?,
        output: count("output_tokens", false)?,
    };
    let requests = count("num_model_requests", true)?;
    statement.add_tokens(day, &model, tokens);
    statement.add_requests(day, &model, requests);
    Ok(())
}

fn model_of(result: &Value, name: &str, at: &str) -> Result<String, ExportError> {
    match result.get("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => Ok(model.trim().to_owned()),
        _ => Err(ExportError::new(
            name,
            at,
            "`model` is missing: export usage with group_by=model so it can be compared per model",
        )),
    }
}

fn read_cost_result(
    statement: &mut ProviderStatement,
    name: &str,
    at: &str,
    day: &str,
    result: &Value,
) -> Result<(), ExportError> {
    let amount = result.get("amount").unwrap_or(&Value::Null);
    let currency = amount
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or("usd");
    if !statement.accepts_currency(currency) {
        return Ok(());
    }
    let micro = amount
        .get("value")
        .and_then(|value| amount_json(value, 6))
        .ok_or_else(|| ExportError::new(name, at, "`amount.value` must be a decimal number"))?;
    match result.get("line_item").and_then(Value::as_str) {
        Some(item) => match line_item_model(item) {
            Some(model) => statement.add_cost(day, model, micro),
            None => statement.add_unattributed(day, item, micro),
        },
        None => {
            statement.warn(
                "costs not grouped by line_item cannot be compared per model: export costs with group_by=line_item"
                    .to_owned(),
            );
            statement.add_unattributed(day, "costs not grouped by line_item", micro);
        }
    }
    Ok(())
}

/// The model of a cost line item `"[tier | ]<model>[ audio|image|text], <piece>[, …]"`.
fn line_item_model(item: &str) -> Option<&str> {
    let (head, rest) = item.split_once(", ")?;
    let piece = rest.split(", ").next()?;
    if !matches!(piece, "input" | "cached input" | "output" | "cache write") {
        return None;
    }
    let model = head.rsplit_once(" | ").map_or(head, |(_, model)| model);
    let model = [" audio", " image", " text"]
        .iter()
        .find_map(|suffix| model.strip_suffix(suffix))
        .unwrap_or(model)
        .trim();
    (!model.is_empty() && !model.contains(' ')).then_some(model)
}

pub(super) fn recognises_usage_csv(columns: &Columns) -> bool {
    columns.has("num_model_requests")
        || (columns.has("input_tokens")
            && (columns.has("start_time") || columns.has("start_time_iso")))
}

/// The dashboard's usage CSV: one row per bucket and group, columns named as the API fields.
pub(super) fn read_usage_csv(
    statement: &mut ProviderStatement,
    name: &str,
    columns: &Columns,
    csv: &mut csv::Reader<impl std::io::Read>,
) -> Result<(), ExportError> {
    let model_at = columns.find(&["model"]);
    if model_at.is_none() {
        return Err(ExportError::new(
            name,
            "line 1",
            "no `model` column: export usage grouped by model so it can be compared per model",
        ));
    }
    let iso_at = columns.find(&["start_time_iso"]);
    let unix_at = columns.find(&["start_time"]);
    let input_at = columns.find(&["input_tokens"]);
    let cached_at = columns.find(&["input_cached_tokens"]);
    let write_at = columns.find(&["input_cache_write_tokens"]);
    let output_at = columns.find(&["output_tokens"]);
    let requests_at = columns.find(&["num_model_requests"]);
    for record in records(csv, name) {
        let record = record?;
        let at = row_location(&record);
        let day = match (field(&record, iso_at), field(&record, unix_at)) {
            (Some(iso), _) => utc_day(iso),
            (None, Some(unix)) => unix.parse::<i64>().ok().map(|seconds| {
                Timestamp::from_unix_millis(seconds.saturating_mul(1000)).utc_date()
            }),
            (None, None) => None,
        }
        .ok_or_else(|| {
            ExportError::new(name, &at, "`start_time` must be a date or Unix seconds")
        })?;
        statement.cover_day(&day);
        let Some(model) = field(&record, model_at) else {
            continue;
        };
        let count = |column, label| csv_count(&record, column, label, name, &at);
        let tokens = TokenCounts {
            input: count(input_at, "input_tokens")?,
            cached_input: count(cached_at, "input_cached_tokens")?,
            cache_write: count(write_at, "input_cache_write_tokens")?,
            output: count(output_at, "output_tokens")?,
        };
        let model = model.to_owned();
        statement.add_tokens(&day, &model, tokens);
        if requests_at.is_some() {
            let requests = count(requests_at, "num_model_requests")?;
            statement.add_requests(&day, &model, requests);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_items_name_their_model_or_nothing() {
        for (item, model) in [
            (
                "gpt-4o-mini-2024-07-18, input",
                Some("gpt-4o-mini-2024-07-18"),
            ),
            (
                "gpt-4o-mini-2024-07-18, cached input",
                Some("gpt-4o-mini-2024-07-18"),
            ),
            (
                "gpt-audio-mini-2025-12-15 audio, input",
                Some("gpt-audio-mini-2025-12-15"),
            ),
            ("priority | gpt-5.1, output, long context", Some("gpt-5.1")),
            ("web search tool calls", None),
            ("Vector storage", None),
            ("input_tokens", None),
            ("file search, tool calls", None),
        ] {
            assert_eq!(line_item_model(item), model, "{item}");
        }
    }
}
