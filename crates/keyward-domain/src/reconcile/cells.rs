//! CSV cells and rows of provider exports, read with errors that name a position (`line N`,
//! a column) and never a value.

use std::collections::BTreeMap;
use std::io::Read;

use super::statement::ExportError;

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
    pub(super) fn new(header: &csv::StringRecord) -> Self {
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
