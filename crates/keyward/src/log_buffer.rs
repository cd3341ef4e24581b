//! The server's log output: lines are gathered in memory and written by a thread of their own
//! in one `write` a few milliseconds later, instead of one `write` system call per line on the
//! thread that logged it (the access log alone is a line per request: measured ~3 % of the
//! CPU of a call, see `docs/performance.md`). The same trade as nginx's `access_log buffer=
//! flush=`.
//!
//! Invariants:
//! - Order: lines reach the output in the order they were logged. Whoever writes to the
//!   output first takes the output's lock and then everything buffered before its own line.
//! - Warnings and errors are written at once, with everything before them: what an operator
//!   must see is never held back.
//! - Bounded: at most [`MAX_BUFFERED`] bytes wait; past that, the logging thread writes them
//!   itself (back-pressure, as an unbuffered writer would).
//! - Prompt: a line waits at most about [`FLUSH_DELAY`]; an idle server has no timer running.
//! - Nothing logged before [`FlushOnDrop`] is dropped is lost; a process killed with SIGKILL
//!   loses at most the last [`FLUSH_DELAY`] of info lines.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the first line of a batch waits for more before they are written together.
pub const FLUSH_DELAY: Duration = Duration::from_millis(20);
/// Most bytes buffered before the logging thread writes them itself.
pub const MAX_BUFFERED: usize = 256 * 1024;

/// A [`MakeWriter`] for `tracing_subscriber` that buffers lines for an output `W`.
pub struct BufferedLog<W> {
    shared: Arc<Shared<W>>,
}

