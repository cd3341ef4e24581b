//! Keeps the part of SQLite's WAL file that the ledger writer is about to write in the page
//! cache, so a commit never waits for the disk to *read*.
//!
//! A WAL frame is one database page plus a 24-byte header, after a 32-byte file header, so
//! frames straddle the file's 4 KiB pages and almost every frame write covers part of a page.
//! When that page is no longer cached, the kernel reads it from disk before the write can
//! proceed, and the writer, with every call waiting on its batch, stalls for that read. The
//! WAL is written over from its start after each restart (see `group_commit::checkpoints`),
//! over pages last touched a whole cycle earlier, which a host under memory pressure, or one
//! that drops clean cache pages, has often evicted. Measured on the benchmark VM: single 4 KiB
//! WAL writes of 20-50 ms, and p99 latency of 18-50 ms at 500 calls/s; with the WAL kept
//! cached, no write waited for the disk.
//!
//! The checkpoint thread calls [`WalPrefetch::ahead`] ten times a second. It reads where the
//! writer is from the wal-index header in the `-shm` file (`mxFrame`, the frames in the WAL;
//! SQLite's documented WAL format) and asks the kernel (`POSIX_FADV_WILLNEED`, asynchronous
//! readahead) for the frames from there that the writer reaches in the next few ticks: four
//! times what it wrote in the last one, at least [`MIN_AHEAD_FRAMES`]. Before the WAL starts
//! over, [`WalPrefetch::restart`] asks for the start of the file, where the writer goes next.
//! Advice only: nothing is read on the writer's path, a torn or stale position only moves the
//! window, a failure changes no data and is ignored, and pages already cached cost a lookup.

use std::fs::File;
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{fadvise, Advice};

/// Bytes before the first frame of a WAL file.
const WAL_HEADER_BYTES: u64 = 32;
/// Bytes of a frame's own header, before its page.
const FRAME_HEADER_BYTES: u64 = 24;
/// Where the wal-index header (first copy, at the start of the `-shm` file) keeps `mxFrame`,
/// a 32-bit integer in the machine's byte order.
const MX_FRAME_OFFSET: u64 = 16;
/// Fewest frames read ahead of the writer (with 4 KiB pages, about 4 MiB).
const MIN_AHEAD_FRAMES: u64 = 1024;
/// Ticks of writing, at the last tick's pace, the window covers.
const AHEAD_TICKS: u64 = 4;

/// The WAL and wal-index files of one database, opened read-only.
#[derive(Debug)]
pub(crate) struct WalPrefetch {
    wal: Companion,
    shm: Companion,
    frame_bytes: u64,
    /// The WAL's size at the last tick, in frames.
    last_frames: u64,
    /// Frames written between the last two ticks.
    last_written: u64,
}

/// A file next to the database, opened on first use: SQLite creates both once a connection
/// opens the database in WAL mode.
#[derive(Debug)]
struct Companion {
    path: PathBuf,
    file: Option<File>,
}

impl Companion {
    fn new(database: &Path, suffix: &str) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        Self {
            path: PathBuf::from(path),
            file: None,
        }
    }

    fn file(&mut self) -> Option<&File> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        self.file.as_ref()
    }
}

impl WalPrefetch {
    /// For the database file at `database` with pages of `page_size` bytes.
    pub(crate) fn new(database: &Path, page_size: u64) -> Self {
        Self {
            wal: Companion::new(database, "-wal"),
            shm: Companion::new(database, "-shm"),
            frame_bytes: page_size + FRAME_HEADER_BYTES,
            last_frames: 0,
            last_written: 0,
        }
    }

    /// Asks for the part of the WAL the writer writes next.
    pub(crate) fn ahead(&mut self) {
        let Some(frames) = self.writer_position() else {
            return;
        };
        // A WAL smaller than at the last tick has been started over since.
        self.last_written = frames.checked_sub(self.last_frames).unwrap_or(frames);
        self.last_frames = frames;
        self.advise(frames, self.window());
    }

    /// The WAL is about to start over: asks for its first frames, written next.
    pub(crate) fn restart(&mut self) {
        self.advise(0, self.window());
    }

    /// Frames in the WAL, from the wal-index header.
    fn writer_position(&mut self) -> Option<u64> {
        let mut mx_frame = [0; 4];
        let shm = self.shm.file()?;
        shm.read_exact_at(&mut mx_frame, MX_FRAME_OFFSET).ok()?;
        Some(u64::from(u32::from_ne_bytes(mx_frame)))
    }

    /// Frames to ask for.
    fn window(&self) -> u64 {
        self.last_written
            .saturating_mul(AHEAD_TICKS)
            .max(MIN_AHEAD_FRAMES)
    }

    /// Byte range of frames `from..from + count`.
    fn range(&self, from: u64, count: u64) -> (u64, u64) {
        // The first frame's write also covers the file header's page.
        let start = match from {
            0 => 0,
            _ => WAL_HEADER_BYTES.saturating_add(from.saturating_mul(self.frame_bytes)),
        };
        (start, count.saturating_mul(self.frame_bytes))
    }

    fn advise(&mut self, from: u64, count: u64) {
        let (start, length) = self.range(from, count);
        let Some(wal) = self.wal.file() else {
            return;
        };
        // Advice: a failure changes nothing but the cache, and the next tick tries again.
        let _ = fadvise(wal, start, NonZeroU64::new(length), Advice::WillNeed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_asked_for_starts_at_the_next_frame_the_writer_writes() {
        let prefetch = WalPrefetch::new(Path::new("/nonexistent/keyward.db"), 4096);
        assert_eq!(prefetch.range(0, 2), (0, 2 * 4120));
        assert_eq!(prefetch.range(10, 1), (32 + 10 * 4120, 4120));
        assert_eq!(prefetch.wal.path, Path::new("/nonexistent/keyward.db-wal"));
        assert_eq!(prefetch.shm.path, Path::new("/nonexistent/keyward.db-shm"));
    }

    #[test]
    fn the_window_follows_the_writers_pace_and_never_shrinks_below_the_minimum() {
        let mut prefetch = WalPrefetch::new(Path::new("/nonexistent/keyward.db"), 4096);
        assert_eq!(prefetch.window(), MIN_AHEAD_FRAMES);
        prefetch.last_written = 5000;
        assert_eq!(prefetch.window(), 5000 * AHEAD_TICKS);
    }

    #[test]
    fn the_writers_position_is_read_from_the_wal_index_and_a_restart_is_seen() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join("keyward.db");
        let connection = rusqlite::Connection::open(&database).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(100000));",
            )
            .unwrap();
        let frames: u64 = connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .unwrap();
        assert!(frames > 20, "{frames} frames");
        let mut prefetch = WalPrefetch::new(&database, 4096);
        prefetch.ahead();
        assert_eq!(prefetch.last_frames, frames);
        assert_eq!(prefetch.last_written, frames);

        // After a restart the next write starts the WAL over: the position goes back.
        let _: i64 = connection
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))
            .unwrap();
        connection
            .execute_batch("INSERT INTO t VALUES (1);")
            .unwrap();
        prefetch.ahead();
        assert!(prefetch.last_frames < frames, "{}", prefetch.last_frames);
        assert_eq!(prefetch.last_written, prefetch.last_frames);
    }
}
