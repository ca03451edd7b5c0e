//! `{field}` templates that turn a row into the indexed text.

use std::collections::BTreeMap;

use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(String),
}

/// A parsed `[documents].template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `{name}` placeholders; `{{` and `}}` stand for literal braces.
    pub fn parse(source: &str) -> Result<Self, ConfigError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(ConfigError::template(format!("unclosed `{{{name}`")));
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        return Err(ConfigError::template("empty `{}` placeholder"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => {
                    return Err(ConfigError::template(
                        "unmatched `}` (write `}}` for a literal brace)",
                    ))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if !parts.iter().any(|p| matches!(p, Part::Field(_))) {
            return Err(ConfigError::template("names no {field}"));
        }
        Ok(Self { parts })
    }

    /// The field names the template refers to, in order of appearance.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders with missing fields as empty, then collapses whitespace runs and trims.
    pub fn render(&self, fields: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name) => out.push_str(fields.get(name).map_or("", String::as_str)),
            }
        }
        collapse_whitespace(&out)
    }
}

/// Collapses every whitespace run to one space and trims both ends.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
