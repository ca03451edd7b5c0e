//! The daily data job end to end: data change → lock changes → branch pushed to a (local,
//! bare) remote → the pipeline runs → stage → promote → prod; unchanged data → nothing.

use searchbar_tests::{repo_root, searchbar_bin, verify_served, Project};
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a repository script in the project with `searchbar` on PATH.
fn script(p: &Project, name: &str, args: &[&str]) -> (String, String) {
    let bin_dir = searchbar_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(repo_root().join("scripts").join(name))
        .args(args)
        .current_dir(p.path())
        .env("PATH", path)
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .output()
        .unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{name} {args:?} failed:\n{o}\n{e}");
    (o, e)
}

fn remote_branches(remote: &Path) -> Vec<String> {
    git(remote, &["branch", "--format=%(refname:short)"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_data_change_becomes_a_pull_request_branch_then_a_release() {
    let p = Project::sample("");
    let remote = p.path().join("remote.git");
    git(p.path(), &["init", "-q", "-b", "stage"]);
    std::fs::write(
        p.path().join(".gitignore"),
        ".searchbar/\ndeploy/\ncatalog.sqlite\nremote.git/\nreports/\n",
    )
    .unwrap();
    git(
        p.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        p.path(),
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );

    // Day 0: the first release, and its data lock committed on stage.
    script(&p, "local-ci.sh", &["stage"]);
    script(&p, "local-ci.sh", &["prod"]);
    let first = p.live("prod").unwrap();
    p.ok(&["lock"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "initial"]);
    git(p.path(), &["push", "-q", "origin", "stage"]);

    // Unchanged store: no branch, and the pipeline has nothing to do.
    let (out, _) = script(&p, "daily-data.sh", &[]);
    assert!(
        out.contains("DATA_BRANCH=\n") || out.trim() == "DATA_BRANCH=",
        "{out}"
    );
    assert_eq!(remote_branches(&remote), ["stage"]);
    assert!(p.ok(&["run", "--env", "stage"]).contains("nothing to run"));

    // The store changes: the lock changes and a data branch is pushed.
    p.sqlite()
        .execute(
            "INSERT INTO projects (id, title, description, learn, domain, url) VALUES \
             ('p900-tide-predictor', 'Tide predictor for sea kayakers', \
              'Predict local tides from harmonic constituents and warn about strong currents.', \
              'harmonic analysis; time series', 'science', 'https://example.org/projects/p900')",
            [],
        )
        .unwrap();
    let (out, _) = script(&p, "daily-data.sh", &[]);
    let branch = out
        .lines()
        .find_map(|l| l.strip_prefix("DATA_BRANCH="))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| panic!("no branch pushed: {out}"))
        .to_string();
    assert!(branch.starts_with("data/"), "{branch}");
    assert!(remote_branches(&remote).contains(&branch));
    let pushed_lock = git(&remote, &["show", &format!("{branch}:searchbar.lock")]);
    assert!(pushed_lock.contains("documents = 172"), "{pushed_lock}");
    assert!(pushed_lock.contains("added = 1"), "{pushed_lock}");

    // The pull request's pipeline: a new release on stage, then promoted to prod.
    let status = p.ok(&["status"]);
    assert!(status.contains("1 added [p900-tide-predictor]"), "{status}");
    script(&p, "local-ci.sh", &["stage"]);
    script(&p, "local-ci.sh", &["prod"]);
    let second = verify_served(&p.target("prod")).unwrap();
    assert_ne!(second, first);
    assert_eq!(p.live("stage"), Some(second.clone()));
    let hits = p.ok(&[
        "query",
        "--env",
        "prod",
        "--json",
        "tide",
        "prediction",
        "for",
        "kayaking",
    ]);
    let v: serde_json::Value = serde_json::from_str(&hits).unwrap();
    assert_eq!(v["results"][0]["id"], "p900-tide-predictor", "{hits}");

    // The next day, nothing changed: no new branch.
    let before = remote_branches(&remote);
    let (out, _) = script(&p, "daily-data.sh", &[]);
    assert!(out.trim_end().ends_with("DATA_BRANCH="), "{out}");
    assert_eq!(remote_branches(&remote), before);
}
