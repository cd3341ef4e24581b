//! Keeps the disk off the ledger writer's path: the part of SQLite's WAL file the writer is
//! about to write is read into the page cache ahead of it, and what it has written is written
//! back to disk behind it.
//!
//! **Ahead.** A WAL frame is one database page plus a 24-byte header, after a 32-byte file
//! header, so frames straddle the file's 4 KiB pages and almost every frame write covers part
//! of a page. When that page is no longer cached, the kernel reads it from disk before the
//! write can proceed, and the writer, with every call waiting on its batch, stalls for that
//! read. The WAL is written over from its start after each restart (see
//! `group_commit::checkpoints`), over pages last touched a whole cycle earlier, which a host
//! under memory pressure, or one that drops clean cache pages, has often evicted. Measured on
//! the benchmark VM: single 4 KiB WAL writes of 20-50 ms, and p99 latency of 18-50 ms at 500
//! calls/s; with the WAL kept cached, no write waited for the disk.
//!
//! **Behind.** With `synchronous = NORMAL` a commit writes the WAL without syncing it; the
//! checkpoint once a second syncs it first. At 2,000 calls/s that sync had a second of WAL
//! (~60 MB) to flush, and writes to the file waited for it: measured batches of 15-20 ms while
//! the checkpoint's sync ran, p99 8-20 ms. Synced on every tick instead, each sync flushes a
//! tenth of that and no batch waited more than 3 ms (p99 3.8 ms). A power failure now loses
//! about the last tick of commits, where it could lose a whole second before (best effort: a
//! failed sync is ignored, and no tick runs while the checkpoint thread flushes or waits for
//! a restart). On storage that keeps pages stable during writeback (btrfs, dm-integrity) a
//! write to a page being synced waits for it; measured only on ext4, where none did.
//!
//! **Before a restart.** A PASSIVE checkpoint that leaves frames behind does not sync the
//! database file, so it holds every page copied since the last restart when the RESTART pass,
//! with the writer paused, syncs it: 13-14 ms of pause measured. [`WalPacing::before_restart`]
//! flushes the file system first (`syncfs`: the database file cannot be opened here, see
//! below), so the pause syncs only what the RESTART pass itself copies: 3-4 ms measured. The
//! flush covers everything on that file system, so it takes longer where other programs write
//! to the same volume (keep the data directory on its own); the writer is not paused for it.
//!
//! [`WalPacing::tick`] runs on the checkpoint thread ten times a second. The writer's position
//! is the count of frames that carry the WAL header's salts: SQLite writes frames in order from
//! the start of the file and gives each cycle new salts, so those frames come first and a
//! binary search over frame headers finds where they end (SQLite's documented WAL format). Only
//! the `-wal` file is opened, never the database or its `-shm`: SQLite locks those with POSIX
//! locks, which the process loses as soon as it closes *any* descriptor of the file, while
//! SQLite never locks the WAL. Everything here is advice or an extra sync: a torn or stale
//! position only moves the window, a failure changes no data and is ignored, and the next tick
//! tries again.

use std::fs::File;
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{fadvise, fdatasync, syncfs, Advice};

/// Bytes before the first frame of a WAL file.
const WAL_HEADER_BYTES: u64 = 32;
/// Bytes of a frame's own header, before its page.
const FRAME_HEADER_BYTES: u64 = 24;
/// Where the two 32-bit salts sit, in the WAL header and in each frame header.
const HEADER_SALTS_OFFSET: u64 = 16;
const FRAME_SALTS_OFFSET: u64 = 8;
/// Fewest frames read ahead of the writer (with 4 KiB pages, about 4 MiB).
const MIN_AHEAD_FRAMES: u64 = 1024;
/// Ticks of writing, at the last tick's pace, the window covers.
const AHEAD_TICKS: u64 = 4;

/// The WAL file of one database, opened read-only on first use (SQLite creates it once a
/// connection opens the database in WAL mode), and where the writer was at the last tick.
#[derive(Debug)]
pub(crate) struct WalPacing {
    path: PathBuf,
    file: Option<File>,
    frame_bytes: u64,
    /// The WAL's size at the last tick, in frames.
    last_frames: u64,
    /// Frames written between the last two ticks.
    last_written: u64,
}

