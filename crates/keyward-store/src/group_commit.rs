//! Group commit of ledger writes on SQLite: admissions and settlements from every request go to
//! one writer thread, which applies as many as are waiting in one transaction and answers each
//! caller only after the transaction has committed. The admission or settlement of a call no
//! budget applies to is one statement, which SQLite undoes by itself if it fails; one that
//! reserves or releases budgets runs in its own savepoint, so a call refused by a budget is
//! rolled back alone. An error that ends the transaction itself fails the whole batch, and
//! every caller in it is told.
//!
//! The writer is a dedicated thread with a connection of its own (rusqlite, on the SQLite that
//! sqlx links) and its statements prepared once: a batch runs there start to finish, so a call
//! costs one hand-off to the thread and one answer back, not a round trip to a worker thread
//! for every statement. A second thread checkpoints the WAL on its own connection.
//!
//! Invariants:
//! - Durability is unchanged: a call is admitted (may go upstream) only once the transaction
//!   holding its pending row has committed.
//! - Order and atomicity are unchanged: the writer applies operations one after another, so the
//!   budget check-and-reserve of each sees every earlier one.
//! - Throughput no longer depends on SQLite's lock: one writer, no busy-waiting, one commit for
//!   a whole batch. Other writers (the admin API, the sweeps) share the file through SQLite's
//!   lock and `busy_timeout`, as before.
//! - `Store::close` stops both threads and closes their connections before it returns.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use keyward_core::{RequestId, Timestamp};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::ledger_sqlite::{
    admit_unbudgeted, applicable_budgets, insert_pending, reserve, settle, settle_unbudgeted,
};
use crate::wal_pacing::WalPacing;
use crate::{Admission, PendingCall, Settled, Settlement, StoreError};

/// Most operations in one transaction.
const MAX_BATCH: usize = 256;
/// How often the WAL is checkpointed (see `checkpoints`).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How often the WAL is read ahead of the writer and synced behind it (see [`WalPacing`]).
const PACE_EVERY: Duration = Duration::from_millis(100);
/// WAL size (frames of one 4 KiB page) from which a checkpoint pauses the writer briefly so the
/// WAL starts over (see `checkpoints`): about 64 MiB, a few seconds of writes at full load.
pub(crate) const RESTART_WAL_AT_FRAMES: i64 = 16_384;
/// Longest the writer is paused waiting for readers when the WAL is to start over.
const RESTART_WAIT: Duration = Duration::from_millis(50);
/// Operations waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;
/// Prepared statements the writer keeps (it runs about a dozen).
const STATEMENT_CACHE: usize = 32;

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
    /// Finish what came before, close the connection, then answer.
    Stop(oneshot::Sender<()>),
}

/// What applying one operation did.
enum Applied {
    /// Its result waits for the batch's commit.
    Kept(Outcome),
    /// It failed in a way that ended the transaction (its caller is told): the batch is
    /// abandoned (why).
    BatchBroken(String),
    /// A stop, answered at once (never reached: `write_batches` keeps stops out of batches).
    Stopped,
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

/// The handle requests use. The writer thread ends when the last handle is dropped or on
/// [`LedgerWriter::stop`], after answering every operation queued before.
#[derive(Debug)]
pub(crate) struct LedgerWriter {
    queue: mpsc::Sender<Operation>,
    /// Dropped by `stop` to end the checkpoint thread, which answers on the receiver it holds.
    checkpoints: Mutex<Option<(std::sync::mpsc::Sender<()>, oneshot::Receiver<()>)>>,
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
    /// Opens the writer's and the checkpointer's connections on the (migrated) database at
    /// `path` and starts their threads.
    pub(crate) fn start(path: &Path, wal_restart_frames: i64) -> Result<Self, StoreError> {
        let writer = open(path)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpointer = open(path)?;
        // The restarting pass waits this long for readers of the old WAL, then gives up until
        // the next second (the writer is paused meanwhile).
        checkpointer.busy_timeout(RESTART_WAIT)?;
        let page_size: u64 = checkpointer.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let pacing = WalPacing::new(path, page_size);
        let (queue, receiver) = mpsc::channel(QUEUE);
        // Held by the writer around each batch; taken by the checkpointer to pause it.
        let gate = std::sync::Arc::new(Mutex::new(()));
        std::thread::Builder::new()
            .name("keyward-ledger".into())
            .spawn({
                let gate = std::sync::Arc::clone(&gate);
                move || write_batches(writer, &gate, receiver)
            })
            .map_err(|err| thread_failed("ledger writer", &err))?;
        let (stop, stopped) = std::sync::mpsc::channel();
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("keyward-wal".into())
            .spawn(move || {
                let wal = Wal {
                    connection: checkpointer,
                    pacing,
                    restart_at_frames: wal_restart_frames,
                };
                checkpoints(wal, &gate, &stopped, done);
            })
            .map_err(|err| thread_failed("WAL checkpointer", &err))?;
        Ok(Self {
            queue,
            checkpoints: Mutex::new(Some((stop, finished))),
        })
    }

