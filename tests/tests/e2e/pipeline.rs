//! The stage graph through the real binary: data changes, hyper-parameter changes, no-op runs
//! and quarantined rows.

use searchbar_tests::Project;

#[test]
fn stages_rerun_only_for_what_changed() {
    let p = Project::sample("");
    let first = p.ok(&["run", "--env", "stage"]);
    assert!(
        first.contains("deploy: stage now serves release"),
        "{first}"
    );
    let release = p.live("stage").expect("stage is live");

    // Nothing changed: nothing runs, and it says so.
    let again = p.ok(&["run", "--env", "stage"]);
    assert!(
        again.contains("Everything is up to date: nothing to run."),
        "{again}"
    );
    assert_eq!(p.live("stage").as_deref(), Some(release.as_str()));
    let status = p.ok(&["status"]);
    assert!(status.contains("Everything is up to date."), "{status}");

    // One document changed in SQLite: status names exactly it; embed re-encodes exactly one.
    let id = "p003-realtime-whiteboard";
    let changed = p
        .sqlite()
        .execute(
            "UPDATE projects SET description = description || ' Now with shared family budgets.' WHERE id = ?1",
            [id],
        )
        .unwrap();
    assert_eq!(changed, 1, "the sample catalog has {id}");
    let status = p.ok(&["status"]);
    assert!(
        status.contains(&format!(
            "data changed: 0 added [], 1 changed [{id}], 0 removed []"
        )),
        "{status}"
    );
    p.ok(&["ingest"]);
    let embed = p.ok(&["embed"]);
    assert!(embed.contains("encoded 1 new document(s)"), "{embed}");
    assert!(embed.contains("170 reused from the cache"), "{embed}");
    p.ok(&["run", "--env", "stage"]);
    let second = p.live("stage").unwrap();
    assert_ne!(second, release, "a data change makes a new release");

    // A hyper-parameter change: ingest and embed stay fresh, train and later are stale.
    p.append_config("[index]\nnlist = 8\n");
    let status = p.ok(&["status", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&status).unwrap();
    let stale: Vec<(&str, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["stage"].as_str().unwrap(), r["stale"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        stale,
        [
            ("ingest", false),
            ("embed", false),
            ("train", true),
            ("evaluate", true),
            ("export", true),
            ("deploy", true)
        ]
    );
    let text = p.ok(&["status"]);
    assert!(
        text.contains("train     STALE: params changed: index.nlist 0 → 8"),
        "{text}"
    );
    assert_eq!(p.run(&["status", "--check"]).status.code(), Some(5));
    let rerun = p.ok(&["run", "--env", "stage"]);
    assert!(
        rerun.contains("ingest: up to date") && rerun.contains("embed: up to date"),
        "{rerun}"
    );
    assert!(
        rerun.contains("train: running (params changed: index.nlist 0 → 8)"),
        "{rerun}"
    );

    // The encoder's weights are part of the model: int8 instead of the lock's 4-bit plan embeds
    // every document again, and the release ships the other graph.
    let before = p.manifest("stage", &p.live("stage").unwrap());
    p.append_config("[model]\nweights = \"int8\"\n");
    let status = p.ok(&["status"]);
    assert!(status.contains("embed     STALE"), "{status}");
    let rerun = p.ok(&["run", "--env", "stage"]);
    assert!(rerun.contains("encoded 171 new document(s)"), "{rerun}");
    let after = p.manifest("stage", &p.live("stage").unwrap());
    assert_ne!(
        before["files"]["encoder"], after["files"]["encoder"],
        "int8 and 4-bit graphs differ"
    );
}

#[test]
fn malformed_rows_are_quarantined_with_line_numbers() {
    let p = Project::sample("");
    let csv = p.path().join("data/projects.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    let lines = text.lines().count();
    // A duplicate id, a row without an id, and a row with empty text fields.
    text.push_str("p001-recipe-pwa,Duplicate,Again,x,web development,https://example.org/dup\n");
    text.push_str(",No id,Text,x,web development,https://example.org/noid\n");
    std::fs::write(&csv, text).unwrap();
    let cfg = p.path().join("searchbar.toml");
    let toml = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("kind = \"sqlite\"", "kind = \"csv\"")
        .replace("path = \"catalog.sqlite\"", "path = \"data/projects.csv\"")
        .replace(
            "query = \"SELECT id, title, description, learn, domain, url FROM projects\"",
            "",
        )
        .replace(
            "[source.seed]\nprojects = \"data/projects.csv\"\ntopics = \"data/topics.csv\"\n",
            "",
        )
        .replace(
            "query = \"SELECT project_id, topic FROM topics\"",
            "path = \"data/topics.csv\"",
        );
    std::fs::write(&cfg, toml).unwrap();
    let out = p.run(&["ingest"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let dup = lines + 1;
    let noid = lines + 2;
    assert!(
        stderr.contains(&format!("projects.csv row {dup}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("projects.csv row {noid}")),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("171 documents") && stdout.contains("(2 quarantined)"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.path().join(".searchbar/reports/ingest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["quarantined"].as_array().unwrap().len(), 2);
}

#[test]
fn compact_ivfpq_ships_without_vectors_and_bench_index_compares_configs() {
    // Re-ranking needs the vectors a compact index leaves out: the config says which key.
    // 4-bit codes: 171 documents are too few to train 256 centroids per sub-quantizer.
    let p =
        Project::sample("[index]\nkind = \"ivfpq\"\nnlist = 4\nnbits = 4\nrerank_store = false\n");
    let out = p.run(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("index.rerank_store = false") && stderr.contains("search.rerank = 0"),
        "{stderr}"
    );

    p.append_config("[search]\nrerank = 0\nnprobe = 4\n[gate]\nmin_recall_at_10 = 0.3\n");
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    let index_path = manifest["files"]["index"]["path"].as_str().unwrap();
    let bytes = std::fs::read(p.release_dir("stage", &release).join(index_path)).unwrap();
    let index = searchbar_index::Index::from_bytes(&bytes).unwrap();
    assert!(
        index.store().is_none(),
        "the shipped index has no int8 vectors"
    );
    let hits = p.ok(&[
        "query",
        "--env",
        "stage",
        "--json",
        "monitor air quality at home",
    ]);
    let hits: serde_json::Value = serde_json::from_str(&hits).unwrap();
    assert_eq!(hits["results"].as_array().unwrap().len(), 10, "{hits}");

    // searchbar-bench-index on the project's embeddings and judged queries.
    let json = p.path().join("bench.json");
    p.ok_of(
        "searchbar-bench-index",
        &[
            "--config",
            "flat:rerank=0",
            "--config",
            "ivfpq:nlist=4,m=24,nbits=4,store=false,nprobe=1/4,rerank=0",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{r}");
    assert_eq!(r["queries"], 53, "the sample's judged queries");
    let recall = |i: usize| rows[i]["recall_at_10"].as_f64().unwrap();
    assert!(recall(0) >= 0.95, "flat int8: {}", recall(0));
    assert!(
        recall(2) >= recall(1),
        "probing all 4 lists finds at least as much"
    );
    assert!(
        recall(2) < recall(0),
        "24-byte PQ codes lose to int8 vectors"
    );
    assert_eq!(rows[1]["store"], "compact");

    // Synthetic set with dumps for the faiss-cpu and browser peers; bad specs name the key.
    let dump = p.path().join("dump");
    p.ok_of(
        "searchbar-bench-index",
        &[
            "--synthetic",
            "2000",
            "--queries",
            "20",
            "--config",
            "ivfpq:nlist=8,m=24,store=false,rerank=0",
            "--dump",
            dump.to_str().unwrap(),
        ],
    );
    let len = |f: &str| std::fs::metadata(dump.join(f)).unwrap().len();
    assert_eq!(len("base.f32"), 2000 * 384 * 4);
    assert_eq!(len("queries.f32"), 20 * 384 * 4);
    assert_eq!(len("truth.u32"), 20 * 10 * 4);
    let index =
        searchbar_index::Index::from_bytes(&std::fs::read(dump.join("index-0.sbx")).unwrap())
            .unwrap();
    assert_eq!((index.len(), index.store().is_none()), (2000, true));
    let out = p
        .command_of(
            "searchbar-bench-index",
            &["--synthetic", "100", "--config", "ivfpq:mm=4"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown key \"mm\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn external_rows_ship_beside_the_index_and_every_record_is_verified() {
    // The int8 vectors go to a separate rows file that pages fetch per query; the index keeps
    // PQ codes, ids and one 8-byte digest per document.
    let p = Project::sample(
        "[index]\nkind = \"ivfpq\"\nnlist = 4\nnbits = 4\nrerank_store = \"external\"\n",
    );
    let out = p.ok(&["run", "--env", "stage"]);
    assert!(out.contains("re-ranking rows in a separate file"), "{out}");
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    let dir = p.release_dir("stage", &release);
    let file = |role: &str| dir.join(manifest["files"][role]["path"].as_str().unwrap());
    let index = searchbar_index::Index::from_bytes(&std::fs::read(file("index")).unwrap()).unwrap();
    let rows = std::fs::read(file("rows")).unwrap();
    let n = index.len();
    assert!(index.store().is_none(), "no int8 vectors in the index file");
    assert_eq!(rows.len(), n * (4 + 384), "one record per document");
    assert_eq!(index.row_range(1), Some(388..776));
    // Re-ranking with the fetched rows makes the shipped index as good as exact search here.
    let recall = manifest["evaluation"]["recall_at_10"].as_f64().unwrap();
    assert!(recall >= 0.95, "recall@10 {recall}");
    let (ok, stdout, stderr) = air_quality(&p);
    assert!(ok, "{stderr}");
    let hits: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(hits["results"].as_array().unwrap().len(), 10, "{hits}");

    // A corrupt rows file on the target is refused by name, and the release is untouched
    // once the file is restored.
    let mut bad = rows.clone();
    bad[5 * 388 + 10] ^= 0x40;
    std::fs::write(file("rows"), &bad).unwrap();
    let (ok, _, stderr) = air_quality(&p);
    assert!(!ok);
    assert!(
        stderr.contains("rows-") && stderr.contains("sha256"),
        "{stderr}"
    );
    std::fs::write(file("rows"), &rows).unwrap();
    let (ok, again, _) = air_quality(&p);
    assert!(ok && again == stdout);

    // Promotion carries the rows file along.
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    let prod = p.live("prod").unwrap();
    searchbar_tests::verify_served(&p.target("prod")).unwrap();
    assert!(p.manifest("prod", &prod)["files"]["rows"].is_object());
}

/// `searchbar query --env stage --json` of one sample query: success, stdout, stderr.
fn air_quality(p: &Project) -> (bool, String, String) {
    let out = p.run(&[
        "query",
        "--env",
        "stage",
        "--json",
        "monitor air quality at home",
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `index.lists_file`: the inverted lists go to a lists file beside the rows file, the index
/// file keeps nothing per document, the CLI ranks exactly as with the lists inside the index,
/// and a damaged list is refused by name.
#[test]
fn a_lists_file_ships_beside_the_index_and_ranks_as_the_lists_inside_it() {
    let p = Project::sample("[index]\nkind = \"ivfpq\"\nnlist = 4\nnbits = 4\nlists_file = true\n");
    let out = p.run(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("index.lists_file") && stderr.contains("rerank_store"),
        "{stderr}"
    );
    p.append_config("rerank_store = \"external\"\n");
    let out = p.ok(&["run", "--env", "stage"]);
    assert!(out.contains("inverted lists in a separate file"), "{out}");
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    let dir = p.release_dir("stage", &release);
    let file = |role: &str| dir.join(manifest["files"][role]["path"].as_str().unwrap());
    let index = searchbar_index::Index::from_bytes(&std::fs::read(file("index")).unwrap()).unwrap();
    let lists = std::fs::read(file("lists")).unwrap();
    assert!(index.has_lists_file() && !index.lists_in_memory());
    // Ids and codes, and at the end of each of the 4 lists the root of its rows' tree; each
    // record of the rows file carries its path to that root.
    assert_eq!(lists.len(), index.len() * (4 + 48) + 4 * 8);
    let rows = std::fs::read(file("rows")).unwrap();
    let record = rows.len() / index.len();
    assert!(record > 388 && (record - 388).is_multiple_of(8), "{record}");
    assert_eq!(index.row_range(1), Some(record as u64..2 * record as u64));
    let (ok, split, stderr) = air_quality(&p);
    assert!(ok, "{stderr}");

    // A damaged list is refused by name; restored, the release answers as before.
    let mut bad = lists.clone();
    bad[7] ^= 0x40;
    std::fs::write(file("lists"), &bad).unwrap();
    let (ok, _, stderr) = air_quality(&p);
    assert!(!ok);
    assert!(
        stderr.contains("lists-") && stderr.contains("sha256"),
        "{stderr}"
    );
    std::fs::write(file("lists"), &lists).unwrap();
    assert_eq!(air_quality(&p).1, split);
    p.ok(&["promote", "--from", "stage", "--to", "prod"]);
    searchbar_tests::verify_served(&p.target("prod")).unwrap();

    // The same training with the lists inside the index: the same results.
    let config = std::fs::read_to_string(p.path().join("searchbar.toml")).unwrap();
    std::fs::write(
        p.path().join("searchbar.toml"),
        config.replace("lists_file = true\n", ""),
    )
    .unwrap();
    p.ok(&["run", "--env", "stage"]);
    let inside = p.live("stage").unwrap();
    assert_ne!(inside, release);
    assert!(p.manifest("stage", &inside)["files"]["lists"].is_null());
    let (ok, together, stderr) = air_quality(&p);
    assert!(ok, "{stderr}");
    let results =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["results"].clone();
    assert_eq!(results(&together), results(&split));
}

/// Ingest killed at every step of writing the workspace snapshot: every later `status` and
/// `ingest` works, and the snapshot is the old data or the new, whole. A snapshot damaged by
/// other means (edited by hand) is reported and rebuilt from the source. Before the snapshot was
/// one atomic unit, a kill between its two files left "corrupt snapshot ... 1 documents,
/// snapshot.json says 2" for every later command.
#[test]
fn a_killed_or_damaged_snapshot_heals_on_the_next_ingest() {
    use std::os::unix::process::ExitStatusExt;
    let p = Project::sample("");
    p.ok(&["ingest"]);
    let snapshot = p.path().join(".searchbar/snapshot");
    let fingerprint = || -> String {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(snapshot.join("snapshot.json")).unwrap())
                .unwrap();
        meta["fingerprint"].as_str().unwrap().to_string()
    };
    let mut fingerprints = vec![fingerprint()];
    let mut kills = 0;
    for round in 0..3 {
        // Round `round`'s data change, made or undone.
        let change = |on: bool| {
            let title = if on {
                format!("title || ' r{round}'")
            } else {
                format!("replace(title, ' r{round}', '')")
            };
            p.sqlite()
                .execute(
                    &format!("UPDATE projects SET title = {title} WHERE rowid = 3"),
                    [],
                )
                .unwrap();
        };
        change(true);
        let trace = p
            .command(&["ingest"])
            .env("SEARCHBAR_FAULT_TRACE", "1")
            .env("SEARCHBAR_FAULT_AT", "100000")
            .output()
            .unwrap();
        let points: Vec<String> = String::from_utf8_lossy(&trace.stderr)
            .lines()
            .filter(|l| l.starts_with("fault point") && l.contains("snapshot:"))
            .map(str::to_string)
            .collect();
        assert_eq!(points.len(), 2, "{points:?}");
        fingerprints.push(fingerprint());
        // Back to the previous data, then kill the ingest that writes the new data again.
        for point in &points {
            let n: usize = point["fault point ".len()..]
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            std::fs::remove_dir_all(&snapshot).unwrap();
            change(false);
            p.ok(&["ingest"]);
            change(true);
            let out = p
                .command(&["ingest"])
                .env("SEARCHBAR_FAULT_AT", n.to_string())
                .output()
                .unwrap();
            assert_eq!(out.status.signal(), Some(9), "{point}");
            kills += 1;
            let status = p.run(&["status"]);
            assert!(
                status.status.success(),
                "{point}: {}",
                String::from_utf8_lossy(&status.stderr)
            );
            let now = fingerprint();
            assert!(
                fingerprints[fingerprints.len() - 2..].contains(&now),
                "{point}: snapshot of neither the old nor the new data"
            );
            let out = p.ok(&["ingest"]);
            assert!(out.contains("ingest:"), "{out}");
            assert_eq!(&fingerprint(), fingerprints.last().unwrap(), "{point}");
        }
    }
    assert!(kills >= 6, "{kills} kills");

    // Damaged by hand: reported, rebuilt, and the commands after it work.
    let documents = std::fs::read_dir(&snapshot)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("documents-"))
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&documents).unwrap();
    std::fs::write(&documents, &text[..text.len() / 2]).unwrap();
    let out = p.run(&["ingest"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("is damaged"), "{stderr}");
    p.ok(&["status"]);
    assert_eq!(&fingerprint(), fingerprints.last().unwrap());
}
