//! Crash-safe file writes, the workspace's one home for them: a reader, or the next run after a
//! crash, sees a file's old bytes or its new bytes, never a mix.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary sibling an atomic write of `path` goes through: `.<name>.tmp-<pid>`, hidden,
/// and recognised by [`is_temporary`] so that one a crash left can be swept.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether a directory entry is the temporary of an atomic write (this module's, or one of
/// the pipeline's temporary release directories, `.tmp-<pid>-<id>`).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with(".tmp-") || (name.starts_with('.') && name.contains(".tmp-"))
}

/// Writes `path` through a temporary sibling: `fill` writes it, it is fsynced, `staged` runs
/// (the new bytes are durable but not yet in place: where the crash tests stop the process),
/// and it is renamed over `path`. On failure the temporary is removed; one a crash left is
/// swept by the pipeline's next run under its workspace lock. The directory itself is not
/// synced: a caller writing several files syncs it once, after the last ([`sync_dir`]).
pub fn write_atomic_with(
    path: &Path,
    fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    staged: &mut dyn FnMut(),
) -> io::Result<()> {
    let temp = temporary(path);
    let result = (|| {
        let mut file = io::BufWriter::new(std::fs::File::create(&temp)?);
        fill(&mut file)?;
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        staged();
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        // A full disk or a vanished directory: leave nothing behind that only takes space.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Makes a directory's entries (renames, new files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}
