use serde::{Deserialize, Serialize};

/// What a result shows for one document. Shards are JSON arrays of these, in index
/// ordinal order, so hit `doc` is record `doc % per_shard` of shard `doc / per_shard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocRecord {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub snippet: String,
}

/// Splits records into shard payloads of at most `per_shard` documents each.
pub fn shard_docs(docs: &[DocRecord], per_shard: usize) -> Vec<Vec<u8>> {
    docs.chunks(per_shard.max(1))
        .map(|chunk| serde_json::to_vec(chunk).expect("records serialize"))
        .collect()
}
