//! Deploy targets in S3-compatible buckets, against a real S3 server (moto's, on loopback):
//! deploy, rollback, promote between two buckets, gc, the lock, the headers a browser gets,
//! SIGKILL at every step, and clients reading the bucket while it flips.

use super::deploy::{fetch_release, kill_at_every_point, load_during, two_releases_in, Site};
use searchbar_release::{FileRef, Manifest};
use searchbar_tests::s3::{self, Bucket};
use searchbar_tests::{artifacts, root_release, served_release, Project};

/// A project over the sample catalog whose stage is `s3://<b1>/site` and whose prod is the
/// whole of bucket `<b2>`.
fn bucket_project(extra: &str) -> (Project, Bucket, Bucket) {
    let (b1, b2) = (Bucket::create("site"), Bucket::create(""));
    let stage = format!("s3://{}/site", b1.name);
    let prod = format!("s3://{}", b2.name);
    let config = format!(
        "[deploy.s3]\nendpoint = \"{}\"\npath_style = true\n{extra}",
        s3::endpoint()
    );
    let p = Project::sample_on(&[("stage", &stage), ("prod", &prod)], &config).with_env(s3::env());
    (p, b1, b2)
}

/// A bucket target as the fault tests see it; saved under [`s3::SAVED`] in the same bucket.
struct BucketSite {
    bucket: Bucket,
    prefix: String,
    /// Objects already verified, by key and ETag: content-addressed files do not change, so
    /// one whose ETag is the same is the same bytes, and is not downloaded again.
    verified: std::cell::RefCell<std::collections::BTreeSet<(String, String)>>,
}

