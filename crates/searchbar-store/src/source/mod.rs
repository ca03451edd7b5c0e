//! Loading a catalog from any source kind into validated [`Document`]s.

mod files;
mod postgres;
mod raw;
mod sqlite;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use raw::{Cell, RawTable};

use crate::config::{DocumentsConfig, SourceConfig, SourceKind, TopicsConfig};
use crate::document::{Document, Ingested, Quarantined};
use crate::error::StoreError;
use crate::template::Template;

/// Separator for JSONL string arrays when no `[source.topics]` gives one.
const DEFAULT_SEPARATOR: &str = ", ";

/// Reads the configured source, folds in the topics table and validates every row.
///
/// Relative paths in `source` resolve against `base_dir`. Bad rows land in
/// [`Ingested::quarantined`]; only unreadable sources, SQL errors and field names the source does
/// not have are errors.
pub fn load(
    source: &SourceConfig,
    documents: &DocumentsConfig,
    base_dir: &Path,
) -> Result<Ingested, StoreError> {
    source.validate()?;
    documents.validate()?;
    let template = Template::parse(&documents.template)?;
    let resolve = |p: &Path| -> PathBuf { base_dir.join(p) };
    let separator = source
        .topics
        .as_ref()
        .map_or(DEFAULT_SEPARATOR, |t| t.separator.as_str());
    let topics_config = source.topics.as_ref();

    let (table, topics) = match source.kind {
        SourceKind::Jsonl | SourceKind::Csv => {
            let path = resolve(&source.path);
            let table = if source.kind == SourceKind::Jsonl {
                files::read_jsonl(&path, separator)?
            } else {
                files::read_csv(&path)?
            };
            let topics = match topics_config.and_then(|t| t.path.as_deref()) {
                Some(p) => Some(files::read_by_extension(&resolve(p), separator)?),
                None => None,
            };
            (table, topics)
        }
        SourceKind::Sqlite => {
            let path = resolve(&source.path);
            let seed = source
                .seed
                .iter()
                .map(|(t, p)| (t.clone(), resolve(p)))
                .collect();
            let conn = sqlite::open(&path, &seed)?;
            let table = sqlite::query(&conn, &path, &source.query, "source.query")?;
            let topics = match topics_config.and_then(|t| t.query.as_deref()) {
                Some(q) => Some(sqlite::query(&conn, &path, q, "source.topics.query")?),
                None => None,
            };
            (table, topics)
        }
        SourceKind::Postgres => {
            let mut client = postgres::connect(&source.url_env)?;
            let table = postgres::query(&mut client, &source.query, "source.query", separator)?;
            let topics = match topics_config.and_then(|t| t.query.as_deref()) {
                Some(q) => Some(postgres::query(
                    &mut client,
                    q,
                    "source.topics.query",
                    separator,
                )?),
                None => None,
            };
            (table, topics)
        }
    };
    let topics = match (topics, topics_config) {
        (Some(table), Some(config)) => Some((table, config)),
        _ => None,
    };
    assemble(table, topics, documents, &template)
}

/// Values of one document from the topics table, in source order.
#[derive(Debug)]
struct TopicGroup {
    values: Vec<String>,
    first_row: u64,
    rows: usize,
}

