//! Where the master keyring comes from. `file:PATH` and `env:VAR` are built in; external key
//! managers (AWS KMS, Vault Transit) implement the same trait.
//!
//! Invariant: a source never logs or returns key material except inside a [`Keyring`].

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use keyward_core::KeyVersion;
use zeroize::Zeroizing;

use crate::{Keyring, VaultError};

pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, VaultError>> + Send + 'a>>;

/// Reads an environment variable; injected so tests never touch the process environment.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub trait MasterKeySource: Send + Sync + fmt::Debug {
    /// Where the keyring lives, as the operator configured it (`file:…`, `env:…`).
    fn location(&self) -> String;

    /// Reads and parses the whole keyring.
    fn load(&self) -> SourceFuture<'_, Keyring>;

    /// Makes a new, higher version available before a rotation: a writable source appends one;
    /// a read-only source (env) expects the operator to have appended it and does nothing.
    fn prepare_rotation(&self) -> SourceFuture<'_, ()>;
}

/// Parses `master_key.source`.
pub fn parse_source(spec: &str, env: EnvLookup) -> Result<Arc<dyn MasterKeySource>, VaultError> {
    if let Some(path) = spec.strip_prefix("file:") {
        if !path.is_empty() {
            return Ok(Arc::new(FileSource::new(path)));
        }
    }
    if let Some(var) = spec.strip_prefix("env:") {
        if !var.is_empty() {
            return Ok(Arc::new(EnvSource {
                var: var.to_owned(),
                env,
            }));
        }
    }
    Err(VaultError::UnsupportedSource)
}

/// A keyring file, `0600`, kept apart from the database.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file with a fresh version 1 if it does not exist. Returns whether it did.
    pub fn create_if_absent(&self) -> Result<bool, VaultError> {
        if self.path.exists() {
            return Ok(false);
        }
        let line = Keyring::generate_line(KeyVersion::MIN)?;
        let mut file = match open_private(&self.path, true) {
            Ok(file) => file,
            // Another process created it between the check and the open: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(err) => return Err(self.write_error(err)),
        };
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|err| self.write_error(err))?;
        Ok(true)
    }

    fn read(&self) -> Result<Zeroizing<String>, VaultError> {
        std::fs::read_to_string(&self.path)
            .map(Zeroizing::new)
            .map_err(|source| VaultError::KeyringRead {
                source_location: self.location(),
                source,
            })
    }

    fn write_error(&self, source: std::io::Error) -> VaultError {
        VaultError::KeyringWrite {
            source_location: self.location(),
            source,
        }
    }

    fn warn_if_readable_by_others(&self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(metadata) = std::fs::metadata(&self.path) {
                if metadata.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %self.path.display(),
                        "master keyring file is readable by group or others; run `chmod 600` on it"
                    );
                }
            }
        }
    }

    /// Appends `next:BASE64` by writing a complete new file beside the old one and renaming it
    /// over, so a crash leaves either the old or the new keyring, never half of one. An
    /// exclusive lock on a sibling `.lock` file serialises concurrent rotations (CLI and
    /// servers): each appends its own version to what the previous one wrote. The OS releases
    /// the lock when its holder exits, so a crash leaves no stale lock.
    fn append_version(&self) -> Result<KeyVersion, VaultError> {
        let lock_path = self.path.with_extension("key.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|err| self.write_error(err))?;
        lock.lock().map_err(|err| self.write_error(err))?;
        let current = self.read()?;
        let keyring = Keyring::parse(&current, &self.location())?;
        let primary = keyring.primary();
        let next = primary
            .next()
            .ok_or(VaultError::VersionExhausted { version: primary })?;
        let line = Keyring::generate_line(next)?;
        let mut text = Zeroizing::new(String::with_capacity(current.len() + line.len() + 1));
        text.push_str(&current);
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);

        let staging = self
            .path
            .with_extension(format!("key.new.{}.{next}", std::process::id()));
        let mut file = open_private(&staging, true).map_err(|err| self.write_error(err))?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&staging, &self.path))
            .and_then(|()| sync_parent_dir(&self.path));
        if let Err(err) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(self.write_error(err));
        }
        drop(lock);
        Ok(next)
    }
}

/// Makes a rename durable: the directory entry itself is flushed.
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn open_private(path: &Path, create_new: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(create_new);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

impl MasterKeySource for FileSource {
    fn location(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn load(&self) -> SourceFuture<'_, Keyring> {
        Box::pin(async move {
            self.warn_if_readable_by_others();
            let text = self.read()?;
            Keyring::parse(&text, &self.location())
        })
    }

    fn prepare_rotation(&self) -> SourceFuture<'_, ()> {
        Box::pin(async move { self.append_version().map(|_| ()) })
    }
}

/// A keyring in an environment variable (newline-separated lines). Read-only: to rotate, the
/// operator appends the new line on every replica first.
pub struct EnvSource {
    var: String,
    env: EnvLookup,
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSource").field("var", &self.var).finish()
    }
}

