//! Deploys under crashes and load: SIGKILL at every step, clients during deploy and rollback,
//! and the evaluation gate keeping a bad candidate away from prod.

use searchbar_release::FileRef;
use searchbar_tests::{
    artifacts, http_get, http_get_with, root_on_disk, served_release, verify_release,
    verify_served, Project,
};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// A project with release A live on stage and a different release B exported, not deployed.
fn two_releases() -> (Project, String, String) {
    two_releases_in(Project::sample(""))
}

/// [`two_releases`] in project `p`.
pub(crate) fn two_releases_in(p: Project) -> (Project, String, String) {
    let out = p.ok(&["run", "--env", "stage"]);
    // What the deploy says it made live (read from the output: the target may be a bucket).
    let a = out
        .lines()
        .find_map(|l| l.strip_prefix("deploy: stage now serves release "))
        .and_then(|l| l.split([' ', ',']).next())
        .unwrap_or_else(|| panic!("run deployed a release:\n{out}"))
        .to_string();
    p.sqlite()
        .execute(
            "UPDATE projects SET title = title || ' (2nd edition)' WHERE id = 'p010-chess-engine' OR rowid = 10",
            [],
        )
        .unwrap();
    let out = p.ok(&["run", "--env", "stage", "--until", "export"]);
    let b = out
        .lines()
        .find_map(|l| l.strip_prefix("export: release "))
        .and_then(|l| l.split(':').next())
        .expect("export printed the release id")
        .to_string();
    assert_ne!(a, b);
    (p, a, b)
}

#[test]
fn sigkill_at_every_deploy_step_never_breaks_the_live_release() {
    let (p, a, b) = two_releases();
    let stage = DirSite::new(&p, &p.target("stage"));
    let kills = kill_at_every_point(
        &p,
        &["deploy", "--env", "stage"],
        &[&stage],
        ("stage", 0),
        &a,
        &b,
    );
    assert!(kills >= 8, "only {kills} fault points were exercised");
}

/// One client round: the pointer, its manifest, and every file the manifest names, each
/// verified against the manifest, from the target served at `http://{addr}{base}/`; then the
/// root page, which must be a release's own page based in its directory, that release verified
/// too where it is not the pointer's (a command killed between the two writes). Returns the
/// release the pointer names.
pub(crate) fn fetch_release(addr: &str, base: &str) -> Result<String, String> {
    let get = |path: &str| match http_get(addr, &format!("{base}/{path}"))? {
        (200, _, body) => Ok(body),
        (s, _, _) => Err(format!("{path}: HTTP {s}")),
    };
    served_release(get, |id| verify_release_at(addr, base, id))
}

/// Release `id`'s manifest, page and every file its manifest names, each verified.
fn verify_release_at(addr: &str, base: &str, id: &str) -> Result<(), String> {
    let (s, _, body) = http_get(addr, &format!("{base}/releases/{id}/manifest.json"))?;
    if s != 200 {
        return Err(format!("manifest of {id}: HTTP {s}"));
    }
    let m = searchbar_release::Manifest::from_json(&body, "manifest").map_err(|e| e.to_string())?;
    if m.release != id {
        return Err(format!("mixed: pointer {id}, manifest {}", m.release));
    }
    let (s, _, page) = http_get(addr, &format!("{base}/releases/{id}/index.html"))?;
    if s != 200 {
        return Err(format!("page of {id}: HTTP {s}"));
    }
    if let Some(f) = &m.page {
        f.verify(&page).map_err(|e| format!("page: {e}"))?;
    }
    let read = |f: &FileRef| {
        let name = f.path.trim_start_matches("../../");
        match http_get(addr, &format!("{base}/{name}"))? {
            (200, _, body) => Ok(body),
            (s, _, _) => Err(format!("{name}: HTTP {s}")),
        }
    };
    for f in artifacts(&m, read)? {
        let name = f.path.trim_start_matches("../../");
        let (s, headers, body) = http_get(addr, &format!("{base}/{name}"))?;
        if s != 200 {
            return Err(format!("{name}: HTTP {s}"));
        }
        if name.ends_with(".wasm")
            && !headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/wasm")
        {
            return Err(format!("{name}: wrong MIME type"));
        }
        f.verify(&body)
            .map_err(|e| format!("mixed or corrupt: {e}"))?;
    }
    Ok(())
}

