//! Keeps two runs off the same ledger.
//!
//! The lock is an advisory lock on `<ledger>.lock`, held for the whole run. The operating
//! system releases it when the process dies, however it dies, so a lock left by a killed
//! run never blocks the next one. The file also names its holder (process id, host, start
//! time) so that a refused run can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error(
        "ledger {ledger} is in use by another run ({holder}); wait for it to finish, or give this run another ledger"
    )]
    Held {
        /// The ledger.
        ledger: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
    },
    /// The lock file cannot be used.
    #[error("cannot lock ledger {ledger}: {source}")]
    Io {
        /// The ledger.
        ledger: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RunLock {
    /// Takes the lock of `ledger`, or says who holds it.
    pub fn acquire(ledger: &Path) -> Result<RunLock, LockError> {
        let io = |source| LockError::Io {
            ledger: ledger.to_path_buf(),
            source,
        };
        let path = lock_path(ledger);
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "holder unknown".to_string()
                } else {
                    holder.to_string()
                };
                return Err(LockError::Held {
                    ledger: ledger.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", holder_text()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(RunLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<ledger>.lock`, beside the ledger.
pub fn lock_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn holder_text() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".to_string());
    format!(
        "process {} on {host}, started {}",
        std::process::id(),
        crate::ledger::now()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("l.sqlite");
        let first = RunLock::acquire(&ledger).unwrap();
        match RunLock::acquire(&ledger) {
            Err(LockError::Held { holder, .. }) => {
                assert!(holder.contains(&std::process::id().to_string()), "{holder}")
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        RunLock::acquire(&ledger).unwrap();
    }
}
