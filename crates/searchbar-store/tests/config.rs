//! Config sections as the pipeline embeds them in `searchbar.toml`.

use searchbar_store::{DocumentsConfig, DriftConfig, SourceConfig, SourceKind, ValidationConfig};
use serde::Deserialize;

/// Stand-in for the pipeline's file, which embeds these sections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: SourceConfig,
    #[serde(default)]
    documents: DocumentsConfig,
    #[serde(default)]
    validation: ValidationConfig,
    #[serde(default)]
    drift: DriftConfig,
}

#[test]
fn documented_example_parses_and_validates() {
    let file: File = toml::from_str(
        r#"
[source]
kind = "sqlite"
path = ".searchbar/catalog.sqlite"
query = "SELECT id, title, description, learn, domain, url FROM projects"
[source.topics]
query = "SELECT project_id, topic FROM topics"
key = "project_id"
field = "topic"
into = "topics"
separator = ", "
[source.seed]
projects = "data/catalog/projects.csv"
topics = "data/catalog/topics.csv"

[documents]
template = "{title}. {description} {learn} {topics} {domain}"
max_chars = 20000

[validation]
max_quarantine_share = 0.05

[drift]
length_psi = 0.2
embedding_auc = 0.75
"#,
    )
    .unwrap();
    assert_eq!(file.source.kind, SourceKind::Sqlite);
    assert_eq!(file.source.seed.len(), 2);
    assert_eq!(file.documents.title, "title");
    file.source.validate().unwrap();
    file.documents.validate().unwrap();
    file.validation.validate().unwrap();
    file.drift.validate().unwrap();
}

#[test]
fn unknown_key_is_rejected_by_name() {
    let err =
        toml::from_str::<File>("[source]\nkind = \"csv\"\nqeury = \"SELECT 1\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `qeury`"), "{err}");
    let err = toml::from_str::<File>("[source.topics]\nkeys = \"id\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown field `keys`"), "{err}");
    let err = toml::from_str::<File>("[drift]\nembedding_mmd = 0.1\n").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `embedding_mmd`"),
        "{err}"
    );
}

#[test]
fn validate_names_the_bad_key() {
    let key = |toml_text: &str| -> String {
        let file: File = toml::from_str(toml_text).unwrap();
        let checks = [
            file.source.validate(),
            file.documents.validate(),
            file.validation.validate(),
            file.drift.validate(),
        ];
        checks
            .into_iter()
            .find_map(Result::err)
            .expect("a validation error")
            .key
    };
    assert_eq!(
        key("[source]\nkind = \"sqlite\"\nquery = \"  \"\n"),
        "source.query"
    );
    assert_eq!(
        key("[source]\nkind = \"postgres\"\nurl_env = \"postgresql://u:p@h/db\"\n"),
        "source.url_env"
    );
    assert_eq!(
        key("[source]\nkind = \"csv\"\npath = \"a.csv\"\n[source.seed]\nt = \"x.csv\"\n"),
        "source.seed"
    );
    assert_eq!(
        key("[source]\nkind = \"csv\"\npath = \"a.csv\"\n[source.topics]\n"),
        "source.topics.path"
    );
    assert_eq!(
        key("[documents]\ntemplate = \"{title\"\n"),
        "documents.template"
    );
    assert_eq!(
        key("[documents]\ntemplate = \"no fields\"\n"),
        "documents.template"
    );
    assert_eq!(
        key("[validation]\nmax_quarantine_share = 1.5\n"),
        "validation.max_quarantine_share"
    );
    assert_eq!(key("[drift]\nembedding_auc = 0.4\n"), "drift.embedding_auc");
}
