//! Index configurations for `searchbar-bench-index`, written `KIND[:key=value,...]`, e.g.
//! `flat:rerank=0` or `ivfpq:nlist=1024,m=48,store=false,nprobe=8/16/32,rerank=0`.
//! `store` is where IVF-PQ's int8 re-ranking vectors go: `true` (in the index file), `false`
//! (nowhere: a compact index) or `external` (a separate rows file, fetched per query).
//! `nprobe` and `rerank` take `/`-separated lists: one build, several search settings.

use anyhow::{bail, Context, Result};
use searchbar_index::RerankStore;

#[derive(Debug, Clone, PartialEq)]
pub enum Build {
    Flat,
    IvfPq {
        /// 0 = the pipeline's automatic choice for the corpus size.
        nlist: usize,
        m: usize,
        nbits: u32,
        store: RerankStore,
        /// Training sample size; 0 = all vectors.
        sample: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub text: String,
    pub build: Build,
    pub nprobe: Vec<usize>,
    pub rerank: Vec<usize>,
}

impl std::str::FromStr for Spec {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        let (mut nlist, mut m, mut nbits, mut store, mut sample) =
            (0, 48, 8, RerankStore::Embedded, 0);
        let mut nprobe = vec![16];
        let mut rerank = vec![100];
        for kv in rest.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("{text:?}: {kv:?} is not key=value"))?;
            let num = |v: &str| -> Result<usize> {
                v.parse()
                    .with_context(|| format!("{text:?}: {k} = {v:?} is not a number"))
            };
            let list = |v: &str| -> Result<Vec<usize>> { v.split('/').map(num).collect() };
            match k {
                "nlist" => nlist = num(v)?,
                "m" => m = num(v)?,
                "nbits" => nbits = num(v)? as u32,
                "sample" => sample = num(v)?,
                "store" => {
                    store = match v {
                        "true" => RerankStore::Embedded,
                        "false" => RerankStore::None,
                        "external" => RerankStore::External,
                        _ => bail!("{text:?}: store = {v:?} is not true, false or external"),
                    }
                }
                "nprobe" => nprobe = list(v)?,
                "rerank" => rerank = list(v)?,
                other => bail!(
                    "{text:?}: unknown key {other:?} (nlist, m, nbits, store, sample, nprobe, rerank)"
                ),
            }
        }
        let build = match kind {
            "flat" => Build::Flat,
            "ivfpq" => Build::IvfPq {
                nlist,
                m,
                nbits,
                store,
                sample,
            },
            other => bail!("{text:?}: unknown index kind {other:?} (flat or ivfpq)"),
        };
        if build == Build::Flat {
            nprobe = vec![0];
        }
        if store == RerankStore::None && rerank.iter().any(|&r| r > 0) {
            bail!("{text:?}: store=false has no vectors to re-rank with: set rerank=0");
        }
        Ok(Self {
            text: text.to_string(),
            build,
            nprobe,
            rerank,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_keys() {
        let s: Spec = "ivfpq:nlist=1024,m=32,store=false,nprobe=8/16,rerank=0"
            .parse()
            .unwrap();
        assert_eq!(
            s.build,
            Build::IvfPq {
                nlist: 1024,
                m: 32,
                nbits: 8,
                store: RerankStore::None,
                sample: 0
            }
        );
        assert_eq!((s.nprobe, s.rerank), (vec![8, 16], vec![0]));
        let e: Spec = "ivfpq:store=external,rerank=100".parse().unwrap();
        assert!(matches!(
            e.build,
            Build::IvfPq {
                store: RerankStore::External,
                ..
            }
        ));
        let f: Spec = "flat:rerank=0/100".parse().unwrap();
        assert_eq!((f.build, f.rerank), (Build::Flat, vec![0, 100]));
        for (bad, needle) in [
            ("hnsw", "unknown index kind"),
            ("ivfpq:mm=3", "unknown key \"mm\""),
            ("ivfpq:m=x", "m = \"x\""),
            ("ivfpq:store=false", "rerank=0"),
            ("ivfpq:store=maybe", "true, false or external"),
            ("ivfpq:m", "not key=value"),
        ] {
            let e = bad.parse::<Spec>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
