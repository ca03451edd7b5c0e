//! Each source kind on the same catalog, and the quarantine on malformed files.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use searchbar_store::{load, Ingested, SourceConfig, SourceKind, StoreError, ValidationConfig};

fn load_ok(source: &SourceConfig, base: &std::path::Path) -> Ingested {
    let documents = if source.topics.is_some() {
        documents_config()
    } else {
        plain_documents_config()
    };
    load(source, &documents, base).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn csv_reference(dir: &std::path::Path) -> Ingested {
    write_projects_csv(&dir.join("projects.csv"));
    write_topics_csv(&dir.join("topics.csv"));
    load_ok(
        &file_source(SourceKind::Csv, "projects.csv", Some("topics.csv")),
        dir,
    )
}

#[test]
fn csv_catalog_renders_documents_with_topics() {
    let dir = tempfile::tempdir().unwrap();
    let ingested = csv_reference(dir.path());
    assert!(
        ingested.quarantined.is_empty(),
        "{:?}",
        ingested.quarantined
    );
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2", "p3", "p4"]);
    let p1 = &ingested.documents[0];
    assert_eq!(
        p1.text,
        "Recipe box. Offline recipes with a service worker. IndexedDB; sync pwa, offline-first web"
    );
    assert_eq!(p1.title, "Recipe box");
    assert_eq!(p1.url.as_deref(), Some("https://example.org/p1"));
    assert_eq!(p1.snippet, "Offline recipes  with a\nservice worker.");
    assert_eq!(p1.fields["topics"], "pwa, offline-first");
    assert_eq!(ingested.documents[1].url, None);
    assert_eq!(
        ingested.documents[3].text,
        "Bird song. Identify birds by their song. audio"
    );
    assert_eq!(ingested.warnings.len(), 1, "{:?}", ingested.warnings);
    assert!(
        ingested.warnings[0].contains("unknown document id `ghost`"),
        "{}",
        ingested.warnings[0]
    );
}

#[test]
fn jsonl_loads_the_same_documents_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let reference = csv_reference(dir.path());
    write_projects_jsonl(&dir.path().join("projects.jsonl"));
    write_topics_jsonl(&dir.path().join("topics.jsonl"));
    let ingested = load_ok(
        &file_source(SourceKind::Jsonl, "projects.jsonl", Some("topics.jsonl")),
        dir.path(),
    );
    assert_eq!(ingested.documents, reference.documents);
    assert!(ingested.quarantined.is_empty());
}

#[test]
fn sqlite_seeded_from_csv_loads_the_same_documents() {
    let dir = tempfile::tempdir().unwrap();
    let reference = csv_reference(dir.path());
    let source = SourceConfig {
        kind: SourceKind::Sqlite,
        path: "store/catalog.sqlite".into(),
        query: "SELECT id, title, description, learn, domain, url FROM projects ORDER BY rowid"
            .into(),
        topics: Some(topics(
            None,
            Some("SELECT project_id, topic FROM topics ORDER BY rowid"),
        )),
        seed: BTreeMap::from([
            ("projects".to_string(), PathBuf::from("projects.csv")),
            ("topics".to_string(), PathBuf::from("topics.csv")),
        ]),
        ..SourceConfig::default()
    };
    let first = load_ok(&source, dir.path());
    assert!(dir.path().join("store/catalog.sqlite").exists());
    assert_eq!(first.documents, reference.documents);
    assert_eq!(first.warnings.len(), 1);
    assert!(
        first.warnings[0].starts_with("sqlite:"),
        "{}",
        first.warnings[0]
    );
    // The second load reads the existing database, even with the seed files gone.
    std::fs::remove_file(dir.path().join("projects.csv")).unwrap();
    assert_eq!(load_ok(&source, dir.path()).documents, reference.documents);
}

#[test]
fn sqlite_bad_types_are_quarantined_by_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE projects (id, title, description, learn, domain, url);
         INSERT INTO projects VALUES (1, 'One', 'first', NULL, 'x', NULL);
         INSERT INTO projects VALUES (2, 'Two', X'00FF', NULL, 'x', NULL);
         INSERT INTO projects VALUES (3, 'Three', 2.5, NULL, 'x', NULL);",
    )
    .unwrap();
    drop(conn);
    let source = SourceConfig {
        kind: SourceKind::Sqlite,
        path: db.clone(),
        ..SourceConfig::default()
    };
    let ingested = load_ok(&source, dir.path());
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(ingested.documents[1].snippet, "2.5");
    let q = &ingested.quarantined[0];
    assert_eq!(
        (q.source.clone(), q.row, q.field.as_deref()),
        (format!("sqlite:{}", db.display()), 2, Some("description"))
    );
    assert!(q.reason.contains("bad type"), "{}", q.reason);
}

