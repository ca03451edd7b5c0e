//! Shared fixtures: one small catalog written in every file format.
#![allow(dead_code)]

use std::path::Path;

use searchbar_store::{DocumentsConfig, SourceConfig, SourceKind, TopicsConfig};

/// id, title, description, learn, domain, url (empty = no value).
pub const PROJECTS: &[[&str; 6]] = &[
    [
        "p1",
        "Recipe box",
        "Offline recipes  with a\nservice worker.",
        "IndexedDB; sync",
        "web",
        "https://example.org/p1",
    ],
    [
        "p2",
        "Link shortener",
        "Short links with analytics.",
        "Redis",
        "web",
        "",
    ],
    [
        "p3",
        "Sky survey",
        "Classify galaxies from images.",
        "CNNs",
        "astronomy",
        "https://example.org/p3",
    ],
    [
        "p4",
        "Bird song",
        "Identify birds by their song.",
        "",
        "audio",
        "https://example.org/p4",
    ],
];

/// project_id, topic, in source order; `ghost` has no project.
pub const TOPICS: &[[&str; 2]] = &[
    ["p1", "pwa"],
    ["p3", "vision"],
    ["p1", "offline-first"],
    ["ghost", "nothing"],
    ["p3", "science"],
];

pub const HEADER: [&str; 6] = ["id", "title", "description", "learn", "domain", "url"];

pub fn write_csv(path: &Path, header: &[&str], rows: &[&[&str]]) {
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(header).unwrap();
    for row in rows {
        writer.write_record(*row).unwrap();
    }
    writer.flush().unwrap();
}

pub fn write_projects_csv(path: &Path) {
    let rows: Vec<&[&str]> = PROJECTS.iter().map(|r| &r[..]).collect();
    write_csv(path, &HEADER, &rows);
}

pub fn write_topics_csv(path: &Path) {
    let rows: Vec<&[&str]> = TOPICS.iter().map(|r| &r[..]).collect();
    write_csv(path, &["project_id", "topic"], &rows);
}

/// JSONL with NULL instead of empty strings, which must load the same.
pub fn write_projects_jsonl(path: &Path) {
    let mut out = String::new();
    for row in PROJECTS {
        let mut object = serde_json::Map::new();
        for (name, value) in HEADER.iter().zip(row) {
            let value = if value.is_empty() {
                serde_json::Value::Null
            } else {
                (*value).into()
            };
            object.insert((*name).into(), value);
        }
        out.push_str(&serde_json::Value::Object(object).to_string());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

pub fn write_topics_jsonl(path: &Path) {
    let lines: Vec<String> = TOPICS
        .iter()
        .map(|[id, topic]| serde_json::json!({"project_id": id, "topic": topic}).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

pub fn documents_config() -> DocumentsConfig {
    DocumentsConfig::default()
}

/// The default template minus `{topics}`, for sources without a topics table.
pub fn plain_documents_config() -> DocumentsConfig {
    DocumentsConfig {
        template: "{title}. {description} {learn} {domain}".into(),
        ..DocumentsConfig::default()
    }
}

pub fn topics(path: Option<&str>, query: Option<&str>) -> TopicsConfig {
    TopicsConfig {
        path: path.map(Into::into),
        query: query.map(Into::into),
        ..TopicsConfig::default()
    }
}

pub fn file_source(kind: SourceKind, path: &str, topics_path: Option<&str>) -> SourceConfig {
    SourceConfig {
        kind,
        path: path.into(),
        topics: topics_path.map(|p| topics(Some(p), None)),
        ..SourceConfig::default()
    }
}
