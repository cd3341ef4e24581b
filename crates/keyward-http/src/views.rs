//! The JSON shapes of Keyward's admin objects, shared by the admin API and the CLI's
//! `--format json`, so both print the same document. No view has a field that could hold a
//! secret: credentials show a fingerprint, platform keys a prefix (the issued key appears only
//! in [`IssuedKeyView`], once).

use std::collections::BTreeMap;

use keyward_core::{format_usd, Timestamp};
use keyward_domain::{
    AuditRecord, BudgetStatus, CallRecord, CredentialRecord, DepartmentRecord, Difference,
    IssuedPlatformKey, LedgerLine, MasterKeyStatus, PlatformKeyRecord, ProviderLine,
    Reconciliation, TenantPriceRecord, TenantRecord, UsageGroup,
};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

impl From<TenantRecord> for TenantView {
    fn from(tenant: TenantRecord) -> Self {
        Self {
            id: tenant.id.to_string(),
            name: tenant.name,
            created_at: tenant.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DepartmentView {
    pub id: String,
    pub name: String,
    pub models: Option<Vec<String>>,
    pub created_at: String,
}

impl From<DepartmentRecord> for DepartmentView {
    fn from(department: DepartmentRecord) -> Self {
        Self {
            id: department.id.to_string(),
            name: department.name,
            models: department.models,
            created_at: department.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    pub id: String,
    pub label: String,
    pub provider: String,
    /// A hint such as `sk-…a1B9`; the secret itself is never shown again.
    pub fingerprint: String,
    /// Where the secret is held when it is not in Keyward (`vault://…`, `aws-sm://…`,
    /// `azure-kv://…`); a place, not a secret.
    pub secret_ref: Option<String>,
    /// `active`, `disabled` or `rejected_by_provider`.
    pub status: String,
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    pub rotated_at: Option<String>,
    pub status_changed_at: String,
}

impl From<CredentialRecord> for CredentialView {
    fn from(credential: CredentialRecord) -> Self {
        Self {
            id: credential.id.to_string(),
            label: credential.label,
            provider: credential.provider.as_str().to_owned(),
            fingerprint: credential.fingerprint,
            secret_ref: credential.secret_ref,
            status: credential.status.as_str().to_owned(),
            options: credential.options,
            created_at: credential.created_at.to_rfc3339(),
            rotated_at: credential.rotated_at.map(|at| at.to_rfc3339()),
            status_changed_at: credential.status_changed_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: Option<String>,
    pub role: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub models: Option<Vec<String>>,
    pub department_id: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub created_at: String,
    /// Requests per minute; `null`: unlimited.
    pub rpm_limit: Option<u64>,
    /// Tokens (input + output) per minute; `null`: unlimited.
    pub tpm_limit: Option<u64>,
}

impl From<PlatformKeyRecord> for KeyView {
    fn from(key: PlatformKeyRecord) -> Self {
        let status = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at.is_some_and(|at| at <= Timestamp::now()) {
            "expired"
        } else {
            "active"
        };
        Self {
            id: key.id.to_string(),
            name: key.name,
            role: key.role.as_str().to_owned(),
            prefix: key.display_prefix,
            models: key.models,
            department_id: key.department_id.map(|id| id.to_string()),
            status: status.to_owned(),
            expires_at: key.expires_at.map(|at| at.to_rfc3339()),
            revoked_at: key.revoked_at.map(|at| at.to_rfc3339()),
            created_at: key.created_at.to_rfc3339(),
            rpm_limit: key.rpm_limit,
            tpm_limit: key.tpm_limit,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MasterKeyView {
    /// The version that seals new secrets.
    pub primary: u32,
    pub versions: Vec<VersionView>,
    pub rewrap: RewrapView,
}

#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub version: u32,
    /// `primary`, `decrypt-only`, `retired` or `missing`.
    pub state: String,
    /// Sealed values still on this version; remove a version from the keyring only at 0.
    pub rows: u64,
    /// Public key check value identifying the key.
    pub check_value: String,
}

#[derive(Serialize, ToSchema)]
pub struct RewrapView {
    /// `pending`, `running`, `done`, `failed`, or null if no rotation ever ran.
    pub state: Option<String>,
    pub done: u64,
    pub total: u64,
    pub failed: u64,
}

impl From<MasterKeyStatus> for MasterKeyView {
    fn from(status: MasterKeyStatus) -> Self {
        Self {
            primary: status.primary.get(),
            versions: status
                .versions
                .into_iter()
                .map(|version| VersionView {
                    version: version.version.get(),
                    state: version.state.as_str().to_owned(),
                    rows: version.rows,
                    check_value: version.check_value,
                })
                .collect(),
            rewrap: RewrapView {
                state: status.rewrap.state.map(|state| state.as_str().to_owned()),
                done: status.rewrap.done,
                total: status.rewrap.total,
                failed: status.rewrap.failed,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct IssuedKeyView {
    /// The platform key. Shown this once; Keyward keeps only its hash.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyView,
}

impl From<IssuedPlatformKey> for IssuedKeyView {
    fn from(issued: IssuedPlatformKey) -> Self {
        Self {
            key: issued.key.expose_secret().to_owned(),
            details: issued.record.into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    pub id: String,
    /// `tenant`, `department:NAME` or `key:ID`.
    pub scope: String,
    /// `day` (UTC), `month` (UTC) or `total`.
    pub period: String,
    /// Decimal USD; null when unset.
    pub hard_limit_usd: Option<String>,
    pub soft_limit_usd: Option<String>,
    /// The current window: `2026-11-23`, `2026-11` or `total`.
    pub window: String,
    /// Settled spend in the current window, decimal USD.
    pub spent_usd: String,
    /// Worst-case cost of calls in flight, held against the limits.
    pub reserved_usd: String,
    pub updated_at: String,
}

impl From<BudgetStatus> for BudgetView {
    fn from(status: BudgetStatus) -> Self {
        Self {
            hard_limit_usd: status.hard_limit_usd(),
            soft_limit_usd: status.soft_limit_usd(),
            id: status.record.id.to_string(),
            scope: status.scope,
            period: status.record.period.as_str().to_owned(),
            window: status.window,
            spent_usd: format_usd(status.spend.spent_micro_usd),
            reserved_usd: format_usd(status.spend.reserved_micro_usd),
            updated_at: status.record.updated_at.to_rfc3339(),
        }
    }
}

/// One upstream call, as SPEC's usage row describes it. Metadata only.
#[derive(Serialize, ToSchema)]
pub struct UsageRowView {
    pub request_id: String,
    pub time: String,
    pub tenant_id: String,
    pub key_id: Option<String>,
    /// Department name.
    pub department: Option<String>,
    pub credential_id: String,
    pub credential_label: String,
    pub provider: String,
    pub endpoint: String,
    pub model_requested: String,
    pub model_reported: Option<String>,
    pub provider_request_id: Option<String>,
    /// `pending`, `ok`, `provider_error`, `client_cancelled`, `timeout`, `unreachable`,
    /// `egress_blocked`, `interrupted`.
    pub status: String,
    pub stream: bool,
    /// All input tokens, cached included.
    pub input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    /// Output tokens, reasoning included.
    pub output_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    /// Null when the model is unpriced.
    pub cost_micro_usd: Option<i64>,
    pub price_id: Option<String>,
    pub latency_ms: Option<u64>,
    pub ttfb_ms: Option<u64>,
    pub tags: BTreeMap<String, String>,
    pub fallback_of: Option<String>,
}

/// CSV columns of a usage row, in SPEC order (the JSON field names).
pub const USAGE_ROW_COLUMNS: &[&str] = &[
    "request_id",
    "time",
    "tenant_id",
    "key_id",
    "department",
    "credential_id",
    "credential_label",
    "provider",
    "endpoint",
    "model_requested",
    "model_reported",
    "provider_request_id",
    "status",
    "stream",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_micro_usd",
    "price_id",
    "latency_ms",
    "ttfb_ms",
    "tags",
    "fallback_of",
];

fn text<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

impl UsageRowView {
    pub fn new(call: CallRecord, department: Option<String>) -> Self {
        Self {
            time: call.created_at.to_rfc3339(),
            status: call.status.as_str().to_owned(),
            request_id: call.request_id,
            tenant_id: call.tenant_id,
            key_id: call.key_id,
            department,
            credential_id: call.credential_id,
            credential_label: call.credential_label,
            provider: call.provider,
            endpoint: call.endpoint,
            model_requested: call.model_requested,
            model_reported: call.model_reported,
            provider_request_id: call.provider_request_id,
            stream: call.stream,
            input_tokens: call.input_tokens,
            cached_input_tokens: call.cached_input_tokens,
            cache_write_tokens: call.cache_write_tokens,
            output_tokens: call.output_tokens,
            reasoning_tokens: call.reasoning_tokens,
            cost_micro_usd: call.cost_micro_usd,
            price_id: call.price_id,
            latency_ms: call.latency_ms,
            ttfb_ms: call.ttfb_ms,
            tags: call.tags,
            fallback_of: call.fallback_of,
        }
    }

    /// The row's CSV line (with `\n`), columns as [`USAGE_ROW_COLUMNS`].
    pub fn csv_line(&self) -> String {
        let tags = serde_json::to_string(&self.tags).unwrap_or_default();
        csv_line(&[
            self.request_id.clone(),
            self.time.clone(),
            self.tenant_id.clone(),
            text(self.key_id.as_ref()),
            text(self.department.as_ref()),
            self.credential_id.clone(),
            self.credential_label.clone(),
            self.provider.clone(),
            self.endpoint.clone(),
            self.model_requested.clone(),
            text(self.model_reported.as_ref()),
            text(self.provider_request_id.as_ref()),
            self.status.clone(),
            self.stream.to_string(),
            text(self.input_tokens),
            text(self.cached_input_tokens),
            text(self.cache_write_tokens),
            text(self.output_tokens),
            text(self.reasoning_tokens),
            text(self.cost_micro_usd),
            text(self.price_id.as_ref()),
            text(self.latency_ms),
            text(self.ttfb_ms),
            tags,
            text(self.fallback_of.as_ref()),
        ])
    }
}

/// Totals of one group of calls.
#[derive(Serialize, ToSchema)]
pub struct UsageGroupView {
    /// The group's value: a date, model, key id, credential label, department or tag value.
    pub group: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Sum of the priced calls.
    pub cost_micro_usd: i64,
    pub cost_usd: String,
    /// Calls without a cost (unpriced model, or no usage reported).
    pub unpriced_requests: u64,
}

pub const USAGE_GROUP_COLUMNS: &[&str] = &[
    "group",
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_micro_usd",
    "cost_usd",
    "unpriced_requests",
];

impl From<UsageGroup> for UsageGroupView {
    fn from(group: UsageGroup) -> Self {
        Self {
            cost_usd: format_usd(group.cost_micro_usd),
            group: group.group,
            requests: group.requests,
            input_tokens: group.input_tokens,
            cached_input_tokens: group.cached_input_tokens,
            cache_write_tokens: group.cache_write_tokens,
            output_tokens: group.output_tokens,
            reasoning_tokens: group.reasoning_tokens,
            cost_micro_usd: group.cost_micro_usd,
            unpriced_requests: group.unpriced_requests,
        }
    }
}

impl UsageGroupView {
    pub fn csv_line(&self) -> String {
        csv_line(&[
            self.group.clone(),
            self.requests.to_string(),
            self.input_tokens.to_string(),
            self.cached_input_tokens.to_string(),
            self.cache_write_tokens.to_string(),
            self.output_tokens.to_string(),
            self.reasoning_tokens.to_string(),
            self.cost_micro_usd.to_string(),
            self.cost_usd.clone(),
            self.unpriced_requests.to_string(),
        ])
    }
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break are quoted, quotes
/// doubled. A field starting with `=`, `+`, `-` or `@` gets a leading `'` so spreadsheets do
/// not run it as a formula (model names and tags are client-chosen text).
pub fn csv_line(fields: &[String]) -> String {
    let mut line = String::new();
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            line.push(',');
        }
        let guarded;
        let field = if field.starts_with(['=', '+', '@'])
            || (field.starts_with('-') && field.parse::<f64>().is_err())
        {
            guarded = format!("'{field}");
            &guarded
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push('\n');
    line
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: i64,
    pub at: String,
    pub tenant_id: Option<String>,
    /// `operator`, `key:ID` or `keyward` (alerts).
    pub actor: String,
    /// e.g. `credential.rotate`, `budget.set`, `budget.soft_limit_crossed`.
    pub action: String,
    pub target: String,
    pub outcome: String,
    /// Non-secret details of the action.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRecord> for AuditEntryView {
    fn from(record: AuditRecord) -> Self {
        Self {
            at: Timestamp::from_unix_millis(record.at).to_rfc3339(),
            details: serde_json::from_str(&record.details).unwrap_or(serde_json::Value::Null),
            seq: record.seq,
            tenant_id: record.tenant_id,
            actor: record.actor,
            action: record.action,
            target: record.target,
            outcome: record.outcome,
            prev_hash: record.prev_hash,
            hash: record.hash,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceDayView {
    /// UTC date.
    pub date: String,
    /// Requests routed (a request with fallbacks counts once).
    pub requests_routed: u64,
    /// Knowledge-base documents stored at the end of the day (today: now).
    pub documents_stored: u64,
    /// Knowledge bases searched (the search route, or an augmented call per knowledge base).
    pub retrievals_issued: u64,
}

#[derive(Serialize, ToSchema)]
pub struct PlatformInvoiceView {
    pub tenant_id: String,
    pub from: String,
    pub to: String,
    /// Keyward's billable units only: no tokens, no inference dollars.
    pub days: Vec<InvoiceDayView>,
    pub total_requests_routed: u64,
    pub total_retrievals_issued: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TenantPriceView {
    pub id: String,
    pub provider: String,
    pub model: String,
    pub effective: String,
    /// USD per million tokens.
    pub input: String,
    pub cached_input: Option<String>,
    pub cache_write: Option<String>,
    pub output: String,
}

impl From<TenantPriceRecord> for TenantPriceView {
    fn from(record: TenantPriceRecord) -> Self {
        Self {
            id: format!(
                "tenant:{}/{}/{}",
                record.provider, record.model, record.effective
            ),
            input: format_usd(record.input_micro_usd),
            cached_input: record.cached_input_micro_usd.map(format_usd),
            cache_write: record.cache_write_micro_usd.map(format_usd),
            output: format_usd(record.output_micro_usd),
            provider: record.provider,
            model: record.model,
            effective: record.effective,
        }
    }
}

/// One side of a reconciled line. Absent fields were not in the export.
#[derive(Serialize, ToSchema)]
pub struct ReconciliationSideView {
    /// The model names as this side recorded them.
    pub models: Vec<String>,
    pub requests: Option<u64>,
    /// All input tokens, cache reads and cache writes included.
    pub input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost_usd: Option<String>,
    /// Keyward only: calls with usage but no price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpriced_requests: Option<u64>,
    /// Keyward only: calls the provider may have billed whose usage never reached Keyward
    /// (client gone, timeout, interrupted): the usual explanation of a gap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls_without_usage: Option<u64>,
}

impl From<LedgerLine> for ReconciliationSideView {
    fn from(line: LedgerLine) -> Self {
        Self {
            models: line.models.into_iter().collect(),
            requests: Some(line.requests),
            input_tokens: Some(line.tokens.input),
            cached_input_tokens: Some(line.tokens.cached_input),
            cache_write_tokens: Some(line.tokens.cache_write),
            output_tokens: Some(line.tokens.output),
            cost_usd: Some(format_usd(line.cost_micro_usd)),
            unpriced_requests: Some(line.unpriced_requests),
            calls_without_usage: Some(line.calls_without_usage),
        }
    }
}

impl From<ProviderLine> for ReconciliationSideView {
    fn from(line: ProviderLine) -> Self {
        let tokens = line.tokens.filter(|_| !line.tokens_incomplete);
        Self {
            models: line.models.into_iter().collect(),
            requests: line.requests,
            input_tokens: tokens.map(|tokens| tokens.input),
            cached_input_tokens: tokens.map(|tokens| tokens.cached_input),
            cache_write_tokens: tokens.map(|tokens| tokens.cache_write),
            output_tokens: tokens.map(|tokens| tokens.output),
            cost_usd: line.cost_micro_usd.map(format_usd),
            unpriced_requests: None,
            calls_without_usage: None,
        }
    }
}

/// A compared field that differs. Token and request counts are numbers; `cost_usd` values
/// are decimal strings.
#[derive(Serialize, ToSchema)]
pub struct DifferenceView {
    /// `requests`, `input_tokens`, `cached_input_tokens`, `cache_write_tokens`,
    /// `output_tokens` or `cost_usd`.
    pub field: &'static str,
    #[schema(value_type = Object)]
    pub keyward: serde_json::Value,
    #[schema(value_type = Object)]
    pub provider: serde_json::Value,
    /// Keyward − provider.
    #[schema(value_type = Object)]
    pub delta: serde_json::Value,
}

impl From<Difference> for DifferenceView {
    fn from(difference: Difference) -> Self {
        let value = |amount: i64| {
            if difference.field == "cost_micro_usd" {
                serde_json::Value::from(format_usd(amount))
            } else {
                serde_json::Value::from(amount)
            }
        };
        Self {
            field: if difference.field == "cost_micro_usd" {
                "cost_usd"
            } else {
                difference.field
            },
            keyward: value(difference.keyward),
            provider: value(difference.provider),
            delta: value(difference.delta),
        }
    }
}

/// One UTC day and model of a reconciliation.
#[derive(Serialize, ToSchema)]
pub struct ReconciledLineView {
    pub date: String,
    /// The name both sides were matched on: without date snapshot, Bedrock version and
    /// inference-profile prefix.
    pub model: String,
    /// `match`, `differs`, `only_in_keyward` or `only_in_provider`.
    pub status: &'static str,
    pub keyward: Option<ReconciliationSideView>,
    pub provider: Option<ReconciliationSideView>,
    pub differences: Vec<DifferenceView>,
}

#[derive(Serialize, ToSchema)]
pub struct UnattributedCostView {
    pub date: String,
    pub description: String,
    pub cost_usd: String,
}

/// The ledger beside the provider's own export, per UTC day and model.
#[derive(Serialize, ToSchema)]
pub struct ReconciliationView {
    pub provider: &'static str,
    /// First and last UTC day compared (inclusive).
    pub from: String,
    pub to: String,
    pub lines: u64,
    pub differing_lines: u64,
    pub keyward_cost_usd: String,
    /// Provider cost attributed to models, then the rest.
    pub provider_cost_usd: String,
    pub provider_unattributed_cost_usd: String,
    pub data: Vec<ReconciledLineView>,
    pub unattributed: Vec<UnattributedCostView>,
    pub warnings: Vec<String>,
}

impl From<Reconciliation> for ReconciliationView {
    fn from(report: Reconciliation) -> Self {
        let differing_lines = report.differing_lines() as u64;
        let keyward_cost: i64 = report
            .lines
            .iter()
            .filter_map(|line| line.keyward.as_ref())
            .map(|line| line.cost_micro_usd)
            .sum();
        let provider_cost: i64 = report
            .lines
            .iter()
            .filter_map(|line| line.provider.as_ref()?.cost_micro_usd)
            .sum();
        let unattributed_cost: i64 = report
            .unattributed
            .iter()
            .map(|cost| cost.cost_micro_usd)
            .sum();
        Self {
            provider: report.provider.as_str(),
            from: report.from,
            to: report.to,
            lines: report.lines.len() as u64,
            differing_lines,
            keyward_cost_usd: format_usd(keyward_cost),
            provider_cost_usd: format_usd(provider_cost),
            provider_unattributed_cost_usd: format_usd(unattributed_cost),
            data: report
                .lines
                .into_iter()
                .map(|line| ReconciledLineView {
                    date: line.date,
                    model: line.model,
                    status: line.status.as_str(),
                    keyward: line.keyward.map(ReconciliationSideView::from),
                    provider: line.provider.map(ReconciliationSideView::from),
                    differences: line
                        .differences
                        .into_iter()
                        .map(DifferenceView::from)
                        .collect(),
                })
                .collect(),
            unattributed: report
                .unattributed
                .into_iter()
                .map(|cost| UnattributedCostView {
                    date: cost.date,
                    description: cost.description,
                    cost_usd: format_usd(cost.cost_micro_usd),
                })
                .collect(),
            warnings: report.warnings,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EmbeddingView {
    pub credential: String,
    pub credential_id: String,
    pub model: String,
    /// Fixed by the first document indexed.
    pub dimensions: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct KnowledgeBaseView {
    pub id: String,
    pub name: String,
    pub department: String,
    pub department_id: String,
    pub embedding: EmbeddingView,
    pub chunk_tokens: u32,
    pub chunk_overlap: u32,
    /// Documents, whatever their status.
    pub documents: u64,
    /// Chunks of ready documents: what search reads.
    pub chunks: u64,
    pub created_at: String,
}

impl From<keyward_domain::KnowledgeBaseSummary> for KnowledgeBaseView {
    fn from(summary: keyward_domain::KnowledgeBaseSummary) -> Self {
        let record = summary.record;
        Self {
            id: record.id.to_string(),
            name: record.name,
            department: summary.department,
            department_id: record.department_id.to_string(),
            embedding: EmbeddingView {
                credential: summary.credential_label,
                credential_id: record.credential_id.to_string(),
                model: record.embedding_model,
                dimensions: record.dimensions,
            },
            chunk_tokens: record.chunk_tokens,
            chunk_overlap: record.chunk_overlap,
            documents: summary.documents,
            chunks: summary.chunks,
            created_at: record.created_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConnectorView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub model: String,
    pub knowledge_base_id: Option<String>,
    pub app_id: String,
    /// Teams, single-tenant bot: its Entra tenant.
    pub app_tenant_id: Option<String>,
    /// Teams: where the app password is held, when a key manager holds it (not a secret).
    pub app_secret_ref: Option<String>,
    /// Where the platform sends requests: `POST {this}` on Keyward's public address.
    pub endpoint: String,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: String,
}

impl From<keyward_domain::ConnectorRecord> for ConnectorView {
    fn from(record: keyward_domain::ConnectorRecord) -> Self {
        Self {
            endpoint: format!("/connectors/{}/messages", record.id),
            id: record.id.to_string(),
            kind: record.kind.as_str().to_owned(),
            name: record.name,
            model: record.model,
            knowledge_base_id: record.knowledge_base_id.map(|id| id.to_string()),
            app_id: record.app_id,
            app_tenant_id: record.app_tenant_id,
            app_secret_ref: record.secret_ref,
            status: if record.active { "active" } else { "disabled" }.to_owned(),
            created_at: record.created_at.to_rfc3339(),
        }
    }
}
