//! Export: write a complete, self-verifying release into the workspace's export area, laid
//! out exactly like a deploy target so deploying is a copy plus one pointer flip.

use super::ctx::Ctx;
use crate::deploy::encoding::{write_variants, Encoding, ENCODINGS};
use crate::deploy::fsutil::write_atomic;
use crate::deploy::Target;
use anyhow::{bail, Context, Result};
use searchbar_release::{
    page_ref, sha256_hex, snippet, stemmer_language, DataInfo, DocRecord, FileRef, Files,
    LexicalFiles, Manifest, ModelInfo, PipelineInfo, ReleaseWriter, TokenFiles, MANIFEST_FORMAT,
    MANIFEST_NAME, PAGE_NAME, STEMMER_PREFIX,
};
use sha2::{Digest, Sha256};

/// The export area: a target named `export` inside the workspace.
pub fn export_target(ctx: &Ctx) -> Target {
    Target::new("export", ctx.ws.join("export"))
}

/// Hash of the web bundle (trunk's dist/), or "none" when it is not built.
pub fn bundle_hash(ctx: &Ctx) -> String {
    let dist = ctx.project.path(&ctx.config().web.dist);
    let Ok(entries) = std::fs::read_dir(&dist) else {
        return "none".into();
    };
    let mut names: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .starts_with('.')
        })
        .collect();
    names.sort();
    let mut h = Sha256::new();
    for p in names {
        h.update(p.file_name().unwrap_or_default().as_encoded_bytes());
        h.update(super::ctx::file_hash(&p));
    }
    hex::encode(h.finalize())
}

/// How the release's encoder runs, as its manifest records it (and the evaluation reproduces).
pub fn model_info(ctx: &Ctx, dim: usize) -> Result<ModelInfo> {
    let model = ctx.model()?;
    let config = crate::model::encoder_config(model)?;
    Ok(ModelInfo {
        name: model
            .dir
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().to_string()),
        source_sha256: super::ctx::file_hash(&model.onnx),
        dim,
        max_tokens: config.max_tokens,
        pooling: config.pooling.as_str().into(),
        normalize: config.normalize,
    })
}

