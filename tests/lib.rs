//! Helpers for the end-to-end tests in `tests/`: they drive the real `searchbar` binary over
//! real files (a project in a temporary directory built from the sample catalog).

pub mod page;
pub mod s3;
pub mod webdriver;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `searchbar` binary cargo built next to this test executable.
pub fn searchbar_bin() -> PathBuf {
    built_bin("searchbar")
}

/// A binary of the workspace that cargo built next to this test executable.
pub fn built_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --workspace` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// The built web bundle (trunk's dist/): `SEARCHBAR_WEB_DIST` or the repository's `dist/`.
pub fn web_dist() -> PathBuf {
    std::env::var_os("SEARCHBAR_WEB_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"))
}

/// Fails, saying how to build it, unless [`web_dist`] holds a built bundle (the browser tests
/// serve it).
pub fn require_web_bundle() {
    let dist = web_dist();
    assert!(
        dist.join("index.html").is_file(),
        "no web bundle at {}: build it with scripts/build-web.sh (scripts/test.sh does)",
        dist.display()
    );
}

/// The sample catalog's judged queries (id, text), in file order.
pub fn sample_queries() -> Vec<(String, String)> {
    std::fs::read_to_string(repo_root().join("data/catalog/queries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|q| {
            let field = |k: &str| q[k].as_str().unwrap().to_string();
            (field("_id"), field("text"))
        })
        .collect()
}

/// A throwaway project: the sample catalog seeded into SQLite, local deploy targets.
#[derive(Debug)]
pub struct Project {
    pub dir: tempfile::TempDir,
    /// Environment variables every command in the project gets.
    env: Vec<(String, String)>,
}

impl Project {
    /// A project over the sample catalog with `extra` TOML appended to the config.
    pub fn sample(extra: &str) -> Self {
        Self::sample_on(&[("stage", "deploy/stage"), ("prod", "deploy/prod")], extra)
    }

    /// [`Project::sample`] with the deploy targets `targets` (environment, place).
    pub fn sample_on(targets: &[(&str, &str)], extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let catalog = repo_root().join("data/catalog");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        for f in ["projects.csv", "topics.csv", "queries.jsonl", "qrels.tsv"] {
            std::fs::copy(catalog.join(f), dir.path().join("data").join(f)).unwrap();
        }
        let config = format!(
            r#"workspace = ".searchbar"
[source]
kind = "sqlite"
path = "catalog.sqlite"
query = "SELECT id, title, description, learn, domain, url FROM projects"
[source.seed]
projects = "data/projects.csv"
topics = "data/topics.csv"
[source.topics]
query = "SELECT project_id, topic FROM topics"
[evaluation]
queries = "data/queries.jsonl"
qrels = "data/qrels.tsv"
recall_queries = 50
[web]
dist = "{dist}"
[deploy.targets]
{targets}
{extra}
"#,
            dist = web_dist().display(),
            targets = targets
                .iter()
                .map(|(env, at)| format!("{env} = \"{at}\"\n"))
                .collect::<String>()
        );
        std::fs::write(dir.path().join("searchbar.toml"), config).unwrap();
        Self {
            dir,
            env: Vec::new(),
        }
    }

    /// Adds `keys` (TOML lines) to the config's `[web]` table.
    pub fn set_web(&self, keys: &str) {
        let cfg = self.path().join("searchbar.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            text.replacen("[web]\n", &format!("[web]\n{keys}\n"), 1),
        )
        .unwrap();
    }

    /// The project with `vars` set for every command it runs.
    pub fn with_env(mut self, vars: Vec<(String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `searchbar ARGS` in the project; returns the output (any exit code).
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("searchbar runs")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of("searchbar", args)
    }

    /// The workspace binary `bin` with `args`, in the project.
    pub fn command_of(&self, bin: &str, args: &[&str]) -> Command {
        let mut c = Command::new(built_bin(bin));
        c.current_dir(self.path())
            .args(args)
            .envs(self.env.iter().cloned());
        c
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_of("searchbar", args)
    }

    /// [`Project::ok`] for the workspace binary `bin` (such as `searchbar-bench-index`).
    pub fn ok_of(&self, bin: &str, args: &[&str]) -> String {
        let out = self
            .command_of(bin, args)
            .output()
            .expect("the binary runs");
        assert!(
            out.status.success(),
            "{bin} {args:?} failed with {}:\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `searchbar serve --env ENV` on a free port; returns the server and its
    /// `host:port` (read from the URL the command prints once listening).
    pub fn serve(&self, env: &str) -> (std::process::Child, String) {
        self.serve_with(env, &[])
    }

    /// [`Project::serve`] with more `searchbar serve` arguments.
    pub fn serve_with(&self, env: &str, extra: &[&str]) -> (std::process::Child, String) {
        let mut args = vec!["serve", "--env", env, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut server = self
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("searchbar serve starts");
        let addr = served_address(&mut server);
        (server, addr)
    }

    /// Serves target `env` for as long as this test process runs, for the tests of one area
    /// to share (each with its own browser): see [`Served`].
    pub fn serve_for_process(self, env: &str) -> Served {
        // The shell runs the server in the background (so with /dev/null as its input) and
        // waits on its own input, our end of which only this process's exit closes.
        let script = r#"dir=$1; shift; "$@" & server=$!; read -r _ || true; kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir""#;
        let mut shell = Command::new("sh")
            .current_dir(self.path())
            .args(["-c", script, "sh"])
            .arg(self.path())
            .arg(searchbar_bin())
            .args(["serve", "--env", env, "--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs searchbar serve");
        let addr = served_address(&mut shell);
        Served {
            project: self,
            addr,
            _shell: shell,
        }
    }

    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("catalog.sqlite")).expect("catalog db")
    }

    pub fn target(&self, env: &str) -> PathBuf {
        self.path().join("deploy").join(env)
    }

    /// The folder of release `id` on a target.
    pub fn release_dir(&self, env: &str, id: &str) -> PathBuf {
        self.target(env).join("releases").join(id)
    }

    /// The manifest of release `id` on a target, as JSON.
    /// The manifest of release `id` in a target directory given by path (the export area).
    pub fn manifest_at(&self, target: &Path, id: &str) -> serde_json::Value {
        let path = target.join("releases").join(id).join("manifest.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("manifest JSON")
    }

    pub fn manifest(&self, env: &str, id: &str) -> serde_json::Value {
        let path = self.release_dir(env, id).join("manifest.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("manifest JSON")
    }

    /// Appends TOML to the project's configuration file.
    pub fn append_config(&self, toml: &str) {
        let cfg = self.path().join("searchbar.toml");
        let text = std::fs::read_to_string(&cfg).expect("config");
        std::fs::write(&cfg, format!("{text}\n{toml}")).expect("config");
    }

    /// The live release of a target.
    pub fn live(&self, env: &str) -> Option<String> {
        let bytes = std::fs::read(self.target(env).join("current.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v["release"].as_str().map(str::to_string)
    }
}

/// Verifies from disk what a client of `target` gets: the pointer, its manifest, every file,
/// and the root page ([`served_release`]). Returns the live release id.
pub fn verify_served(target: &Path) -> Result<String, String> {
    let read = |p: &str| std::fs::read(target.join(p)).map_err(|e| format!("{p}: {e}"));
    served_release(read, |id| verify_release(target, id))
}

/// The release a target serves, checked as a visitor meets it: the pointer's release verified
/// whole, and the root page some release's own page ([`root_page_release`]), that release
/// verified whole too where it is not the pointer's (a command killed between the two
/// writes). `read` reads a file by its path under the target; `verify` checks a release.
pub fn served_release(
    read: impl Fn(&str) -> Result<Vec<u8>, String>,
    verify: impl Fn(&str) -> Result<(), String>,
) -> Result<String, String> {
    let p: serde_json::Value =
        serde_json::from_slice(&read("current.json")?).map_err(|e| format!("current.json: {e}"))?;
    let id = p["release"].as_str().ok_or("pointer without release")?;
    verify(id)?;
    let root = root_release(&read)?;
    if root != id {
        verify(&root).map_err(|e| format!("the root page's {root}: {e}"))?;
    }
    Ok(id.to_string())
}

/// The release `target`'s root page opens ([`root_page_release`]), from disk.
pub fn root_on_disk(target: &Path) -> Result<String, String> {
    root_release(&|p: &str| {
        let path = target.join(p);
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    })
}

/// The release a target's root page opens ([`root_page_release`]), its files read by their
/// paths under the target through `read`.
pub fn root_release(read: &impl Fn(&str) -> Result<Vec<u8>, String>) -> Result<String, String> {
    root_page_release(&read("index.html")?, |id| {
        read(&format!("releases/{id}/index.html"))
    })
}

/// The release a target's root page (`root`) opens, named by its `<base>`. `page_of(id)` reads
/// `releases/<id>/index.html`, which the root page must be as `layout::root_page` makes it.
pub fn root_page_release(
    root: &[u8],
    page_of: impl FnOnce(&str) -> Result<Vec<u8>, String>,
) -> Result<String, String> {
    let text = String::from_utf8_lossy(root);
    let id = text
        .split_once("<base href=\"releases/")
        .and_then(|(_, rest)| rest.split_once("/\">"))
        .map(|(id, _)| id.to_string())
        .ok_or("the root page names no release")?;
    let page = page_of(&id).map_err(|e| format!("the root page's release {id}: {e}"))?;
    if root != searchbar_release::layout::root_page(&page, &id) {
        return Err(format!("the root page is not release {id}'s page"));
    }
    Ok(id)
}

/// Every artifact of `m` ([`searchbar_release::Files::artifacts`]: its part tables' pages and
/// parts too), the tables read through `read`.
pub fn artifacts(
    m: &searchbar_release::Manifest,
    mut read: impl FnMut(&searchbar_release::FileRef) -> Result<Vec<u8>, String>,
) -> Result<Vec<searchbar_release::FileRef>, String> {
    m.files
        .artifacts(&mut |f: &searchbar_release::FileRef| {
            read(f).map_err(|message| searchbar_release::ReleaseError::Invalid {
                file: f.path.clone(),
                message,
            })
        })
        .map_err(|e| e.to_string())
}

/// Verifies release `id` of `target` from disk: its manifest, every file it names (by hash), its
/// page.
pub fn verify_release(target: &Path, id: &str) -> Result<(), String> {
    let dir = target.join("releases").join(id);
    let m = searchbar_release::Manifest::from_json(
        &std::fs::read(dir.join("manifest.json")).map_err(|e| format!("manifest: {e}"))?,
        "manifest.json",
    )
    .map_err(|e| e.to_string())?;
    if m.release != id {
        return Err(format!("pointer says {id}, manifest says {}", m.release));
    }
    let read = |f: &searchbar_release::FileRef| -> Result<Vec<u8>, String> {
        std::fs::read(dir.join(&f.path)).map_err(|e| format!("{}: {e}", f.path))
    };
    for f in artifacts(&m, read)? {
        f.verify(&read(&f)?).map_err(|e| e.to_string())?;
    }
    let page = std::fs::read(dir.join("index.html"))
        .map_err(|e| format!("release {id} has no page: {e}"))?;
    if let Some(f) = &m.page {
        f.verify(&page).map_err(|e| format!("page: {e}"))?;
    }
    Ok(())
}

/// Status, lower-cased headers and body.
pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

/// A minimal HTTP/1.1 GET (the tests' client; no dependency, Connection: close).
pub fn http_get(addr: &str, path: &str) -> Result<Response, String> {
    http(addr, "GET", path, None)
}

/// A GET with extra request headers (`Accept-Encoding`, `Range`).
pub fn http_get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
    request(addr, "GET", path, None, headers)
}

/// A minimal HTTP/1.1 request with an optional JSON body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    json: Option<&serde_json::Value>,
) -> Result<Response, String> {
    request(addr, method, path, json, &[])
}

fn request(
    addr: &str,
    method: &str,
    path: &str,
    json: Option<&serde_json::Value>,
    extra: &[(&str, &str)],
) -> Result<Response, String> {
    use std::io::Write;
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    // A hung peer fails the test instead of blocking it forever.
    let limit = Some(std::time::Duration::from_secs(120));
    s.set_read_timeout(limit).map_err(|e| e.to_string())?;
    let body = json.map(|j| j.to_string()).unwrap_or_default();
    let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    // Read only what the response declares: some servers (chromedriver) keep the connection
    // open despite `Connection: close`, so reading to EOF would block.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the headers ended".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = raw[split + 4..].to_vec();
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
    loop {
        let complete = match (chunked, length) {
            (true, _) => body.ends_with(b"0\r\n\r\n"),
            (false, Some(len)) => body.len() >= len,
            (false, None) => false,
        };
        if complete || method == "HEAD" || status == 204 || status == 304 {
            break;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    if chunked {
        body = dechunk(&body)?;
    }
    Ok((status, headers, body))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16)
            .map_err(|e| e.to_string())?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// A release served for as long as the test process runs ([`Project::serve_for_process`]). It
/// lives in a static, which is never dropped, so the server cannot be stopped by a `Drop`: the
/// shell it runs under reads a pipe that this process's exit closes, then stops the server and
/// removes the project. (A server left behind would hold the test run's output open.)
#[derive(Debug)]
pub struct Served {
    pub project: Project,
    /// `host:port` of `searchbar serve`.
    pub addr: String,
    /// The shell, holding our end of its standard input open.
    _shell: std::process::Child,
}

/// The `host:port` a starting `searchbar serve` prints in its first line (`http://` or, with
/// `--tls-cert`, `https://`), read from the process's piped standard output.
pub fn served_address(process: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(process.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("serve prints its URL");
    line.split("://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("serve printed {line:?}, not its URL"))
        .to_string()
}

/// A self-signed certificate for 127.0.0.1, made by `openssl` in `dir` (P-256, valid for two
/// days): its PEM file, its key's PEM file, and the base64 sha256 of its public key, which
/// Chromium's `--ignore-certificate-errors-spki-list` takes to trust it as if a CA had signed
/// it (so that, unlike a certificate error let through, its files are cached as any site's).
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$2" -out "$1" 2>/dev/null
openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
  openssl dgst -sha256 -binary | openssl base64 -A"#;
    let out = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&cert)
        .arg(&key)
        .output()
        .expect("sh runs openssl (apt package openssl)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spki = String::from_utf8(out.stdout).unwrap().trim().to_string();
    (cert, key, spki)
}
