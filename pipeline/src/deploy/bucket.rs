//! An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, GCS's S3 API) as a deploy target's
//! storage, through Apache Arrow's `object_store` client: it signs requests, retries and
//! speaks conditional PUTs, so none of that is written here. Calls are blocking: each runs on
//! a small runtime this client owns.
//!
//! Credentials come only from where the AWS tools look (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; a profile of the shared files, see
//! [`super::aws_profile`]; web identity, container or instance credentials); the project file
//! holds the endpoint, region and addressing style only.

use super::encoding::Encoding;
use super::headers::{cache_control, content_type};
use super::lock::{hostname, now_unix, probe, Owner};
use anyhow::{bail, Context, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum, S3ConditionalPut};
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `[deploy.s3]`: how to reach the buckets named by `s3://` targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The service's URL, for a store other than AWS (`http://` only on loopback or a trusted
    /// network). Default: AWS, or `AWS_ENDPOINT_URL` from the environment.
    pub endpoint: Option<String>,
    /// Default: `AWS_REGION` / `AWS_DEFAULT_REGION` from the environment, else `us-east-1`.
    pub region: Option<String>,
    /// Address buckets as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>` (MinIO and
    /// most self-hosted stores).
    pub path_style: bool,
    /// Whether the store refuses a conditional PUT (`If-None-Match: *`) on an existing key.
    /// AWS S3, R2 and MinIO do; this is what makes the deploy lock exclusive. Set it to false
    /// for a store that does not: there is then no lock, and two pipelines deploying to one
    /// target at once can interleave their writes (the pointer is still written last, in one
    /// PUT). Run one pipeline at a time there (Jenkins: `disableConcurrentBuilds()`).
    pub conditional_put: Option<bool>,
}

impl S3Config {
    pub fn conditional_put(&self) -> bool {
        self.conditional_put.unwrap_or(true)
    }
}

/// One `s3://bucket/prefix` location.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    rt: Arc<tokio::runtime::Runtime>,
    bucket: String,
    prefix: String,
    endpoint: String,
    locking: bool,
}

/// What `head` reports of an object: its size, and the sha256 recorded when it was written (if
/// it was written by a deploy).
#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub sha256: Option<String>,
}

/// The user metadata key that carries an artifact's sha256, so a later deploy can skip an
/// object already in place without downloading it.
const SHA256_META: &str = "sha256";

impl Bucket {
    /// Opens `url` (`s3://bucket` or `s3://bucket/prefix`). Nothing is sent yet.
    pub fn open(url: &str, config: &S3Config) -> Result<Self> {
        let (bucket, prefix) = parse_url(url)?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let profile = super::aws_profile::from_env()?;
        if let Some(p) = &profile {
            builder = builder
                .with_access_key_id(&p.access_key_id)
                .with_secret_access_key(&p.secret_access_key);
            if let Some(t) = &p.session_token {
                builder = builder.with_token(t);
            }
        }
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(e) = &endpoint {
            builder = builder
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"));
        }
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .or_else(|| profile.and_then(|p| p.region))
            .unwrap_or_else(|| "us-east-1".into());
        builder = builder
            .with_region(region)
            .with_virtual_hosted_style_request(!config.path_style)
            // The store checks each PUT's bytes against this checksum, so what it holds is what
            // was sent, and the sha256 recorded beside it can stand for its bytes.
            .with_checksum_algorithm(Checksum::SHA256)
            .with_conditional_put(if config.conditional_put() {
                S3ConditionalPut::ETagMatch
            } else {
                S3ConditionalPut::Disabled
            });
        let store = builder
            .build()
            .with_context(|| format!("configuring the S3 client for {url}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            store: Arc::new(store),
            rt: Arc::new(rt),
            bucket: bucket.to_string(),
            prefix,
            endpoint: endpoint.unwrap_or_else(|| "aws".into()),
            locking: config.conditional_put(),
        })
    }

