//! Precompressed variants of release artifacts: `files/<name>.br` and `files/<name>.gz` beside
//! `files/<name>`, for hosts that answer by `Accept-Encoding` (`searchbar serve`, nginx's
//! `gzip_static`/`brotli_static`, most CDNs in front of an origin). A variant is only ever a
//! transfer encoding: the manifest names and hashes the decoded bytes, the page verifies what
//! it decoded, and a target refuses a release whose variant does not decode to its artifact.

use super::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use searchbar_release::FileRef;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The encodings a release may carry, by the suffix of their file and their header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

pub const ENCODINGS: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

/// A variant is kept only where it saves at least this share of the bytes: below that, the
/// host's negotiation and the client's decoding cost more than the transfer saves.
const MIN_SAVING: f64 = 0.05;

impl Encoding {
    /// The file suffix, without the dot; also what tower-http's `ServeDir` looks for.
    pub fn ext(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gz",
        }
    }

    /// The `Content-Encoding` value.
    pub fn header(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// `files/<name>.<ext>` for the artifact at `path`.
    pub fn variant_of(self, path: &Path) -> PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push(".");
        p.push(self.ext());
        PathBuf::from(p)
    }

    /// Compresses with an effort that keeps an export of a large release in seconds: the
    /// strongest settings for what a page fetches before its first result (document shards,
    /// lexical fragments, the tokenizer: small files), less for the multi-megabyte encoder
    /// and index, whose int8 weights and codes gain almost nothing from more effort (the
    /// encoder: 20.85 MB at brotli 5 and at 9). The web bundle is compressed at the strongest
    /// setting once, by scripts/build-web.sh, and taken from there.
    pub fn compress(self, bytes: &[u8]) -> Vec<u8> {
        const MIB: usize = 1 << 20;
        let mut out = Vec::with_capacity(bytes.len() / 2);
        match self {
            Encoding::Brotli => {
                let params = brotli::enc::BrotliEncoderParams {
                    quality: match bytes.len() {
                        n if n <= 2 * MIB => 11,
                        n if n <= 16 * MIB => 9,
                        _ => 5,
                    },
                    // A window no larger than the file: the same output, without the
                    // 4 MiB window's tables set up for every small shard and fragment.
                    lgwin: (usize::BITS - (bytes.len() + 16).leading_zeros()).clamp(10, 22) as i32,
                    size_hint: bytes.len(),
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)
                    .expect("compressing into memory cannot fail");
            }
            Encoding::Gzip => {
                let level = if bytes.len() <= 16 * MIB { 9 } else { 6 };
                let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
                gz.write_all(bytes)
                    .expect("compressing into memory cannot fail");
                out = gz.finish().expect("compressing into memory cannot fail");
            }
        }
        out
    }

    /// Decodes at most `limit + 1` bytes: a variant that inflates past its artifact's size is
    /// wrong, and is not decoded to the end.
    pub fn decode(self, bytes: &[u8], limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let reader: Box<dyn Read + '_> = match self {
            Encoding::Brotli => Box::new(brotli::Decompressor::new(bytes, 64 * 1024)),
            Encoding::Gzip => Box::new(flate2::read::GzDecoder::new(bytes)),
        };
        reader.take(limit + 1).read_to_end(&mut out)?;
        Ok(out)
    }
}

/// Writes the variants of the artifact at `path` (whose bytes are `bytes`) that save enough,
/// and removes any that do not. An existing variant that already decodes to `bytes` is kept
/// untouched, and so is one built beside the artifact's source (`prebuilt`: the web bundle's
/// `dist/<name>` for `dist/<name>.br`) when it decodes correctly. Returns the variants' sizes.
pub fn write_variants(
    path: &Path,
    bytes: &[u8],
    prebuilt: Option<&Path>,
) -> Result<Vec<(Encoding, u64)>> {
    let mut sizes = Vec::new();
    for enc in ENCODINGS {
        let at = enc.variant_of(path);
        let decodes = |candidate: &[u8]| {
            enc.decode(candidate, bytes.len() as u64)
                .is_ok_and(|d| d == bytes)
        };
        let existing = std::fs::read(&at).ok().filter(|v| decodes(v));
        let variant = match existing {
            Some(v) => v,
            None => {
                let from_source = prebuilt
                    .and_then(|p| std::fs::read(enc.variant_of(p)).ok())
                    .filter(|v| decodes(v));
                let v = from_source.unwrap_or_else(|| enc.compress(bytes));
                if saves_enough(v.len(), bytes.len()) {
                    write_atomic(&at, &v)?;
                }
                v
            }
        };
        if saves_enough(variant.len(), bytes.len()) {
            sizes.push((enc, variant.len() as u64));
        } else {
            remove_if_present(&at)?;
        }
    }
    Ok(sizes)
}