#[test]
fn sqlite_without_database_or_seed_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = SourceConfig {
        kind: SourceKind::Sqlite,
        path: "missing.sqlite".into(),
        ..SourceConfig::default()
    };
    let message = load(&source, &documents_config(), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("missing.sqlite") && message.contains("source.seed"),
        "{message}"
    );
}

fn summary(ingested: &Ingested) -> Vec<(u64, Option<String>, String)> {
    ingested
        .quarantined
        .iter()
        .map(|q| (q.row, q.field.clone(), q.reason.clone()))
        .collect()
}

#[test]
fn malformed_csv_rows_are_quarantined_with_their_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,title,description,learn,domain,url\n".to_vec(); // line 1
    bytes.extend_from_slice(b"a,Alpha,first,,web,\n"); // 2
    bytes.extend_from_slice(b"b,Beta,too few fields\n"); // 3
    bytes.extend_from_slice(b"c,Gamma,\"two\nlines\",,web,\n"); // 4-5
    bytes.extend_from_slice(b"d,Delta,bad \xff byte,,web,\n"); // 6
    bytes.extend_from_slice(b"a,Again,duplicate,,web,\n"); // 7
    bytes.extend_from_slice(b",Nameless,no id,,web,\n"); // 8
    bytes.extend_from_slice(b"e,,,,,\n"); // 9: renders empty
    bytes.extend_from_slice(b"f,Zeta,last,,web,https://z\n"); // 10
    std::fs::write(dir.path().join("p.csv"), bytes).unwrap();
    let ingested = load_ok(&file_source(SourceKind::Csv, "p.csv", None), dir.path());
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "c", "f"]);
    assert_eq!(ingested.documents[1].text, "Gamma. two lines web");
    let got = summary(&ingested);
    let rows: Vec<(u64, Option<&str>)> = got.iter().map(|(r, f, _)| (*r, f.as_deref())).collect();
    assert_eq!(
        rows,
        [
            (3, None),
            (6, Some("description")),
            (7, Some("id")),
            (8, Some("id")),
            (9, None)
        ]
    );
    assert_eq!(got[0].2, "expected 6 fields, found 3");
    assert!(got[1].2.starts_with("invalid UTF-8"), "{}", got[1].2);
    assert_eq!(got[2].2, "duplicate id `a` (first at row 2)");
    assert_eq!(got[3].2, "missing id");
    assert_eq!(got[4].2, "empty text");
    assert!(ingested
        .quarantined
        .iter()
        .all(|q| q.source == dir.path().join("p.csv").display().to_string()));
}

#[test]
fn malformed_jsonl_lines_are_quarantined_with_their_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(br#"{"id": "a", "title": "Alpha", "domain": "web", "url": null}"#); // 1
    bytes.extend_from_slice(b"\n{\"id\": \"b\", \"title\": \n"); // 2: malformed
    bytes.extend_from_slice(b"\n"); // 3: blank, skipped
    bytes.extend_from_slice(br#"{"id": "c", "title": {"nested": true}}"#); // 4
    bytes.extend_from_slice(b"\n{\"id\": \"d\", \"title\": \"caf\xe9\"}\n"); // 5: latin-1 byte
    bytes.extend_from_slice(
        br#"{"id": 7, "title": "Seven", "learn": ["rust", "sql"], "description": true}"#,
    ); // 6
    bytes.extend_from_slice(b"\n[1, 2]\n"); // 7
    bytes.extend_from_slice(br#"{"id": "a", "title": "Alpha again"}"#); // 8
    bytes.extend_from_slice(b"\n"); // 9
    bytes.extend_from_slice(
        br#"{"id": "x", "title": "Long", "description": "many many words here"}"#,
    ); // 9
    bytes.extend_from_slice(b"\n");
    std::fs::write(dir.path().join("p.jsonl"), bytes).unwrap();
    let documents = searchbar_store::DocumentsConfig {
        max_chars: 21,
        ..plain_documents_config()
    };
    let ingested = load(
        &file_source(SourceKind::Jsonl, "p.jsonl", None),
        &documents,
        dir.path(),
    )
    .unwrap();
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "7"]);
    assert_eq!(ingested.documents[1].text, "Seven. true rust, sql");
    let got = summary(&ingested);
    let rows: Vec<(u64, Option<&str>)> = got.iter().map(|(r, f, _)| (*r, f.as_deref())).collect();
    assert_eq!(
        rows,
        [
            (2, None),
            (4, Some("title")),
            (5, None),
            (7, None),
            (8, Some("id")),
            (9, None)
        ]
    );
    assert!(got[0].2.starts_with("malformed JSON"), "{}", got[0].2);
    assert_eq!(got[1].2, "bad type: object");
    assert!(got[2].2.starts_with("invalid UTF-8"), "{}", got[2].2);
    assert!(got[3].2.starts_with("bad type"), "{}", got[3].2);
    assert!(got[4].2.starts_with("duplicate id `a`"), "{}", got[4].2);
    assert!(
        got[5].2.starts_with("over-long text (26 chars"),
        "{}",
        got[5].2
    );
}

