//! The run report (`report.html` beside `report.json`, `drift.html` beside `drift.json`):
//! written by the real pipeline, opened from disk in headless Chromium, its verdict, metrics
//! and drift read back from the page and compared with the JSON.

use searchbar_tests::webdriver::Browser;
use searchbar_tests::{repo_root, Project};
use serde_json::{json, Value};
use std::path::Path;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn open(b: &Browser, page: &Path) {
    assert!(page.is_file(), "{} was not written", page.display());
    b.goto(&format!("file://{}", page.display())).unwrap();
}

/// What the page says: the verdict, each metric cell, each gate row, the drift figures and
/// what it loads besides itself.
fn read_page(b: &Browser) -> Value {
    b.eval(
        r#"
        const text = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim() : null; };
        const cells = {};
        for (const td of document.querySelectorAll('td[data-metric]')) {
            cells[td.dataset.metric + '/' + td.dataset.side] = td.textContent.trim();
        }
        const stats = {};
        for (const td of document.querySelectorAll('td[data-stat]')) stats[td.dataset.stat] = td.textContent.trim();
        const verdict = document.querySelector('#verdict');
        return {
            verdict: verdict ? verdict.className : null,
            passed: verdict ? verdict.dataset.passed : null,
            cells, stats,
            gate: [...document.querySelectorAll('#gate tr[data-check]')].map(r => [r.dataset.check, r.cells[3].textContent.trim()]),
            modes: [...document.querySelectorAll('#modes tr[data-mode]')].map(r => [r.dataset.mode, r.cells[1].textContent.trim()]),
            releases: [...document.querySelectorAll('#releases tr[data-release]')].map(r => r.dataset.release),
            serving: text('#releases tr.serving td'),
            added: text('#drift-added'), changed: text('#drift-changed'), removed: text('#drift-removed'),
            charts: [...document.querySelectorAll('figure > svg')].map(s => s.getBoundingClientRect().width > 200 && s.querySelectorAll('text').length > 3),
            fetched: document.querySelectorAll('script, link, img, iframe, object').length,
            sections: [...document.querySelectorAll('section')].map(s => s.id),
        };
        "#,
        json!([]),
    )
    .unwrap()
}

fn f4(v: &Value) -> String {
    format!(
        "{:.4}",
        v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
    )
}