    /// Applies every operation queued so far, then ends both threads and closes their
    /// connections. Operations sent afterwards fail as "ledger writer (stopped)".
    pub(crate) async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.queue.send(Operation::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
        let checkpoints = self
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((stop, finished)) = checkpoints {
            drop(stop);
            let _ = finished.await;
        }
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

/// One connection as every other of the store's: WAL (already set on the file by the pool),
/// `synchronous = NORMAL`, foreign keys, a busy timeout, no automatic checkpoints.
fn open(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0;",
    )?;
    Ok(connection)
}

fn thread_failed(what: &str, err: &std::io::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(format!(
        "the {what} thread could not start: {err}"
    )))
}

/// The writer thread: takes whatever is waiting (at least one, at most [`MAX_BATCH`]) and
/// applies it as one transaction, until every handle is gone or a `Stop` arrives.
fn write_batches(
    connection: Connection,
    writer_gate: &Mutex<()>,
    mut receiver: mpsc::Receiver<Operation>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        // Let the callers' threads run before taking the batch. On a busy core the writer
        // would otherwise be woken by each operation as it is queued and commit batches of one
        // or two (measured: 1.5 operations a batch, every commit writing its own WAL pages);
        // yielding lets the runtime queue what it has ready. On an idle core it returns at once.
        std::thread::yield_now();
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(operation) => batch.push(operation),
                Err(_) => break,
            }
        }
        let mut operations = std::mem::take(&mut batch);
        let stop = operations
            .iter()
            .position(|operation| matches!(operation, Operation::Stop(_)));
        let Some(stop) = stop else {
            let _batch = writer_gate.lock().unwrap_or_else(PoisonError::into_inner);
            apply(&connection, operations);
            continue;
        };
        let after = operations.split_off(stop);
        apply(&connection, operations);
        // Operations queued after the stop are answered "stopped" as their replies drop.
        drop(receiver);
        drop(connection);
        for operation in after {
            if let Operation::Stop(done) = operation {
                let _ = done.send(());
            }
        }
        return;
    }
}

/// The checkpoint thread: copies the WAL back into the database file every
/// [`CHECKPOINT_EVERY`] on its own connection. A PASSIVE checkpoint waits for no writer and
/// blocks none, so its I/O stays off the commit path of calls.
///
/// Under steady writes a checkpoint never finds the WAL fully copied (the writer appends while
/// it runs), and SQLite only starts the WAL over from its beginning when a write transaction
/// begins on a fully copied one: the file would grow without bound. So when a pass leaves
/// frames behind and the WAL has reached `StoreOptions::wal_restart_frames`, a second PASSIVE
/// pass copies what the first left, the file system is flushed, and a RESTART pass, with the
/// writer held between two batches, copies and syncs the rest (a pause of a few milliseconds,
/// measured 3-4 ms at 2,000 calls/s; at most [`RESTART_WAIT`] more while a reader still uses
/// the old WAL). The next write starts the WAL over from the beginning of its file, whose size
/// stays that of about one cycle.
///
/// Between passes, every [`PACE_EVERY`], it asks the kernel to cache the part of the WAL file
/// the writer reaches next and syncs what the writer wrote since ([`WalPacing`]), so that no
/// commit waits for the disk, to read a page it half-overwrites or behind a sync.
fn checkpoints(
    mut wal: Wal,
    writer: &Mutex<()>,
    stop: &std::sync::mpsc::Receiver<()>,
    done: oneshot::Sender<()>,
) {
    let mut last_checkpoint = std::time::Instant::now();
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(PACE_EVERY) {
        wal.pacing.tick();
        if last_checkpoint.elapsed() < CHECKPOINT_EVERY {
            continue;
        }
        last_checkpoint = std::time::Instant::now();
        let checkpointed = match checkpoint(&wal.connection, "PASSIVE") {
            Ok(Checkpoint { frames }) if frames >= wal.restart_at_frames => {
                // A second pass copies what was written during the first, and the flush syncs
                // it, so the paused third one has little left to copy or sync.
                checkpoint(&wal.connection, "PASSIVE").and_then(|_| {
                    wal.pacing.before_restart();
                    let _paused = writer.lock().unwrap_or_else(PoisonError::into_inner);
                    checkpoint(&wal.connection, "RESTART")
                })
            }
            other => other,
        };
        if let Err(err) = checkpointed {
            tracing::warn!(error = %err, "WAL checkpoint failed; retrying");
        }
    }
    drop(wal);
    let _ = done.send(());
}