#[test]
fn quarantine_share_over_the_limit_names_share_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.csv"),
        "id,title,description,learn,domain,url\na,A,,,,\nb,B,,,,\n,C,,,,\n",
    )
    .unwrap();
    let ingested = load_ok(&file_source(SourceKind::Csv, "p.csv", None), dir.path());
    assert_eq!(ingested.quarantined.len(), 1);
    ingested
        .check_quarantine(&ValidationConfig {
            max_quarantine_share: 0.5,
        })
        .unwrap();
    let err = ingested
        .check_quarantine(&ValidationConfig::default())
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::QuarantineExceeded {
            quarantined: 1,
            total: 3,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "1 of 3 rows quarantined (share 0.3333) exceeds validation.max_quarantine_share = 0.05"
    );
}

#[test]
fn unknown_template_field_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_projects_csv(&dir.path().join("p.csv"));
    let documents = searchbar_store::DocumentsConfig {
        template: "{title} {sumary}".into(),
        ..plain_documents_config()
    };
    let err = load(
        &file_source(SourceKind::Csv, "p.csv", None),
        &documents,
        dir.path(),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, StoreError::UnknownField { key, field, .. } if key == "documents.template" && field == "sumary")
    );
    assert!(
        message.contains("`sumary`") && message.contains("p.csv"),
        "{message}"
    );
    // `{topics}` is only known when a topics table provides it.
    let err = load(
        &file_source(SourceKind::Csv, "p.csv", None),
        &documents_config(),
        dir.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("`topics`"), "{err}");
}

#[test]
fn missing_file_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(
        &file_source(SourceKind::Jsonl, "nope.jsonl", None),
        &documents_config(),
        dir.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope.jsonl"), "{err}");
}

/// Line numbers from the streaming reader on a large file with CRLF terminators, a BOM, blank
/// lines and quoted newlines: the last row's line is exact, and every row is read once.
#[test]
fn a_large_crlf_csv_streams_with_exact_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("\u{feff}id,title,description,learn,domain,url\r\n");
    let mut line = 2;
    for i in 0..30_000 {
        if i % 1000 == 0 {
            text.push_str("\r\n"); // a blank line: skipped, but it counts
            line += 1;
        }
        if i % 7 == 0 {
            text.push_str(&format!("r{i},T{i},\"two\r\nlines\",,web,\r\n"));
            line += 2;
        } else {
            text.push_str(&format!("r{i},T{i},d,,web,\r\n"));
            line += 1;
        }
    }
    text.push_str("bad,row\r\n");
    std::fs::write(dir.path().join("p.csv"), text).unwrap();
    let ingested = load_ok(&file_source(SourceKind::Csv, "p.csv", None), dir.path());
    assert_eq!(ingested.documents.len(), 30_000);
    assert_eq!(ingested.documents[7].text, "T7. two lines web");
    assert_eq!(
        summary(&ingested),
        [(line, None, "expected 6 fields, found 2".into())]
    );
}

fn titles_only() -> searchbar_store::DocumentsConfig {
    searchbar_store::DocumentsConfig {
        template: "{title}".into(),
        snippet: "title".into(),
        url: None,
        ..plain_documents_config()
    }
}

fn long_record_source(kind: SourceKind, name: &str) -> SourceConfig {
    SourceConfig {
        max_record_bytes: 4096,
        ..file_source(kind, name, None)
    }
}

