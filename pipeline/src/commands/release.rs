//! Release commands: deploy, rollback, promote, releases, serve, query.

use super::pipeline::{EnvArg, ProjectArgs};
use crate::deploy::{resolve_release, Target};
use crate::stages::gate;
use crate::stages::graph::Stage;
use anyhow::{Context, Result};
use searchbar_query::{Artifacts, Searcher};
use searchbar_release::{FileRef, Manifest, PartList, ReadParts};

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Deploy this exported release (id or unique prefix) instead of the latest export.
    #[arg(long)]
    pub release: Option<String>,
    /// Deploy even if the gate against the target's live release fails (recorded on the
    /// target and shown by `releases`).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[arg(long)]
    pub env: String,
    /// Release to make live (id or unique prefix); default: the one live before the current.
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    #[arg(long, default_value = "stage")]
    pub from: String,
    #[arg(long, default_value = "prod")]
    pub to: String,
    /// Promote this release of the source target instead of its live one.
    #[arg(long)]
    pub release: Option<String>,
    /// Promote even if the gate against the destination's live release fails, or the
    /// release was forced onto the source (recorded on the destination).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReleasesArgs {
    #[arg(long, default_value = "prod")]
    pub env: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Address to listen on (default: deploy.listen, 127.0.0.1:8080); port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<String>,
    /// Leave out the cross-origin isolation headers, as a static host that cannot set headers
    /// would: the page then searches on one core (no matmul helper worker).
    #[arg(long)]
    pub no_isolation: bool,
    /// Serve HTTPS with this certificate chain (PEM), and HTTP/2 to clients that offer it, as
    /// a CDN does: a browser fetches a query's many small files at once over HTTP/2, six at a
    /// time over HTTP/1.1.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Query this release of the target instead of the live one.
    #[arg(long)]
    pub release: Option<String>,
    /// Results to return (default: the release's search.k).
    #[arg(long)]
    pub k: Option<usize>,
    #[arg(long)]
    pub json: bool,
    /// Rank as the page does while its encoder is still downloading: by the words alone
    /// (a hybrid or lexical release). The encoder and the vector index are not loaded.
    #[arg(long)]
    pub words_only: bool,
    /// The query text.
    #[arg(required = true)]
    pub text: Vec<String>,
}

pub fn deploy(p: &ProjectArgs, args: &DeployArgs) -> Result<()> {
    let runner = p.runner(&args.env.env)?;
    match &args.release {
        Some(prefix) => {
            let export = crate::stages::export::export_target(&runner.ctx);
            runner.deploy(&resolve_release(&export, prefix)?, args.force)
        }
        None => runner.execute(Stage::Deploy, args.force),
    }
}

pub fn rollback(p: &ProjectArgs, args: &RollbackArgs) -> Result<()> {
    let target = p.load()?.target(&args.env)?;
    let to = match &args.to {
        Some(prefix) => Some(resolve_release(&target, prefix)?),
        None => None,
    };
    let (from, to) = target.rollback(to.as_deref())?;
    println!("rollback: {} now serves {to} (was {from})", args.env);
    Ok(())
}

pub fn promote(p: &ProjectArgs, args: &PromoteArgs) -> Result<()> {
    let project = p.load()?;
    let from = project.target(&args.from)?;
    let to = project.target(&args.to)?;
    let id = match &args.release {
        Some(prefix) => resolve_release(&from, prefix)?,
        None => {
            from.pointer()?
                .with_context(|| format!("{} has no live release to promote", args.from))?
                .release
        }
    };
    // The exact bytes that passed on the source target: verified, then linked or copied, and
    // judged against what the destination serves (snapshots of the data are not needed: the
    // drop in document count stands in for removed documents).
    let no_snapshots = |_: &Manifest, _: &Manifest| None;
    let admit = gate::admit(
        &project.config.gate,
        &args.to,
        args.force,
        Some(&from),
        &no_snapshots,
    );
    let (m, admission) = to.deploy(
        &from,
        &id,
        project.config.deploy.keep,
        &format!("promote from {}", args.from),
        &admit,
    )?;
    let verified = to.artifacts(&m)?.len();
    println!(
        "promote: {} now serves release {id} from {}{} (no rebuild; {} files verified)",
        args.to,
        args.from,
        if admission.forced {
            ", FORCED past the gate"
        } else {
            ""
        },
        // The artifacts, the manifest and the page.
        verified + 2
    );
    Ok(())
}