#[test]
fn run_report_opens_from_disk_and_says_what_the_json_says() {
    let p = Project::sample("[index]\nkind = \"ivfpq\"\nnlist = 8\nnbits = 4\n");
    p.ok(&["run", "--env", "stage"]);
    let first = p.live("stage").expect("the first run deploys to stage");

    // A data change: the second run is judged against the first release, with drift.
    let changed = p
        .sqlite()
        .execute(
            "UPDATE projects SET description = description || ' Now with shared family budgets.' WHERE id = 'p003-realtime-whiteboard'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let deleted = p
        .sqlite()
        .execute(
            "DELETE FROM projects WHERE id = 'p011-bike-share-demand'",
            [],
        )
        .unwrap();
    assert_eq!(deleted, 1);
    let out = p.command(&["run", "--env", "stage"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ws = p.path().join(".searchbar");
    let page = ws.join("candidate/report.html");
    assert!(
        stderr.contains("report: ./.searchbar/candidate/report.html"),
        "{stderr}"
    );
    let second = p.live("stage").unwrap();
    assert_ne!(first, second);

    let report = read_json(&ws.join("candidate/report.json"));
    let drift = read_json(&ws.join("reports/drift.json"));
    let live = p.manifest("stage", &first);
    assert_eq!(report["baseline"], json!(first));

    let b = Browser::start().unwrap();
    open(&b, &page);
    let got = read_page(&b);
    assert_eq!(got["verdict"], json!("verdict passed"), "{got}");
    assert_eq!(got["passed"], json!("true"));
    assert_eq!(got["fetched"], json!(0), "the report loads nothing: {got}");
    for key in [
        "ndcg_at_10",
        "mrr_at_10",
        "recall_at_100",
        "exact_ndcg_at_10",
    ] {
        assert_eq!(
            got["cells"][format!("{key}/candidate")],
            json!(f4(&report["judged"][key])),
            "{key}: {got}"
        );
    }
    assert_eq!(
        got["cells"]["recall_at_10/candidate"],
        json!(f4(&report["recall_at_10"]))
    );
    assert_eq!(
        got["cells"]["bytes_per_document/candidate"],
        json!(f4(&report["bytes_per_document"]))
    );
    // The live side is the release the gate compared with, as its manifest records it.
    assert_eq!(
        got["cells"]["ndcg_at_10/live"],
        json!(f4(&live["evaluation"]["ndcg_at_10"]))
    );
    assert_eq!(
        got["cells"]["recall_at_10/live"],
        json!(f4(&live["evaluation"]["recall_at_10"]))
    );
    let gate: Vec<Value> = report["gate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!([
                c["metric"],
                if c["passed"] == json!(true) {
                    "pass"
                } else {
                    "FAIL"
                }
            ])
        })
        .collect();
    assert_eq!(got["gate"], json!(gate), "{got}");
    let modes: Vec<Value> = report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!([m["mode"], f4(&m["ndcg_at_10"])]))
        .collect();
    assert_eq!(modes.len(), 3, "lexical, dense and hybrid: {report}");
    assert_eq!(got["modes"], json!(modes));
    // The nprobe sweep: the shipped point is the one measured as recall@10.
    let configs = report["index_configs"].as_array().unwrap();
    assert!(configs.len() >= 3, "{report}");
    let shipped: Vec<&Value> = configs
        .iter()
        .filter(|c| c["shipped"] == json!(true))
        .collect();
    assert_eq!(shipped.len(), 1);
    assert_eq!(shipped[0]["recall_at_10"], report["recall_at_10"]);
    // Drift against the first release: one changed, one removed.
    assert_eq!(
        (drift["changed"].as_u64(), drift["removed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(got["changed"], json!(drift["changed"].to_string()));
    assert_eq!(got["removed"], json!(drift["removed"].to_string()));
    assert_eq!(got["added"], json!(drift["added"].to_string()));
    assert_eq!(
        got["stats"]["length_psi"],
        json!(f4(&drift["drift"]["length_psi"]))
    );
    assert_eq!(
        got["stats"]["embedding_auc"],
        json!(f4(&drift["drift"]["embedding"]))
    );
    // Both releases, newest first, the second live.
    assert_eq!(got["releases"], json!([second, first]));
    assert_eq!(got["serving"], json!(second));
    assert_eq!(
        got["sections"],
        json!(["gate", "metrics", "modes", "index", "drift", "releases"])
    );
    let charts = got["charts"].as_array().unwrap();
    assert!(charts.len() >= 6, "{got}");
    assert!(
        charts.iter().all(|c| c == &json!(true)),
        "a chart drew nothing: {got}"
    );
    let out_dir = repo_root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(
        out_dir.join("report.png"),
        b.full_page_screenshot().unwrap(),
    )
    .unwrap();

    // A refused candidate gets its report too, and it says which check refused it.
    p.append_config("[gate]\nmin_ndcg_at_10 = 0.999\n");
    let out = p.command(&["evaluate", "--env", "stage"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    open(&b, &page);
    let got = read_page(&b);
    assert_eq!(got["verdict"], json!("verdict refused"), "{got}");
    assert!(
        got["gate"]
            .as_array()
            .unwrap()
            .contains(&json!(["nDCG@10", "FAIL"])),
        "{got}"
    );

    // `drift` writes its own page beside its JSON.
    p.ok(&["drift", "--against", "stage", "--no-embeddings"]);
    let drift = read_json(&ws.join("reports/drift.json"));
    open(&b, &ws.join("reports/drift.html"));
    let got = read_page(&b);
    assert_eq!(got["sections"], json!(["drift"]), "{got}");
    assert_eq!(
        got["stats"]["vocab_psi"],
        json!(f4(&drift["drift"]["vocab_psi"]))
    );
    assert_eq!(got["stats"]["embedding_auc"], json!("–"));
}
