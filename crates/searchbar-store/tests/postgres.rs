//! PostgreSQL source against a real server: run `scripts/pg-test-server.sh` and export its output
//! as SEARCHBAR_TEST_PG_URL (or set SEARCHBAR_SKIP_PG=1 to skip loudly).

mod common;

use common::*;
use searchbar_store::{load, SourceConfig, SourceKind, StoreError};

const URL_ENV: &str = "SEARCHBAR_TEST_PG_URL";

/// The server URL, `None` only when skipping was asked for explicitly.
fn server_url() -> Option<String> {
    if let Ok(url) = std::env::var(URL_ENV) {
        return Some(url);
    }
    if std::env::var("SEARCHBAR_SKIP_PG").as_deref() == Ok("1") {
        eprintln!(
            "!!!!!!!! SKIPPING PostgreSQL test: SEARCHBAR_SKIP_PG=1 and {URL_ENV} unset !!!!!!!!"
        );
        return None;
    }
    panic!(
        "{URL_ENV} is not set. Start the test server with \
         `export {URL_ENV}=$(scripts/pg-test-server.sh)`, or set SEARCHBAR_SKIP_PG=1 to skip explicitly"
    );
}

/// A schema private to one test, so tests run in parallel; dropped again on drop.
struct Schema {
    client: postgres::Client,
    name: String,
}

impl Schema {
    fn create(url: &str, test: &str) -> Self {
        let mut client = postgres::Client::connect(url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test server at {url:?}: {e}"));
        let name = format!("sb_{test}_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .unwrap();
        Self { client, name }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

#[test]
fn postgres_loads_the_same_documents_as_csv() {
    let Some(url) = server_url() else { return };
    let mut schema = Schema::create(&url, "same_docs");
    let s = schema.name.clone();
    schema
        .client
        .batch_execute(&format!(
            "CREATE TABLE {s}.projects (id TEXT PRIMARY KEY, title TEXT, description TEXT, learn VARCHAR(200), domain TEXT, url TEXT);
             CREATE TABLE {s}.topics (ord SERIAL, project_id TEXT, topic TEXT);"
        ))
        .unwrap();
    for row in PROJECTS {
        let values: Vec<Option<&str>> = row.iter().map(|v| (!v.is_empty()).then_some(*v)).collect();
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        schema
            .client
            .execute(
                &format!("INSERT INTO {s}.projects VALUES ($1, $2, $3, $4, $5, $6)"),
                &params,
            )
            .unwrap();
    }
    for [id, topic] in TOPICS {
        schema
            .client
            .execute(
                &format!("INSERT INTO {s}.topics (project_id, topic) VALUES ($1, $2)"),
                &[id, topic],
            )
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    write_projects_csv(&dir.path().join("projects.csv"));
    write_topics_csv(&dir.path().join("topics.csv"));
    let reference = load(
        &file_source(SourceKind::Csv, "projects.csv", Some("topics.csv")),
        &documents_config(),
        dir.path(),
    )
    .unwrap();

    let source = SourceConfig {
        kind: SourceKind::Postgres,
        query: format!(
            "SELECT id, title, description, learn, domain, url FROM {s}.projects ORDER BY id"
        ),
        url_env: URL_ENV.into(),
        topics: Some(topics(
            None,
            Some(&format!(
                "SELECT project_id, topic FROM {s}.topics ORDER BY ord"
            )),
        )),
        ..SourceConfig::default()
    };
    let ingested = load(&source, &documents_config(), dir.path()).unwrap();
    assert_eq!(ingested.documents, reference.documents);
    assert!(
        ingested.quarantined.is_empty(),
        "{:?}",
        ingested.quarantined
    );
    assert_eq!(ingested.warnings.len(), 1);
    assert!(
        ingested.warnings[0].starts_with("postgres:"),
        "{}",
        ingested.warnings[0]
    );
}

#[test]
fn postgres_values_convert_or_quarantine_by_type() {
    let Some(url) = server_url() else { return };
    let mut schema = Schema::create(&url, "types");
    let s = schema.name.clone();
    schema
        .client
        .batch_execute(&format!(
            "CREATE TABLE {s}.items (id INT8, title TEXT, score FLOAT8, tags TEXT[], flag BOOL, payload JSONB);
             INSERT INTO {s}.items VALUES
               (1, 'One', 1.5, ARRAY['a', 'b'], true, NULL),
               (2, 'Two', NULL, NULL, NULL, '{{\"x\": 1}}'),
               (3, NULL, NULL, NULL, NULL, NULL);"
        ))
        .unwrap();
    let source = SourceConfig {
        kind: SourceKind::Postgres,
        query: format!("SELECT * FROM {s}.items ORDER BY id"),
        url_env: URL_ENV.into(),
        ..SourceConfig::default()
    };
    let documents = searchbar_store::DocumentsConfig {
        template: "{title} {score} {tags} {flag}".into(),
        snippet: "title".into(),
        url: None,
        ..documents_config()
    };
    let ingested = load(&source, &documents, std::path::Path::new(".")).unwrap();
    assert_eq!(ingested.documents.len(), 1, "{:?}", ingested.quarantined);
    assert_eq!(ingested.documents[0].id, "1");
    assert_eq!(ingested.documents[0].text, "One 1.5 a, b true");
    let q: Vec<(u64, Option<&str>, &str)> = ingested
        .quarantined
        .iter()
        .map(|q| (q.row, q.field.as_deref(), q.reason.as_str()))
        .collect();
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!((q[0].0, q[0].1), (2, Some("payload")));
    assert!(q[0].2.starts_with("bad type: jsonb"), "{}", q[0].2);
    assert_eq!((q[1].0, q[1].1, q[1].2), (3, None, "empty text"));
    assert!(ingested.quarantined.iter().all(|q| q.source == "postgres"));
}

#[test]
fn missing_url_variable_says_which_to_set() {
    let source = SourceConfig {
        kind: SourceKind::Postgres,
        url_env: "SEARCHBAR_TEST_VARIABLE_THAT_IS_NEVER_SET".into(),
        ..SourceConfig::default()
    };
    let err = load(&source, &documents_config(), std::path::Path::new(".")).unwrap_err();
    assert!(matches!(err, StoreError::MissingEnv { .. }));
    assert!(
        err.to_string()
            .contains("SEARCHBAR_TEST_VARIABLE_THAT_IS_NEVER_SET is not set"),
        "{err}"
    );
}