impl BucketSite {
    fn new(bucket: &Bucket, prefix: &str) -> Self {
        Self {
            bucket: bucket.clone(),
            prefix: prefix.to_string(),
            verified: Default::default(),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// The object at `path` under the site's prefix.
    fn object(&self, path: &str) -> Result<Vec<u8>, String> {
        let key = self.key(path);
        self.bucket
            .get(&key)
            .ok_or_else(|| format!("no {key} in {:?}: {:?}", self.bucket, self.bucket.keys("")))
    }

    fn manifest(&self, id: &str) -> Result<Manifest, String> {
        let key = self.key(&format!("releases/{id}/manifest.json"));
        let bytes = self.bucket.get(&key).ok_or(format!("{key} missing"))?;
        Manifest::from_json(&bytes, &key).map_err(|e| e.to_string())
    }

    fn verify_release(&self, id: &str) -> Result<(), String> {
        let m = self.manifest(id)?;
        if m.release != id {
            return Err(format!("{id}: manifest says {}", m.release));
        }
        let read = |f: &FileRef| {
            let key = self.key(f.path.trim_start_matches("../../"));
            self.bucket.get(&key).ok_or(format!("{key} missing"))
        };
        for f in artifacts(&m, read)? {
            let key = self.key(f.path.trim_start_matches("../../"));
            let tag = self.bucket.etag(&key).ok_or(format!("{key} missing"))?;
            if self.verified.borrow().contains(&(key.clone(), tag.clone())) {
                continue;
            }
            let bytes = self.bucket.get(&key).ok_or(format!("{key} missing"))?;
            f.verify(&bytes).map_err(|e| format!("{key}: {e}"))?;
            self.verified.borrow_mut().insert((key, tag));
        }
        let page = self
            .bucket
            .get(&self.key(&format!("releases/{id}/index.html")))
            .ok_or(format!("release {id} has no page"))?;
        if let Some(f) = &m.page {
            f.verify(&page).map_err(|e| format!("page: {e}"))?;
        }
        Ok(())
    }

    /// The release directories under `releases/`: (with a manifest, without one).
    fn release_dirs(&self) -> (Vec<String>, Vec<String>) {
        let mut dirs: Vec<String> = self
            .bucket
            .keys(&self.key("releases"))
            .iter()
            .filter_map(|k| {
                k.split("releases/")
                    .nth(1)?
                    .split('/')
                    .next()
                    .map(String::from)
            })
            .collect();
        dirs.dedup();
        dirs.into_iter().partition(|d| self.manifest(d).is_ok())
    }
}

impl Site for BucketSite {
    fn save(&self) {
        self.bucket
            .mirror(&self.prefix, &format!("{}{}", s3::SAVED, self.prefix));
    }

    fn restore(&self) {
        self.bucket
            .mirror(&format!("{}{}", s3::SAVED, self.prefix), &self.prefix);
    }

    fn served(&self) -> Result<String, String> {
        served_release(|path| self.object(path), |id| self.verify_release(id))
    }

    fn root(&self) -> Result<String, String> {
        root_release(&|path: &str| self.object(path))
    }

    fn verify_kept(&self, at: usize) {
        for id in self.release_dirs().0 {
            self.verify_release(&id)
                .unwrap_or_else(|e| panic!("point {at}: kept {id}: {e}"));
        }
    }

    fn leftovers(&self) -> Vec<String> {
        let mut left = self.release_dirs().1;
        if self.bucket.get(&self.key(".deploy.lock")).is_some() {
            left.push(".deploy.lock".into());
        }
        left
    }
}

/// The header `name` of a response, lower-cased names.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_bucket_target_deploys_rolls_back_promotes_collects_garbage_and_sends_the_right_headers() {
    let (p, b1, b2) = bucket_project("[deploy]\nkeep = 2\n");
    // Part tables of two entries: the shards and fragments are named in pages, which deploy,
    // promote and gc read to find every file.
    p.set_web("parts_per_page = 2");
    let (p, a, b) = two_releases_in(p);
    let stage = BucketSite::new(&b1, "site");
    assert_eq!(stage.served().unwrap(), a);
    let out = p.ok(&["releases", "--env", "stage"]);
    assert!(out.contains(&format!("* {a}")), "{out}");

    // What a browser gets from the bucket, anonymously: the release whole, and the headers
    // of each kind of file.
    let addr = s3::server();
    let base = format!("/{}/site", b1.name);
    assert_eq!(fetch_release(addr, &base).unwrap(), a);
    let m = stage.manifest(&a).unwrap();
    let (_, pointer, _) = b1.public_get("site/current.json").unwrap();
    assert_eq!(header(&pointer, "cache-control"), Some("no-cache"));
    assert_eq!(header(&pointer, "content-type"), Some("application/json"));
    let (_, loader, _) = b1.public_get("site/index.html").unwrap();
    assert_eq!(header(&loader, "cache-control"), Some("no-cache"));
    assert_eq!(header(&loader, "content-type"), Some("text/html"));
    let wasm = m
        .files
        .named()
        .find(|f| f.path.ends_with(".wasm"))
        .expect("the release carries the web app's wasm");
    let key = format!("site/{}", wasm.path.trim_start_matches("../../"));
    let (status, headers, _) = b1.public_get(&key).unwrap();
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/wasm"));
    assert!(header(&headers, "cache-control")
        .unwrap()
        .contains("immutable"));
    let (status, headers, body) = b1.public_get(&format!("{key}.br")).unwrap();
    assert_eq!(status, 200, "the wasm's brotli variant is in the bucket");
    assert_eq!(header(&headers, "content-encoding"), Some("br"));
    assert_eq!(header(&headers, "content-type"), Some("application/wasm"));
    assert!(!body.is_empty());
    // The query path reads the release from the bucket as the page would.
    let out = p.ok(&["query", "--env", "stage", "chess engine"]);
    assert!(out.to_lowercase().contains("chess"), "{out}");

    // Deploy, rollback, and a deploy again that skips what is already there.
    p.ok(&["deploy", "--env", "stage", "--release", &b]);
    assert_eq!(stage.served().unwrap(), b);
    p.ok(&["rollback", "--env", "stage"]);
    assert_eq!(stage.served().unwrap(), a);
    p.ok(&["rollback", "--env", "stage", "--to", &b[..b.len() - 2]]);
    assert_eq!(stage.served().unwrap(), b);

    // Promote to another bucket: the same bytes, judged against what prod serves.
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    let prod = BucketSite::new(&b2, "");
    assert_eq!(prod.served().unwrap(), b);
    assert_eq!(
        b2.get(&format!("releases/{b}/manifest.json")),
        b1.get(&format!("site/releases/{b}/manifest.json"))
    );
    let admission = b2.get(&format!("admissions/{b}.json")).unwrap();
    assert!(String::from_utf8_lossy(&admission).contains("promote from stage"));
    assert_eq!(
        b2.public_get(&format!("admissions/{b}.json")).unwrap().0,
        403
    );

    // An artifact of the release not live, overwritten behind the pipeline's back: a rollback
    // to it is refused, and deploying it again puts the right bytes back.
    let index = m.files.index.path.trim_start_matches("../../");
    let original = b1.get(&format!("site/{index}")).unwrap();
    b1.put(&format!("site/{index}"), b"not the index");
    let out = p.run(&["rollback", "--env", "stage", "--to", &a]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot roll back"),
        "{err}"
    );
    assert_eq!(stage.served().unwrap(), b);
    p.ok(&["deploy", "--env", "stage", "--release", &a]);
    assert_eq!(b1.get(&format!("site/{index}")).unwrap(), original);
    p.ok(&["rollback", "--env", "stage"]);
    assert_eq!(stage.served().unwrap(), b);

    // The lock: a holder elsewhere is reported and never overridden; a holder on this host
    // that is gone (a killed run) is taken over.
    let lock = |host: &str, pid: u32| {
        serde_json::to_vec(&serde_json::json!({
            "pid": pid, "host": host, "since_unix": 0, "command": "deploy x to stage"
        }))
        .unwrap()
    };
    b1.put("site/.deploy.lock", &lock("another-machine", 1));
    let out = p.run(&["rollback", "--env", "stage"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("locked by `deploy x to stage`") && err.contains("another-machine"),
        "{err}"
    );
    assert_eq!(
        stage.served().unwrap(),
        b,
        "a refused rollback changes nothing"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let gone = (400_000..u32::MAX)
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .unwrap();
    b1.put("site/.deploy.lock", &lock(host.trim(), gone));
    let out = p.run(&["rollback", "--env", "stage"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("took over"));
    assert_eq!(stage.served().unwrap(), a);
    assert!(b1.get("site/.deploy.lock").is_none(), "the lock is let go");

    // gc with keep = 2: a third release makes the oldest (neither live nor the one before)
    // go, with the artifacts only it named.
    p.ok(&["deploy", "--env", "stage", "--release", &b]);
    p.sqlite()
        .execute(
            "UPDATE projects SET title = title || ' (3rd)' WHERE rowid = 12",
            [],
        )
        .unwrap();
    p.ok(&["run", "--env", "stage"]);
    let c = stage.served().unwrap();
    let (kept, incomplete) = stage.release_dirs();
    assert!(incomplete.is_empty(), "{incomplete:?}");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        !kept.contains(&a) && kept.contains(&b) && kept.contains(&c),
        "{kept:?}"
    );
    let named: std::collections::BTreeSet<String> = [&b, &c]
        .iter()
        .flat_map(|id| {
            let m = stage.manifest(id).unwrap();
            let read = |f: &FileRef| {
                let key = stage.key(f.path.trim_start_matches("../../"));
                stage.bucket.get(&key).ok_or(format!("{key} missing"))
            };
            artifacts(&m, read)
                .unwrap()
                .into_iter()
                .map(|f| f.path)
                .collect::<Vec<_>>()
        })
        .map(|p| p.trim_start_matches("../../files/").to_string())
        .collect();
    for key in b1.keys("site/files") {
        let name = key.trim_start_matches("site/files/");
        let artifact = name
            .strip_suffix(".br")
            .or_else(|| name.strip_suffix(".gz"))
            .unwrap_or(name);
        assert!(
            named.contains(artifact),
            "{key} is named by no kept release"
        );
    }
}

#[test]
fn sigkill_at_every_step_of_a_bucket_deploy_promote_and_gc_never_breaks_a_live_release() {
    let (p, b1, b2) = bucket_project("[deploy]\nkeep = 2\n");
    let (p, a, b) = two_releases_in(p);
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    let sites = [BucketSite::new(&b1, "site"), BucketSite::new(&b2, "")];
    let targets: [&dyn Site; 2] = [&sites[0], &sites[1]];
    let deploy = kill_at_every_point(
        &p,
        &["deploy", "--env", "stage", "--release", &b],
        &targets,
        ("stage", 0),
        &a,
        &b,
    );
    let promote = kill_at_every_point(
        &p,
        &["promote", "--from", "stage", "--to", "prod"],
        &targets,
        ("prod", 1),
        &a,
        &b,
    );
    let rollback = kill_at_every_point(
        &p,
        &["rollback", "--env", "stage"],
        &targets,
        ("stage", 0),
        &b,
        &a,
    );
    println!("bucket kills: deploy {deploy}, promote {promote}, rollback {rollback}");
    assert!(
        deploy >= 6 && promote >= 6 && rollback >= 2,
        "{deploy} {promote} {rollback}"
    );
}

#[test]
fn clients_reading_a_bucket_see_no_failure_and_no_mixed_release_while_it_flips() {
    const CLIENTS: usize = 6;
    const FLIPS: usize = 8;
    let (p, b1, _) = bucket_project("");
    let (p, a, b) = two_releases_in(p);
    let base = format!("/{}/site", b1.name);
    let (rounds, failures, seen) = load_during(s3::server(), &base, CLIENTS, || {
        for i in 0..FLIPS {
            if i % 2 == 0 {
                p.ok(&["deploy", "--env", "stage", "--release", &b]);
            } else {
                p.ok(&["rollback", "--env", "stage"]);
            }
        }
    });
    println!(
        "bucket load: {CLIENTS} clients, {FLIPS} deploys and rollbacks, {rounds} rounds, {} failed; releases seen: {seen:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {rounds} rounds failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(seen.contains_key(&a) && seen.contains_key(&b), "{seen:?}");
}

#[test]
fn keys_may_come_from_a_named_profile_of_the_aws_shared_files() {
    let b = Bucket::create("site");
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join("team-credentials");
    let env: std::collections::HashMap<String, String> = s3::env().into_iter().collect();
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n\
             [deployer]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        ),
    )
    .unwrap();
    let config = format!(
        "[deploy.s3]\nendpoint = \"{}\"\npath_style = true\nregion = \"us-east-1\"\n",
        s3::endpoint()
    );
    let p = Project::sample_on(&[("stage", &format!("s3://{}/site", b.name))], &config);
    let releases = |profile: &str| {
        p.command(&["releases", "--env", "stage"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env("HOME", home.path())
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
            .env("AWS_PROFILE", profile)
            .output()
            .unwrap()
    };
    let out = releases("deployer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stage: no releases"));
    // A profile the files do not have is named in the error; nothing falls back silently.
    let out = releases("nobody");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AWS_PROFILE=nobody") && err.contains("team-credentials"),
        "{err}"
    );
}
