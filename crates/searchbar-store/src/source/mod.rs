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

    let limit = source.max_record_bytes;
    // The topics table is read first and whole (it is grouped per id anyway); the main table
    // then streams through `assemble`, one row at a time.
    match source.kind {
        SourceKind::Jsonl | SourceKind::Csv => {
            let topics = match topics_config.and_then(|t| t.path.as_deref()) {
                Some(p) => Some(files::read_by_extension(&resolve(p), separator, limit)?),
                None => None,
            };
            let path = resolve(&source.path);
            let table = if source.kind == SourceKind::Jsonl {
                files::read_jsonl(&path, separator, limit)?
            } else {
                files::read_csv(&path, limit)?
            };
            assemble(table, topics.zip(topics_config), documents, &template)
        }
        SourceKind::Sqlite => {
            let path = resolve(&source.path);
            let seed = source
                .seed
                .iter()
                .map(|(t, p)| (t.clone(), resolve(p)))
                .collect();
            let conn = sqlite::open(&path, &seed)?;
            let topics = match topics_config.and_then(|t| t.query.as_deref()) {
                Some(q) => Some(sqlite::query(&conn, &path, q, "source.topics.query")?),
                None => None,
            };
            let table = sqlite::query(&conn, &path, &source.query, "source.query")?;
            assemble(table, topics.zip(topics_config), documents, &template)
        }
        SourceKind::Postgres => {
            let (mut client, warnings) = postgres::connect(source)?;
            let topics = match topics_config.and_then(|t| t.query.as_deref()) {
                Some(q) => Some(postgres::query_all(
                    &mut client,
                    source,
                    q,
                    "source.topics.query",
                    separator,
                )?),
                None => None,
            };
            let mut transaction = postgres::snapshot_transaction(&mut client, source)?;
            let table = postgres::query_streamed(
                &mut transaction,
                source,
                &source.query,
                "source.query",
                separator,
            )?;
            let mut ingested = assemble(table, topics.zip(topics_config), documents, &template)?;
            postgres::finish(transaction, source)?;
            ingested.warnings.extend(warnings);
            Ok(ingested)
        }
    }
}

/// Values of one document from the topics table, in source order.
#[derive(Debug)]
struct TopicGroup {
    values: Vec<String>,
    first_row: u64,
    rows: usize,
}

/// The fields a table has: declared up front, or (JSONL) gathered from the rows as they pass.
struct Fields {
    names: BTreeSet<String>,
    declared: bool,
}

impl Fields {
    fn of(table: &RawTable) -> Self {
        Self {
            names: table.columns.iter().flatten().cloned().collect(),
            declared: table.columns.is_some(),
        }
    }

    fn saw(&mut self, cells: &[(String, Cell)]) {
        if !self.declared {
            for (name, _) in cells {
                if !self.names.contains(name) {
                    self.names.insert(name.clone());
                }
            }
        }
    }

