//! The 256-bit master key.
//!
//! It lives in `<data_dir>/master.key` (base64, created with mode 0600 and
//! refused when group or others can read it) or comes from
//! `AGENTRY_MASTER_KEY`. It never encrypts data directly: it wraps data keys
//! and, through HKDF-SHA256 with a distinct label per purpose, yields the
//! MAC keys the appliance needs (CSRF tokens, the audit chain).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

pub const KEY_FILE: &str = "master.key";
/// A rotated key written before the database switches to it; renamed over
/// [`KEY_FILE`] once the switch has committed.
pub const PENDING_FILE: &str = "master.key.new";

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key {0} is readable by group or others (mode {1:o}); run: chmod 600 {0}")]
    Permissions(PathBuf, u32),
    #[error("master key from {0} is not valid base64 of 32 bytes")]
    Malformed(String),
}

/// The master key. Its bytes are wiped on drop and never printed.
pub struct MasterKey(Zeroizing<[u8; 32]>);

/// A 256-bit key derived for one purpose.
pub type DerivedKey = Zeroizing<[u8; 32]>;

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    pub fn generate() -> MasterKey {
        MasterKey::from_bytes(super::random::bytes::<32>())
    }

    pub fn from_base64(text: &str, source: &str) -> Result<MasterKey, MasterKeyError> {
        let mut decoded = STANDARD
            .decode(text.trim())
            .map_err(|_| MasterKeyError::Malformed(source.to_string()))?;
        let result = <[u8; 32]>::try_from(decoded.as_slice())
            .map(MasterKey::from_bytes)
            .map_err(|_| MasterKeyError::Malformed(source.to_string()));
        decoded.zeroize();
        result
    }

    /// Reads the key file in `data_dir`, creating it (0600, exclusive) when
    /// absent. Returns whether it was created.
    pub fn load_or_create(data_dir: &Path) -> Result<(MasterKey, bool), MasterKeyError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| MasterKeyError::Io {
            path: path.clone(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let key = MasterKey::generate();
                let mut text = Zeroizing::new(STANDARD.encode(*key.0));
                text.push('\n');
                file.write_all(text.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((key, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(MasterKeyError::Permissions(path, mode & 0o777));
                }
                let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io)?);
                let key = MasterKey::from_base64(&text, &path.display().to_string())?;
                Ok((key, false))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Writes the key to a new file (mode 0600, exclusive, synced).
    pub fn write_new(&self, path: &Path) -> Result<(), MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mut text = Zeroizing::new(STANDARD.encode(*self.0));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The key of an unfinished rotation in `data_dir`, if there is one.
    pub fn pending(data_dir: &Path) -> Result<Option<MasterKey>, MasterKeyError> {
        let path = data_dir.join(PENDING_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                MasterKey::from_base64(&text, &path.display().to_string()).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MasterKeyError::Io { path, source }),
        }
    }

    /// Makes the pending key the key file (an atomic rename). With
    /// `keep_old`, the old file is first linked to
    /// `master.key.<UTC time>.bak`, which is returned.
    pub fn install_pending(
        data_dir: &Path,
        keep_old: bool,
    ) -> Result<Option<PathBuf>, MasterKeyError> {
        let current = data_dir.join(KEY_FILE);
        let io = |path: &Path, source| MasterKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let backup = if keep_old {
            let stamp = crate::timefmt::compact_utc(crate::db::now_ms());
            let backup = data_dir.join(format!("{KEY_FILE}.{stamp}.bak"));
            std::fs::hard_link(&current, &backup).map_err(|e| io(&backup, e))?;
            Some(backup)
        } else {
            None
        };
        std::fs::rename(data_dir.join(PENDING_FILE), &current).map_err(|e| io(&current, e))?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(data_dir, e))?;
        Ok(backup)
    }

    /// HKDF-SHA256 of the master key for one purpose. Distinct labels give
    /// independent keys; the label is part of the on-disk format, so never
    /// change an existing one.
    pub fn derive(&self, label: &str) -> DerivedKey {
        let hk = Hkdf::<Sha256>::new(Some(b"agentry/v1"), self.0.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        hk.expand(label.as_bytes(), out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_0600_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, created) = MasterKey::load_or_create(dir.path()).unwrap();
        assert!(created);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, created) = MasterKey::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(*k1.derive("x"), *k2.derive("x"));
        assert_ne!(*k1.derive("x"), *k1.derive("y"));
    }

    #[test]
    fn refuses_world_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        MasterKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(dir.path()),
            Err(MasterKeyError::Permissions(..))
        ));
    }

    #[test]
    fn debug_does_not_print_key() {
        let k = MasterKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{k:?}"), "MasterKey(redacted)");
        assert!(MasterKey::from_base64("c2hvcnQ=", "env").is_err());
    }
}
