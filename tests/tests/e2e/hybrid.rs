//! Hybrid search through the real binary: the lexical index built by `train`, alpha and the
//! floor chosen by `evaluate`, the manifest carrying them, `searchbar query` ranking exactly as
//! the evaluation did, and the gate judging the mode that ships.

use searchbar_tests::page::native as query;
use searchbar_tests::{sample_queries, Project};

/// The lower-cased titles `searchbar query` returns for `text` from stage.
fn titles(p: &Project, text: &str) -> Vec<String> {
    let out = p.ok(&["query", "--env", "stage", "--json", text]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_lowercase())
        .collect()
}

#[test]
fn hybrid_ranking_is_tuned_shipped_and_queried_as_evaluated() {
    let p = Project::sample("");
    let out = p.ok(&["run", "--env", "stage"]);
    assert!(out.contains("train: lexical index of"), "{out}");
    assert!(
        out.contains("evaluate: nDCG@10 by mode: lexical") && out.contains("hybrid"),
        "{out}"
    );
    assert!(
        out.contains("evaluate: ships hybrid ranking, convex fusion with alpha"),
        "{out}"
    );
    assert!(out.contains("5-fold cross-validation"), "{out}");

    let id = p.live("stage").unwrap();
    let m = p.manifest("stage", &id);
    let search = &m["search"];
    assert_eq!(search["mode"], "hybrid", "{search}");
    let alpha = search["alpha"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&alpha), "{search}");
    assert!(search["floor"].as_f64().is_some(), "{search}");
    let lexical = &m["files"]["lexical"];
    assert!(
        !lexical["fragments"].as_array().unwrap().is_empty(),
        "{lexical}"
    );
    let modes = &m["evaluation"]["modes"];
    for mode in ["lexical", "dense", "hybrid"] {
        assert!(modes[mode].as_f64().unwrap() > 0.3, "{modes}");
    }

    // One ranking path: every judged query's results from `searchbar query` (the page's
    // code, through the release as deployed) are exactly the evaluation's.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.path().join(".searchbar/candidate/report.json")).unwrap(),
    )
    .unwrap();
    let mut compared = 0;
    for (id, text) in sample_queries().into_iter().take(12) {
        let Some(want) = report["runs"][&id].as_array() else {
            continue;
        };
        let want: Vec<&str> = want.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(query(&p, &text), want, "{id}: {text}");
        compared += 1;
    }
    assert!(compared >= 10, "{compared} judged queries compared");

    // A word half typed finds its completions (the dense list of "qua" is below the floor:
    // it is not evidence), and nonsense finds nothing.
    let half = titles(&p, "qua");
    assert!(half.iter().take(2).all(|t| t.contains("qua")), "{half:?}");
    assert!(query(&p, "xyzzy").is_empty());
    assert!(query(&p, "qwzx vbnmkj").is_empty());
    let text = p.ok(&["query", "--env", "stage", "xyzzy"]);
    assert_eq!(text.trim(), "no results");
    // One typo in a long word is forgiven.
    let typo = titles(&p, "quadcoptre");
    assert!(
        typo.iter()
            .take(3)
            .any(|t| t.contains("quadcopter") || t.contains("drone")),
        "{typo:?}"
    );
}

#[test]
fn the_gate_judges_the_mode_that_ships() {
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let live = p.live("stage").unwrap();
    // Same vectors, same index; only the lexical analysis changes, so that no word of any
    // query can match: the hybrid that would ship is worse than the live one, and refused.
    let words: Vec<String> = sample_queries()
        .iter()
        .flat_map(|(_, text)| {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| format!("{:?}", w.to_lowercase()))
                .collect::<Vec<_>>()
        })
        .collect();
    p.append_config(&format!(
        "[lexical]\nlanguage = \"none\"\nstop_words = [{}]\n[search]\nmode = \"lexical\"\n",
        words.join(", ")
    ));
    let status = p.ok(&["status"]);
    assert!(
        status.contains("train     STALE: params changed: lexical."),
        "{status}"
    );
    let out = p.run(&["run", "--env", "stage"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("nDCG@10"), "{stderr}");
    assert_eq!(p.live("stage").as_deref(), Some(live.as_str()));
}

#[test]
fn bad_lexical_and_search_settings_name_their_key() {
    for (extra, key) in [
        ("[lexical]\nlanguage = \"klingon\"\n", "klingon"),
        ("[lexical]\nb = 1.5\n", "lexical.b = 1.5"),
        ("[search]\nalpha = 2.0\n", "search.alpha = 2"),
        ("[search]\nmode = \"semantic\"\n", "semantic"),
    ] {
        let p = Project::sample(extra);
        let out = p.run(&["status"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(key),
            "{extra}: {stderr}"
        );
    }
}