/// Builds the release; returns its id. `forced` records a gate override.
pub fn execute(ctx: &Ctx) -> Result<String> {
    let c = ctx.config();
    let snapshot = super::ingest::require_current(ctx)?;
    let report = super::evaluate::read_report(ctx)?;
    let index = std::fs::read(super::train::index_path(ctx))?;
    if sha256_hex(&index) != report.index_sha256 {
        bail!("the candidate index changed after it was evaluated: run `searchbar evaluate` again");
    }
    if !report.passed && !report.forced {
        bail!("the candidate failed the gate: nothing to export (see `searchbar evaluate`)");
    }
    let info = super::train::read_info(ctx)?;
    if info.sha256 != report.index_sha256 {
        bail!(
            "the training record does not match the evaluated index: run `searchbar train` again"
        );
    }
    if info.lexical.as_ref().map(|l| &l.sha256) != report.lexical_sha256.as_ref() {
        bail!(
            "the candidate lexical index changed after it was evaluated: run `searchbar evaluate` \
             again"
        );
    }
    let rows = super::train::read_rows(ctx, &info)?;
    let lists = super::train::read_lists(ctx, &info)?;
    // A release carries the lexical index only where its ranking reads it.
    let lexical = if report.search.mode.uses_lexical() {
        let l = super::train::read_lexical(ctx, &info)?;
        if l.is_none() {
            bail!(
                "search.mode = \"{}\" needs the lexical index: run `searchbar train` again",
                report.search.mode.name()
            );
        }
        l
    } else {
        None
    };
    let model = ctx.model()?;
    let prepared = ctx.prepared()?;
    let tokenizer = model.tokenizer_json()?;
    let target = export_target(ctx);
    let files_dir = target.files_dir()?;
    std::fs::create_dir_all(&files_dir)?;
    // The export area keeps artifacts across exports: unchanged bytes are not rewritten.
    let mut store = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let path = files_dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            write_atomic(&path, bytes).map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        }
        Ok(())
    };
    let mut w = ReleaseWriter::new(&mut store);

    let records: Vec<DocRecord> = snapshot
        .documents
        .iter()
        .map(|d| DocRecord {
            id: d.id.clone(),
            title: d.title.clone(),
            url: d.url.clone(),
            snippet: snippet(&d.snippet, c.web.snippet_chars),
        })
        .collect();
    let docs = w.put_docs(&records, c.web.docs_per_shard, c.web.parts_per_page)?;

    // The web bundle: trunk already hashes its file names; its page becomes the release page.
    // Of its stemmer modules (one a language), the release carries its lexical index's own.
    let stemmer = match &lexical {
        Some((root, _)) => {
            let index = searchbar_lexical::LexicalIndex::from_root(root, "lexical-root.bin")?;
            Some(index.root().meta.analysis.language.clone()).filter(|l| l != "none")
        }
        None => None,
    };
    let dist = ctx.project.path(&c.web.dist);
    let mut app = Vec::new();
    let page = if dist.join("index.html").is_file() {
        let mut names: Vec<_> = std::fs::read_dir(&dist)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                // trunk's page becomes the release page; dotfiles are trunk's own (locks);
                // `.br`/`.gz` are build-web.sh's precompressed variants of the bundle.
                p.is_file()
                    && name != "index.html"
                    && !name.starts_with('.')
                    && !ENCODINGS
                        .iter()
                        .any(|e| name.ends_with(&format!(".{}", e.ext())))
                    && stemmer_language(&name).is_none_or(|l| Some(l) == stemmer.as_deref())
            })
            .collect();
        if let Some(language) = &stemmer {
            if !names.iter().any(|p| {
                stemmer_language(&p.file_name().unwrap_or_default().to_string_lossy()).is_some()
            }) {
                bail!(
                    "the web bundle at {} has no stemmer module for {language} \
                     ({STEMMER_PREFIX}{language}-*.wasm), which the page needs to analyse \
                     words as the lexical index did: build it again with scripts/build-web.sh",
                    dist.display()
                );
            }
        }
        names.sort();
        for p in names {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            app.push(w.put(&name, &std::fs::read(&p)?, false)?);
        }
        std::fs::read(dist.join("index.html"))?
    } else {
        eprintln!(
            "warning: no web bundle at {} (build it with scripts/build-web.sh); the release \
             page will only say so",
            dist.display()
        );
        b"<!doctype html><meta charset=utf-8><title>Search</title><p>This release was exported \
          without its web bundle.</p>\n"
            .to_vec()
    };

    let info = super::train::read_info(ctx)?;
    let mut params = serde_json::to_value(&c.index)?;
    params["kind"] = serde_json::to_value(info.kind)?;
    params["nlist"] = serde_json::json!(info.nlist);
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT,
        release: String::new(),
        created: crate::clock::now_rfc3339(),
        pipeline: PipelineInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            source_hash: crate::SOURCE_HASH.into(),
        },
        model: model_info(ctx, info.dim)?,
        data: DataInfo {
            fingerprint: snapshot.fingerprint.clone(),
            documents: snapshot.documents.len(),
        },
        params,
        search: report.search,
        evaluation: super::evaluate::summary(&report),
        files: Files {
            encoder: w.put("encoder.onnx", &prepared.onnx, true)?,
            tokenizer: w.put("tokenizer.json", &tokenizer, true)?,
            index: w.put("index.sbi", &index, true)?,
            docs,
            docs_per_shard: c.web.docs_per_shard,
            app,
            rows: rows.map(|r| w.put("rows.bin", &r, true)).transpose()?,
            lists: lists.map(|l| w.put("lists.bin", &l, true)).transpose()?,
            lexical: match lexical {
                Some((root, fragments)) => Some(LexicalFiles {
                    root: w.put("lexical-root.bin", &root, true)?,
                    fragments: w.put_parts(
                        "lexical.bin",
                        fragments.iter().map(Vec::as_slice),
                        c.web.parts_per_page,
                    )?,
                }),
                None => None,
            },
            tokens: match (&prepared.token_rows, prepared.token_digests(info.dim)?) {
                (Some(rows), Some(digests)) => Some(TokenFiles {
                    rows: w.put("tokens.bin", rows, true)?,
                    digests: w.put("token-digests.bin", &digests, true)?,
                }),
                _ => None,
            },
        },
        page: None,
    };
    let page = with_preloads(page, &manifest);
    manifest.page = Some(page_ref(&page));
    // Precompressed variants beside every file a page downloads whole, for hosts that
    // answer by Accept-Encoding; the bundle's own come from build-web.sh where it made them.
    let mut compressed = 0u64;
    let read = &mut |f: &FileRef| -> Result<Vec<u8>> {
        Ok(std::fs::read(target.artifact_path(&f.path)?)?)
    };
    let artifacts = manifest.files.artifacts(read)?;
    for f in artifacts
        .iter()
        .filter(|f| !manifest.files.is_fetched_by_range(f))
    {
        let path = target.artifact_path(&f.path)?;
        let bytes = std::fs::read(&path)?;
        let prebuilt = manifest
            .files
            .app
            .iter()
            .any(|a| a.path == f.path)
            .then(|| dist.join(path.file_name().unwrap_or_default()));
        let sizes = write_variants(&path, &bytes, prebuilt.as_deref())
            .with_context(|| format!("compressing {}", path.display()))?;
        compressed += sizes
            .iter()
            .find(|(e, _)| *e == Encoding::Brotli)
            .map_or(f.bytes, |(_, n)| *n);
    }
    let id = manifest.seal(&crate::clock::now_compact()).to_string();
    let dir = target.release_dir(&id)?;
    write_atomic(&dir.join(PAGE_NAME), &page)?;
    write_atomic(&dir.join(MANIFEST_NAME), &manifest.to_json())?;
    target.verify(&id).context("the export does not verify")?;

    // Keep the data this release was trained on, for drift checks against it later.
    let keep = super::ingest::released_snapshot_dir(ctx, &snapshot.fingerprint);
    if !keep.join("snapshot.json").exists() {
        snapshot.clone().write(&keep)?;
    }
    // Only the newest exports are needed locally; deploy targets keep their own history.
    target.gc(3)?;
    println!(
        "export: release {id}: {} files, {} bytes; what a page downloads whole, {compressed} bytes with brotli (encoder {}, index {}, {} doc shard(s), {} app file(s){})",
        artifacts.len(),
        artifacts.iter().map(|f| f.bytes).sum::<u64>(),
        manifest.files.encoder.bytes,
        manifest.files.index.bytes,
        manifest.files.docs.len(),
        manifest.files.app.len(),
        manifest.files.rows.as_ref().map_or(String::new(), |r| format!(
            ", rows file {} fetched per query",
            r.bytes
        )) + &manifest.files.lists.as_ref().map_or(String::new(), |l| format!(
            ", lists file {} fetched per query",
            l.bytes
        )) + &manifest.files.lexical.as_ref().map_or(String::new(), |l| format!(
            ", lexical root {} + {} fragments fetched per query",
            l.root.bytes,
            l.fragments.len()
        )) + &manifest.files.tokens.as_ref().map_or(String::new(), |t| format!(
            ", token rows {} fetched per query (digests {})",
            t.rows.bytes, t.digests.bytes
        ))
    );
    Ok(id)
}