fn check_fields<'a>(
    table: &RawTable,
    extra: Option<&str>,
    wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), StoreError> {
    let Some(columns) = &table.columns else {
        return Ok(());
    };
    let mut known: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
    known.extend(extra);
    for (key, field) in wanted {
        if !known.contains(field) {
            return Err(StoreError::UnknownField {
                key: key.to_string(),
                field: field.to_string(),
                origin: table.origin.clone(),
                available: known.iter().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(())
}

fn group_topics(
    table: RawTable,
    config: &TopicsConfig,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, TopicGroup>, StoreError> {
    check_fields(
        &table,
        None,
        [
            ("source.topics.key", config.key.as_str()),
            ("source.topics.field", config.field.as_str()),
        ],
    )?;
    let mut groups: BTreeMap<String, TopicGroup> = BTreeMap::new();
    for row in table.rows {
        let cells = match row.cells {
            Ok(cells) => cells,
            Err(fault) => {
                warnings.push(format!(
                    "{} row {}: topic row skipped: {}",
                    table.origin, row.row, fault.reason
                ));
                continue;
            }
        };
        let (mut key, mut value) = (None, None);
        for (name, cell) in cells {
            let slot = if name == config.key {
                &mut key
            } else if name == config.field {
                &mut value
            } else {
                continue;
            };
            match cell {
                Cell::Null => {}
                Cell::Text(text) if text.trim().is_empty() => {}
                Cell::Text(text) => *slot = Some(text),
                Cell::Bad(reason) => {
                    warnings.push(format!(
                        "{} row {} field {name}: topic row skipped: {reason}",
                        table.origin, row.row
                    ));
                    key = None;
                    break;
                }
            }
        }
        let (Some(key), Some(value)) = (key, value) else {
            continue;
        };
        let group = groups.entry(key).or_insert(TopicGroup {
            values: Vec::new(),
            first_row: row.row,
            rows: 0,
        });
        group.values.push(value);
        group.rows += 1;
    }
    Ok(groups)
}

fn assemble(
    table: RawTable,
    topics: Option<(RawTable, &TopicsConfig)>,
    config: &DocumentsConfig,
    template: &Template,
) -> Result<Ingested, StoreError> {
    let mut out = Ingested::default();
    let into = topics.as_ref().map(|(_, t)| t.into.as_str());
    let topics_origin = topics
        .as_ref()
        .map(|(t, _)| t.origin.clone())
        .unwrap_or_default();
    let mut wanted: Vec<(&str, &str)> = template
        .fields()
        .map(|f| ("documents.template", f))
        .collect();
    wanted.extend([
        ("documents.id", config.id.as_str()),
        ("documents.title", config.title.as_str()),
    ]);
    wanted.push(("documents.snippet", config.snippet.as_str()));
    if let Some(url) = config.url_field() {
        wanted.push(("documents.url", url));
    }
    check_fields(&table, into, wanted)?;
    let separator = topics
        .as_ref()
        .map_or(DEFAULT_SEPARATOR, |(_, t)| t.separator.as_str())
        .to_string();
    let mut groups = match topics {
        Some((topics_table, topics_config)) => {
            group_topics(topics_table, topics_config, &mut out.warnings)?
        }
        None => BTreeMap::new(),
    };

    let origin = table.origin;
    let mut seen: HashMap<String, u64> = HashMap::new();
    for raw in table.rows {
        let quarantine = |field: Option<&str>, reason: String| Quarantined {
            source: origin.clone(),
            row: raw.row,
            field: field.map(str::to_string),
            reason,
        };
        let cells = match raw.cells {
            Ok(cells) => cells,
            Err(fault) => {
                out.quarantined
                    .push(quarantine(fault.field.as_deref(), fault.reason));
                continue;
            }
        };
        let mut fields = BTreeMap::new();
        let mut bad = None;
        for (name, cell) in cells {
            match cell {
                // Empty and NULL are the same thing: CSV cannot tell them apart.
                Cell::Null => {}
                Cell::Text(text) if text.is_empty() => {}
                Cell::Text(text) => {
                    fields.insert(name, text);
                }
                Cell::Bad(reason) => {
                    bad = Some((name, reason));
                    break;
                }
            }
        }
        if let Some((name, reason)) = bad {
            out.quarantined.push(quarantine(Some(&name), reason));
            continue;
        }
        let id = match fields.get(&config.id) {
            Some(id) if !id.trim().is_empty() => id.clone(),
            _ => {
                out.quarantined
                    .push(quarantine(Some(&config.id), "missing id".into()));
                continue;
            }
        };
        // Registered before the text checks: any later row with this id is the duplicate.
        if let Some(first) = seen.get(&id) {
            let reason = format!("duplicate id `{id}` (first at row {first})");
            out.quarantined.push(quarantine(Some(&config.id), reason));
            continue;
        }
        seen.insert(id.clone(), raw.row);
        if let Some(into) = into {
            if let Some(group) = groups.get(&id) {
                fields.insert(into.to_string(), group.values.join(&separator));
            }
        }
        let text = template.render(&fields);
        // The template's own punctuation (`{title}. {description}`) does not make a document.
        if !text.chars().any(char::is_alphanumeric) {
            out.quarantined.push(quarantine(None, "empty text".into()));
            continue;
        }
        let chars = text.chars().count();
        if chars > config.max_chars {
            let reason = format!(
                "over-long text ({chars} chars, documents.max_chars = {})",
                config.max_chars
            );
            out.quarantined.push(quarantine(None, reason));
            continue;
        }
        let get = |name: &str| fields.get(name).map(|v| v.trim().to_string());
        out.documents.push(Document {
            id,
            text,
            title: get(&config.title).unwrap_or_default(),
            url: config.url_field().and_then(get).filter(|u| !u.is_empty()),
            snippet: get(&config.snippet).unwrap_or_default(),
            fields,
        });
    }
    groups.retain(|key, _| !seen.contains_key(key));
    for (key, group) in groups {
        out.warnings.push(format!(
            "{topics_origin}: {} topic row(s) for unknown document id `{key}` (first at row {})",
            group.rows, group.first_row
        ));
    }
    Ok(out)
}