pub fn releases(p: &ProjectArgs, args: &ReleasesArgs) -> Result<()> {
    let target = p.load()?.target(&args.env)?;
    let live = target.pointer()?.map(|p| p.release);
    let list = target.releases()?;
    let admissions = list
        .iter()
        .map(|m| target.admission(&m.release))
        .collect::<Result<Vec<_>>>()?;
    if args.json {
        let rows: Vec<_> = list
            .iter()
            .zip(&admissions)
            .map(|(m, a)| {
                serde_json::json!({
                    "release": m.release, "created": m.created, "live": Some(&m.release) == live.as_ref(),
                    "documents": m.data.documents, "evaluation": m.evaluation, "admission": a,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("{}: no releases", args.env);
    }
    for (m, a) in list.iter().zip(&admissions) {
        let live_mark = if Some(&m.release) == live.as_ref() {
            "*"
        } else {
            " "
        };
        println!(
            "{live_mark} {}  {}  {:>7} docs  nDCG@10 {}  recall@10 {:.4}{}",
            m.release,
            m.created,
            m.data.documents,
            m.evaluation
                .ndcg_at_10
                .map_or_else(|| "  n/a ".into(), |v| format!("{v:.4}")),
            m.evaluation.recall_at_10,
            match a {
                Some(a) if a.forced => "  (forced onto this target)",
                _ if m.evaluation.forced => "  (forced at evaluate)",
                _ => "",
            }
        );
    }
    Ok(())
}

pub fn serve(p: &ProjectArgs, args: &ServeArgs) -> Result<()> {
    let project = p.load()?;
    let target = project.target(&args.env.env)?;
    if target.pointer()?.is_none() {
        eprintln!(
            "note: {} has no live release yet (run `searchbar run`)",
            args.env.env
        );
    }
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| project.config.deploy.listen.clone());
    let root = target.dir().with_context(|| {
        format!(
            "{} is a bucket ({}): its bucket, or a CDN in front of it, serves it; `searchbar \
             serve` serves directory targets",
            args.env.env,
            target.location()
        )
    })?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::serve::Tls {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    crate::serve::serve(
        root.to_path_buf(),
        &listen,
        &args.env.env,
        !args.no_isolation,
        tls.as_ref(),
    )
}

/// Loads a release from a target exactly as the browser does: manifest, then every artifact
/// verified against it; the records and the lexical index only where `threads` is `None`.
fn load_searcher(target: &Target, id: &str, threads: Option<usize>) -> Result<Searcher> {
    let manifest = target.manifest(id)?;
    let read = |f: &FileRef| target.read_artifact(&f.path);
    let dense = |f| match threads {
        Some(_) => read(f),
        None => Ok(Vec::new()),
    };
    let parts = |list: &PartList| ReadParts::read(list, &mut |f: &FileRef| read(f));
    let docs = parts(&manifest.files.docs)?;
    let fragments = match &manifest.files.lexical {
        Some(l) => parts(&l.fragments)?,
        None => ReadParts::default(),
    };
    let artifacts = Artifacts {
        encoder: dense(&manifest.files.encoder)?,
        tokenizer: dense(&manifest.files.tokenizer)?,
        index: dense(&manifest.files.index)?,
        // Every shard at hand (a page fetches those of the results it shows).
        docs_table: docs.root,
        docs: docs.files,
        // Read whole here; each query still takes only its candidates' records and verifies
        // them, as a page does with range requests.
        rows: manifest.files.rows.as_ref().map(dense).transpose()?,
        // Likewise the lists: every list checked as a page checks the ones it fetches.
        lists: manifest.files.lists.as_ref().map(dense).transpose()?,
        lexical_root: manifest
            .files
            .lexical
            .as_ref()
            .map(|l| read(&l.root))
            .transpose()?,
        // Every fragment at hand, each verified before a query reads it.
        lexical_table: fragments.root,
        lexical_fragments: fragments.files,
        token_digests: match &manifest.files.tokens {
            Some(t) => dense(&t.digests)?,
            None => Vec::new(),
        },
        // The whole table, verified whole (a page fetches its queries' rows).
        token_rows: manifest
            .files
            .tokens
            .as_ref()
            .map(|t| dense(&t.rows))
            .transpose()?,
        saved_token_rows: None,
    };
    Ok(match threads {
        Some(threads) => Searcher::load(&manifest, &artifacts, threads)?,
        None => Searcher::records(&manifest, &artifacts)?,
    })
}

pub fn query(p: &ProjectArgs, args: &QueryArgs) -> Result<()> {
    let target = p.load()?.target(&args.env.env)?;
    let id = match &args.release {
        Some(prefix) => resolve_release(&target, prefix)?,
        None => {
            target
                .pointer()?
                .with_context(|| format!("{} has no live release", args.env.env))?
                .release
        }
    };
    let text = args.text.join(" ");
    let hits = if args.words_only {
        load_searcher(&target, &id, None)?.query_words(&text, args.k)?
    } else {
        load_searcher(&target, &id, Some(1))?.query(&text, args.k)?
    };
    if args.json {
        let rows: Vec<_> = hits
            .iter()
            .map(|h| serde_json::json!({"id": h.record.id, "title": h.record.title, "score": h.score, "doc": h.doc}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"release": id, "query": text, "results": rows})
            )?
        );
    } else if hits.is_empty() {
        println!("no results");
    } else {
        for (i, h) in hits.iter().enumerate() {
            println!(
                "{:>2}. {:.4}  {}  {}",
                i + 1,
                h.score,
                h.record.id,
                h.record.title
            );
        }
    }
    Ok(())
}