impl WalPacing {
    /// For the database file at `database` with pages of `page_size` bytes.
    pub(crate) fn new(database: &Path, page_size: u64) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Self {
            path: PathBuf::from(path),
            file: None,
            frame_bytes: page_size + FRAME_HEADER_BYTES,
            last_frames: 0,
            last_written: 0,
        }
    }

    /// Asks for the part of the WAL the writer writes next and syncs what it wrote since the
    /// last tick.
    pub(crate) fn tick(&mut self) {
        let Some(frames) = self.writer_position() else {
            return;
        };
        let moved = frames != self.last_frames;
        // A WAL smaller than at the last tick has been started over since.
        self.last_written = frames.checked_sub(self.last_frames).unwrap_or(frames);
        self.last_frames = frames;
        self.advise(frames, self.window());
        if moved {
            if let Some(wal) = self.file() {
                // An extra sync: a failure loses nothing (the checkpoint syncs again).
                let _ = fdatasync(wal);
            }
        }
    }

    /// The WAL is about to start over: asks for its first frames, written next, and flushes
    /// the database file's copied pages so the paused RESTART pass has little left to sync.
    pub(crate) fn before_restart(&mut self) {
        self.advise(0, self.window());
        if let Some(wal) = self.file() {
            let _ = syncfs(wal);
        }
    }

    fn file(&mut self) -> Option<&File> {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        self.file.as_ref()
    }

    /// Frames in the WAL: those that carry the header's salts, found by binary search.
    fn writer_position(&mut self) -> Option<u64> {
        let frame_bytes = self.frame_bytes;
        let wal = self.file()?;
        let salts = |offset: u64| {
            let mut salts = [0; 8];
            wal.read_exact_at(&mut salts, offset).ok().map(|()| salts)
        };
        let current = salts(HEADER_SALTS_OFFSET)?;
        let length = wal.metadata().ok()?.len();
        let frame_salts =
            |frame: u64| salts(WAL_HEADER_BYTES + frame * frame_bytes + FRAME_SALTS_OFFSET);
        // Invariant: frames below `low` carry the salts, frames from `high` on do not.
        let (mut low, mut high) = (0, length.saturating_sub(WAL_HEADER_BYTES) / frame_bytes);
        while low < high {
            let middle = low + (high - low) / 2;
            if frame_salts(middle)? == current {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Some(low)
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
        let Some(wal) = self.file() else {
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
        let pacing = WalPacing::new(Path::new("/nonexistent/keyward.db"), 4096);
        assert_eq!(pacing.range(0, 2), (0, 2 * 4120));
        assert_eq!(pacing.range(10, 1), (32 + 10 * 4120, 4120));
        assert_eq!(pacing.path, Path::new("/nonexistent/keyward.db-wal"));
    }

    #[test]
    fn the_window_follows_the_writers_pace_and_never_shrinks_below_the_minimum() {
        let mut pacing = WalPacing::new(Path::new("/nonexistent/keyward.db"), 4096);
        assert_eq!(pacing.window(), MIN_AHEAD_FRAMES);
        pacing.last_written = 5000;
        assert_eq!(pacing.window(), 5000 * AHEAD_TICKS);
    }

    #[test]
    fn the_writers_position_is_the_frames_carrying_the_headers_salts_even_after_a_restart() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join("keyward.db");
        let mut pacing = WalPacing::new(&database, 4096);
        // No WAL yet: nothing to read, nothing done.
        pacing.tick();
        assert_eq!(pacing.last_frames, 0);

        let connection = rusqlite::Connection::open(&database).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(100000));",
            )
            .unwrap();
        let wal_frames = || -> u64 {
            connection
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
                .unwrap()
        };
        let frames = wal_frames();
        assert!(frames > 20, "{frames} frames");
        pacing.tick();
        assert_eq!(pacing.last_frames, frames);
        assert_eq!(pacing.last_written, frames);

        // After a restart the next write starts the WAL over from its first frame; the frames
        // of the last cycle still fill the rest of the file, under the old salts.
        let _: i64 = connection
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))
            .unwrap();
        connection
            .execute_batch("INSERT INTO t VALUES (1);")
            .unwrap();
        // A reader of this cycle's frames keeps the WAL from starting over again below, so the
        // next write grows this cycle.
        let reader = rusqlite::Connection::open(&database).unwrap();
        reader.execute_batch("BEGIN;").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap();
        let restarted = wal_frames();
        let wal = pacing.path.clone();
        let salts = || std::fs::read(&wal).unwrap()[16..24].to_vec();
        let cycle = salts();
        assert!(restarted < frames, "{restarted} frames after the restart");
        pacing.tick();
        assert_eq!(pacing.last_frames, restarted);
        assert_eq!(pacing.last_written, restarted);

        connection
            .execute_batch("INSERT INTO t VALUES (zeroblob(50000));")
            .unwrap();
        let grown = wal_frames();
        assert!(grown > restarted, "{grown} frames");
        assert_eq!(
            salts(),
            cycle,
            "the WAL started over: not growth within a cycle"
        );
        pacing.tick();
        assert_eq!(pacing.last_frames, grown);
        assert_eq!(pacing.last_written, grown - restarted);
        reader.execute_batch("COMMIT;").unwrap();
        pacing.before_restart();
    }
}
