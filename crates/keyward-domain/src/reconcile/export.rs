//! Reading one export file into a [`ProviderStatement`]: JSON (one page, an array of pages, or
//! one page per line) or CSV, recognised by its shape and handed to the provider's reader.
//!
//! Invariants:
//! - An export of another provider than the statement's is refused by name, never read.
//! - Errors name the export and a position (line, JSON path), never a value.

use std::io::{BufRead, BufReader, Read};

use keyward_core::ProviderId;
use serde_json::Value;

use super::cells::{csv_reason, Columns};
use super::statement::{ExportError, ProviderStatement};
use super::{anthropic, aws_cur, openai};

impl ProviderStatement {
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
        if self.provider() == found {
            return Ok(());
        }
        Err(ExportError::new(
            name,
            "",
            format!(
                "this is {what} export; reconcile it with provider `{}`, not `{}`",
                found.as_str(),
                self.provider().as_str()
            ),
        ))
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
