//! CLI output: `--format json` prints exactly one JSON document (the admin API's shapes);
//! `table` prints aligned columns for people.

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// Only for `keyward usage`: SPEC's usage columns.
    Csv,
}

pub(crate) struct Output {
    pub format: Format,
}

impl Output {
    /// Prints `document` as JSON, or the table built from it.
    pub(crate) fn emit<T: Serialize>(
        &self,
        document: &T,
        table: impl FnOnce() -> Table,
    ) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        match self.format {
            Format::Json => {
                serde_json::to_writer_pretty(&mut stdout, document)?;
                writeln!(stdout)?;
            }
            Format::Table => table().write(&mut stdout)?,
            Format::Csv => anyhow::bail!(
                "--format csv applies to `keyward usage` only; use table or json here"
            ),
        }
        Ok(())
    }
}

pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    footer: Option<String>,
}

impl Table {
    pub(crate) fn new(header: Vec<&'static str>) -> Self {
        Self {
            header,
            rows: Vec::new(),
            footer: None,
        }
    }

    pub(crate) fn row(mut self, cells: Vec<String>) -> Self {
        self.rows.push(cells);
        self
    }

    pub(crate) fn rows(mut self, rows: impl IntoIterator<Item = Vec<String>>) -> Self {
        self.rows.extend(rows);
        self
    }

    pub(crate) fn footer(mut self, footer: impl Into<String>) -> Self {
        self.footer = Some(footer.into());
        self
    }

    pub(crate) fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|title| title.len()).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        writeln!(out, "{}", line(self.header.clone()))?;
        for row in &self.rows {
            writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
        }
        if let Some(footer) = &self.footer {
            writeln!(out, "{footer}")?;
        }
        Ok(())
    }
}

/// `-` for an absent value.
pub(crate) fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}
