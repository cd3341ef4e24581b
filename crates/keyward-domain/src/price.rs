//! The price book: dated list prices per provider and model, shipped in `prices/prices.toml`,
//! and the exact cost of a call in integer micro-dollars.
//!
//! Invariants:
//! - Every entry has an id, an effective date, a source and the date the source was read;
//!   two entries for one provider and model never share an effective date.
//! - Rates are parsed from decimal strings into micro-dollars per million tokens; no float
//!   ever touches money.
//! - A call's cost is computed once from its token counts, summed before a single rounding
//!   (half up) to whole micro-dollars. An unknown model has no cost (`None`), never a guess.

use std::collections::BTreeMap;

use keyward_core::{ProviderId, Timestamp};
use keyward_store::Settlement;

/// The shipped price book.
const PRICES: &str = include_str!("../../../prices/prices.toml");

/// Rates in micro-dollars per million tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub id: String,
    pub effective: String,
    pub input: u64,
    pub cached_input: Option<u64>,
    pub cache_write: Option<u64>,
    pub output: u64,
    /// The https URL the rate was read from (empty for a tenant's negotiated rate).
    pub source: String,
}

#[derive(Clone, Debug, Default)]
pub struct PriceBook {
    /// (provider, model) → entries, oldest first.
    entries: BTreeMap<(String, String), Vec<Price>>,
    /// Where the book was read from: `built-in` or the file's path.
    origin: String,
}

/// A price file refused, with the place in it: `FILE line N (entry ID): reason`.
#[derive(Debug, thiserror::Error)]
#[error("{file} line {line} (entry {entry}): {reason}")]
pub struct PriceBookError {
    pub file: String,
    /// 1-based; 0 when the file as a whole is refused.
    pub line: usize,
    pub entry: String,
    pub reason: String,
}

/// The file as a TOML table, or its syntax error with the line it is on.
fn toml_table(text: &str, file: &str) -> Result<toml::Table, PriceBookError> {
    text.parse().map_err(|err: toml::de::Error| PriceBookError {
        file: file.to_owned(),
        line: err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0),
        entry: "(file)".to_owned(),
        reason: "not valid TOML".to_owned(),
    })
}

/// The 1-based line of the first occurrence of `needle` in `text`, or 0.
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|at| text[..at].matches('\n').count() + 1)
        .unwrap_or(0)
}

/// `"0.075"` USD → 75 000 micro-dollars (at most six decimals).
fn micro_dollars(text: &str) -> Option<u64> {
    keyward_core::parse_usd(text).and_then(|micro| u64::try_from(micro).ok())
}

fn is_date(text: &str) -> bool {
    text.len() == 10 && Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")).is_ok()
}

impl PriceBook {
    /// The price book shipped with this build.
    pub fn shipped() -> Result<Self, PriceBookError> {
        Self::parse_file(PRICES, "built-in")
    }

