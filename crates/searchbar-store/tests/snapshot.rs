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
    assert_eq!(names, ["documents.jsonl", "snapshot.json"]);
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
    let path = dir.path().join("documents.jsonl");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("gamma text", "gamma TEXT");
    std::fs::write(&path, edited).unwrap();
    let err = Snapshot::read(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::CorruptSnapshot { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("documents.jsonl")
            && message.contains("line 3")
            && message.contains("`c`"),
        "{message}"
    );
}

#[test]
fn dropped_line_and_truncation_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    sample().write(dir.path()).unwrap();
    let path = dir.path().join("documents.jsonl");
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
