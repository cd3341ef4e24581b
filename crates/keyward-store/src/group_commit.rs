//! Group commit of ledger writes on SQLite: admissions and settlements from every request go to
//! one writer task, which applies as many as are waiting in one transaction — each inside its
//! own savepoint, so a call refused by a budget (or failing) is rolled back alone — and answers
//! each caller only after the transaction has committed.
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

use crate::ledger::{admit_in, settle_in};
use crate::{Admission, PendingCall, Settled, Settlement, StoreError};

/// Most operations in one transaction.
const MAX_BATCH: usize = 256;
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
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let operations = std::mem::take(&mut batch);
        apply(&pool, operations).await;
    }
}

/// Applies a batch in one transaction and answers every operation.
async fn apply(pool: &AnyPool, operations: Vec<Operation>) {
    let mut transaction = match pool.begin().await {
        Ok(transaction) => transaction,
        Err(err) => {
            let message = err.to_string();
            for operation in operations {
                fail(operation, &message);
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(operations.len());
    for operation in operations {
        if let Err(err) = sqlx::query("SAVEPOINT op").execute(&mut *transaction).await {
            fail(operation, &err.to_string());
            continue;
        }
        let (outcome, keep) = match operation {
            Operation::Admit {
                call,
                instance,
                reply,
            } => {
                let result = admit_in(&mut transaction, &call, instance.as_deref()).await;
                let keep = matches!(result, Ok(Admission::Admitted));
                (Outcome::Admit(reply, result), keep)
            }
            Operation::Settle {
                request_id,
                settlement,
                at,
                reply,
            } => {
                let result = settle_in(&mut transaction, request_id, &settlement, at).await;
                let keep = result.is_ok();
                (Outcome::Settle(reply, result), keep)
            }
        };
        let undone = if keep {
            Ok(())
        } else {
            sqlx::query("ROLLBACK TO SAVEPOINT op")
                .execute(&mut *transaction)
                .await
                .map(|_| ())
        };
        let ended = match undone {
            Ok(()) => sqlx::query("RELEASE SAVEPOINT op")
                .execute(&mut *transaction)
                .await
                .map(|_| ()),
            Err(err) => Err(err),
        };
        match ended {
            Ok(()) => outcomes.push(outcome),
            Err(err) => {
                // The transaction is in an unknown state: nothing of it may be reported done.
                let message = err.to_string();
                outcomes.push(outcome);
                for outcome in outcomes {
                    fail_outcome(outcome, &message);
                }
                return;
            }
        }
    }
    match transaction.commit().await {
        Ok(()) => {
            for outcome in outcomes {
                match outcome {
                    Outcome::Admit(reply, result) => {
                        let _ = reply.send(result);
                    }
                    Outcome::Settle(reply, result) => {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        Err(err) => {
            let message = err.to_string();
            for outcome in outcomes {
                fail_outcome(outcome, &message);
            }
        }
    }
}

fn unavailable(message: &str) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(format!(
        "ledger batch not committed: {message}"
    )))
}

fn fail(operation: Operation, message: &str) {
    match operation {
        Operation::Admit { reply, .. } => {
            let _ = reply.send(Err(unavailable(message)));
        }
        Operation::Settle { reply, .. } => {
            let _ = reply.send(Err(unavailable(message)));
        }
    }
}

fn fail_outcome(outcome: Outcome, message: &str) {
    match outcome {
        Outcome::Admit(reply, _) => {
            let _ = reply.send(Err(unavailable(message)));
        }
        Outcome::Settle(reply, _) => {
            let _ = reply.send(Err(unavailable(message)));
        }
    }
}