impl<W> Clone for BufferedLog<W> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Writes what is still buffered and stops the writing thread when dropped. Keep it until the
/// process has logged its last line.
#[must_use = "dropping the guard flushes and stops the log writer"]
pub struct FlushOnDrop<W> {
    shared: Arc<Shared<W>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared<W> {
    /// Lock order: `output` before `pending`.
    output: Mutex<W>,
    pending: Mutex<Pending>,
    /// Signalled when the first line arrives in an empty buffer, and on close.
    arrived: Condvar,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closed: bool,
}

impl<W: Write + Send + 'static> BufferedLog<W> {
    /// Starts the thread that writes to `output`.
    pub fn start(output: W) -> std::io::Result<(Self, FlushOnDrop<W>)> {
        let shared = Arc::new(Shared {
            output: Mutex::new(output),
            pending: Mutex::new(Pending::default()),
            arrived: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("keyward-log".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || shared.write_batches()
            })?;
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            FlushOnDrop {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

impl<W> Shared<W> {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn output(&self) -> MutexGuard<'_, W> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write> Shared<W> {
    /// The writing thread: waits for a first line, lets more gather for [`FLUSH_DELAY`], writes
    /// them all; ends once closed and empty.
    fn write_batches(&self) {
        let mut spare = Vec::new();
        loop {
            let mut pending = self.pending();
            while pending.lines.is_empty() && !pending.closed {
                pending = self
                    .arrived
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let closed = pending.closed;
            drop(pending);
            if !closed {
                std::thread::sleep(FLUSH_DELAY);
            }
            let mut output = self.output();
            std::mem::swap(&mut spare, &mut self.pending().lines);
            write_out(&mut *output, &spare);
            drop(output);
            spare.clear();
            if closed && self.pending().lines.is_empty() {
                return;
            }
        }
    }

    /// Writes everything buffered, then `line`, now.
    fn write_through(&self, line: &[u8]) {
        let mut output = self.output();
        let buffered = std::mem::take(&mut self.pending().lines);
        write_out(&mut *output, &buffered);
        write_out(&mut *output, line);
    }
}

/// Writes to the output; a log line that cannot be written has nowhere to be reported.
fn write_out<W: Write>(output: &mut W, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let _ = output.write_all(bytes).and_then(|()| output.flush());
}

/// One log line's writer (the formatter writes a whole line in one `write_all`).
pub struct LineWriter<'a, W> {
    shared: &'a Shared<W>,
    urgent: bool,
}

impl<W: Write> Write for LineWriter<'_, W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if self.urgent {
            self.shared.write_through(line);
            return Ok(line.len());
        }
        let mut pending = self.shared.pending();
        if pending.closed || pending.lines.len() + line.len() > MAX_BUFFERED {
            drop(pending);
            self.shared.write_through(line);
            return Ok(line.len());
        }
        let was_empty = pending.lines.is_empty();
        pending.lines.extend_from_slice(line);
        drop(pending);
        if was_empty {
            self.shared.arrived.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for BufferedLog<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl<W> Drop for FlushOnDrop<W> {
    fn drop(&mut self) {
        self.shared.pending().closed = true;
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Instant;

    use super::*;

    /// An output tests can read while the writer holds it (also the telemetry tests').
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn info_line(log: &BufferedLog<Captured>, line: &str) {
        log.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn info_lines_are_written_by_the_thread_without_a_flush() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone()).unwrap();
        info_line(&log, "one\n");
        info_line(&log, "two\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while captured.text().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(captured.text(), "one\ntwo\n");
    }

    #[test]
    fn a_warning_is_written_at_once_after_what_was_buffered() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone()).unwrap();
        info_line(&log, "info\n");
        LineWriter {
            shared: &log.shared,
            urgent: true,
        }
        .write_all(b"warning\n")
        .unwrap();
        assert_eq!(captured.text(), "info\nwarning\n");
    }

    #[test]
    fn through_the_formatter_a_warning_flushes_what_came_before_it() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone()).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first, at info");
            tracing::warn!("then a warning");
        });
        let text = captured.text();
        let (first, warning) = (
            text.find("first, at info")
                .expect("the info line before the warning is written"),
            text.find("then a warning")
                .expect("the warning is written at once"),
        );
        assert!(first < warning);
    }

    #[test]
    fn dropping_the_guard_writes_everything_in_order() {
        let captured = Captured::default();
        let (log, guard) = BufferedLog::start(captured.clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        for i in 0..1000 {
            info_line(&log, &format!("line {i}\n"));
        }
        drop(guard);
        assert_eq!(captured.text(), expected);
        info_line(&log, "after close\n");
        assert!(
            captured.text().ends_with("after close\n"),
            "a line after close is written through, not lost"
        );
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logging_thread() {
        let captured = Captured::default();
        let (log, _guard) = BufferedLog::start(captured.clone()).unwrap();
        let line = "x".repeat(1023) + "\n";
        let lines = MAX_BUFFERED / line.len() + 1;
        for _ in 0..lines {
            info_line(&log, &line);
        }
        assert!(
            captured.text().len() >= MAX_BUFFERED,
            "past the bound, lines are written without waiting for the delay"
        );
    }

    #[test]
    fn lines_from_many_threads_are_never_interleaved_or_lost() {
        let captured = Captured::default();
        let (log, guard) = BufferedLog::start(captured.clone()).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let log = log.clone();
                scope.spawn(move || {
                    for i in 0..2000 {
                        let line = format!("t{thread} {i} {}\n", "y".repeat(i % 300));
                        if i % 97 == 0 {
                            LineWriter {
                                shared: &log.shared,
                                urgent: true,
                            }
                            .write_all(line.as_bytes())
                            .unwrap();
                        } else {
                            info_line(&log, &line);
                        }
                    }
                });
            }
        });
        drop(guard);
        let text = captured.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut parts = line.split(' ');
            let thread: usize = parts.next().unwrap()[1..].parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(
                i, next[thread],
                "each thread's lines arrive whole and in order"
            );
            assert_eq!(parts.next().unwrap_or(""), "y".repeat(i % 300));
            next[thread] += 1;
        }
        assert_eq!(next, [2000; 4]);
    }
}
