//! `keyward prices check FILE`: validates a price file (the format of `prices/prices.toml`)
//! before it is put in `prices.path`; needs no configuration, store or key.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use keyward_domain::PriceBook;

use crate::output::{Output, Table};

#[derive(Subcommand, Debug)]
pub enum PricesCommand {
    /// Validate a price file: every entry dated, sourced, with decimal rates, a known provider
    /// and no two entries of one model on the same date. Exits non-zero naming the line.
    Check {
        /// The price file.
        file: PathBuf,
    },
}

pub fn prices(output: &Output, command: PricesCommand) -> anyhow::Result<()> {
    match command {
        PricesCommand::Check { file } => {
            let book = PriceBook::load(&file).context("the price file is refused")?;
            let entries = book.entries().count();
            let mut models: Vec<(&str, &str)> = book
                .entries()
                .map(|(provider, model, _)| (provider, model))
                .collect();
            models.dedup();
            let summary = serde_json::json!({
                "file": file.display().to_string(),
                "valid": true,
                "entries": entries,
                "models": models.len(),
            });
            output.emit(&summary, || {
                Table::new(vec!["file", "entries", "models", "valid"]).row(vec![
                    file.display().to_string(),
                    entries.to_string(),
                    models.len().to_string(),
                    "yes".to_owned(),
                ])
            })
        }
    }
}
