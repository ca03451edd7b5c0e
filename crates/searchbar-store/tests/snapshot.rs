//! Snapshot round trip, corruption detection and change sets.

use std::collections::BTreeMap;

use searchbar_store::{diff, Document, Snapshot, StoreError};

fn doc(id: &str, text: &str) -> Document {
    Document {
        id: id.into(),
        text: text.into(),
        title: format!("Title {id}"),
        url: (id != "b").then(|| format!("https://example.org/{id}")),
        snippet: text.chars().take(10).collect(),
        fields: BTreeMap::new(),
    }
}

fn sample() -> Snapshot {
    Snapshot::new(
        vec![
            doc("c", "gamma text"),
            doc("a", "alpha text"),
            doc("b", "beta \"quoted\"\ntext"),
        ],
        "test",
    )
    .unwrap()
}

#[test]
fn write_then_read_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = sample();
    let ids: Vec<&str> = snapshot.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    snapshot.write(dir.path()).unwrap();
    assert!(snapshot.created_unix > 0);
    let read = Snapshot::read(dir.path()).unwrap();
    assert_eq!(read, snapshot);
    assert_eq!(read.fingerprint.len(), 64);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("snapshot.json")).unwrap())
            .unwrap();
    assert_eq!(meta["count"], 3);
    assert_eq!(meta["source"], "test");
    // No temp files left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let documents = format!("documents-{}.jsonl", &snapshot.fingerprint[..16]);
    assert_eq!(names, [documents.as_str(), "snapshot.json"]);
    assert_eq!(meta["documents"], documents.as_str());
    assert_eq!(meta["format"], 2);
}

fn documents_path(dir: &std::path::Path) -> std::path::PathBuf {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("snapshot.json")).unwrap()).unwrap();
    dir.join(meta["documents"].as_str().unwrap())
}

/// A write stopped after any of its steps (a crash: the panic unwinds out of `write` there)
/// leaves the old snapshot or the new one, both whole. Before format 2 the documents file was
/// replaced first and the old `snapshot.json` then disagreed with it for ever.
#[test]
fn a_write_stopped_at_any_step_leaves_the_old_snapshot_or_the_new_one() {
    let old = sample();
    let mut new =
        Snapshot::new(vec![doc("a", "alpha text"), doc("d", "delta text")], "test").unwrap();
    for stop_at in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        old.clone().write(dir.path()).unwrap();
        let mut steps = 0;
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            new.clone()
                .write_observed(dir.path(), &mut |step| {
                    steps += 1;
                    if steps == stop_at {
                        panic!("stopped at {step}");
                    }
                })
                .unwrap();
        }))
        .is_err();
        let read = Snapshot::read(dir.path()).unwrap_or_else(|e| panic!("step {stop_at}: {e}"));
        if stop_at == 1 {
            assert!(stopped);
            assert_eq!(read.fingerprint, old.fingerprint, "step {stop_at}");
        } else if stopped {
            assert_eq!(read.fingerprint, new.fingerprint, "step {stop_at}");
        }
        // The next write completes and leaves only its own files.
        new.write(dir.path()).unwrap();
        assert_eq!(
            Snapshot::read(dir.path()).unwrap().fingerprint,
            new.fingerprint
        );
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "step {stop_at}: stale documents file kept");
    }
}

#[test]
fn a_format_1_snapshot_is_still_read_and_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = sample();
    snapshot.write(dir.path()).unwrap();
    // Rewrite it in the layout of format 1: `documents.jsonl` and no `documents` key.
    std::fs::rename(
        documents_path(dir.path()),
        dir.path().join("documents.jsonl"),
    )
    .unwrap();
    let meta_path = dir.path().join("snapshot.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["format"] = 1.into();
    meta.as_object_mut().unwrap().remove("documents");
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    assert_eq!(Snapshot::read(dir.path()).unwrap(), snapshot);
    snapshot.write(dir.path()).unwrap();
    assert!(!dir.path().join("documents.jsonl").exists());
    assert_eq!(Snapshot::read(dir.path()).unwrap(), snapshot);
}

#[test]
fn fingerprint_depends_on_content_not_input_order() {
    let reordered = Snapshot::new(
        vec![
            doc("b", "beta \"quoted\"\ntext"),
            doc("c", "gamma text"),
            doc("a", "alpha text"),
        ],
        "other",
    )
    .unwrap();
    assert_eq!(reordered.fingerprint, sample().fingerprint);
    let edited = Snapshot::new(
        vec![
            doc("a", "alpha text!"),
            doc("b", "beta"),
            doc("c", "gamma text"),
        ],
        "x",
    )
    .unwrap();
    assert_ne!(edited.fingerprint, sample().fingerprint);
}

#[test]
fn duplicate_ids_are_refused() {
    let err = Snapshot::new(vec![doc("a", "one"), doc("a", "two")], "x").unwrap_err();
    assert!(matches!(err, StoreError::DuplicateId { ref id } if id == "a"));
}

#[test]
fn edited_document_is_detected_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    sample().write(dir.path()).unwrap();
    let path = documents_path(dir.path());
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("gamma text", "gamma TEXT");
    std::fs::write(&path, edited).unwrap();
    let err = Snapshot::read(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::CorruptSnapshot { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("documents-") && message.contains("line 3") && message.contains("`c`"),
        "{message}"
    );
}

#[test]
fn dropped_line_and_truncation_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    sample().write(dir.path()).unwrap();
    let path = documents_path(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let without_first: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, without_first).unwrap();
    let err = Snapshot::read(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("2 documents, snapshot.json says 3"),
        "{err}"
    );

    std::fs::write(&path, &text[..text.len() - 20]).unwrap();
    let err = Snapshot::read(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Parse { line: Some(3), .. }),
        "{err}"
    );
}

#[test]
fn tampered_fingerprint_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = sample();
    snapshot.write(dir.path()).unwrap();
    let path = dir.path().join("snapshot.json");
    let meta = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&snapshot.fingerprint, &"0".repeat(64));
    std::fs::write(&path, meta).unwrap();
    let err = Snapshot::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("fingerprint"), "{err}");
}

#[test]
fn diff_reports_added_removed_and_changed() {
    let old = sample();
    let new = Snapshot::new(
        vec![
            doc("a", "alpha text"),
            doc("b", "beta, rewritten"),
            doc("d", "delta text"),
        ],
        "x",
    )
    .unwrap();
    let changes = diff(&old, &new);
    assert_eq!(changes.added, ["d"]);
    assert_eq!(changes.removed, ["c"]);
    assert_eq!(changes.changed, ["b"]);
    assert!(!changes.is_empty());
    assert!(diff(&new, &new).is_empty());
}

/// A write that fails (here: its file name is taken by a directory, as a full disk or a
/// read-only mount would fail it) leaves no temporary file behind, and the snapshot that was
/// there stays readable.
#[test]
fn a_failed_write_leaves_no_temporary_and_the_old_snapshot_whole() {
    let dir = tempfile::tempdir().unwrap();
    let old = sample();
    old.clone().write(dir.path()).unwrap();
    let mut new = Snapshot::new(vec![doc("z", "zeta text")], "test").unwrap();
    std::fs::create_dir(
        dir.path()
            .join(format!("documents-{}.jsonl", &new.fingerprint[..16])),
    )
    .unwrap();
    assert!(new.write(dir.path()).is_err());
    let temporaries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(temporaries.is_empty(), "{temporaries:?}");
    assert_eq!(
        Snapshot::read(dir.path()).unwrap().fingerprint,
        old.fingerprint
    );
}