    /// Reads a price file (`prices.path`): the same format as the shipped book.
    pub fn load(path: &std::path::Path) -> Result<Self, PriceBookError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| PriceBookError {
            file: name.clone(),
            line: 0,
            entry: "(file)".to_owned(),
            reason: format!("cannot be read: {err}"),
        })?;
        Self::parse_file(&text, &name)
    }

    pub fn parse(text: &str) -> Result<Self, PriceBookError> {
        Self::parse_file(text, "prices.toml")
    }

    /// Where this book was read from: `built-in` or a file's path.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every entry, as (provider, model, price), by provider, model and date.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &Price)> {
        self.entries.iter().flat_map(|((provider, model), prices)| {
            prices
                .iter()
                .map(move |price| (provider.as_str(), model.as_str(), price))
        })
    }

    fn parse_file(text: &str, file: &str) -> Result<Self, PriceBookError> {
        let fail = |entry: &str, reason: &str| PriceBookError {
            file: file.to_owned(),
            line: line_of(text, &format!("\"{entry}\"")),
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        };
        let table = toml_table(text, file)?;
        let items = table
            .get("price")
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut book = Self::default();
        for item in items {
            let field = |name: &str| {
                item.get(name)
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned)
            };
            let id = field("id").ok_or_else(|| fail("(unnamed)", "every entry needs an id"))?;
            let provider = field("provider")
                .filter(|provider| provider.parse::<ProviderId>().is_ok())
                .ok_or_else(|| fail(&id, "provider must be a SPEC provider id"))?;
            let model = field("model")
                .filter(|model| !model.is_empty())
                .ok_or_else(|| fail(&id, "model is required"))?;
            let effective = field("effective")
                .filter(|date| is_date(date))
                .ok_or_else(|| fail(&id, "effective must be a date YYYY-MM-DD"))?;
            let source = field("source")
                .filter(|source| source.starts_with("https://"))
                .ok_or_else(|| fail(&id, "source must be the https URL the rate was read from"))?;
            field("read_on")
                .filter(|date| is_date(date))
                .ok_or_else(|| fail(&id, "read_on must be the date the source was read"))?;
            let rate = |name: &str| -> Result<Option<u64>, PriceBookError> {
                field(name)
                    .map(|text| {
                        micro_dollars(&text).ok_or_else(|| {
                            fail(
                                &id,
                                &format!(
                                    "{name} must be a decimal string of USD per million tokens"
                                ),
                            )
                        })
                    })
                    .transpose()
            };
            let price = Price {
                input: rate("input")?.ok_or_else(|| fail(&id, "input is required"))?,
                output: rate("output")?.ok_or_else(|| fail(&id, "output is required"))?,
                cached_input: rate("cached_input")?,
                cache_write: rate("cache_write")?,
                effective: effective.clone(),
                id: id.clone(),
                source,
            };
            let entries = book.entries.entry((provider, model)).or_default();
            if entries
                .iter()
                .any(|existing| existing.effective == effective)
            {
                return Err(fail(
                    &id,
                    "another entry for this provider and model has the same effective date",
                ));
            }
            entries.push(price);
            entries.sort_by(|a, b| a.effective.cmp(&b.effective));
        }
        book.origin = file.to_owned();
        Ok(book)
    }

    /// The entry in force on `date` (`YYYY-MM-DD`).
    pub fn lookup(&self, provider: ProviderId, model: &str, date: &str) -> Option<&Price> {
        self.entries
            .get(&(provider.as_str().to_owned(), model.to_owned()))?
            .iter()
            .rev()
            .find(|price| price.effective.as_str() <= date)
    }
}

/// A tenant's negotiated rate, as an admin sets it: decimal USD per million tokens.
#[derive(Clone, Debug)]
pub struct TenantPriceInput {
    pub provider: String,
    pub model: String,
    /// `YYYY-MM-DD`; today (UTC) when absent.
    pub effective: Option<String>,
    pub input: String,
    pub cached_input: Option<String>,
    pub cache_write: Option<String>,
    pub output: String,
}

impl crate::Keyward {
    /// The rate a call made at `at` pays: the tenant's negotiated rate if it set one, else the
    /// shipped price book's. A store failure falls back to the book (the call's ledger write
    /// will report the store).
    pub(crate) async fn price_in_force(
        &self,
        tenant: keyward_core::TenantId,
        provider: ProviderId,
        model: &str,
        at: Timestamp,
    ) -> Option<Price> {
        let date = at.utc_date();
        let rates = match self.tenant_rates.get(tenant) {
            Some(rates) => Some(rates),
            None => match self.store.tenant_prices(tenant).await {
                Ok(rates) => Some(self.tenant_rates.put(tenant, rates)),
                Err(err) => {
                    tracing::warn!(error = %err, "tenant prices unreadable; using the price book");
                    None
                }
            },
        };
        let negotiated = rates.as_deref().and_then(|rates| {
            rates
                .iter()
                .filter(|rate| {
                    rate.provider == provider.as_str()
                        && rate.model == model
                        && rate.effective.as_str() <= date.as_str()
                })
                .max_by(|a, b| a.effective.cmp(&b.effective))
        });
        if let Some(record) = negotiated {
            return Some(Price::from_tenant(record));
        }
        self.price_book().lookup(provider, model, &date).cloned()
    }

