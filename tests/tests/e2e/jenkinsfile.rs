//! The Jenkinsfile cannot run here, so it is held to the CLI: every `searchbar` command and
//! flag it uses must exist, the local equivalent must run the same commands, each branch runs
//! the stages it should, and the agent image must install through the same script as CI.
//! (scripts/test.sh also lints it with npm-groovy-lint.)

use searchbar_tests::{repo_root, searchbar_bin};
use std::collections::BTreeSet;
use std::process::Command;

/// Every `searchbar <subcommand> [--flags]` invocation in a text (shell steps, scripts).
fn invocations(text: &str) -> BTreeSet<(String, Vec<String>)> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("searchbar ") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "searchbar ".len()..];
            // `searchbar` as a command word, not part of a path or another word.
            if before.is_some_and(|c| {
                c.is_alphanumeric() || c == '/' || c == '-' || c == '.' || c == '_'
            }) {
                continue;
            }
            let words: Vec<&str> = rest
                .split(|c: char| {
                    c.is_whitespace() || c == '\'' || c == '"' || c == ';' || c == '|' || c == '>'
                })
                .filter(|w| !w.is_empty())
                .take_while(|w| !w.starts_with('&') && !w.starts_with('(') && !w.starts_with('#'))
                .collect();
            let Some(sub) = words.first() else { continue };
            if !sub.chars().all(|c| c.is_ascii_lowercase()) {
                continue;
            }
            let flags = words[1..]
                .iter()
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split('=').next().unwrap().to_string())
                .collect();
            out.insert((sub.to_string(), flags));
        }
    }
    out
}

/// The shell steps of a Jenkinsfile: `sh '…'`, `sh "…"` and `sh '''…'''` bodies.
fn sh_steps(jenkinsfile: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut rest = jenkinsfile;
    while let Some(i) = rest.find("sh ") {
        rest = &rest[i + 3..];
        let quote = if rest.starts_with("'''") {
            "'''"
        } else if rest.starts_with('\'') {
            "'"
        } else if rest.starts_with('"') {
            "\""
        } else {
            continue;
        };
        let body = &rest[quote.len()..];
        if let Some(end) = body.find(quote) {
            steps.push(body[..end].to_string());
            rest = &body[end + quote.len()..];
        }
    }
    steps
}

fn help(args: &[&str]) -> String {
    let out = Command::new(searchbar_bin())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "searchbar {args:?} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_searchbar_command_in_the_jenkinsfile_exists() {
    let jf = std::fs::read_to_string(repo_root().join("Jenkinsfile")).unwrap();
    let steps = sh_steps(&jf);
    assert!(steps.len() >= 15, "found only {} sh steps", steps.len());
    let used = invocations(&steps.join("\n"));
    let subs: BTreeSet<&str> = used.iter().map(|(s, _)| s.as_str()).collect();
    for needed in [
        "status", "drift", "ingest", "embed", "train", "evaluate", "export", "deploy", "promote",
        "model",
    ] {
        assert!(
            subs.contains(needed),
            "the Jenkinsfile never runs `searchbar {needed}`: {subs:?}"
        );
    }
    for (sub, flags) in &used {
        let text = help(&[sub]);
        for flag in flags {
            assert!(
                text.contains(flag.as_str()),
                "`searchbar {sub}` has no {flag} (Jenkinsfile):\n{text}"
            );
        }
    }
    // Scripts the steps call exist and are executable.
    for step in &steps {
        for word in step
            .split_whitespace()
            .filter(|w| w.starts_with("./scripts/"))
        {
            let path = repo_root().join(word.trim_start_matches("./"));
            assert!(path.is_file(), "{word} (Jenkinsfile) does not exist");
        }
    }
}

#[test]
fn the_local_equivalent_runs_the_jenkinsfile_commands() {
    let jf = std::fs::read_to_string(repo_root().join("Jenkinsfile")).unwrap();
    let local = std::fs::read_to_string(repo_root().join("scripts/local-ci.sh")).unwrap();
    let pipeline_cmds = |set: BTreeSet<(String, Vec<String>)>| -> BTreeSet<(String, Vec<String>)> {
        set.into_iter()
            .filter(|(s, _)| !matches!(s.as_str(), "model" | "lock"))
            .filter(|(s, f)| s != "embed" || f.is_empty())
            .collect()
    };
    assert_eq!(
        pipeline_cmds(invocations(&sh_steps(&jf).join("\n"))),
        pipeline_cmds(invocations(&local)),
        "scripts/local-ci.sh drifted from the Jenkinsfile"
    );
}

/// The `searchbar` subcommands a branch's build runs (the daily timer not firing): each stage
/// whose `when` lets the branch through, judged by its `branch` conditions alone.
fn commands_on_branch(jenkinsfile: &str, branch: &str) -> BTreeSet<String> {
    let stages = jenkinsfile.split("    stage('").skip(1);
    let mut out = BTreeSet::new();
    for stage in stages {
        let when = stage
            .lines()
            .find(|l| l.trim_start().starts_with("when "))
            .unwrap_or("");
        if when.contains("value: 'true'") {
            continue; // the daily data job
        }
        let excluded = when.contains(&format!("not {{ branch '{branch}' }}"));
        let only = when
            .split("branch '")
            .skip(1)
            .filter(|_| !when.contains("not { branch"))
            .map(|rest| rest.split('\'').next().unwrap_or(""))
            .next();
        if excluded || only.is_some_and(|b| b != branch) {
            continue;
        }
        out.extend(
            invocations(&sh_steps(stage).join("\n"))
                .into_iter()
                .map(|(s, _)| s),
        );
    }
    out
}

#[test]
fn the_prod_branch_promotes_without_retraining_and_stage_deploys_what_it_gated() {
    let jf = std::fs::read_to_string(repo_root().join("Jenkinsfile")).unwrap();
    let set = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        commands_on_branch(&jf, "prod"),
        set(&["model", "promote", "releases"]),
        "prod fetches the model for the tests and promotes; it embeds and trains nothing"
    );
    let stage = commands_on_branch(&jf, "stage");
    for needed in ["ingest", "embed", "train", "evaluate", "export", "deploy"] {
        assert!(
            stage.contains(needed),
            "stage never runs {needed}: {stage:?}"
        );
    }
    assert!(!stage.contains("promote"), "{stage:?}");
    let pr = commands_on_branch(&jf, "PR-1");
    assert!(pr.contains("evaluate") && !pr.contains("deploy"), "{pr:?}");
}

#[test]
fn the_agent_image_installs_through_the_ci_install_script() {
    let root = repo_root();
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let install = std::fs::read_to_string(root.join("scripts/install.sh")).unwrap();
    let test = std::fs::read_to_string(root.join("scripts/test.sh")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        docker.contains("scripts/install.sh"),
        "the Dockerfile must run scripts/install.sh"
    );
    assert!(ci.contains("scripts/test.sh") && test.contains("scripts/install.sh"));
    // Versions live only in install.sh: none of them is repeated in the image.
    for var in ["TRUNK_VERSION", "BINARYEN_VERSION"] {
        let value = install
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")))
            .unwrap_or_else(|| panic!("install.sh defines {var}"));
        assert!(
            !docker.contains(value.trim()),
            "the Dockerfile repeats {var}={value}"
        );
    }
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("Dockerfile") && compose.contains("jenkins"),
        "{compose}"
    );
}
