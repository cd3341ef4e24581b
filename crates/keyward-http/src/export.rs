//! Usage exports shared by the admin API and the CLI: per-call rows streamed page by page, and
//! grouped totals, as JSON (`{"data": [...], "next_cursor": null}`) or CSV with the same
//! columns.
//!
//! Invariant: a per-call export holds one store page ([`USAGE_PAGE`] rows) at a time; a store
//! failure yields an error chunk, never a silently short export.

use std::collections::HashMap;

use keyward_core::Timestamp;
use keyward_domain::{DomainError, Keyward, TenantScope, UsageGroup, USAGE_PAGE};

use crate::views::{UsageGroupView, UsageRowView, USAGE_GROUP_COLUMNS, USAGE_ROW_COLUMNS};

/// How an export is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
}

/// One call as its usage row, its department named.
pub(crate) fn usage_row(
    call: keyward_domain::CallRecord,
    departments: &HashMap<String, String>,
) -> UsageRowView {
    let department = call
        .department_id
        .as_ref()
        .and_then(|id| departments.get(id))
        .cloned();
    UsageRowView::new(call, department)
}

/// A per-call usage export, produced chunk by chunk (one store page per chunk).
pub struct UsageExport {
    keyward: Keyward,
    scope: TenantScope,
    range: (Timestamp, Timestamp),
    format: ExportFormat,
    departments: HashMap<String, String>,
    after: Option<String>,
    first_row: bool,
    stage: Stage,
}

enum Stage {
    Start,
    Rows,
    Done,
}

impl UsageExport {
    /// Starts an export of the tenant's calls in `range`.
    pub async fn new(
        keyward: Keyward,
        scope: TenantScope,
        range: (Timestamp, Timestamp),
        format: ExportFormat,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            departments: keyward.department_names(&scope).await?,
            keyward,
            scope,
            range,
            format,
            after: None,
            first_row: true,
            stage: Stage::Start,
        })
    }

    /// The next chunk of the body, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<String, std::io::Error>> {
        match self.stage {
            Stage::Start => {
                self.stage = Stage::Rows;
                Some(Ok(match self.format {
                    ExportFormat::Json => "{\"data\":[".to_owned(),
                    ExportFormat::Csv => format!("{}\n", USAGE_ROW_COLUMNS.join(",")),
                }))
            }
            Stage::Rows => {
                let page = match self
                    .keyward
                    .usage_page(&self.scope, self.range, self.after.as_deref())
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::error!(error = %err, "usage export failed mid-stream; response aborted");
                        self.stage = Stage::Done;
                        return Some(Err(std::io::Error::other("usage export failed")));
                    }
                };
                if page.len() < USAGE_PAGE as usize {
                    self.stage = Stage::Done;
                }
                self.after = page.last().map(|call| call.request_id.clone());
                let mut chunk = String::with_capacity(page.len() * 512);
                for call in page {
                    let row = usage_row(call, &self.departments);
                    match self.format {
                        ExportFormat::Csv => chunk.push_str(&row.csv_line()),
                        ExportFormat::Json => {
                            if !std::mem::take(&mut self.first_row) {
                                chunk.push(',');
                            }
                            chunk.push_str(&serde_json::to_string(&row).unwrap_or_default());
                        }
                    }
                }
                if matches!(self.stage, Stage::Done) && self.format == ExportFormat::Json {
                    chunk.push_str("],\"next_cursor\":null}");
                }
                Some(Ok(chunk))
            }
            Stage::Done => None,
        }
    }
}

/// Grouped totals as one document.
pub fn render_groups(groups: Vec<UsageGroup>, format: ExportFormat) -> String {
    let groups: Vec<UsageGroupView> = groups.into_iter().map(UsageGroupView::from).collect();
    match format {
        ExportFormat::Json => serde_json::json!({"data": groups, "next_cursor": null}).to_string(),
        ExportFormat::Csv => {
            let mut body = format!("{}\n", USAGE_GROUP_COLUMNS.join(","));
            for group in &groups {
                body.push_str(&group.csv_line());
            }
            body
        }
    }
}
