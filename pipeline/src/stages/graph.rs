//! The stage graph, as DVC keeps it: each stage records the fingerprints of its inputs when it
//! finishes; a stage is stale when a current input differs from the recorded one (or an
//! upstream stage is stale), and `status` says which input changed and how.

use crate::deploy::fsutil::write_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Ingest,
    Embed,
    Train,
    Evaluate,
    Export,
    Deploy,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Ingest,
        Stage::Embed,
        Stage::Train,
        Stage::Evaluate,
        Stage::Export,
        Stage::Deploy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Embed => "embed",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
            Stage::Export => "export",
            Stage::Deploy => "deploy",
        }
    }
}

/// Fingerprints by name (`data.fingerprint`, `params.index.nlist`, ...).
pub type Fingerprints = BTreeMap<String, String>;

/// What a finished stage recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub inputs: Fingerprints,
    pub outputs: Fingerprints,
    pub finished: String,
}

fn record_path(ws: &Path, stage: Stage, env: Option<&str>) -> PathBuf {
    let name = match (stage, env) {
        (Stage::Deploy, Some(env)) => format!("deploy-{env}.json"),
        _ => format!("{}.json", stage.name()),
    };
    ws.join("stages").join(name)
}

pub fn read_record(ws: &Path, stage: Stage, env: Option<&str>) -> Result<Option<Record>> {
    let path = record_path(ws, stage, env);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!(
                "{}: damaged stage record (delete it to rerun the stage)",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn write_record(
    ws: &Path,
    stage: Stage,
    env: Option<&str>,
    inputs: Fingerprints,
    outputs: Fingerprints,
) -> Result<()> {
    let rec = Record {
        inputs,
        outputs,
        finished: crate::clock::now_rfc3339(),
    };
    write_atomic(
        &record_path(ws, stage, env),
        &serde_json::to_vec_pretty(&rec)?,
    )
}

/// Why `current` differs from what the stage last ran with, grouped by kind of input:
/// `params changed: index.nlist 64 → 128`.
pub fn explain(recorded: Option<&Record>, current: &Fingerprints) -> Vec<String> {
    let Some(rec) = recorded else {
        return vec!["never ran".into()];
    };
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> =
        rec.inputs.keys().chain(current.keys()).collect();
    for key in keys {
        let old = rec.inputs.get(key);
        let new = current.get(key);
        if old == new {
            continue;
        }
        let (group, name) = key.split_once('.').unwrap_or(("input", key));
        let show = |v: Option<&String>| match v {
            None => "(unset)".to_string(),
            Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                v[..12].to_string()
            }
            Some(v) => v.clone(),
        };
        groups
            .entry(group)
            .or_default()
            .push(format!("{name} {} → {}", show(old), show(new)));
    }
    groups
        .into_iter()
        .map(|(group, changes)| format!("{group} changed: {}", changes.join(", ")))
        .collect()
}

/// Flattens a serializable config section into `prefix.key = value` fingerprints.
pub fn flatten(prefix: &str, value: &impl Serialize, out: &mut Fingerprints) {
    fn walk(prefix: String, v: &serde_json::Value, out: &mut Fingerprints) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    walk(format!("{prefix}.{k}"), v, out);
                }
            }
            serde_json::Value::String(s) => {
                out.insert(prefix, s.clone());
            }
            other => {
                out.insert(prefix, other.to_string());
            }
        }
    }
    let v = serde_json::to_value(value).expect("config serializes");
    walk(prefix.to_string(), &v, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_changes_by_group() {
        let mut old = Fingerprints::new();
        old.insert("params.index.nlist".into(), "64".into());
        old.insert("data.fingerprint".into(), "a".repeat(64));
        let rec = Record {
            inputs: old.clone(),
            ..Default::default()
        };
        assert!(explain(Some(&rec), &old).is_empty());
        let mut new = old.clone();
        new.insert("params.index.nlist".into(), "128".into());
        assert_eq!(
            explain(Some(&rec), &new),
            vec!["params changed: index.nlist 64 → 128".to_string()]
        );
        assert_eq!(explain(None, &new), vec!["never ran".to_string()]);
    }
}
