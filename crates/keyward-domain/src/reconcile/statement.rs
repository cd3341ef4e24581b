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
use std::io::{BufRead, BufReader, Read};

use keyward_core::ProviderId;
use serde_json::Value;

use super::model_name::canonical;
use super::{anthropic, aws_cur, openai};

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

    /// Reads one export file: JSON (one page, an array of pages, or one page per line) or CSV
    /// (recognised by its header). `name` labels errors.
    pub fn read(&mut self, name: &str, reader: impl Read) -> Result<(), ExportError> {
        let mut reader = BufReader::new(reader);
        let first = first_significant_byte(&mut reader)
            .map_err(|err| ExportError::new(name, "", format!("cannot be read: {err}")))?;
        match first {
            None => Err(ExportError::new(name, "", "the export is empty")),
            Some(b'{' | b'[') => {
                for (index, value) in serde_json::Deserializer::from_reader(reader)
                    .into_iter::<Value>()
                    .enumerate()
                {
                    let value = value.map_err(|err| {
                        ExportError::new(
                            name,
                            format!("line {} column {}", err.line(), err.column()),
                            "malformed JSON",
                        )
                    })?;
                    self.read_json_document(name, &value, &format!("document {}", index + 1))?;
                }
                Ok(())
            }
            Some(_) => self.read_csv(name, reader),
        }
    }

    /// Reads an export already parsed as JSON: a page or an array of pages.
    pub fn read_json(&mut self, name: &str, value: &Value) -> Result<(), ExportError> {
        self.read_json_document(name, value, "")
    }

    fn read_json_document(
        &mut self,
        name: &str,
        value: &Value,
        at: &str,
    ) -> Result<(), ExportError> {
        match value {
            Value::Array(pages) => {
                for (index, page) in pages.iter().enumerate() {
                    self.read_json_page(name, page, &join_path(at, &format!("[{index}]")))?;
                }
                Ok(())
            }
            page => self.read_json_page(name, page, at),
        }
    }

    fn read_json_page(&mut self, name: &str, page: &Value, at: &str) -> Result<(), ExportError> {
        let buckets: Vec<(String, &Value)> =
            match (page.get("data"), page.get("results")) {
                (Some(Value::Array(buckets)), _) => buckets
                    .iter()
                    .enumerate()
                    .map(|(index, bucket)| (join_path(at, &format!("data[{index}]")), bucket))
                    .collect(),
                // A single bucket.
                (None, Some(Value::Array(_))) => vec![(at.to_owned(), page)],
                _ => return Err(ExportError::new(
                    name,
                    at,
                    "not a usage or cost page: expected an object with a `data` array of buckets",
                )),
            };
        for (path, bucket) in buckets {
            if bucket.get("start_time").is_some() {
                self.expect_provider(name, ProviderId::OpenAi, "an OpenAI usage or costs")?;
                openai::read_bucket(self, name, &path, bucket)?;
            } else if bucket.get("starting_at").is_some() {
                self.expect_provider(
                    name,
                    ProviderId::Anthropic,
                    "an Anthropic usage or cost report",
                )?;
                anthropic::read_bucket(self, name, &path, bucket)?;
            } else {
                return Err(ExportError::new(
                    name,
                    path,
                    "a bucket needs `start_time` (OpenAI) or `starting_at` (Anthropic)",
                ));
            }
        }
        Ok(())
    }

    fn read_csv(&mut self, name: &str, reader: impl Read) -> Result<(), ExportError> {
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = csv
            .headers()
            .map_err(|err| ExportError::new(name, "line 1", csv_reason(&err)))?
            .clone();
        let columns = Columns::new(&header);
        if aws_cur::recognises(&columns) {
            self.expect_provider(name, ProviderId::Bedrock, "an AWS Cost and Usage Report")?;
            aws_cur::read(self, name, &columns, &mut csv)
        } else if anthropic::recognises_usage_csv(&columns) {
            self.expect_provider(name, ProviderId::Anthropic, "an Anthropic Console usage")?;
            anthropic::read_usage_csv(self, name, &columns, &mut csv)
        } else if anthropic::recognises_cost_csv(&columns) {
            self.expect_provider(name, ProviderId::Anthropic, "an Anthropic Console cost")?;
            anthropic::read_cost_csv(self, name, &columns, &mut csv)
        } else if openai::recognises_usage_csv(&columns) {
            self.expect_provider(name, ProviderId::OpenAi, "an OpenAI usage")?;
            openai::read_usage_csv(self, name, &columns, &mut csv)
        } else {
            Err(ExportError::new(
                name,
                "line 1",
                "unrecognised CSV header: expected an AWS Cost and Usage Report (lineItem/… or line_item_… columns), an Anthropic Console usage or cost export, or an OpenAI usage export",
            ))
        }
    }

    fn expect_provider(
        &self,
        name: &str,
        found: ProviderId,
        what: &str,
    ) -> Result<(), ExportError> {
        if self.provider == found {
            return Ok(());
        }
        Err(ExportError::new(
            name,
            "",
            format!(
                "this is {what} export; reconcile it with provider `{}`, not `{}`",
                found.as_str(),
                self.provider.as_str()
            ),
        ))
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

/// The first byte that is neither whitespace nor a UTF-8 byte-order mark, left unconsumed.
fn first_significant_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    let mut at_start = true;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        if at_start && buffer.starts_with(&[0xEF, 0xBB, 0xBF]) {
            reader.consume(3);
            at_start = false;
            continue;
        }
        at_start = false;
        match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(skip) => {
                let byte = buffer[skip];
                reader.consume(skip);
                return Ok(Some(byte));
            }
            None => {
                let len = buffer.len();
                reader.consume(len);
            }
        }
    }
}