    /// Sets a tenant's negotiated rate; calls from `effective` on are priced with it (on this
    /// process at once, on other replicas within [`TENANT_RATES_TTL`]).
    pub async fn set_tenant_price(
        &self,
        scope: &crate::TenantScope,
        input: TenantPriceInput,
    ) -> Result<keyward_store::TenantPriceRecord, crate::DomainError> {
        use crate::DomainError;
        let provider: ProviderId = input
            .provider
            .parse()
            .map_err(|_| DomainError::invalid("provider", "a provider id such as `openai`"))?;
        if input.model.is_empty() || input.model.len() > 200 {
            return Err(DomainError::invalid(
                "model",
                "the provider's model name, 1 to 200 characters",
            ));
        }
        let effective = input
            .effective
            .unwrap_or_else(|| Timestamp::now().utc_date());
        if !is_date(&effective) {
            return Err(DomainError::invalid("effective", "a date YYYY-MM-DD"));
        }
        let rate = |field: &str, text: &str| {
            keyward_core::parse_usd(text).ok_or_else(|| {
                DomainError::invalid(
                    field,
                    "USD per million tokens as a decimal string, such as \"2.50\"",
                )
            })
        };
        let record = keyward_store::TenantPriceRecord {
            tenant_id: scope.tenant().to_string(),
            provider: provider.as_str().to_owned(),
            model: input.model,
            effective,
            input_micro_usd: rate("input", &input.input)?,
            cached_input_micro_usd: input
                .cached_input
                .as_deref()
                .map(|text| rate("cached_input", text))
                .transpose()?,
            cache_write_micro_usd: input
                .cache_write
                .as_deref()
                .map(|text| rate("cache_write", text))
                .transpose()?,
            output_micro_usd: rate("output", &input.output)?,
            created_at: Timestamp::now().unix_millis(),
        };
        self.store.put_tenant_price(&record).await?;
        self.tenant_rates.forget(scope.tenant());
        self.audit(
            scope,
            "price.set",
            &format!("{}/{}", record.provider, record.model),
            serde_json::json!({"effective": record.effective, "input": input.input, "output": input.output}),
        )
        .await;
        Ok(record)
    }

    pub async fn tenant_prices(
        &self,
        scope: &crate::TenantScope,
    ) -> Result<Vec<keyward_store::TenantPriceRecord>, crate::DomainError> {
        Ok(self.store.tenant_prices(scope.tenant()).await?)
    }
}

impl Price {
    /// A tenant's negotiated rate, as a price entry (`tenant:PROVIDER/MODEL/EFFECTIVE`).
    pub(crate) fn from_tenant(record: &keyward_store::TenantPriceRecord) -> Self {
        let rate = |micro: i64| u64::try_from(micro).unwrap_or(0);
        Self {
            id: format!(
                "tenant:{}/{}/{}",
                record.provider, record.model, record.effective
            ),
            effective: record.effective.clone(),
            input: rate(record.input_micro_usd),
            cached_input: record.cached_input_micro_usd.map(rate),
            cache_write: record.cache_write_micro_usd.map(rate),
            output: rate(record.output_micro_usd),
            source: String::new(),
        }
    }