/// What the checkpoint thread owns.
struct Wal {
    connection: Connection,
    pacing: WalPacing,
    /// `StoreOptions::wal_restart_frames`.
    restart_at_frames: i64,
}

/// What a PASSIVE checkpoint reports: the frames in the WAL when it began.
struct Checkpoint {
    frames: i64,
}

/// One checkpoint pass in `mode`: PASSIVE copies what it can and waits for nothing; RESTART
/// (writer paused) also waits up to [`RESTART_WAIT`] for readers of the old WAL, so that the
/// next write, from whichever connection, starts the WAL over from its beginning. (TRUNCATE
/// was measured worse: a file regrown from empty after every restart cost p99 50-85 ms at 500
/// calls/s against 3 ms.)
fn checkpoint(connection: &Connection, mode: &str) -> rusqlite::Result<Checkpoint> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Checkpoint {
            frames: row.get(1)?,
        })
    })
}

/// Applies a batch in one transaction and answers every operation.
fn apply(connection: &Connection, operations: Vec<Operation>) {
    let transaction = match BatchTransaction::begin(connection) {
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
        match apply_one(transaction.connection, operation) {
            Applied::Kept(outcome) => outcomes.push(outcome),
            Applied::Stopped => {}
            Applied::BatchBroken(err) => {
                // A savepoint could not be opened or ended, or an error ended the
                // transaction: none of the batch may be reported done, and the operations not
                // yet applied are answered too.
                drop(transaction);
                for outcome in outcomes {
                    outcome.fail(&err);
                }
                for operation in operations {
                    operation.fail(&err);
                }
                return;
            }
        }
    }
    match transaction.commit() {
        Ok(()) => outcomes.into_iter().for_each(Outcome::answer),
        Err(err) => {
            let message = err.to_string();
            for outcome in outcomes {
                outcome.fail(&message);
            }
        }
    }
}

/// The batch's transaction, begun and committed with statements prepared once per connection
/// (rusqlite's `Transaction` parses `BEGIN` and `COMMIT` anew for every batch: measured ~2 % of
/// the CPU per call when batches hold one operation). IMMEDIATE: the write lock from the start,
/// so reading budgets before writing can never meet another writer's lock half-way. Dropped
/// uncommitted (a broken batch, a failed commit, a panic), it rolls back.
struct BatchTransaction<'c> {
    connection: &'c Connection,
}

impl<'c> BatchTransaction<'c> {
    fn begin(connection: &'c Connection) -> rusqlite::Result<Self> {
        run_cached(connection, "BEGIN IMMEDIATE")?;
        Ok(Self { connection })
    }

    fn commit(self) -> rusqlite::Result<()> {
        run_cached(self.connection, "COMMIT")
        // On failure `self` drops here and rolls back what the failed COMMIT left open.
    }
}

impl Drop for BatchTransaction<'_> {
    fn drop(&mut self) {
        if self.connection.is_autocommit() {
            return;
        }
        if let Err(err) = run_cached(self.connection, "ROLLBACK") {
            tracing::warn!(error = %err, "rolling back a failed ledger batch failed");
        }
    }
}