fn join_path(at: &str, next: &str) -> String {
    match (at.is_empty(), next.starts_with('[')) {
        (true, _) => next.to_owned(),
        (false, true) => format!("{at}{next}"),
        (false, false) => format!("{at}.{next}"),
    }
}

/// A CSV error described by position only.
pub(crate) fn csv_reason(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::Io(err) => format!("cannot be read: {err}"),
        csv::ErrorKind::Utf8 { .. } => "a field is not valid UTF-8".to_owned(),
        _ => "malformed CSV".to_owned(),
    }
}

/// A CSV header's column positions by name.
pub(crate) struct Columns {
    index: BTreeMap<String, usize>,
}

impl Columns {
    fn new(header: &csv::StringRecord) -> Self {
        Self {
            index: header
                .iter()
                .enumerate()
                .map(|(index, name)| (name.trim().to_owned(), index))
                .collect(),
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The position of the first of `names` the header has.
    pub(crate) fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|name| self.index.get(*name).copied())
    }
}

/// A record's field at an optional position, trimmed; empty fields are absent.
pub(crate) fn field(record: &csv::StringRecord, at: Option<usize>) -> Option<&str> {
    at.and_then(|at| record.get(at))
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// `YYYY-MM-DD` from a date or a date-time at its start, validated.
pub(crate) fn utc_day(text: &str) -> Option<String> {
    let day = text.get(..10)?;
    keyward_core::Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z")).ok()?;
    Some(day.to_owned())
}

/// A CSV export's rows, with read errors named by position.
pub(crate) fn records<'a>(
    csv: &'a mut csv::Reader<impl Read>,
    name: &'a str,
) -> impl Iterator<Item = Result<csv::StringRecord, ExportError>> + 'a {
    csv.records()
        .map(move |record| record.map_err(|err| ExportError::new(name, "", csv_reason(&err))))
}

/// A whole-number CSV cell; an empty or absent cell counts 0.
pub(crate) fn csv_count(
    record: &csv::StringRecord,
    column: Option<usize>,
    label: &str,
    name: &str,
    at: &str,
) -> Result<u64, ExportError> {
    match field(record, column) {
        None => Ok(0),
        Some(text) => super::decimal::count(text, 0)
            .ok_or_else(|| ExportError::new(name, at, format!("`{label}` must be a whole number"))),
    }
}

/// A CSV row's position for errors: `line N`.
pub(crate) fn row_location(record: &csv::StringRecord) -> String {
    record.position().map_or_else(
        || "a row".to_owned(),
        |position| format!("line {}", position.line()),
    )
}