/// A deploy target as the fault tests see it: its state can be saved and put back, and what it
/// serves and keeps can be verified.
pub(crate) trait Site {
    /// Remembers the target's state now.
    fn save(&self);
    /// Puts back the state [`Site::save`] remembered.
    fn restore(&self);
    /// Verifies what a client gets (the pointer, its manifest, every file, the root page and
    /// the release it opens); the live release.
    fn served(&self) -> Result<String, String>;
    /// The release the root page opens.
    fn root(&self) -> Result<String, String>;
    /// Verifies, whole, every release the target keeps (`at`: the kill point, for messages).
    fn verify_kept(&self, at: usize);
    /// What a finished command must not leave behind: temporaries, half-copied releases.
    fn leftovers(&self) -> Vec<String>;
}

/// A directory target, saved as a copy beside the project.
pub(crate) struct DirSite {
    path: PathBuf,
    pristine: PathBuf,
}

impl DirSite {
    pub(crate) fn new(p: &Project, path: &Path) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        Self {
            path: path.to_path_buf(),
            pristine: p.path().join(format!("pristine-{n}")),
        }
    }
}

impl Site for DirSite {
    fn save(&self) {
        let _ = std::fs::remove_dir_all(&self.pristine);
        copy_dir(&self.path, &self.pristine);
    }

    fn restore(&self) {
        std::fs::remove_dir_all(&self.path).unwrap();
        copy_dir(&self.pristine, &self.path);
    }

    fn served(&self) -> Result<String, String> {
        verify_served(&self.path)
    }

    fn root(&self) -> Result<String, String> {
        root_on_disk(&self.path)
    }

    fn verify_kept(&self, at: usize) {
        for e in std::fs::read_dir(self.path.join("releases"))
            .unwrap()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            verify_release(&self.path, &name)
                .unwrap_or_else(|err| panic!("point {at}: kept {name}: {err}"));
        }
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.path.join("releases"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }
}