/// One operation inside the batch's transaction. A call no budget applies to is one statement,
/// which SQLite undoes by itself if it fails; any other runs in a savepoint of its own. Either
/// way a refusal or a failure of one operation is undone alone and the batch goes on, unless
/// the failure ended the transaction itself (SQLite is back in autocommit), which breaks the
/// batch.
fn apply_one(connection: &Connection, operation: Operation) -> Applied {
    let operation = match apply_unbudgeted(connection, operation) {
        Unbudgeted::Applied(outcome) if connection.is_autocommit() => return rolled_back(outcome),
        Unbudgeted::Applied(outcome) => return Applied::Kept(outcome),
        Unbudgeted::Budgeted(operation) => operation,
    };
    if let Err(err) = savepoint(connection, "SAVEPOINT op") {
        let message = format!("a savepoint could not be opened: {err}");
        return match operation {
            Operation::Stop(done) => {
                let _ = done.send(());
                Applied::Stopped
            }
            operation => {
                operation.fail(&message);
                Applied::BatchBroken(message)
            }
        };
    }
    let (outcome, keep) = match operation {
        Operation::Admit {
            call,
            instance,
            reply,
        } => {
            let result = applicable_budgets(connection, &call).and_then(|budgets| {
                insert_pending(connection, &call, instance.as_deref())?;
                reserve(connection, &call, budgets)
            });
            let keep = matches!(result, Ok(Admission::Admitted));
            (Outcome::Admit(reply, result), keep)
        }
        Operation::Settle {
            request_id,
            settlement,
            at,
            reply,
        } => {
            let result = settle(connection, request_id, &settlement, at);
            let keep = result.is_ok();
            (Outcome::Settle(reply, result), keep)
        }
        // Never reached: `write_batches` keeps stops out of batches.
        Operation::Stop(done) => {
            let _ = done.send(());
            return match savepoint(connection, "RELEASE SAVEPOINT op") {
                Ok(()) => Applied::Stopped,
                Err(err) => Applied::BatchBroken(format!("a savepoint could not be ended: {err}")),
            };
        }
    };
    if connection.is_autocommit() {
        return rolled_back(outcome);
    }
    let end = if keep {
        savepoint(connection, "RELEASE SAVEPOINT op")
    } else {
        savepoint(connection, "ROLLBACK TO SAVEPOINT op")
            .and_then(|()| savepoint(connection, "RELEASE SAVEPOINT op"))
    };
    match end {
        Ok(()) => Applied::Kept(outcome),
        Err(err) => {
            let message = format!("a savepoint could not be ended: {err}");
            outcome.fail(&message);
            Applied::BatchBroken(message)
        }
    }
}

/// An operation's failure rolled the whole transaction back (SQLite is in autocommit again):
/// nothing in the batch is written, so its caller is told and the batch breaks.
fn rolled_back(outcome: Outcome) -> Applied {
    let message = "the transaction was rolled back by an error".to_owned();
    outcome.fail(&message);
    Applied::BatchBroken(message)
}

/// What the single-statement attempt of an operation did.
enum Unbudgeted {
    /// Done, or failed and undone by SQLite (the outcome says which).
    Applied(Outcome),
    /// Budgets apply (or the row is not pending): nothing was written, the full steps follow.
    Budgeted(Operation),
}

/// The admission or settlement of a call no budget applies to, as one statement: the pending
/// row inserted unless a budget applies; the row settled unless it holds budget windows.
fn apply_unbudgeted(connection: &Connection, operation: Operation) -> Unbudgeted {
    match operation {
        Operation::Admit {
            call,
            instance,
            reply,
        } => match admit_unbudgeted(connection, &call, instance.as_deref()) {
            Ok(true) => Unbudgeted::Applied(Outcome::Admit(reply, Ok(Admission::Admitted))),
            Ok(false) => Unbudgeted::Budgeted(Operation::Admit {
                call,
                instance,
                reply,
            }),
            Err(err) => Unbudgeted::Applied(Outcome::Admit(reply, Err(err))),
        },
        Operation::Settle {
            request_id,
            settlement,
            at,
            reply,
        } => match settle_unbudgeted(connection, request_id, &settlement, at) {
            Ok(true) => {
                Unbudgeted::Applied(Outcome::Settle(reply, Ok(Settled::nothing_released())))
            }
            Ok(false) => Unbudgeted::Budgeted(Operation::Settle {
                request_id,
                settlement,
                at,
                reply,
            }),
            Err(err) => Unbudgeted::Applied(Outcome::Settle(reply, Err(err))),
        },
        stop @ Operation::Stop(_) => Unbudgeted::Budgeted(stop),
    }
}

/// Runs a savepoint statement.
fn savepoint(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    run_cached(connection, sql)
}

/// Runs a statement without parameters or rows, prepared once per connection.
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
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
            Operation::Stop(done) => {
                let _ = done.send(());
                return;
            }
        }
        .answer();
    }
}
