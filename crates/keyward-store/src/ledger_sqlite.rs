//! The ledger's admission and settlement on the SQLite writer thread's own connection: the
//! statements of `ledger_sql`, prepared once per connection and executed in place, with no hop
//! to another thread per statement. Every function runs inside the transaction the writer
//! opened (see `group_commit`) and follows the same steps as its sqlx twin in `ledger.rs`.

use keyward_core::{RequestId, Timestamp};
use rusqlite::{named_params, Connection, OptionalExtension, ToSql};

use crate::budget::BudgetRow;
use crate::ledger_sql::{self as sql, PendingRow, SettlementRow};
use crate::StoreError;
use crate::{Admission, BudgetRecord, PendingCall, Settled, Settlement, SoftLimitCrossed};

/// The pending row alone (one statement: atomic by itself).
pub(crate) fn insert_pending(
    connection: &Connection,
    call: &PendingCall,
    instance: Option<&str>,
) -> Result<(), StoreError> {
    let row = PendingRow::of(call, instance)?;
    execute_pending(connection, sql::INSERT_PENDING, &row, None)?;
    Ok(())
}

/// The whole admission of a call no budget applies to (one statement: atomic by itself).
/// `false`: budgets apply and nothing was written.
pub(crate) fn admit_unbudgeted(
    connection: &Connection,
    call: &PendingCall,
    instance: Option<&str>,
) -> Result<bool, StoreError> {
    let row = PendingRow::of(call, instance)?;
    let [_, department, key] = sql::budget_scope(call);
    let inserted = execute_pending(
        connection,
        sql::INSERT_PENDING_UNBUDGETED,
        &row,
        Some((&department, &key)),
    )?;
    Ok(inserted == 1)
}

/// Runs `statement` with a pending row bound as $1..$15 and, if given, the department and
/// key scopes as $16 and $17; returns the rows inserted.
fn execute_pending(
    connection: &Connection,
    statement: &str,
    row: &PendingRow<'_>,
    scopes: Option<(&str, &str)>,
) -> rusqlite::Result<usize> {
    let mut params: Vec<(&str, &dyn ToSql)> = vec![
        ("$1", &row.request_id),
        ("$2", &row.created_at),
        ("$3", &row.tenant_id),
        ("$4", &row.key_id),
        ("$5", &row.department_id),
        ("$6", &row.credential_id),
        ("$7", &row.credential_label),
        ("$8", &row.provider),
        ("$9", &row.endpoint),
        ("$10", &row.model_requested),
        ("$11", &row.stream),
        ("$12", &row.tags),
        ("$13", &row.fallback_of),
        ("$14", &row.reserved_micro_usd),
        ("$15", &row.instance),
    ];
    if let Some((department, key)) = &scopes {
        params.push(("$16", department));
        params.push(("$17", key));
    }
    connection
        .prepare_cached(statement)?
        .execute(params.as_slice())
}

/// The budgets that apply to a call: its tenant's, its department's, its key's.
pub(crate) fn applicable_budgets(
    connection: &Connection,
    call: &PendingCall,
) -> Result<Vec<BudgetRecord>, StoreError> {
    let [tenant, department, key] = sql::budget_scope(call);
    let mut statement = connection.prepare_cached(sql::APPLICABLE_BUDGETS)?;
    let rows = statement.query_map(
        named_params! { "$1": tenant, "$2": department, "$3": key },
        BudgetRow::from_sqlite,
    )?;
    let mut budgets = Vec::new();
    for row in rows {
        budgets.push(BudgetRecord::try_from(row?)?);
    }
    Ok(budgets)
}

