//! Embedding cache keyed by (model fingerprint, document content hash): a data change
//! re-encodes only the documents whose content changed.
//!
//! One file per model: `SBEMB001`, dim (u32 LE), count (u64 LE), then per entry the 32-byte
//! content hash and `dim` f32 LE values. Written atomically; a damaged file is an error
//! naming it (delete it to rebuild).

use crate::deploy::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SBEMB001";

#[derive(Debug, Default)]
pub struct EmbeddingCache {
    pub dim: usize,
    map: HashMap<[u8; 32], Vec<f32>>,
}

impl EmbeddingCache {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            map: HashMap::new(),
        }
    }

    /// Loads `path`, or an empty cache when it does not exist.
    pub fn load(path: &Path, dim: usize) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::new(dim)),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_bytes(&bytes, dim).with_context(|| {
            format!(
                "{}: damaged embedding cache (delete it to rebuild)",
                path.display()
            )
        })
    }

    fn from_bytes(bytes: &[u8], dim: usize) -> Result<Self> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            bail!("not an embedding cache");
        }
        let file_dim = u32::from_le_bytes(bytes[8..12].try_into()?) as usize;
        let count = u64::from_le_bytes(bytes[12..20].try_into()?) as usize;
        if file_dim != dim {
            bail!("dimension {file_dim}, expected {dim}");
        }
        let entry = 32 + 4 * dim;
        if (bytes.len() - 20) != count.checked_mul(entry).context("count overflows")? {
            bail!("{} bytes do not hold {count} entries", bytes.len());
        }
        let mut map = HashMap::with_capacity(count);
        for chunk in bytes[20..].chunks_exact(entry) {
            let key: [u8; 32] = chunk[..32].try_into()?;
            let v = chunk[32..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            map.insert(key, v);
        }
        Ok(Self { dim, map })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut keys: Vec<&[u8; 32]> = self.map.keys().collect();
        keys.sort();
        let mut out = Vec::with_capacity(20 + keys.len() * (32 + 4 * self.dim));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for k in keys {
            out.extend_from_slice(k);
            for x in &self.map[k] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        write_atomic(path, &out)
    }

    pub fn get(&self, content_hash: &str) -> Option<&[f32]> {
        self.map.get(&key(content_hash).ok()?).map(Vec::as_slice)
    }

    pub fn insert(&mut self, content_hash: &str, v: Vec<f32>) -> Result<()> {
        if v.len() != self.dim {
            bail!("vector of {} values in a {}-d cache", v.len(), self.dim);
        }
        self.map.insert(key(content_hash)?, v);
        Ok(())
    }

    /// Adds every entry of `other` (shard merge).
    pub fn merge(&mut self, other: EmbeddingCache) -> Result<()> {
        if other.dim != self.dim {
            bail!(
                "cannot merge a {}-d cache into a {}-d one",
                other.dim,
                self.dim
            );
        }
        self.map.extend(other.map);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

fn key(content_hash: &str) -> Result<[u8; 32]> {
    let bytes =
        hex::decode(content_hash).with_context(|| format!("content hash {content_hash:?}"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("content hash {content_hash:?} is not 32 bytes"))
}

/// The cache file of one model in a workspace.
pub fn cache_path(workspace: &Path, model_fingerprint: &str) -> PathBuf {
    workspace
        .join("embeddings")
        .join(format!("{}.bin", &model_fingerprint[..16]))
}

/// A partial cache written by `embed --shard i/n`.
pub fn shard_path(workspace: &Path, model_fingerprint: &str, i: usize, n: usize) -> PathBuf {
    workspace
        .join("embeddings")
        .join(format!("{}.shard-{i}-of-{n}.bin", &model_fingerprint[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let mut c = EmbeddingCache::new(3);
        let h = "ab".repeat(32);
        c.insert(&h, vec![1.0, 2.0, 3.0]).unwrap();
        c.save(&path).unwrap();
        let back = EmbeddingCache::load(&path, 3).unwrap();
        assert_eq!(back.get(&h), Some(&[1.0, 2.0, 3.0][..]));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let e = format!("{:#}", EmbeddingCache::load(&path, 3).unwrap_err());
        assert!(e.contains("damaged embedding cache"), "{e}");
        assert!(
            EmbeddingCache::load(&dir.path().join("none"), 3)
                .unwrap()
                .len()
                == 0
        );
    }
}