fn saves_enough(compressed: usize, raw: usize) -> bool {
    (compressed as f64) <= (raw as f64) * (1.0 - MIN_SAVING)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The variants present beside the artifact at `path`.
pub fn present(path: &Path) -> impl Iterator<Item = (Encoding, PathBuf)> + '_ {
    ENCODINGS
        .into_iter()
        .map(|e| (e, e.variant_of(path)))
        .filter(|(_, p)| std::fs::symlink_metadata(p).is_ok())
}

/// Checks that a variant's bytes `raw` decode to exactly the bytes `file` describes: a host
/// would otherwise send a client wrong bytes under a right name.
pub fn check_variant(enc: Encoding, raw: &[u8], file: &FileRef) -> Result<()> {
    let decoded = enc.decode(raw, file.bytes).context("it does not decode")?;
    if let Err(e) = file.verify(&decoded) {
        bail!("it does not decode to its artifact: {e}");
    }
    Ok(())
}

/// [`check_variant`] for the variant file at `at`, which must be a regular file.
fn check_variant_file(enc: Encoding, at: &Path, file: &FileRef) -> Result<()> {
    super::fsutil::require_regular(at)?;
    let raw = std::fs::read(at).with_context(|| format!("reading {}", at.display()))?;
    check_variant(enc, &raw, file).with_context(|| at.display().to_string())
}

/// Checks every variant beside the artifact at `path` ([`check_variant`]).
pub fn verify_variants(path: &Path, file: &FileRef) -> Result<()> {
    present(path).try_for_each(|(enc, at)| check_variant_file(enc, &at, file))
}

/// Removes the variants beside `path` that fail [`check_variant`] (a crash or tampering on a
/// target); returns how many it removed.
pub fn remove_bad_variants(path: &Path, file: &FileRef) -> Result<usize> {
    let mut removed = 0;
    for (enc, at) in present(path) {
        if check_variant_file(enc, &at, file).is_err() {
            remove_if_present(&at)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_ref(bytes: &[u8]) -> FileRef {
        FileRef {
            path: "../../files/a.json".into(),
            bytes: bytes.len() as u64,
            sha256: searchbar_release::sha256_hex(bytes),
        }
    }

    #[test]
    fn variants_round_trip_and_incompressible_bytes_get_none() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a document title, a snippet and an id; ".repeat(2000);
        let path = dir.path().join("a.json");
        std::fs::write(&path, &text).unwrap();
        let sizes = write_variants(&path, text.as_bytes(), None).unwrap();
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        for (enc, size) in &sizes {
            let v = std::fs::read(enc.variant_of(&path)).unwrap();
            assert_eq!(v.len() as u64, *size);
            assert!(*size * 10 < text.len() as u64, "{enc:?}: {size}");
            assert_eq!(enc.decode(&v, text.len() as u64).unwrap(), text.as_bytes());
        }
        verify_variants(&path, &file_ref(text.as_bytes())).unwrap();

        // Random bytes (like int8 rows) do not compress: no variant, and a stale one goes.
        use sha2::Digest;
        let noise: Vec<u8> = (0..2_000u32)
            .flat_map(|i| sha2::Sha256::digest(i.to_le_bytes()))
            .collect();
        let path = dir.path().join("b.bin");
        std::fs::write(&path, &noise).unwrap();
        std::fs::write(Encoding::Gzip.variant_of(&path), b"stale").unwrap();
        assert!(write_variants(&path, &noise, None).unwrap().is_empty());
        assert_eq!(present(&path).count(), 0);
    }

    #[test]
    fn a_variant_that_decodes_to_other_bytes_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let text = "the live release's bytes ".repeat(500);
        let path = dir.path().join("a.json");
        std::fs::write(&path, &text).unwrap();
        write_variants(&path, text.as_bytes(), None).unwrap();
        let other = "another release's bytes! ".repeat(500);
        std::fs::write(
            Encoding::Brotli.variant_of(&path),
            Encoding::Brotli.compress(other.as_bytes()),
        )
        .unwrap();
        let f = file_ref(text.as_bytes());
        let err = verify_variants(&path, &f).unwrap_err().to_string();
        assert!(err.contains("a.json.br"), "{err}");
        // A bomb: far more bytes than the artifact has is not decoded to the end.
        let big = vec![b'x'; 10 << 20];
        let bomb = Encoding::Gzip.compress(&big);
        std::fs::write(Encoding::Gzip.variant_of(&path), &bomb).unwrap();
        assert_eq!(
            Encoding::Gzip.decode(&bomb, f.bytes).unwrap().len() as u64,
            f.bytes + 1
        );
        assert_eq!(remove_bad_variants(&path, &f).unwrap(), 2);
        assert_eq!(present(&path).count(), 0);
        // Written again from the artifact, a prebuilt variant that is wrong is not taken.
        let src = dir.path().join("dist-a.json");
        std::fs::write(Encoding::Brotli.variant_of(&src), b"junk").unwrap();
        write_variants(&path, text.as_bytes(), Some(&src)).unwrap();
        verify_variants(&path, &f).unwrap();
        assert_eq!(present(&path).count(), 2);
    }
}
