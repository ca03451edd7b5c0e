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

/// A source reading `sql` with the connection string `url`, put in its own variable.
fn source_with_url(var: &str, url: &str, sql: &str) -> SourceConfig {
    std::env::set_var(var, url);
    SourceConfig {
        kind: SourceKind::Postgres,
        query: sql.into(),
        url_env: var.into(),
        ..SourceConfig::default()
    }
}

fn titles() -> searchbar_store::DocumentsConfig {
    searchbar_store::DocumentsConfig {
        template: "{title}".into(),
        snippet: "title".into(),
        url: None,
        ..documents_config()
    }
}

/// Whether the session the query ran in was encrypted, as the server saw it.
const SSL_QUERY: &str =
    "SELECT 'x' AS id, ssl::text AS title FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[test]
fn sslmode_chooses_encryption_and_verification() {
    let Some(url) = server_url() else { return };
    let ca = std::env::var("SEARCHBAR_TEST_PG_CA")
        .expect("SEARCHBAR_TEST_PG_CA is not set: export it from `scripts/pg-test-server.sh --ca`");
    let encrypted = |var: &str, params: &str| -> Result<String, StoreError> {
        let source = source_with_url(var, &with_params(&url, params), SSL_QUERY);
        let ingested = load(&source, &titles(), std::path::Path::new("."))?;
        Ok(ingested.documents[0].title.clone())
    };
    assert_eq!(
        encrypted("SB_PG_DISABLE", "sslmode=disable").unwrap(),
        "false"
    );
    // No sslmode is libpq's `prefer`: TLS where the server offers it.
    assert_eq!(encrypted("SB_PG_DEFAULT", "").unwrap(), "true");
    assert_eq!(
        encrypted("SB_PG_REQUIRE", "sslmode=require").unwrap(),
        "true"
    );
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    assert_eq!(encrypted("SB_PG_FULL", &full).unwrap(), "true");
    // The server's certificate is for localhost and 127.0.0.1; the system roots do not know the
    // test CA, so verifying without sslrootcert fails, and says so.
    let err = encrypted("SB_PG_FULL_NO_ROOT", "sslmode=verify-full").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("connect (URL from $SB_PG_FULL_NO_ROOT)")
            && message.contains("certificate"),
        "{message}"
    );
    assert!(
        !message.contains("searchbar:searchbar"),
        "the password leaked: {message}"
    );
    let err = encrypted("SB_PG_BAD_MODE", "sslmode=strict").unwrap_err();
    assert!(err.to_string().contains("sslmode `strict`"), "{err}");
}

#[test]
fn a_slow_query_stops_at_the_statement_timeout() {
    let Some(url) = server_url() else { return };
    let mut source = source_with_url(
        "SB_PG_SLOW",
        &url,
        "SELECT 'x' AS id, pg_sleep(5)::text AS title",
    );
    source.statement_timeout_s = 1;
    let started = std::time::Instant::now();
    let err = load(&source, &titles(), std::path::Path::new(".")).unwrap_err();
    assert!(
        err.to_string().contains("source.statement_timeout_s = 1"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

/// A server that accepts the TCP connection and then never answers (a hung proxy): the login
/// gives up after `connect_timeout_s`.
#[test]
fn a_server_that_never_answers_fails_at_the_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut source = source_with_url(
        "SB_PG_SILENT",
        &format!("postgresql://u:secret@127.0.0.1:{port}/db?sslmode=disable"),
        "SELECT 1",
    );
    source.connect_timeout_s = 1;
    let started = std::time::Instant::now();
    let err = load(&source, &titles(), std::path::Path::new(".")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("no answer within 1 s (source.connect_timeout_s)"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(listener);
}

/// More rows than one portal batch, read from one consistent snapshot.
#[test]
fn a_large_query_streams_through_a_portal() {
    let Some(url) = server_url() else { return };
    let source = source_with_url(
        "SB_PG_LARGE",
        &url,
        "SELECT 'd' || g AS id, 'title ' || g AS title FROM generate_series(1, 25000) AS g",
    );
    let ingested = load(&source, &titles(), std::path::Path::new(".")).unwrap();
    assert_eq!(ingested.documents.len(), 25_000);
    assert_eq!(ingested.documents[24_999].id, "d25000");
    assert!(ingested.quarantined.is_empty());
}
