//! A real S3-compatible server for the tests: moto's standalone server (`moto_server`, which
//! scripts/install.sh installs with pip) on loopback, one per test process, and a client of
//! the tests' own (Apache Arrow's `object_store`, as the pipeline uses) to look into buckets
//! behind the pipeline's back.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Where tests keep saved copies of a bucket's contents, inside the bucket.
pub const SAVED: &str = ".saved/";

/// Credentials moto accepts; the pipeline reads them from the environment like real ones.
pub const ACCESS_KEY: &str = "searchbar-test";
pub const SECRET_KEY: &str = "searchbar-test-secret";

struct Server {
    addr: String,
    _shell: Child,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// `host:port` of this process's moto server, started on first use. It is stopped when the
/// test process exits (the shell that runs it waits on a pipe only this process holds).
pub fn server() -> &'static str {
    &SERVER
        .get_or_init(|| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let script = r#""$@" >/dev/null 2>&1 & server=$!; read -r _ || true; kill "$server" 2>/dev/null; wait "$server" 2>/dev/null"#;
            let shell = Command::new("sh")
                .args(["-c", script, "sh", "moto_server", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .stdin(Stdio::piped())
                .spawn()
                .expect("sh runs moto_server");
            let addr = format!("127.0.0.1:{port}");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while crate::http_get(&addr, "/moto-api/").is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "moto_server did not start on {addr}: install it with scripts/install.sh \
                     (pip's moto[server])"
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Server {
                addr,
                _shell: shell,
            }
        })
        .addr
}

/// `http://host:port`, the endpoint a project's `[deploy.s3]` names.
pub fn endpoint() -> String {
    format!("http://{}", server())
}

/// The environment a `searchbar` run needs to reach the server.
pub fn env() -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

/// A bucket of the test server, created empty with a unique name; what is under the released
/// entries of `prefix` may be read by anyone, as a static site's bucket policy allows.
#[derive(Clone)]
pub struct Bucket {
    pub name: String,
    store: Arc<AmazonS3>,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.name)
    }
}

impl Bucket {
    pub fn create(prefix: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "searchbar-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let addr = server();
        let (status, _, body) = crate::http(addr, "PUT", &format!("/{name}"), None).unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let base = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{name}/{prefix}")
        };
        let resources: Vec<String> = ["current.json", "index.html", "files/*", "releases/*"]
            .iter()
            .map(|r| format!("arn:aws:s3:::{base}/{r}"))
            .collect();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": resources}]
        });
        let (status, _, body) =
            crate::http(addr, "PUT", &format!("/{name}?policy"), Some(&policy)).unwrap();
        assert!(status < 300, "{status}: {}", String::from_utf8_lossy(&body));
        let store = AmazonS3Builder::new()
            .with_bucket_name(&name)
            .with_endpoint(endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            name,
            store: Arc::new(store),
            rt: Arc::new(rt),
        }
    }

    /// The object's bytes, or `None`.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.rt.block_on(async {
            match self.store.get(&Key::from(key)).await {
                Ok(r) => Some(r.bytes().await.unwrap().to_vec()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("reading s3://{}/{key}: {e}", self.name),
            }
        })
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        self.rt
            .block_on(self.store.put(&Key::from(key), bytes.to_vec().into()))
            .unwrap();
    }

    pub fn delete(&self, key: &str) {
        self.rt
            .block_on(self.store.delete(&Key::from(key)))
            .unwrap();
    }

    /// Every key under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.tagged_keys(prefix).into_keys().collect()
    }

    /// Every key under `prefix` with its ETag.
    fn tagged_keys(&self, prefix: &str) -> std::collections::BTreeMap<String, String> {
        use futures_util::TryStreamExt;
        let at = (!prefix.is_empty()).then(|| Key::from(prefix));
        self.rt
            .block_on(self.store.list(at.as_ref()).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|o| (o.location.to_string(), o.e_tag.unwrap_or_default()))
            .collect()
    }

    /// The object's ETag (for content written in one PUT, the MD5 of its bytes), or `None`.
    pub fn etag(&self, key: &str) -> Option<String> {
        self.rt.block_on(async {
            match self.store.head(&Key::from(key)).await {
                Ok(meta) => meta.e_tag,
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("reading s3://{}/{key}: {e}", self.name),
            }
        })
    }

    /// Makes `to` hold exactly what `from` holds (server-side copies, metadata included),
    /// copying only the objects that differ. A copy is kept under [`SAVED`]: those keys are
    /// no part of any other prefix here.
    pub fn mirror(&self, from: &str, to: &str) {
        let relative = |prefix: &str| {
            let mut keys = self.tagged_keys(prefix);
            if !prefix.starts_with(SAVED) {
                keys.retain(|k, _| !k.starts_with(SAVED));
            }
            keys.into_iter()
                .map(|(k, tag)| (k[prefix.len()..].to_string(), tag))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (want, have) = (relative(from), relative(to));
        for key in have.keys().filter(|k| !want.contains_key(*k)) {
            self.delete(&format!("{to}{key}"));
        }
        for (key, tag) in want.iter().filter(|(k, t)| have.get(*k) != Some(*t)) {
            let (src, dst) = (format!("{from}{key}"), format!("{to}{key}"));
            self.rt
                .block_on(
                    self.store
                        .copy(&Key::from(src.as_str()), &Key::from(dst.as_str())),
                )
                .unwrap_or_else(|e| panic!("copying {src} ({tag}): {e}"));
        }
    }

    /// What an anonymous client gets at `key` (the bucket's public read), by plain HTTP.
    pub fn public_get(&self, key: &str) -> Result<crate::Response, String> {
        crate::http_get(server(), &format!("/{}/{key}", self.name))
    }
}