impl MasterKeySource for EnvSource {
    fn location(&self) -> String {
        format!("env:{}", self.var)
    }

    fn load(&self) -> SourceFuture<'_, Keyring> {
        Box::pin(async move {
            let text = (self.env)(&self.var).map(Zeroizing::new).ok_or_else(|| {
                VaultError::EnvVarMissing {
                    var: self.var.clone(),
                }
            })?;
            // Env values are often set on one line; accept spaces between entries too.
            let text = Zeroizing::new(text.replace(' ', "\n"));
            Keyring::parse(&text, &self.location())
        })
    }

    fn prepare_rotation(&self) -> SourceFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_source_creates_private_keyring_and_appends_versions() {
        let dir = tempfile::tempdir().unwrap();
        let source = FileSource::new(dir.path().join("master.key"));
        assert!(source.create_if_absent().unwrap());
        assert!(!source.create_if_absent().unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(source.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = source.load().await.unwrap();
        assert_eq!(before.primary().get(), 1);
        source.prepare_rotation().await.unwrap();
        let after = source.load().await.unwrap();
        assert_eq!(after.primary().get(), 2);
        // Version 1 is unchanged by the append.
        let kcv = |keyring: &Keyring, version: u32| {
            keyring
                .versions()
                .find(|(v, _)| v.get() == version)
                .map(|(_, kcv)| kcv.clone())
        };
        assert_eq!(kcv(&before, 1), kcv(&after, 1));
    }

    // Regression (review of session 1): two rotations at once both wrote version 2 and the
    // second rename replaced the first's key.
    #[test]
    fn concurrent_rotations_each_append_their_own_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        FileSource::new(&path).create_if_absent().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let source = FileSource::new(&path);
                std::thread::spawn(move || source.append_version().unwrap())
            })
            .collect();
        let mut versions: Vec<u32> = threads
            .into_iter()
            .map(|thread| thread.join().unwrap().get())
            .collect();
        versions.sort_unstable();
        assert_eq!(versions, (2..=9).collect::<Vec<_>>());
        let text = std::fs::read_to_string(&path).unwrap();
        let keyring = Keyring::parse(&text, "test").unwrap();
        assert_eq!(keyring.versions().count(), 9);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".new.")
        });
        assert_eq!(leftovers.count(), 0, "no staging file is left behind");
    }

    #[tokio::test]
    async fn env_source_reads_through_the_injected_lookup() {
        let line = Keyring::generate_line(KeyVersion::MIN).unwrap().to_string();
        let env: EnvLookup = Arc::new(move |var| (var == "KW_TEST_KEYRING").then(|| line.clone()));
        let source = parse_source("env:KW_TEST_KEYRING", env.clone()).unwrap();
        assert_eq!(source.load().await.unwrap().primary().get(), 1);
        let missing = parse_source("env:KW_OTHER", env).unwrap();
        let err = missing.load().await.unwrap_err().to_string();
        assert!(err.contains("KW_OTHER"), "{err}");
    }

    #[tokio::test]
    async fn a_previous_source_opens_but_may_not_hold_a_newer_version() {
        let dir = tempfile::tempdir().unwrap();
        let old = FileSource::new(dir.path().join("old.key"));
        old.create_if_absent().unwrap();
        let new = FileSource::new(dir.path().join("new.key"));
        std::fs::write(
            new.path(),
            format!(
                "{}{}",
                Keyring::generate_line(KeyVersion::MIN).unwrap().as_str(),
                Keyring::generate_line(KeyVersion::new(2).unwrap())
                    .unwrap()
                    .as_str()
            ),
        )
        .unwrap();
        // v1 in both files with different keys: refused as a conflict.
        let layered = crate::LayeredSource::new(Arc::new(new.clone()), vec![Arc::new(old.clone())]);
        assert!(matches!(
            layered.load().await.unwrap_err(),
            VaultError::KeyringConflict { .. }
        ));
        // The old file only holds older versions: they open, the new source's primary seals.
        std::fs::write(
            new.path(),
            Keyring::generate_line(KeyVersion::new(2).unwrap())
                .unwrap()
                .as_str(),
        )
        .unwrap();
        let layered = crate::LayeredSource::new(Arc::new(new.clone()), vec![Arc::new(old.clone())]);
        let keyring = layered.load().await.unwrap();
        assert_eq!(keyring.primary().get(), 2);
        assert!(keyring.contains(KeyVersion::MIN));
        assert_eq!(keyring.source_location(), new.location());
        // Reversed, the previous source would seal: refused.
        let reversed = crate::LayeredSource::new(Arc::new(old), vec![Arc::new(new)]);
        let err = reversed.load().await.unwrap_err();
        assert!(
            matches!(err, VaultError::PreviousSourceNewer { .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_source_schemes_are_refused() {
        let env: EnvLookup = Arc::new(|_| None);
        for spec in ["", "file:", "env:", "s3://bucket/key", "aws-kms:alias/x"] {
            assert!(parse_source(spec, env.clone()).is_err(), "{spec}");
        }
    }
}
