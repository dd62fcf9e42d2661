//! The one way spectrans-rs writes an output file: all of it or none of it.
//!
//! The bytes go to a temporary file next to the target (same folder, so the rename cannot
//! cross file systems), which is synced, renamed over the target, and the folder synced, so
//! a reader never sees half a file and a crash or power cut leaves the old file or the new
//! one. On failure the temporary file is removed and the target is untouched.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (see the module docs).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("spectrans-atomic-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("out.txt");
/// spectrans_config::write_atomically(&path, b"all or nothing")?;
/// assert_eq!(std::fs::read(&path)?, b"all or nothing");
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path)?;
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.<name>.<pid>.tmp` next to `path`.
fn temp_path(path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// Syncs the folder holding `path`, so the rename survives a power cut as well as a crash;
/// best effort (some file systems cannot open or sync a folder; the rename is done either way).
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spectrans-atomic-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() -> std::io::Result<()> {
        let dir = scratch("replace");
        let path = dir.join("a.bin");
        std::fs::write(&path, b"old")?;
        write_atomically(&path, b"new")?;
        assert_eq!(std::fs::read(&path)?, b"new");
        let names: Vec<_> = std::fs::read_dir(&dir)?.filter_map(Result::ok).collect();
        assert_eq!(names.len(), 1, "only the target remains");
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() -> std::io::Result<()> {
        let dir = scratch("fail");
        let target = dir.join("is-a-dir");
        std::fs::create_dir(&target)?;
        std::fs::write(target.join("keep"), b"x")?;
        assert!(write_atomically(&target, b"new").is_err());
        assert_eq!(std::fs::read(target.join("keep"))?, b"x");
        let names: Vec<_> = std::fs::read_dir(&dir)?.filter_map(Result::ok).collect();
        assert_eq!(names.len(), 1, "the temporary file was removed");
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        assert!(write_atomically(Path::new("/"), b"x").is_err());
    }
}
