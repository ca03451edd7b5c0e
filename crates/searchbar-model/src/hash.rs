use crate::ModelError;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// Lower-case hex sha256 of a file, streamed so large weights need no extra memory.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(ModelError::io(path))?;
    copy_hashed(&mut file, path, &mut std::io::sink(), path)
}

/// Copies `from` into `to` in bounded chunks and returns the lower-case hex sha256 of what
/// passed; errors name `from_path` or `to_path`, whichever side failed.
pub(crate) fn copy_hashed(
    from: &mut impl Read,
    from_path: &Path,
    to: &mut impl Write,
    to_path: &Path,
) -> Result<String, ModelError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = from.read(&mut buf).map_err(ModelError::io(from_path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).map_err(ModelError::io(to_path))?;
    }
    Ok(hex::encode(hasher.finalize()))
}
