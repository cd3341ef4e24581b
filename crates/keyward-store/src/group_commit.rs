//! Group commit of ledger writes on SQLite: admissions and settlements from every request go to
//! one writer task, which applies as many as are waiting in one transaction and answers each
//! caller only after the transaction has committed. An admission that reserves budgets runs in
//! its own savepoint, so a call refused by a budget is rolled back alone; a single-statement
//! admission needs none (SQLite undoes a failed statement); a settlement has nothing to refuse,
//! so a failure in one rolls the whole batch back and every caller in it is told.
//!
//! Invariants:
//! - Durability is unchanged: a call is admitted (may go upstream) only once the transaction
//!   holding its pending row has committed.
//! - Order and atomicity are unchanged: the writer applies operations one after another, so the
//!   budget check-and-reserve of each sees every earlier one.
//! - Throughput no longer depends on SQLite's lock: one writer, no busy-waiting, one commit for
//!   a whole batch.

use keyward_core::{RequestId, Timestamp};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::ledger::{applicable_budgets, insert_pending, reserve, settle_in};
use crate::{Admission, PendingCall, Settled, Settlement, StoreError};

/// Most operations in one transaction.
const MAX_BATCH: usize = 256;
/// How often the WAL is checkpointed (see `checkpoints`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Operations waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;

enum Operation {
    Admit {
        call: Box<PendingCall>,
        instance: Option<std::sync::Arc<str>>,
        reply: oneshot::Sender<Result<Admission, StoreError>>,
    },
    Settle {
        request_id: RequestId,
        settlement: Box<Settlement>,
        at: Timestamp,
        reply: oneshot::Sender<Result<Settled, StoreError>>,
    },
}

/// Result of one operation, held until its transaction commits.
enum Outcome {
    Admit(
        oneshot::Sender<Result<Admission, StoreError>>,
        Result<Admission, StoreError>,
    ),
    Settle(
        oneshot::Sender<Result<Settled, StoreError>>,
        Result<Settled, StoreError>,
    ),
}

/// The handle requests use; the writer task ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct LedgerWriter {
    queue: mpsc::Sender<Operation>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Operation")
    }
}

fn writer_gone() -> StoreError {
    StoreError::Contended {
        what: "ledger writer (stopped)",
    }
}

impl LedgerWriter {
    #[expect(
        clippy::disallowed_methods,
        reason = "the writer lives exactly as long as the store's handles: it ends when the last \
                  one is dropped, after answering every queued operation"
    )]
    pub(crate) fn start(pool: AnyPool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    pub(crate) async fn admit(
        &self,
        call: PendingCall,
        instance: Option<std::sync::Arc<str>>,
    ) -> Result<Admission, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Operation::Admit {
                call: Box::new(call),
                instance,
                reply,
            })
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    pub(crate) async fn settle(
        &self,
        request_id: RequestId,
        settlement: Settlement,
        at: Timestamp,
    ) -> Result<Settled, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Operation::Settle {
                request_id,
                settlement: Box::new(settlement),
                at,
                reply,
            })
            .await
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

async fn run(pool: AnyPool, mut receiver: mpsc::Receiver<Operation>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let writer = async {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let operations = std::mem::take(&mut batch);
            apply(&pool, operations).await;
        }
        let _ = stop.send(());
    };
    tokio::join!(writer, checkpoints(&pool, stopped));
}

/// Copies the WAL back into the database file every [`CHECKPOINT_EVERY`] on a connection of its
/// own (connections open with automatic checkpoints off): a PASSIVE checkpoint waits for no
/// writer and blocks none, so its I/O stays off the commit path of calls.
async fn checkpoints(pool: &AnyPool, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(pool)
            .await
        {
            tracing::warn!(error = %err, "WAL checkpoint failed; retrying");
        }
    }
}