    /// The exact cost of the settlement's token counts, rounded once (half up); `None` when
    /// the provider reported no input count.
    pub fn cost(&self, settlement: &Settlement) -> Option<i64> {
        let input = settlement.input_tokens?;
        let output = settlement.output_tokens.unwrap_or(0);
        let cached = settlement.cached_input_tokens.unwrap_or(0);
        let written = settlement.cache_write_tokens.unwrap_or(0);
        let uncached = input.saturating_sub(cached).saturating_sub(written);
        let total = u128::from(uncached) * u128::from(self.input)
            + u128::from(cached) * u128::from(self.cached_input.unwrap_or(self.input))
            + u128::from(written) * u128::from(self.cache_write.unwrap_or(self.input))
            + u128::from(output) * u128::from(self.output);
        i64::try_from((total + 500_000) / 1_000_000).ok()
    }

    /// Sets the settlement's cost and price id.
    pub(crate) fn apply(&self, settlement: &mut Settlement) {
        if let Some(cost) = self.cost(settlement) {
            settlement.cost_micro_usd = Some(cost);
            settlement.price_id = Some(self.id.clone());
        }
    }

    /// The most a call can cost: every input token at the dearest input rate (a cache write
    /// can cost more than a plain input token) and `max_output` tokens of output, rounded up.
    pub fn worst_case(&self, input_tokens: u64, max_output: u64) -> i64 {
        let input_rate = self.input.max(self.cache_write.unwrap_or(0));
        let total = u128::from(input_tokens) * u128::from(input_rate)
            + u128::from(max_output) * u128::from(self.output);
        i64::try_from(total.div_ceil(1_000_000)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOK: &str = r#"
[[price]]
id = "openai/gpt-4o-mini/2024-07-18"
provider = "openai"
model = "gpt-4o-mini"
effective = "2024-07-18"
input = "0.15"
cached_input = "0.075"
output = "0.60"
source = "https://openai.com/api/pricing/"
read_on = "2026-11-23"

[[price]]
id = "openai/gpt-4o-mini/2026-01-01"
provider = "openai"
model = "gpt-4o-mini"
effective = "2026-01-01"
input = "0.10"
output = "0.40"
source = "https://openai.com/api/pricing/"
read_on = "2026-11-23"
"#;

    #[test]
    fn the_shipped_book_loads() {
        PriceBook::shipped().unwrap();
    }

    #[test]
    fn decimal_rates_become_exact_micro_dollars() {
        assert_eq!(micro_dollars("0.075"), Some(75_000));
        assert_eq!(micro_dollars("15"), Some(15_000_000));
        assert_eq!(micro_dollars("3.000001"), Some(3_000_001));
        assert_eq!(micro_dollars("0.0000001"), None);
        assert_eq!(micro_dollars("1e3"), None);
        assert_eq!(micro_dollars("-1"), None);
    }

    #[test]
    fn the_entry_in_force_on_the_call_date_prices_it() {
        let book = PriceBook::parse(BOOK).unwrap();
        assert_eq!(
            book.lookup(ProviderId::OpenAi, "gpt-4o-mini", "2025-06-01")
                .unwrap()
                .input,
            150_000
        );
        assert_eq!(
            book.lookup(ProviderId::OpenAi, "gpt-4o-mini", "2026-11-23")
                .unwrap()
                .input,
            100_000
        );
        assert!(book
            .lookup(ProviderId::OpenAi, "gpt-4o-mini", "2024-01-01")
            .is_none());
        assert!(book
            .lookup(ProviderId::OpenAi, "unknown", "2026-11-23")
            .is_none());
    }

    /// Prices a settlement as the gateway does: the entry in force on the call's date.
    fn price(
        book: &PriceBook,
        provider: ProviderId,
        model: &str,
        at: Timestamp,
        settlement: &mut Settlement,
    ) {
        if let Some(price) = book.lookup(provider, model, &at.utc_date()) {
            price.apply(settlement);
        }
    }

    #[test]
    fn costs_sum_before_one_rounding() {
        let book = PriceBook::parse(BOOK).unwrap();
        let at = Timestamp::parse_rfc3339("2025-06-01T12:00:00Z").unwrap();
        let mut settlement = Settlement {
            input_tokens: Some(1000),
            cached_input_tokens: Some(400),
            output_tokens: Some(200),
            ..Settlement::default()
        };
        price(
            &book,
            ProviderId::OpenAi,
            "gpt-4o-mini",
            at,
            &mut settlement,
        );
        // 600 × 0.15 + 400 × 0.075 + 200 × 0.60 = 90 + 30 + 120 = 240 micro-dollars.
        assert_eq!(settlement.cost_micro_usd, Some(240));
        assert_eq!(
            settlement.price_id.as_deref(),
            Some("openai/gpt-4o-mini/2024-07-18")
        );
        let mut tiny = Settlement {
            input_tokens: Some(5),
            output_tokens: Some(6),
            ..Settlement::default()
        };
        price(&book, ProviderId::OpenAi, "gpt-4o-mini", at, &mut tiny);
        // 5 × 0.15 + 6 × 0.60 = 4.35 → 4.
        assert_eq!(tiny.cost_micro_usd, Some(4));
        let mut unknown = Settlement {
            input_tokens: Some(5),
            ..Settlement::default()
        };
        price(&book, ProviderId::OpenAi, "nope", at, &mut unknown);
        assert_eq!((unknown.cost_micro_usd, unknown.price_id), (None, None));
    }

    #[test]
    fn the_worst_case_rounds_up_and_bounds_every_real_cost() {
        let book = PriceBook::parse(BOOK).unwrap();
        let price = book
            .lookup(ProviderId::OpenAi, "gpt-4o-mini", "2025-06-01")
            .unwrap();
        // 10 × 0.15 + 5 × 0.60 = 4.5 → 5 (up, never down).
        assert_eq!(price.worst_case(10, 5), 5);
        for (input, cached, output) in [(10, 0, 5), (10, 10, 0), (10, 3, 5), (0, 0, 5)] {
            let settlement = Settlement {
                input_tokens: Some(input),
                cached_input_tokens: Some(cached),
                output_tokens: Some(output),
                ..Settlement::default()
            };
            assert!(price.cost(&settlement).unwrap() <= price.worst_case(10, 5));
        }
    }

    #[test]
    fn undated_unsourced_or_duplicate_entries_are_refused() {
        let undated = BOOK.replacen("effective = \"2024-07-18\"\n", "", 1);
        assert!(PriceBook::parse(&undated)
            .unwrap_err()
            .reason
            .contains("effective"));
        let unsourced = BOOK.replacen("source = \"https://openai.com/api/pricing/\"\n", "", 1);
        assert!(PriceBook::parse(&unsourced)
            .unwrap_err()
            .reason
            .contains("source"));
        let duplicate = BOOK.replace("2026-01-01", "2024-07-18");
        assert!(PriceBook::parse(&duplicate)
            .unwrap_err()
            .reason
            .contains("same effective date"));
    }
}

/// How long a replica reuses a tenant's negotiated rates before reading them again: a rate set
/// on another replica applies here within this time (on this replica, at once).
pub const TENANT_RATES_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Tenants whose rates are held at once; past it the cache starts over.
const TENANT_RATES_ENTRIES: usize = 10_000;

type Rates = std::sync::Arc<Vec<keyward_store::TenantPriceRecord>>;

/// Each tenant's negotiated rates, read once per [`TENANT_RATES_TTL`] instead of once per call.
#[derive(Debug, Default)]
pub(crate) struct TenantRates {
    entries: std::sync::Mutex<
        std::collections::HashMap<keyward_core::TenantId, (std::time::Instant, Rates)>,
    >,
}

impl TenantRates {
    fn get(&self, tenant: keyward_core::TenantId) -> Option<Rates> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&tenant)
            .filter(|(read_at, _)| read_at.elapsed() < TENANT_RATES_TTL)
            .map(|(_, rates)| rates.clone())
    }