    /// Every wanted field must be one the table has. A table with no declared columns whose
    /// rows were all unreadable is not checked: there is nothing to check against, and its rows
    /// are all quarantined already.
    fn check<'a>(
        &self,
        origin: &str,
        extra: Option<&str>,
        wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), StoreError> {
        if self.names.is_empty() && !self.declared {
            return Ok(());
        }
        let mut known: BTreeSet<&str> = self.names.iter().map(String::as_str).collect();
        known.extend(extra);
        for (key, field) in wanted {
            if !known.contains(field) {
                return Err(StoreError::UnknownField {
                    key: key.to_string(),
                    field: field.to_string(),
                    origin: origin.to_string(),
                    available: known.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }
}

fn group_topics(
    table: RawTable,
    config: &TopicsConfig,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, TopicGroup>, StoreError> {
    let wanted = [
        ("source.topics.key", config.key.as_str()),
        ("source.topics.field", config.field.as_str()),
    ];
    let mut fields = Fields::of(&table);
    fields.check(&table.origin, None, wanted)?;
    let mut groups: BTreeMap<String, TopicGroup> = BTreeMap::new();
    for row in table.rows {
        let row = row?;
        let cells = match row.cells {
            Ok(cells) => {
                fields.saw(&cells);
                cells
            }
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
    fields.check(&table.origin, None, wanted)?;
    Ok(groups)
}

fn assemble(
    table: RawTable,
    topics: Option<(RawTable, &TopicsConfig)>,
    config: &DocumentsConfig,
    template: &Template,
) -> Result<Ingested, StoreError> {
    let mut out = Ingested {
        source: table.origin.clone(),
        ..Ingested::default()
    };
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
    // Every field whose value reaches a shipped document.
    let mut shipped: Vec<&str> = wanted.iter().map(|(_, f)| *f).collect();
    shipped.extend(into);
    shipped.sort_unstable();
    shipped.dedup();
    let mut columns = Fields::of(&table);
    columns.check(&table.origin, into, wanted.iter().copied())?;
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
        let raw = raw?;
        let quarantine = |field: Option<&str>, reason: String| Quarantined {
            source: origin.clone(),
            row: raw.row,
            field: field.map(str::to_string),
            reason,
        };
        let cells = match raw.cells {
            Ok(cells) => {
                columns.saw(&cells);
                cells
            }
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
        // A NUL ends the string for C tools and many terminals and databases downstream.
        let nul = shipped
            .iter()
            .find_map(|name| Some((*name, fields.get(*name)?.find('\0')?)));
        if let Some((name, at)) = nul {
            let reason = format!("NUL byte in the value (at byte {at})");
            out.quarantined.push(quarantine(Some(name), reason));
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
        if let Some(reason) = too_long(&id, config.max_id_chars, "documents.max_id_chars") {
            out.quarantined.push(quarantine(Some(&config.id), reason));
            continue;
        }
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
        let title = get(&config.title).unwrap_or_default();
        if let Some(reason) = too_long(&title, config.max_title_chars, "documents.max_title_chars")
        {
            out.quarantined
                .push(quarantine(Some(&config.title), reason));
            continue;
        }
        let url = config.url_field().and_then(get).filter(|u| !u.is_empty());
        if let (Some(url), Some(field)) = (&url, config.url_field()) {
            let problem = too_long(url, config.max_url_chars, "documents.max_url_chars")
                .or_else(|| unsafe_link(url));
            if let Some(reason) = problem {
                out.quarantined.push(quarantine(Some(field), reason));
                continue;
            }
        }
        out.documents.push(Document {
            id,
            text,
            title,
            url,
            snippet: get(&config.snippet).unwrap_or_default(),
            fields,
        });
    }
    // JSONL declares no columns: its fields are known now that every line was read.
    columns.check(&origin, into, wanted.iter().copied())?;
    groups.retain(|key, _| !seen.contains_key(key));
    for (key, group) in groups {
        out.warnings.push(format!(
            "{topics_origin}: {} topic row(s) for unknown document id `{key}` (first at row {})",
            group.rows, group.first_row
        ));
    }
    Ok(out)
}

fn too_long(value: &str, limit: usize, key: &str) -> Option<String> {
    let chars = value.chars().count();
    (chars > limit).then(|| format!("over-long value ({chars} chars, {key} = {limit})"))
}

/// Why a link must not be shipped, if it must not: the page puts it in an `href`, where a
/// `javascript:` (or `data:`, `vbscript:`...) URL runs in the site's origin when clicked. Only
/// http, https and mailto links and relative ones pass. Browsers drop tabs and newlines anywhere
/// in a URL and control characters and spaces around it (WHATWG URL), so the scheme is read the
/// same way: `java\tscript:` is `javascript:`.
fn unsafe_link(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let end = cleaned.find([':', '/', '?', '#'])?;
    if !cleaned[end..].starts_with(':') {
        return None;
    }
    let scheme = cleaned[..end].to_ascii_lowercase();
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme || matches!(scheme.as_str(), "http" | "https" | "mailto") {
        return None;
    }
    Some(format!(
        "link scheme `{scheme}:` is not allowed (http, https, mailto or a relative link)"
    ))
}

#[cfg(test)]
mod tests {
    use super::unsafe_link;

    #[test]
    fn only_web_and_mail_links_pass() {
        for ok in [
            "https://example.org/a",
            "HTTP://x",
            "mailto:a@b.c",
            "/docs/a",
            "a/b:c",
            "page?x=javascript:1",
            "#top",
            "1:2",
        ] {
            assert_eq!(unsafe_link(ok), None, "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "  JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "\u{1}javascript:x",
            "data:text/html,<script>",
            "vbscript:x",
            "file:///etc/passwd",
        ] {
            assert!(unsafe_link(bad).is_some(), "{bad:?}");
        }
    }
}