/// Applies a batch in one transaction and answers every operation.
async fn apply(pool: &AnyPool, operations: Vec<Operation>) {
    // IMMEDIATE: the write lock from the start, so reading budgets before writing can never
    // meet another writer's lock half-way. A transaction guard: dropped unfinished (shutdown,
    // panic), it rolls back before its connection returns to the pool.
    let mut connection = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(transaction) => transaction,
        Err(err) => {
            let message = err.to_string();
            for operation in operations {
                operation.fail(&message);
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(operations.len());
    let mut operations = operations.into_iter();
    while let Some(operation) = operations.next() {
        match apply_one(&mut connection, operation).await {
            Ok(outcome) => outcomes.push(outcome),
            Err((outcome, err)) => {
                // A savepoint could not be ended, a settlement failed half-way, or an error
                // may have ended the transaction: none of the batch may be reported done, and
                // the operations not yet applied are answered too.
                outcomes.push(outcome);
                abandon(connection, outcomes, &err).await;
                for operation in operations {
                    operation.fail(&err);
                }
                return;
            }
        }
    }
    match connection.commit().await {
        Ok(()) => outcomes.into_iter().for_each(Outcome::answer),
        Err(err) => {
            let message = err.to_string();
            for outcome in outcomes {
                outcome.fail(&message);
            }
        }
    }
}

/// One operation inside the batch's transaction. A single-statement admission (no budget
/// applies) needs no savepoint: SQLite undoes a failed statement by itself.
async fn apply_one(
    connection: &mut sqlx::AnyConnection,
    operation: Operation,
) -> Result<Outcome, (Outcome, String)> {
    match operation {
        Operation::Admit {
            call,
            instance,
            reply,
        } => {
            let budgets = match applicable_budgets(connection, &call).await {
                Ok(budgets) => budgets,
                Err(err) => {
                    let message = err.to_string();
                    return Err((Outcome::Admit(reply, Err(err)), message));
                }
            };
            if budgets.is_empty() {
                return match insert_pending(connection, &call, instance.as_deref()).await {
                    Ok(()) => Ok(Outcome::Admit(reply, Ok(Admission::Admitted))),
                    // A constraint refused this one row; SQLite undid that statement alone.
                    Err(err) if is_constraint(&err) => Ok(Outcome::Admit(reply, Err(err))),
                    // Anything else (I/O, full disk) may have rolled the whole transaction
                    // back: nothing in the batch may be reported done.
                    Err(err) => {
                        let message = err.to_string();
                        Err((Outcome::Admit(reply, Err(err)), message))
                    }
                };
            }
            if let Err(err) = exec(connection, "SAVEPOINT op").await {
                return Err((
                    Outcome::Admit(reply, Err(unavailable("a savepoint could not be opened"))),
                    err.to_string(),
                ));
            }
            let result = match insert_pending(connection, &call, instance.as_deref()).await {
                Ok(()) => reserve(connection, &call, budgets).await,
                Err(err) => Err(err),
            };
            let keep = matches!(result, Ok(Admission::Admitted));
            let outcome = Outcome::Admit(reply, result);
            match end_savepoint(connection, keep).await {
                Ok(()) => Ok(outcome),
                Err(err) => Err((outcome, err.to_string())),
            }
        }
        Operation::Settle {
            request_id,
            settlement,
            at,
            reply,
        } => {
            // No savepoint: a settlement has no refusal to undo, and if one of its statements
            // fails the whole batch is rolled back (and every caller told), so a settlement is
            // never half-applied.
            match settle_in(connection, request_id, &settlement, at).await {
                Ok(settled) => Ok(Outcome::Settle(reply, Ok(settled))),
                Err(err) => {
                    let message = err.to_string();
                    Err((Outcome::Settle(reply, Err(err)), message))
                }
            }
        }
    }
}

async fn end_savepoint(
    connection: &mut sqlx::AnyConnection,
    keep: bool,
) -> Result<(), sqlx::Error> {
    if !keep {
        exec(connection, "ROLLBACK TO SAVEPOINT op").await?;
    }
    exec(connection, "RELEASE SAVEPOINT op").await
}

async fn exec(connection: &mut sqlx::AnyConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(connection).await.map(|_| ())
}

/// Rolls the batch back and fails every operation in it.
async fn abandon(
    transaction: sqlx::Transaction<'static, sqlx::Any>,
    outcomes: Vec<Outcome>,
    message: &str,
) {
    if let Err(err) = transaction.rollback().await {
        tracing::warn!(error = %err, "rolling back a failed ledger batch failed");
    }
    for outcome in outcomes {
        outcome.fail(message);
    }
}

/// Whether a store error is a constraint refusing one statement (SQLite undoes just that
/// statement), as opposed to a failure that may have ended the transaction.
fn is_constraint(err: &StoreError) -> bool {
    match err {
        StoreError::Unavailable(sqlx::Error::Database(db)) => {
            !matches!(db.kind(), sqlx::error::ErrorKind::Other)
        }
        StoreError::Conflict { .. } | StoreError::Corrupt { .. } => true,
        _ => false,
    }
}

fn unavailable(message: &str) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(format!(
        "ledger batch not committed: {message}"
    )))
}

impl Outcome {
    /// Sends the operation's result to its caller (who may have gone: nothing to do then).
    fn answer(self) {
        match self {
            Outcome::Admit(reply, result) => {
                let _ = reply.send(result);
            }
            Outcome::Settle(reply, result) => {
                let _ = reply.send(result);
            }
        }
    }

    /// Tells the caller its operation was not committed, whatever it had produced.
    fn fail(self, message: &str) {
        match self {
            Outcome::Admit(reply, _) => Outcome::Admit(reply, Err(unavailable(message))),
            Outcome::Settle(reply, _) => Outcome::Settle(reply, Err(unavailable(message))),
        }
        .answer();
    }
}

impl Operation {
    /// Tells the caller its operation was not applied.
    fn fail(self, message: &str) {
        match self {
            Operation::Admit { reply, .. } => Outcome::Admit(reply, Err(unavailable(message))),
            Operation::Settle { reply, .. } => Outcome::Settle(reply, Err(unavailable(message))),
        }
        .answer();
    }
}