/// The release page with a `<link rel=preload>` for the manifest and each file a page reads
/// before it can search words ([`Manifest::record_files`]; not the shards' table root, which
/// the page asks for once its module runs), just before `</head>`: the browser
/// fetches them while the page's module downloads, instead of one round trip after another
/// once it runs. `crossorigin` makes each preload match the app's `fetch` (CORS mode, same-origin
/// credentials), so nothing is downloaded twice. A page without `</head>` is left as it is.
fn with_preloads(page: Vec<u8>, manifest: &Manifest) -> Vec<u8> {
    let Some(at) = page.windows(7).position(|w| w == b"</head>") else {
        return page;
    };
    let mut links = String::new();
    let paths =
        std::iter::once(MANIFEST_NAME).chain(manifest.record_files().map(|f| f.path.as_str()));
    for path in paths {
        // Names are the pipeline's own (content-addressed), escaped all the same.
        links.push_str("<link rel=\"preload\" href=\"");
        searchbar_query::escape_into(&mut links, path);
        links.push_str("\" as=\"fetch\" crossorigin>\n");
    }
    let mut out = Vec::with_capacity(page.len() + links.len());
    out.extend_from_slice(&page[..at]);
    out.extend_from_slice(links.as_bytes());
    out.extend_from_slice(&page[at..]);
    out
}