/// Runs `args`, killed with SIGKILL at each of its fault points (a step repeated once per
/// artifact at the first and last repetition), then once through. Before each run every
/// target is put back as it was; after each kill every target serves what it served or, the
/// one the command changes (`sites[changed.1]`, environment `changed.0`), `old` or `new`
/// (verified by hash), every release kept there verifies, and running the command again
/// (after a rollback where the kill came after the flip) completes it and leaves nothing
/// behind (no lock or temporary in the way). Returns the number of kills.
pub(crate) fn kill_at_every_point(
    p: &Project,
    args: &[&str],
    sites: &[&dyn Site],
    (env, changed): (&str, usize),
    old: &str,
    new: &str,
) -> usize {
    for site in sites {
        site.save();
    }
    let restore = || {
        for site in sites {
            site.restore();
        }
    };
    // The points the command passes, in order, from a traced run. A step repeated once per
    // artifact (a release has dozens, each placed, or written and then placed) is killed at its
    // first and last repetition: a step is its name and the different step before it.
    restore();
    let trace = p
        .command(args)
        .env("SEARCHBAR_FAULT_TRACE", "1")
        .output()
        .unwrap();
    assert!(trace.status.success(), "{args:?}: {trace:?}");
    let names: Vec<String> = String::from_utf8_lossy(&trace.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("fault point "))
        .filter_map(|l| l.split_once(": ").map(|(_, name)| name.to_string()))
        .collect();
    let steps: Vec<(&str, &str)> = (0..names.len())
        .map(|i| {
            let before = names[..i].iter().rev().find(|n| **n != names[i]);
            (names[i].as_str(), before.map_or("", |n| n.as_str()))
        })
        .collect();
    let points: Vec<usize> = (0..steps.len())
        .filter(|&i| {
            let first = !steps[..i].contains(&steps[i]);
            let last = !steps[i + 1..].contains(&steps[i]);
            first || last
        })
        .map(|i| i + 1)
        .collect();
    let target = sites[changed];
    for &at in &points {
        restore();
        let out = p
            .command(args)
            .env("SEARCHBAR_FAULT_AT", at.to_string())
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{args:?} point {at}: expected SIGKILL, got {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for (i, site) in sites.iter().enumerate() {
            let served = site
                .served()
                .unwrap_or_else(|e| panic!("{args:?} point {at}: {e}"));
            assert!(
                i != changed || served == old || served == new,
                "{args:?} point {at}: serves {served}"
            );
            site.verify_kept(at);
        }
        // The next command finishes the job whatever the kill left, lock and temporaries
        // included: from the old release, the same command again; from the new one, a rollback
        // to the old and the command again.
        if target.served().unwrap() != old {
            p.ok(&["rollback", "--env", env, "--to", old]);
        }
        p.ok(args);
        assert_eq!(target.served().unwrap(), new, "{args:?} point {at}: rerun");
        assert_eq!(
            target.root().unwrap(),
            new,
            "{args:?} point {at}: root page"
        );
        let leftovers = target.leftovers();
        assert!(leftovers.is_empty(), "{args:?} point {at}: {leftovers:?}");
    }
    restore();
    p.ok(args);
    assert_eq!(target.served().unwrap(), new, "{args:?} ran through");
    assert_eq!(
        target.root().unwrap(),
        new,
        "{args:?} ran through: root page"
    );
    println!(
        "{args:?}: killed at {} of its {} fault points",
        points.len(),
        names.len()
    );
    points.len()
}

/// Promote and rollback killed at every step, and a deploy whose gc removes releases (keep = 2)
/// killed at every step of the gc too.
#[test]
fn sigkill_at_every_promote_rollback_and_gc_step_never_breaks_a_live_release() {
    let (p, a, b) = two_releases();
    let (stage, prod) = (p.target("stage"), p.target("prod"));
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    p.ok(&["deploy", "--env", "stage", "--release", &b]);
    let sites = [DirSite::new(&p, &stage), DirSite::new(&p, &prod)];
    let targets: [&dyn Site; 2] = [&sites[0], &sites[1]];
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
    // Two more releases exported, and keep = 2: the newest two are kept, and always the live
    // one and the one before it.
    p.append_config("[deploy]\nkeep = 2\n");
    let mut ids = vec![a.clone(), b.clone()];
    for n in 3..=4 {
        p.sqlite()
            .execute(
                &format!("UPDATE projects SET title = title || ' ({n}th)' WHERE rowid = 11"),
                [],
            )
            .unwrap();
        let out = p.ok(&["run", "--env", "stage", "--until", "export"]);
        ids.push(
            out.lines()
                .find_map(|l| l.strip_prefix("export: release "))
                .and_then(|l| l.split(':').next())
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(p.live("stage").as_deref(), Some(a.as_str()));
    p.ok(&["deploy", "--env", "stage", "--release", &ids[2]]);
    // Three releases on stage (the live one, the one before it, one more); this deploy makes
    // four, and its gc removes the two oldest.
    let before = std::fs::read_dir(stage.join("releases")).unwrap().count();
    let gc = kill_at_every_point(
        &p,
        &["deploy", "--env", "stage", "--release", &ids[3]],
        &targets,
        ("stage", 0),
        &ids[2],
        &ids[3],
    );
    let after = std::fs::read_dir(stage.join("releases")).unwrap().count();
    println!("kills: promote {promote}, rollback {rollback}, deploy with gc {gc}; stage releases {before} -> {after}");
    assert_eq!(
        (before, after),
        (3, 2),
        "gc keeps the newest 2 (the live one and the one before it): adds one, removes two"
    );
    assert!(
        promote >= 8 && rollback >= 2 && gc >= 8,
        "{promote} {rollback} {gc}"
    );
}

/// Promote onto a target on another file system (/dev/shm is tmpfs): artifacts are copied, not
/// linked, and a kill at every step still leaves the live release whole.
#[test]
fn sigkill_at_every_step_of_a_promote_across_file_systems() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let (p, a, b) = two_releases();
    let dev = |path: &Path| std::fs::metadata(path).unwrap().dev();
    assert!(
        shm.is_dir() && dev(shm) != dev(p.path()),
        "/dev/shm must be a file system other than the project's for this test"
    );
    let far = tempfile::tempdir_in(shm).unwrap();
    let prod = far.path().join("prod");
    let cfg = p.path().join("searchbar.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "prod = \"deploy/prod\"",
        &format!("prod = \"{}\"", prod.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    p.ok(&["deploy", "--env", "stage", "--release", &b]);
    let stage = p.target("stage");
    let sites = [DirSite::new(&p, &stage), DirSite::new(&p, &prod)];
    let kills = kill_at_every_point(
        &p,
        &["promote", "--from", "stage", "--to", "prod"],
        &[&sites[0], &sites[1]],
        ("prod", 1),
        &a,
        &b,
    );
    // Copied: the destination's files are not the source's inodes.
    let m = p.manifest_at(&prod, &b);
    let index = m["files"]["index"]["path"]
        .as_str()
        .unwrap()
        .trim_start_matches("../../");
    assert_ne!(
        std::fs::metadata(prod.join(index)).unwrap().ino(),
        std::fs::metadata(stage.join(index)).unwrap().ino()
    );
    println!("kills across file systems: {kills}");
    assert!(kills >= 8, "{kills}");
}

/// What `clients` clients, each fetching the target at `http://{addr}{base}/` in a loop
/// ([`fetch_release`]), saw while `work` ran: rounds, failures, and rounds per release seen.
pub(crate) fn load_during(
    addr: &str,
    base: &str,
    clients: usize,
    work: impl FnOnce(),
) -> (
    usize,
    Vec<String>,
    std::collections::BTreeMap<String, usize>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, addr, base) = (stop.clone(), addr.to_string(), base.to_string());
            std::thread::spawn(move || {
                let (mut rounds, mut failures, mut seen) =
                    (0usize, Vec::new(), std::collections::BTreeMap::new());
                while (!stop.load(Ordering::SeqCst) || rounds < 2)
                    && std::time::Instant::now() < deadline
                {
                    rounds += 1;
                    match fetch_release(&addr, &base) {
                        Ok(id) => *seen.entry(id).or_insert(0usize) += 1,
                        Err(e) => failures.push(e),
                    }
                }
                (rounds, failures, seen)
            })
        })
        .collect();
    work();
    stop.store(true, Ordering::SeqCst);
    let (mut rounds, mut failures, mut seen) = (0, Vec::new(), std::collections::BTreeMap::new());
    for client in threads {
        let (r, f, s) = client.join().unwrap();
        rounds += r;
        failures.extend(f);
        for (id, n) in s {
            *seen.entry(id).or_insert(0) += n;
        }
    }
    (rounds, failures, seen)
}

#[test]
fn sixteen_clients_see_no_failure_and_no_mixed_release_during_20_deploys_and_rollbacks() {
    const CLIENTS: usize = 16;
    const FLIPS: usize = 20;
    let (p, a, b) = two_releases();
    let (mut server, addr) = p.serve("stage");

    // Headers a CDN would rely on.
    let (status, headers, _) = http_get(&addr, "/current.json").unwrap();
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "cache-control" && v == "no-cache"));
    assert_eq!(http_get(&addr, "/.deploy.lock").unwrap().0, 404);
    // The same headers for hosts that take them from the site, and neither file served.
    let stage = p.target("stage");
    let rules = std::fs::read_to_string(stage.join("_headers")).unwrap();
    assert!(
        rules.contains("/current.json\n  Cache-Control: no-cache"),
        "{rules}"
    );
    assert!(
        rules.contains("Cross-Origin-Opener-Policy: same-origin"),
        "{rules}"
    );
    let nginx = std::fs::read_to_string(stage.join("searchbar.nginx.conf")).unwrap();
    assert!(nginx.contains("location = /current.json"), "{nginx}");
    for hidden in ["/_headers", "/searchbar.nginx.conf"] {
        assert_eq!(http_get(&addr, hidden).unwrap().0, 404, "{hidden}");
    }

    let (rounds, failures, seen) = load_during(&addr, "", CLIENTS, || {
        for i in 0..FLIPS {
            if i % 2 == 0 {
                p.ok(&["deploy", "--env", "stage", "--release", &b]);
            } else {
                p.ok(&["rollback", "--env", "stage"]);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    });
    server.kill().unwrap();
    let _ = server.wait();
    println!(
        "load: {CLIENTS} clients, {FLIPS} deploys and rollbacks, {rounds} rounds (pointer + every file), {} failed, 0 mixed allowed; releases seen: {seen:?}",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {rounds} rounds failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(rounds >= 2 * CLIENTS, "only {rounds} rounds");
    assert!(seen.contains_key(&a), "never saw the old release: {seen:?}");
    assert!(seen.contains_key(&b), "never saw the new release: {seen:?}");
    assert_eq!(verify_served(&p.target("stage")).unwrap(), a);
}

#[test]
fn the_gate_keeps_a_degraded_candidate_out_of_prod() {
    let p = Project::sample("");
    p.ok(&["run", "--env", "prod"]);
    let good = p.live("prod").unwrap();
    let cfg = p.path().join("searchbar.toml");
    let base = std::fs::read_to_string(&cfg).unwrap();
    // IVF-PQ with 4-bit codes, one probed list and no re-ranking collapses recall.
    std::fs::write(
        &cfg,
        format!("{base}\n[index]\nkind = \"ivfpq\"\nnlist = 16\nm = 4\nnbits = 4\n[search]\nnprobe = 1\nrerank = 0\n"),
    )
    .unwrap();
    let out = p.run(&["run", "--env", "prod"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("gate refused") && stderr.contains("recall@10"),
        "{stderr}"
    );
    assert!(!stdout.contains("export: release"), "{stdout}");
    assert_eq!(
        p.live("prod").as_deref(),
        Some(good.as_str()),
        "prod untouched"
    );
    assert_eq!(verify_served(&p.target("prod")).unwrap(), good);

    // Forcing is possible and recorded.
    p.ok(&["run", "--env", "stage", "--force"]);
    let forced = p.live("stage").unwrap();
    let m = p.manifest("stage", &forced);
    assert_eq!(m["evaluation"]["forced"], true);
    let listing = p.ok(&["releases", "--env", "stage"]);
    assert!(listing.contains("(forced"), "{listing}");

    // The stage override does not carry over to prod: the same candidate is judged against
    // prod's live release again (this went through with "evaluate: up to date" before).
    let out = p.run(&["run", "--env", "prod"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(!stdout.contains("evaluate: up to date"), "{stdout}");
    assert_eq!(p.live("prod").as_deref(), Some(good.as_str()));
    // Nor through a direct deploy of the exported release, nor a promote.
    let out = p.run(&["deploy", "--env", "prod", "--release", &forced]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = p.run(&["promote", "--from", "stage", "--to", "prod"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(p.live("prod").as_deref(), Some(good.as_str()));
    assert_eq!(verify_served(&p.target("prod")).unwrap(), good);
    // An explicit override for prod is possible, and prod records it.
    p.ok(&["promote", "--from", "stage", "--to", "prod", "--force"]);
    assert_eq!(p.live("prod").as_deref(), Some(forced.as_str()));
    let admission: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.target("prod")
                .join("admissions")
                .join(format!("{forced}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(admission["forced"], true, "{admission}");
    assert_eq!(admission["baseline"], good.as_str(), "{admission}");
    assert!(p
        .ok(&["releases", "--env", "prod"])
        .contains("(forced onto this target)"));
    p.ok(&["rollback", "--env", "prod"]);
    assert_eq!(p.live("prod").as_deref(), Some(good.as_str()));

    // A good candidate passes and deploys.
    std::fs::write(&cfg, format!("{base}\n[index]\nseed = 7\n")).unwrap();
    p.ok(&["run", "--env", "prod"]);
    assert_ne!(p.live("prod").as_deref(), Some(good.as_str()));
    verify_served(&p.target("prod")).unwrap();
}

#[test]
fn promote_serves_the_same_bytes_and_rollback_flips_back() {
    let (p, a, b) = two_releases();
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    assert_eq!(p.live("prod").as_deref(), Some(a.as_str()));
    p.ok(&["deploy", "--env", "stage"]);
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    assert_eq!(verify_served(&p.target("prod")).unwrap(), b);
    let stage_m = std::fs::read(p.release_dir("stage", &b).join("manifest.json")).unwrap();
    let prod_m = std::fs::read(p.release_dir("prod", &b).join("manifest.json")).unwrap();
    assert_eq!(stage_m, prod_m, "prod serves exactly what passed on stage");
    let listing = p.ok(&["releases", "--env", "prod"]);
    assert!(
        listing.contains(&format!("* {b}")) && listing.contains(&a),
        "{listing}"
    );
    let out = p.ok(&["rollback", "--env", "prod"]);
    assert!(out.contains(&format!("now serves {a}")), "{out}");
    assert_eq!(verify_served(&p.target("prod")).unwrap(), a);
    p.ok(&["rollback", "--env", "prod", "--to", &b[..20]]);
    assert_eq!(p.live("prod").as_deref(), Some(b.as_str()));
    // Nothing earlier than A: a clear error.
    p.ok(&["rollback", "--env", "prod"]);
    let out = p.run(&["rollback", "--env", "prod"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no earlier release"));
}

#[test]
fn racing_deploys_promotes_and_rollbacks_never_hold_one_target_together() {
    let (p, _a, b) = two_releases();
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    let log = p.path().join("lock-probe.log");
    let mut succeeded = 0;
    for round in 0..12 {
        let commands: [&[&str]; 4] = [
            &["deploy", "--env", "stage", "--release", &b],
            &["rollback", "--env", "stage"],
            &["promote", "--from", "stage", "--to", "prod"],
            &["rollback", "--env", "prod"],
        ];
        let children: Vec<_> = commands
            .iter()
            .map(|args| {
                p.command(args)
                    .env("SEARCHBAR_LOCK_PROBE", &log)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                succeeded += 1;
            } else {
                // Refused for the lock, or for the state another one left (nothing to roll
                // back, already live): never a crash or a half-done change.
                assert!(
                    err.contains("is locked by")
                        || err.contains("no earlier release")
                        || err.contains("already live")
                        || err.contains("cannot roll back")
                        || err.contains("gate refused"),
                    "round {round}: {err}"
                );
            }
        }
        verify_served(&p.target("stage")).unwrap();
        verify_served(&p.target("prod")).unwrap();
    }
    // Replay the probe: per target, each acquire is followed by its own release before the
    // next acquire.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut holder: std::collections::BTreeMap<String, String> = Default::default();
    let (mut overlaps, mut holds) = (0, 0);
    for line in text.lines() {
        let parts: Vec<&str> = line.rsplitn(3, ' ').collect();
        let (pid, what, lock) = (parts[0], parts[1], parts[2]);
        match what {
            "acquire" => {
                holds += 1;
                if let Some(other) = holder.insert(lock.to_string(), pid.to_string()) {
                    overlaps += 1;
                    eprintln!("overlap on {lock}: {pid} while {other} held it");
                }
            }
            _ => {
                if holder.get(lock).map(String::as_str) == Some(pid) {
                    holder.remove(lock);
                }
            }
        }
    }
    println!("lock race: {holds} holds over 48 commands, {succeeded} succeeded, {overlaps} overlapping holders");
    assert_eq!(overlaps, 0);
    assert!(
        holds >= 12 && succeeded >= 6,
        "{holds} holds, {succeeded} succeeded"
    );
}

#[test]
fn a_release_with_a_link_or_a_changed_page_does_not_deploy_and_gc_keeps_what_it_cannot_read() {
    let (p, a, b) = two_releases();
    let export = p.path().join(".searchbar/export");
    // A symlink where an artifact should be: refused, nothing goes live.
    let m = p.manifest_at(&export, &b);
    let index = m["files"]["index"]["path"]
        .as_str()
        .unwrap()
        .trim_start_matches("../../");
    let victim = export.join(index);
    let saved = std::fs::read(&victim).unwrap();
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(p.path().join("outside"), &saved).unwrap();
    std::os::unix::fs::symlink(p.path().join("outside"), &victim).unwrap();
    let out = p.run(&["deploy", "--env", "stage", "--release", &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(verify_served(&p.target("stage")).unwrap(), a);
    std::fs::remove_file(&victim).unwrap();
    std::fs::write(&victim, &saved).unwrap();
    // The page is covered by the manifest: an edited page fails verification.
    let page = export.join("releases").join(&b).join("index.html");
    let original = std::fs::read(&page).unwrap();
    std::fs::write(&page, b"<script>alert(1)</script>").unwrap();
    let out = p.run(&["deploy", "--env", "stage", "--release", &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("index.html"), "{err}");
    std::fs::write(&page, original).unwrap();

    // A release directory whose manifest cannot be read: gc deletes none of the artifacts
    // (it cannot tell which that release needs), and the deploy that went live still succeeds.
    let stage = p.target("stage");
    let junk = stage.join("releases").join("20990101T000000Z-deadbeef");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("manifest.json"), b"{ not json").unwrap();
    let orphan = stage.join("files").join("orphan-0000000000000000.bin");
    std::fs::write(&orphan, b"named by the unreadable release, perhaps").unwrap();
    let out = p.run(&["deploy", "--env", "stage", "--release", &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("gc failed") && err.contains("kept every artifact"),
        "{err}"
    );
    assert_eq!(verify_served(&stage).unwrap(), b);
    assert!(
        orphan.exists(),
        "gc deleted a file an unreadable release may name"
    );
    std::fs::remove_dir_all(&junk).unwrap();
    p.ok(&["rollback", "--env", "stage"]);
    p.ok(&["deploy", "--env", "stage", "--release", &b]);
    assert!(
        !orphan.exists(),
        "with every manifest readable, gc collects the orphan"
    );
}

/// Precompressed variants: export writes them beside what a page downloads whole, deploy
/// copies them, `serve` sends one only to a client that accepts it (and says `Vary`), a range
/// is always of the decoded bytes, and a variant that does not decode to its artifact stops a
/// promotion, naming the file, before anything reaches prod.
#[test]
fn precompressed_variants_reach_only_clients_that_accept_them_and_are_verified_on_copy() {
    use std::io::Read;
    let p = Project::sample("");
    // Shards and fragments in part tables (pages of four): their pages and parts get variants
    // and are served and copied like every other file.
    p.set_web("parts_per_page = 4");
    p.ok(&["run", "--env", "stage"]);
    let id = p.live("stage").unwrap();
    let stage = p.target("stage");
    let bytes = std::fs::read(stage.join(format!("releases/{id}/manifest.json"))).unwrap();
    let m = searchbar_release::Manifest::from_json(&bytes, "manifest").unwrap();
    let (mut server, addr) = p.serve("stage");
    let decode = |enc: &str, body: &[u8]| -> Vec<u8> {
        let mut out = Vec::new();
        match enc {
            "br" => brotli::Decompressor::new(body, 4096).read_to_end(&mut out),
            "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out),
            _ => panic!("{enc}"),
        }
        .unwrap();
        out
    };
    let header = |h: &[(String, String)], name: &str| {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let (mut raw_total, mut br_total) = (0u64, 0u64);
    let on_disk = |f: &FileRef| {
        std::fs::read(stage.join(f.path.trim_start_matches("../../"))).map_err(|e| e.to_string())
    };
    let every = artifacts(&m, on_disk).unwrap();
    for f in every.iter().filter(|f| !m.files.is_fetched_by_range(f)) {
        let name = f.path.trim_start_matches("../../");
        let (s, h, body) = http_get_with(&addr, &format!("/{name}"), &[]).unwrap();
        assert_eq!(s, 200, "{name}");
        assert_eq!(
            header(&h, "content-encoding"),
            None,
            "{name} to a client accepting none"
        );
        assert_eq!(
            header(&h, "vary").as_deref(),
            Some("accept-encoding"),
            "{name}"
        );
        f.verify(&body).unwrap();
        for (accept, enc, ext) in [("br", "br", "br"), ("gzip, deflate", "gzip", "gz")] {
            let (s, h, body) =
                http_get_with(&addr, &format!("/{name}"), &[("Accept-Encoding", accept)]).unwrap();
            assert_eq!(s, 200);
            let variant = stage.join(format!("{name}.{ext}"));
            if variant.exists() {
                assert_eq!(
                    header(&h, "content-encoding").as_deref(),
                    Some(enc),
                    "{name}"
                );
                assert!(body.len() < f.bytes as usize, "{name}: {enc} is no smaller");
                f.verify(&decode(enc, &body))
                    .unwrap_or_else(|e| panic!("{name} as {enc}: {e}"));
                if enc == "br" {
                    br_total += body.len() as u64;
                }
            } else {
                assert_eq!(header(&h, "content-encoding"), None, "{name}");
                f.verify(&body).unwrap();
                if enc == "br" {
                    br_total += f.bytes;
                }
            }
        }
        raw_total += f.bytes;
    }
    // What a page fetches first (document shards, the lexical root, the tokenizer, the bundle)
    // all have both variants.
    let lexical = m.files.lexical.as_ref().unwrap();
    assert!(matches!(
        m.files.docs,
        searchbar_release::PartList::Paged(_)
    ));
    let shards: Vec<&FileRef> = every
        .iter()
        .filter(|f| f.path.contains("/docs-") && !f.path.contains("-page-"))
        .filter(|f| !f.path.contains("-table-"))
        .collect();
    assert_eq!(shards.len(), 22);
    for f in shards
        .iter()
        .copied()
        .chain(&m.files.app)
        .chain([&lexical.root, &m.files.tokenizer])
    {
        let name = f.path.trim_start_matches("../../");
        for ext in ["br", "gz"] {
            assert!(
                stage.join(format!("{name}.{ext}")).is_file(),
                "no {name}.{ext}"
            );
        }
    }
    println!("whole files: {raw_total} B raw, {br_total} B as a brotli client gets them");
    assert!(br_total * 10 < raw_total * 9, "{br_total} of {raw_total}");

    // A range is of the bytes the manifest describes, whatever the client accepts.
    let shard = shards[0];
    let name = shard.path.trim_start_matches("../../");
    let (s, h, body) = http_get_with(
        &addr,
        &format!("/{name}"),
        &[("Accept-Encoding", "br, gzip"), ("Range", "bytes=0-99")],
    )
    .unwrap();
    assert_eq!(s, 206);
    assert_eq!(header(&h, "content-encoding"), None);
    assert_eq!(body, std::fs::read(stage.join(name)).unwrap()[..100]);

    // The pages and the JSON beside them have no variants: compressed as they are sent, to a
    // client that accepts it only (the manifest before the first result: 15 KB raw).
    for path in [
        "index.html".to_string(),
        "current.json".to_string(),
        format!("releases/{id}/index.html"),
        format!("releases/{id}/manifest.json"),
    ] {
        let file = std::fs::read(stage.join(&path)).unwrap();
        let (s, h, body) = http_get_with(&addr, &format!("/{path}"), &[]).unwrap();
        assert_eq!((s, header(&h, "content-encoding")), (200, None), "{path}");
        assert_eq!(body, file, "{path}");
        for (accept, enc) in [("br", "br"), ("gzip", "gzip")] {
            let (s, h, body) =
                http_get_with(&addr, &format!("/{path}"), &[("Accept-Encoding", accept)]).unwrap();
            assert_eq!(s, 200, "{path}");
            assert_eq!(
                header(&h, "content-encoding").as_deref(),
                Some(enc),
                "{path}"
            );
            assert_eq!(decode(enc, &body), file, "{path} as {enc}");
            if file.len() > 4096 {
                assert!(body.len() * 2 < file.len(), "{path}: {enc} {}", body.len());
            }
        }
    }
    server.kill().unwrap();

    // A variant that decodes to other bytes (a new inode: the export area shares the old one).
    let variant = stage.join(format!("{name}.br"));
    let other = m.files.tokenizer.path.trim_start_matches("../../");
    std::fs::remove_file(&variant).unwrap();
    std::fs::copy(stage.join(format!("{other}.br")), &variant).unwrap();
    let out = p.run(&["promote", "--from", "stage", "--to", "prod"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("{name}.br")), "{err}");
    assert_eq!(p.live("prod"), None);
    assert!(!p.target("prod").join(format!("releases/{id}")).exists());
}