    fn put(
        &self,
        tenant: keyward_core::TenantId,
        rates: Vec<keyward_store::TenantPriceRecord>,
    ) -> Rates {
        let rates = Rates::new(rates);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= TENANT_RATES_ENTRIES {
                entries.clear();
            }
            entries.insert(tenant, (std::time::Instant::now(), rates.clone()));
        }
        rates
    }

    /// Forgets a tenant's rates after a change on this replica.
    pub(crate) fn forget(&self, tenant: keyward_core::TenantId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&tenant);
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A price's worst case and the cost of a call of `tokens` in and `output` out are never
    /// negative (a wrapped sum would be).
    fn never_negative(price: &Price, tokens: u64, output: u64) -> Result<(), TestCaseError> {
        prop_assert!(price.worst_case(tokens, output) >= 0);
        let settlement = Settlement {
            input_tokens: Some(tokens),
            output_tokens: Some(output),
            ..Settlement::default()
        };
        prop_assert!(price.cost(&settlement).is_none_or(|cost| cost >= 0));
        Ok(())
    }

    /// Lines shaped like a price book's, in any order and with any values.
    fn price_file() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "id",
            "provider",
            "model",
            "effective",
            "input",
            "cached_input",
            "cache_write",
            "output",
            "source",
            "read_on",
        ]);
        let value = prop_oneof![
            "\"[0-9.]{0,30}\"",
            "\"(openai|anthropic|bedrock|mistral|groq|x)\"",
            "\"20[0-9]{2}-[0-1][0-9]-[0-3][0-9]\"",
            "\".{0,16}\"",
            "-?[0-9]{1,25}",
            Just("\"99999999999999999999999999.999999\"".to_owned()),
        ];
        let line = (key, value).prop_map(|(key, value)| format!("{key} = {value}"));
        let entry = prop::collection::vec(line, 0..10)
            .prop_map(|lines| format!("[[price]]\n{}\n", lines.join("\n")));
        prop::collection::vec(entry, 0..4).prop_map(|entries| entries.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A valid entry for model `m` with any rates, however large or fine-grained.
        #[test]
        fn costs_and_worst_cases_never_go_negative_or_wrap(
            input in "[0-9]{1,12}(\\.[0-9]{1,6})?",
            output in "[0-9]{1,12}(\\.[0-9]{1,6})?",
            tokens in any::<u64>(),
            max_output in any::<u64>(),
        ) {
            let text = format!(
                "[[price]]\nid = \"openai/m/2020-01-01\"\nprovider = \"openai\"\nmodel = \"m\"\neffective = \"2020-01-01\"\ninput = \"{input}\"\noutput = \"{output}\"\nsource = \"https://example.com\"\nread_on = \"2020-01-01\"\n"
            );
            let book = PriceBook::parse(&text);
            prop_assert!(book.is_ok(), "{text}: {:?}", book.err());
            let book = book.unwrap();
            let price = book.lookup(ProviderId::OpenAi, "m", "2030-01-01");
            prop_assert!(price.is_some());
            let price = price.unwrap();
            never_negative(price, tokens, max_output)?;
        }

        /// Any price file is refused with a reason or read; a read price never gives a
        /// negative cost or worst case, however large the rates and counts (#23).
        #[test]
        fn any_price_file_is_read_or_refused_and_costs_stay_positive(
            text in price_file(),
            tokens in any::<u64>(),
            max_output in any::<u64>(),
        ) {
            let Ok(book) = PriceBook::parse(&text) else { return Ok(()) };
            for provider in [ProviderId::OpenAi, ProviderId::Anthropic, ProviderId::Bedrock] {
                for model in ["", "x", "m"] {
                    if let Some(price) = book.lookup(provider, model, "2030-01-01") {
                        never_negative(price, tokens, max_output)?;
                    }
                }
            }
        }
    }
}
