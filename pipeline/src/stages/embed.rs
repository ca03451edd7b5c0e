//! Embed: encode the documents the cache does not have yet.

use super::cache::{cache_path, shard_path, EmbeddingCache};
use super::ctx::Ctx;
use super::ingest::require_current;
use anyhow::{bail, Result};
use searchbar_store::Snapshot;
use std::time::Instant;

/// Encodes missing documents (only those of shard `i` of `n` when sharded) and saves them to
/// the cache (or to the shard's partial cache). Returns how many were encoded.
pub fn execute(ctx: &Ctx, shard: Option<(usize, usize)>) -> Result<usize> {
    let snapshot = require_current(ctx)?;
    let model = ctx.model_fingerprint()?.to_string();
    let encoder = ctx.encoder()?;
    let path = cache_path(&ctx.ws, &model);
    let cache = EmbeddingCache::load(&path, encoder.dim())?;
    let todo: Vec<(&str, &str)> = snapshot
        .documents
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|(k, n)| i % n == k))
        .filter(|(_, d)| cache.get(&d.content_hash).is_none())
        .map(|(_, d)| (d.content_hash.as_str(), d.text.as_str()))
        .collect();
    let in_scope = match shard {
        Some((k, n)) => (0..snapshot.documents.len()).filter(|i| i % n == k).count(),
        None => snapshot.documents.len(),
    };
    let started = Instant::now();
    let texts: Vec<&str> = todo.iter().map(|(_, t)| *t).collect();
    let mut bar = crate::commands::encode::progress_bar(texts.len() as u64, "embedding");
    let vectors = encoder.embed_many(&texts, ctx.config().model.batch_size, |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let mut out = match shard {
        Some(_) => EmbeddingCache::new(encoder.dim()),
        None => cache,
    };
    for ((hash, _), v) in todo.iter().zip(vectors) {
        out.insert(hash, v)?;
    }
    let dest = match shard {
        Some((k, n)) => shard_path(&ctx.ws, &model, k, n),
        None => path,
    };
    out.save(&dest)?;
    println!(
        "embed: encoded {} new document(s) in {:.1}s, {} reused from the cache{}",
        todo.len(),
        started.elapsed().as_secs_f64(),
        in_scope - todo.len(),
        shard.map_or(String::new(), |(k, n)| format!(
            " (shard {k}/{n} → {})",
            dest.display()
        ))
    );
    Ok(todo.len())
}

/// Merges every shard's partial cache of the current model into the main cache.
pub fn merge_shards(ctx: &Ctx) -> Result<usize> {
    let model = ctx.model_fingerprint()?.to_string();
    let dim = ctx.encoder()?.dim();
    let path = cache_path(&ctx.ws, &model);
    let mut cache = EmbeddingCache::load(&path, dim)?;
    let prefix = format!("{}.shard-", &model[..16]);
    let mut merged = 0;
    let dir = ctx.ws.join("embeddings");
    let mut shards: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    shards.sort();
    for shard in &shards {
        cache.merge(EmbeddingCache::load(shard, dim)?)?;
        merged += 1;
    }
    cache.save(&path)?;
    for shard in &shards {
        std::fs::remove_file(shard)?;
    }
    println!(
        "embed: merged {merged} shard cache(s); the cache holds {} vectors",
        cache.len()
    );
    Ok(merged)
}

/// The snapshot's vectors in snapshot order (`n * dim`), all from the cache.
pub fn vectors(ctx: &Ctx, snapshot: &Snapshot) -> Result<(usize, Vec<f32>)> {
    let model = ctx.model_fingerprint()?.to_string();
    let dim = ctx.encoder()?.dim();
    let cache = EmbeddingCache::load(&cache_path(&ctx.ws, &model), dim)?;
    let mut out = Vec::with_capacity(snapshot.documents.len() * dim);
    let mut missing = 0;
    for d in &snapshot.documents {
        match cache.get(&d.content_hash) {
            Some(v) => out.extend_from_slice(v),
            None => missing += 1,
        }
    }
    if missing > 0 {
        bail!("{missing} document(s) have no embedding yet: run `searchbar embed` first");
    }
    Ok((dim, out))
}