    /// `s3://bucket/prefix/key`, for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(key))
    }

    fn key(&self, key: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(key)
        } else {
            Key::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Whether `other` is the same bucket of the same service, so that a copy between them
    /// can happen inside the store.
    pub fn same_store(&self, other: &Bucket) -> bool {
        self.bucket == other.bucket && self.endpoint == other.endpoint
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// The object's bytes, or `None` where there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let at = self.key(key);
        self.block(async {
            match self.store.get(&at).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .with_context(|| format!("reading {}", self.describe(key)))
    }

    /// The object and its version (for a conditional overwrite), in one GET.
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>> {
        let at = self.key(key);
        self.block(async {
            match self.store.get(&at).await {
                Ok(r) => {
                    let version = UpdateVersion {
                        e_tag: r.meta.e_tag.clone(),
                        version: r.meta.version.clone(),
                    };
                    r.bytes().await.map(|b| Some((b.to_vec(), version)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .with_context(|| format!("reading {}", self.describe(key)))
    }

    /// The object's size, recorded sha256 and version, or `None` where there is none.
    pub fn head(&self, key: &str) -> Result<Option<Head>> {
        let at = self.key(key);
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        self.block(async {
            match self.store.get_opts(&at, options).await {
                Ok(r) => Ok(Some(Head {
                    size: r.meta.size,
                    sha256: r
                        .attributes
                        .get(&Attribute::Metadata(SHA256_META.into()))
                        .map(|v| v.to_string()),
                })),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .with_context(|| format!("reading {}", self.describe(key)))
    }

    /// Writes `bytes` at `key` in one PUT, with the headers a host should send for it
    /// ([`super::headers`]): readers see the old object or the new one.
    pub fn put(&self, key: &str, bytes: &[u8], encoding: Option<Encoding>) -> Result<()> {
        let options = PutOptions {
            attributes: attributes(key, bytes, encoding),
            ..Default::default()
        };
        let at = self.key(key);
        self.block(self.store.put_opts(&at, bytes.to_vec().into(), options))
            .with_context(|| format!("writing {}", self.describe(key)))?;
        Ok(())
    }

    /// Copies `from` (in `source`, the same store) to `key` inside the store, metadata
    /// included.
    pub fn copy_from(&self, source: &Bucket, from: &str, key: &str) -> Result<()> {
        let (src, dst) = (source.key(from), self.key(key));
        self.block(self.store.copy(&src, &dst)).with_context(|| {
            format!(
                "copying {} to {}",
                source.describe(from),
                self.describe(key)
            )
        })
    }

    /// Deletes `key`; a missing object is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        let at = self.key(key);
        self.block(async {
            match self.store.delete(&at).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .with_context(|| format!("deleting {}", self.describe(key)))
    }

    /// The names directly below `dir` (no `/` in `dir`'s keys): `(objects, subdirectories)`.
    pub fn list(&self, dir: &str) -> Result<(Vec<String>, Vec<String>)> {
        let at = self.key(dir);
        let listed = self
            .block(self.store.list_with_delimiter(Some(&at)))
            .with_context(|| format!("listing {}/", self.describe(dir)))?;
        let name = |p: &Key| p.filename().unwrap_or_default().to_string();
        Ok((
            listed.objects.iter().map(|o| name(&o.location)).collect(),
            listed.common_prefixes.iter().map(name).collect(),
        ))
    }

    /// Takes the target's lock: `.deploy.lock` created with `If-None-Match: *`, so of two
    /// pipelines only one PUT succeeds. A lock whose holder ran on this host and is gone (a
    /// killed run) is taken over with a PUT conditional on that lock's version, so two takers
    /// cannot both win either. A holder elsewhere is reported, never overridden.
    pub fn lock(&self, command: &str) -> Result<BucketLock> {
        const KEY: &str = ".deploy.lock";
        if !self.locking {
            eprintln!(
                "warning: {} has no lock (deploy.s3.conditional_put = false): run one pipeline \
                 at a time against it",
                self.describe("")
            );
            return Ok(BucketLock { held: None });
        }
        let owner = serde_json::to_vec(&Owner {
            pid: std::process::id(),
            host: hostname(),
            since_unix: now_unix(),
            command: command.to_string(),
        })?;
        let put = |mode: PutMode| {
            let options = PutOptions {
                mode,
                ..Default::default()
            };
            self.block(
                self.store
                    .put_opts(&self.key(KEY), owner.clone().into(), options),
            )
        };
        match put(PutMode::Create) {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                let Some((held, version)) = self.get_versioned(KEY)? else {
                    bail!(
                        "{} was held and has just been let go: run again",
                        self.describe(KEY)
                    );
                };
                let holder = serde_json::from_slice::<Owner>(&held).ok();
                let dead_here = holder.as_ref().is_some_and(|o| {
                    o.host == hostname()
                        && o.pid != std::process::id()
                        && !std::path::Path::new(&format!("/proc/{}", o.pid)).exists()
                });
                if !dead_here {
                    let who = Owner::describe(holder.as_ref());
                    bail!(
                        "{} is locked by {who}: another searchbar command is working there. \
                         Run again when it has finished. If that run is gone for good (its \
                         machine lost), delete the object {} by hand.",
                        self.describe(""),
                        self.describe(KEY)
                    );
                }
                match put(PutMode::Update(version)) {
                    Ok(_) => eprintln!(
                        "note: took over {} from a run on this host that is gone",
                        self.describe(KEY)
                    ),
                    Err(object_store::Error::Precondition { .. }) => bail!(
                        "{} changed hands while it was being taken over: run again",
                        self.describe(KEY)
                    ),
                    Err(e) => {
                        return Err(e).with_context(|| format!("locking {}", self.describe(KEY)))
                    }
                }
            }
            Err(e @ object_store::Error::NotImplemented { .. })
            | Err(e @ object_store::Error::NotSupported { .. }) => {
                return Err(e).with_context(|| {
                    format!(
                        "{} does not take conditional PUTs, so it cannot hold a lock; set \
                         deploy.s3.conditional_put = false to deploy without one",
                        self.describe("")
                    )
                })
            }
            Err(e) => return Err(e).with_context(|| format!("locking {}", self.describe(KEY))),
        }
        let description = self.describe("");
        probe(&description, "acquire");
        Ok(BucketLock {
            held: Some((self.clone(), KEY, description)),
        })
    }
}

/// `(bucket, prefix)` of an `s3://bucket/prefix` URL; the prefix without its slashes.
pub fn parse_url(url: &str) -> Result<(&str, String)> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("{url:?} is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/').to_string();
    if bucket.is_empty() {
        bail!("{url:?} names no bucket (write s3://bucket/prefix)");
    }
    if !prefix.is_empty()
        && prefix
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s.starts_with('.'))
    {
        bail!("{url:?}: the prefix may not have empty or hidden segments");
    }
    Ok((bucket, prefix))
}

/// The headers to store with `key`: its type and cache policy, the encoding of a
/// precompressed variant, and the sha256 of what it holds.
fn attributes(key: &str, bytes: &[u8], encoding: Option<Encoding>) -> Attributes {
    let mut a = Attributes::new();
    // A variant `files/<name>.br` has its artifact's type.
    let plain = encoding.map_or(key, |e| {
        key.strip_suffix(&format!(".{}", e.ext())).unwrap_or(key)
    });
    a.insert(Attribute::ContentType, content_type(plain).into());
    a.insert(Attribute::CacheControl, cache_control(key).into());
    if let Some(e) = encoding {
        a.insert(Attribute::ContentEncoding, e.header().into());
    }
    a.insert(
        Attribute::Metadata(SHA256_META.into()),
        searchbar_release::sha256_hex(bytes).into(),
    );
    a
}

/// Held while deploying, rolling back, promoting or collecting garbage on a bucket; deleted on
/// drop. A run killed while holding it leaves the object behind: the next run on the same host
/// takes it over ([`Bucket::lock`]).
#[derive(Debug)]
pub struct BucketLock {
    held: Option<(Bucket, &'static str, String)>,
}

impl Drop for BucketLock {
    fn drop(&mut self) {
        if let Some((bucket, key, description)) = self.held.take() {
            probe(&description, "release");
            if let Err(e) = bucket.delete(key) {
                eprintln!(
                    "warning: could not let go of {}: {e:#}",
                    bucket.describe(key)
                );
            }
        }
    }
}
