//! `KeyRing::load` and the file's permissions (Unix): a key file that its
//! group or other users may write is refused before it is read; one that
//! any user may read loads with one warning; a private one loads silently.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use keyward::{Error, JwtAlg, KeyRing, KeyringError};

/// A fresh key ring saved at `dir/name`, then given `mode`.
fn ring_with_mode(dir: &Path, name: &str, mode: u32) -> (KeyRing, PathBuf) {
    let ring = KeyRing::generate(JwtAlg::EdDSA).unwrap();
    let path = dir.join(name);
    ring.save_new(&path).unwrap();
    set_mode(&path, mode);
    (ring, path)
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A writer into a shared buffer, for the fmt subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Loads `path` under a subscriber that records every event on this
/// thread; returns the result and what was logged.
fn load_logged(path: &Path) -> (Result<KeyRing, Error>, String) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, || KeyRing::load(path));
    let logged = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    (result, logged)
}

/// Fails on today's main, which loaded them.
#[test]
fn group_or_world_writable_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, who) in [
        (0o620, "its group"),
        (0o602, "any user"),
        (0o660, "its group"),
        (0o622, "its group and any user"),
        (0o666, "its group and any user"),
        (0o646, "any user"),
        (0o720, "its group"),
    ] {
        let (ring, path) = ring_with_mode(dir.path(), &format!("k{mode:o}.keys"), mode);
        let (result, logged) = load_logged(&path);
        let err = match result {
            Err(Error::Keyring(KeyringError::Io(e))) => e,
            other => panic!("mode {mode:04o}: {other:?}"),
        };
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "mode {mode:04o}");
        let msg = Error::Keyring(KeyringError::Io(err)).to_string();
        assert_eq!(
            msg,
            format!(
                "key ring: refused: file mode {mode:04o} lets {who} write it, and so replace the keys; \
                 remove those write bits (chmod go-w, or chmod 600)"
            )
        );
        // The message names the problem, never the contents.
        let json: serde_json::Value = serde_json::from_str(&ring.to_json()).unwrap();
        let mac = json["mac_key"].as_str().unwrap();
        assert!(
            !msg.contains(mac) && !logged.contains(mac),
            "{msg} {logged}"
        );
        // Fixing the mode is enough.
        set_mode(&path, 0o600);
        KeyRing::load(&path).unwrap();
    }
    // The mode is checked before the contents are read: a writable file
    // that is not even a key ring gets the permission error.
    let junk = dir.path().join("junk.keys");
    std::fs::write(&junk, "not json").unwrap();
    set_mode(&junk, 0o620);
    match KeyRing::load(&junk) {
        Err(Error::Keyring(KeyringError::Io(e))) => {
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        }
        other => panic!("{other:?}"),
    }
}

/// World-readable (Kubernetes mounts secrets 0644 by default): loaded, with
/// exactly one warning that names the path and the mode.
#[test]
fn world_readable_files_load_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o604, 0o444] {
        let (ring, path) = ring_with_mode(dir.path(), &format!("k{mode:o}.keys"), mode);
        let (result, logged) = load_logged(&path);
        let loaded = result.unwrap();
        assert_eq!(loaded.current_jwt_key().kid(), ring.current_jwt_key().kid());
        let lines: Vec<&str> = logged.lines().collect();
        assert_eq!(lines.len(), 1, "mode {mode:04o}: {logged}");
        let line = lines[0];
        assert!(line.contains(" WARN "), "{line}");
        assert!(
            line.contains("key ring file is readable by every user on this machine"),
            "{line}"
        );
        assert!(line.contains(&format!("mode={mode:04o}")), "{line}");
        assert!(line.contains(&path.display().to_string()), "{line}");
    }
}

/// Private files load without a word: owner-only, or shared with a group
/// for reading (Kubernetes with `fsGroup` gives secrets 0440).
#[test]
fn private_files_load_silently() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o400, 0o640, 0o440] {
        let (_, path) = ring_with_mode(dir.path(), &format!("k{mode:o}.keys"), mode);
        let (result, logged) = load_logged(&path);
        result.unwrap();
        assert_eq!(logged, "", "mode {mode:04o}");
    }
}

/// The mode checked is the file's, not a symlink's (a Kubernetes secret
/// mount is a chain of symlinks, which are always 0777).
#[test]
fn the_mode_checked_is_the_target_of_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let (_, private) = ring_with_mode(dir.path(), "private.keys", 0o600);
    let link = dir.path().join("link.keys");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    let (result, logged) = load_logged(&link);
    result.unwrap();
    assert_eq!(logged, "");

    let (_, mounted) = ring_with_mode(dir.path(), "mounted.keys", 0o644);
    let link = dir.path().join("mounted-link.keys");
    std::os::unix::fs::symlink(&mounted, &link).unwrap();
    let (result, logged) = load_logged(&link);
    result.unwrap();
    assert_eq!(logged.lines().count(), 1, "{logged}");

    let (_, writable) = ring_with_mode(dir.path(), "writable.keys", 0o666);
    let link = dir.path().join("writable-link.keys");
    std::os::unix::fs::symlink(&writable, &link).unwrap();
    assert!(matches!(
        KeyRing::load(&link),
        Err(Error::Keyring(KeyringError::Io(e))) if e.kind() == ErrorKind::PermissionDenied
    ));
}