/// Reserves a call's worst case in each budget (its pending row already written); on
/// `OverBudget` the caller rolls back.
pub(crate) fn reserve(
    connection: &Connection,
    call: &PendingCall,
    budgets: Vec<BudgetRecord>,
) -> Result<Admission, StoreError> {
    if budgets.is_empty() {
        return Ok(Admission::Admitted);
    }
    if let Some(unpriced) = sql::uncountable_under_cap(call, &budgets) {
        return Ok(unpriced);
    }
    let mut held = Vec::with_capacity(budgets.len());
    for budget in budgets {
        let window = budget.period.window(call.created_at).key;
        let budget_id = budget.id.to_string();
        let in_window = named_params! { "$1": budget_id, "$2": window };
        connection
            .prepare_cached(sql::OPEN_WINDOW)?
            .execute(in_window)?;
        let reserved = connection
            .prepare_cached(sql::RESERVE)?
            .execute(named_params! {
                "$1": budget_id,
                "$2": window,
                "$3": call.reserved_micro_usd,
            })?;
        if reserved != 1 {
            let spend = connection
                .prepare_cached(sql::WINDOW_SPEND)?
                .query_row(in_window, |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            return Ok(sql::over_budget(budget, window, spend));
        }
        held.push((budget_id, window));
    }
    connection
        .prepare_cached(sql::HOLD_WINDOWS)?
        .execute(named_params! {
            "$1": call.request_id.to_string(),
            "$2": sql::held_windows(call.request_id, &held)?,
        })?;
    Ok(Admission::Admitted)
}

/// Settles a pending row that holds no budget window (one statement: atomic by itself).
/// `false`: the row is not pending or holds windows, and nothing was written.
pub(crate) fn settle_unbudgeted(
    connection: &Connection,
    request_id: RequestId,
    settlement: &Settlement,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let row = SettlementRow::of(request_id, settlement, at);
    Ok(settle_row(connection, sql::SETTLE_UNBUDGETED, &row)?.is_some())
}

/// Runs a settling `statement` with the settlement bound as $1..$15; returns what the row
/// held, if it was settled.
fn settle_row(
    connection: &Connection,
    statement: &str,
    row: &SettlementRow<'_>,
) -> rusqlite::Result<Option<(Option<i64>, Option<String>)>> {
    connection
        .prepare_cached(statement)?
        .query_row(
            named_params! {
                "$1": row.status,
                "$2": row.http_status,
                "$3": row.model_reported,
                "$4": row.provider_request_id,
                "$5": row.input_tokens,
                "$6": row.cached_input_tokens,
                "$7": row.cache_write_tokens,
                "$8": row.output_tokens,
                "$9": row.reasoning_tokens,
                "$10": row.latency_ms,
                "$11": row.ttfb_ms,
                "$12": row.settled_at,
                "$13": row.request_id,
                "$14": row.cost_micro_usd,
                "$15": row.price_id,
            },
            |returned| Ok((returned.get(0)?, returned.get(1)?)),
        )
        .optional()
}

/// Settles a pending row; a row that is not pending is left alone (`settled: false`).
pub(crate) fn settle(
    connection: &Connection,
    request_id: RequestId,
    settlement: &Settlement,
    at: Timestamp,
) -> Result<Settled, StoreError> {
    let row = SettlementRow::of(request_id, settlement, at);
    let held = settle_row(connection, sql::SETTLE, &row)?;
    let Some((reserved, held)) = held else {
        return Ok(Settled::default());
    };
    let Some(held) = held else {
        return Ok(Settled::nothing_released());
    };
    let reserved = reserved.unwrap_or(0);
    let charge = settlement.budget_charge_micro_usd;
    let mut crossed = Vec::new();
    for (budget_id, window) in sql::parse_held_windows(&row.request_id, &held)? {
        let in_window = named_params! { "$1": budget_id, "$2": window };
        connection
            .prepare_cached(sql::RELEASE)?
            .execute(named_params! {
                "$1": budget_id,
                "$2": window,
                "$3": reserved,
                "$4": charge,
            })?;
        if connection
            .prepare_cached(sql::MARK_SOFT_ALERTED)?
            .execute(in_window)?
            == 1
        {
            let budget = connection
                .prepare_cached(sql::BUDGET)?
                .query_row(named_params! { "$1": budget_id }, BudgetRow::from_sqlite)?
                .try_into()?;
            let spent_micro_usd = connection
                .prepare_cached(sql::WINDOW_SPENT)?
                .query_row(in_window, |row| row.get(0))?;
            crossed.push(SoftLimitCrossed {
                budget,
                window,
                spent_micro_usd,
            });
        }
    }
    Ok(Settled {
        settled: true,
        soft_limits_crossed: crossed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement the writer runs, with the names it binds: prepared on a migrated
    /// database, each must be valid SQLite and use exactly `$1`..`$N` (a `$N` in the SQL that
    /// the writer does not bind would silently be NULL).
    #[tokio::test]
    async fn every_statement_binds_exactly_the_parameters_it_uses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kw.db");
        let store = crate::Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.close().await;
        let connection = Connection::open(&path).unwrap();
        for (sql, bound) in [
            (sql::INSERT_PENDING, 15),
            (sql::APPLICABLE_BUDGETS, 3),
            (sql::OPEN_WINDOW, 2),
            (sql::RESERVE, 3),
            (sql::WINDOW_SPEND, 2),
            (sql::HOLD_WINDOWS, 2),
            (sql::SETTLE, 15),
            (sql::RELEASE, 4),
            (sql::MARK_SOFT_ALERTED, 2),
            (sql::BUDGET, 1),
            (sql::WINDOW_SPENT, 2),
        ] {
            let statement = connection.prepare(sql).unwrap();
            let mut names: Vec<String> = (1..=statement.parameter_count())
                .map(|index| statement.parameter_name(index).unwrap().to_owned())
                .collect();
            names.sort_by_key(|name| name[1..].parse::<u32>().unwrap());
            let expected: Vec<String> = (1..=bound).map(|n| format!("${n}")).collect();
            assert_eq!(names, expected, "{sql}");
        }
    }

    /// The writer binds by name: a name the statement lacks is an error, never ignored.
    #[test]
    fn unknown_parameter_names_are_refused() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (a INTEGER, b INTEGER)")
            .unwrap();
        let err = connection
            .prepare("INSERT INTO t (a, b) VALUES ($1, $2)")
            .unwrap()
            .execute(named_params! { "$1": 1, "$3": 2 })
            .unwrap_err();
        assert!(matches!(err, rusqlite::Error::InvalidParameterName(name) if name == "$3"));
    }
}