#[test]
fn an_over_long_record_is_quarantined_and_the_next_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "x".repeat(3 << 20);
    let csv = format!(
        "id,title,description,learn,domain,url\na,A,,,,\nb,B,\"{huge}\n{huge}\",,,\nc,C,,,,\nd,{huge},,,,\ne,E,,,,\n"
    );
    std::fs::write(dir.path().join("p.csv"), csv).unwrap();
    let ingested = load_ok(&long_record_source(SourceKind::Csv, "p.csv"), dir.path());
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "c", "e"]);
    let got = summary(&ingested);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[1].0), (3, 6));
    assert!(
        got[0].2.starts_with("over-long record (") && got[0].2.contains("max_record_bytes = 4096"),
        "{}",
        got[0].2
    );

    let jsonl = format!(
        "{{\"id\": \"a\", \"title\": \"A\"}}\n{{\"id\": \"b\", \"title\": \"{huge}\"}}\n{{\"id\": \"c\", \"title\": \"C\"}}\n"
    );
    std::fs::write(dir.path().join("p.jsonl"), jsonl).unwrap();
    let ingested = load(
        &long_record_source(SourceKind::Jsonl, "p.jsonl"),
        &titles_only(),
        dir.path(),
    )
    .unwrap();
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    let got = summary(&ingested);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 2);
    assert!(got[0].2.starts_with("over-long record ("), "{}", got[0].2);
}

/// What must not reach a shipped document: a NUL byte, an id, title or link over its limit, a
/// link that runs script when clicked.
#[test]
fn nul_bytes_long_values_and_script_links_are_quarantined_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let long_id = "i".repeat(300);
    let long_title = "t".repeat(1_001);
    let long_url = format!("https://example.org/{}", "u".repeat(2_100));
    let csv = format!(
        "id,title,description,learn,domain,url\n\
         a,A,fine,,web,https://example.org/a\n\
         b,B,nul \0 here,,web,\n\
         {long_id},C,,,,\n\
         d,{long_title},,,,\n\
         e,E,,,,{long_url}\n\
         f,F,,,,javascript:alert(document.cookie)\n\
         g,G,,,,\" JaVa\tScRiPt:alert(1)\"\n\
         h,H,,,,/relative/page\n"
    );
    std::fs::write(dir.path().join("p.csv"), csv).unwrap();
    let ingested = load_ok(&file_source(SourceKind::Csv, "p.csv", None), dir.path());
    let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "h"]);
    let got = summary(&ingested);
    let rows: Vec<(u64, Option<&str>)> = got.iter().map(|(r, f, _)| (*r, f.as_deref())).collect();
    assert_eq!(
        rows,
        [
            (3, Some("description")),
            (4, Some("id")),
            (5, Some("title")),
            (6, Some("url")),
            (7, Some("url")),
            (8, Some("url")),
        ]
    );
    assert_eq!(got[0].2, "NUL byte in the value (at byte 4)");
    assert_eq!(
        got[1].2,
        "over-long value (300 chars, documents.max_id_chars = 256)"
    );
    assert!(
        got[2].2.contains("documents.max_title_chars = 1000"),
        "{}",
        got[2].2
    );
    assert!(
        got[3].2.contains("documents.max_url_chars = 2048"),
        "{}",
        got[3].2
    );
    assert!(
        got[4].2.starts_with("link scheme `javascript:`"),
        "{}",
        got[4].2
    );
    assert!(
        got[5].2.starts_with("link scheme `javascript:`"),
        "{}",
        got[5].2
    );
}

#[test]
fn a_source_without_documents_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("header.csv"),
        "id,title,description,learn,domain,url\n",
    )
    .unwrap();
    let ingested = load_ok(
        &file_source(SourceKind::Csv, "header.csv", None),
        dir.path(),
    );
    let err = ingested
        .check_quarantine(&ValidationConfig {
            max_quarantine_share: 1.0,
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NoDocuments { quarantined: 0, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("header.csv gave no documents"),
        "{err}"
    );

    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    let err = load(
        &file_source(SourceKind::Csv, "empty.csv", None),
        &plain_documents_config(),
        dir.path(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("empty.csv: empty file: no header row"),
        "{err}"
    );

    // Every row quarantined is no source either, whatever the share allows.
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"id\": \"a\", \"title\": \"\"}\nnot json\n",
    )
    .unwrap();
    let ingested = load(
        &file_source(SourceKind::Jsonl, "bad.jsonl", None),
        &titles_only(),
        dir.path(),
    )
    .unwrap();
    let err = ingested
        .check_quarantine(&ValidationConfig {
            max_quarantine_share: 1.0,
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NoDocuments { quarantined: 2, .. }),
        "{err}"
    );
}
