//! BEIR judgment files: `queries.jsonl` and `qrels/<split>.tsv`.
//!
//! Parsing works on text (the caller reads files, so this also runs in the
//! browser); errors name the file and 1-based line.

use crate::error::ParseError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Relevance grades of judged docs for one query: corpus id -> grade.
pub type Judgments = BTreeMap<String, i32>;

/// All judgments: query id -> [`Judgments`].
pub type Qrels = BTreeMap<String, Judgments>;

/// One BEIR query.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Query {
    /// Query id (`_id`).
    #[serde(rename = "_id")]
    pub id: String,
    /// Query text.
    pub text: String,
}

/// Expected first line of a BEIR qrels TSV.
pub const QRELS_HEADER: &str = "query-id\tcorpus-id\tscore";

fn error(file: &str, line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        file: file.to_owned(),
        line,
        message: message.into(),
    }
}

/// Lines with their 1-based numbers, without line terminators or a UTF-8
/// BOM on the first line.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().enumerate().map(|(i, l)| (i + 1, l))
}

/// Parses `queries.jsonl`: one `{"_id": "...", "text": "..."}` object per
/// line (other fields, e.g. `metadata`, are ignored; blank lines skipped).
/// Queries come back in file order.
pub fn parse_queries_jsonl(text: &str, file: &str) -> Result<Vec<Query>, ParseError> {
    let mut out = Vec::new();
    for (line, content) in lines(text) {
        if content.trim().is_empty() {
            continue;
        }
        let query: Query =
            serde_json::from_str(content).map_err(|e| error(file, line, e.to_string()))?;
        out.push(query);
    }
    Ok(out)
}

/// Parses a qrels TSV: header `query-id\tcorpus-id\tscore`, then one
/// `query\tdoc\tgrade` row per line with an integer grade (blank lines
/// skipped). A repeated (query, doc) pair keeps the later grade, as BEIR's
/// loader does.
pub fn parse_qrels_tsv(text: &str, file: &str) -> Result<Qrels, ParseError> {
    let mut qrels = Qrels::new();
    add_qrels_tsv(&mut qrels, text, file)?;
    Ok(qrels)
}

/// Like [`parse_qrels_tsv`], adding to existing judgments (several splits).
pub fn add_qrels_tsv(qrels: &mut Qrels, text: &str, file: &str) -> Result<(), ParseError> {
    let mut it = lines(text);
    match it.next() {
        Some((_, header)) if header.trim_end() == QRELS_HEADER => {}
        Some((line, header)) => {
            return Err(error(
                file,
                line,
                format!("expected header {QRELS_HEADER:?}, found {header:?}"),
            ))
        }
        None => return Err(error(file, 1, "empty file, expected a header")),
    }
    for (line, content) in it {
        if content.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.trim_end().split('\t').collect();
        let [query, doc, grade] = fields[..] else {
            return Err(error(
                file,
                line,
                format!("expected 3 tab-separated fields, found {}", fields.len()),
            ));
        };
        if query.is_empty() || doc.is_empty() {
            return Err(error(file, line, "empty query or corpus id"));
        }
        let grade: i32 = grade
            .trim()
            .parse()
            .map_err(|_| error(file, line, format!("score {grade:?} is not an integer")))?;
        qrels
            .entry(query.to_owned())
            .or_default()
            .insert(doc.to_owned(), grade);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_report_lines() {
        let text = "{\"_id\": \"q1\", \"text\": \"a b\", \"metadata\": {}}\n\n{\"_id\": \"q2\", \"text\": \"c\"}\n";
        let q = parse_queries_jsonl(text, "queries.jsonl").unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[1].id, "q2");
        let err = parse_queries_jsonl(
            "{\"_id\": \"q1\", \"text\": \"x\"}\n{\"text\": \"no id\"}\n",
            "queries.jsonl",
        )
        .unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("queries.jsonl", 2));
        assert!(err.to_string().starts_with("queries.jsonl:2:"));
    }

    #[test]
    fn qrels_parse() {
        let text = "query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq1\td2\t2\nq2\td1\t0\n\n";
        let q = parse_qrels_tsv(text, "test.tsv").unwrap();
        assert_eq!(q["q1"]["d2"], 2);
        assert_eq!(q["q2"]["d1"], 0);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn qrels_errors_name_line() {
        let cases = [
            ("q\td\t1\n", 1),
            ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\n", 3),
            ("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", 2),
            ("query-id\tcorpus-id\tscore\n\nq1\t\t1\n", 3),
            ("", 1),
        ];
        for (text, line) in cases {
            let err = parse_qrels_tsv(text, "qrels/test.tsv").unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert_eq!(err.file, "qrels/test.tsv");
        }
    }
}
