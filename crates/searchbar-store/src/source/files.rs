//! JSONL and CSV readers. Both read raw bytes so that one invalid UTF-8 line or field quarantines
//! that row instead of failing the file.

use std::collections::HashSet;
use std::path::Path;

use super::raw::{Cell, Fault, RawRow, RawTable};
use crate::error::StoreError;

/// Reads a CSV or JSONL file, chosen by extension (anything but `.jsonl` is read as CSV).
pub(crate) fn read_by_extension(path: &Path, separator: &str) -> Result<RawTable, StoreError> {
    if path.extension().is_some_and(|e| e == "jsonl") {
        read_jsonl(path, separator)
    } else {
        read_csv(path)
    }
}

/// One JSON object per line; blank lines are skipped, arrays of strings joined with `separator`.
pub(crate) fn read_jsonl(path: &Path, separator: &str) -> Result<RawTable, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let mut columns: Vec<String> = Vec::new();
    let mut seen_columns = HashSet::new();
    let mut rows = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = index as u64 + 1;
        let cells = parse_json_line(line, separator);
        if let Ok(cells) = &cells {
            for (name, _) in cells {
                if seen_columns.insert(name.clone()) {
                    columns.push(name.clone());
                }
            }
        }
        rows.push(RawRow { row, cells });
    }
    let columns = (!columns.is_empty()).then_some(columns);
    Ok(RawTable {
        origin: path.display().to_string(),
        columns,
        rows,
    })
}

fn parse_json_line(line: &[u8], separator: &str) -> Result<Vec<(String, Cell)>, Fault> {
    let text = std::str::from_utf8(line)
        .map_err(|e| Fault::row(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Fault::row(format!("malformed JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(Fault::row("bad type: line is not a JSON object"));
    };
    Ok(object
        .into_iter()
        .map(|(name, value)| (name, json_cell(value, separator)))
        .collect())
}

fn json_cell(value: serde_json::Value, separator: &str) -> Cell {
    use serde_json::Value;
    match value {
        Value::Null => Cell::Null,
        Value::String(s) => Cell::Text(s),
        Value::Number(n) => Cell::Text(n.to_string()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        Value::Array(items) => {
            let strings: Option<Vec<String>> = items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect();
            match strings {
                Some(strings) => Cell::Text(strings.join(separator)),
                None => Cell::Bad("bad type: array with non-string items".into()),
            }
        }
        Value::Object(_) => Cell::Bad("bad type: object".into()),
    }
}

/// Header row plus records; a record with the wrong field count is quarantined, not fatal.
pub(crate) fn read_csv(path: &Path) -> Result<RawTable, StoreError> {
    let bytes = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    // Line numbers are counted from the bytes: the csv crate's own count is off by one on
    // CRLF files (spreadsheet exports), and users look rows up by editor line.
    let line_at = |offset: u64| {
        // On CRLF files a record's offset can point at the `\n` of the previous terminator.
        let mut end = (offset as usize).min(bytes.len());
        while end < bytes.len() && matches!(bytes[end], b'\r' | b'\n') {
            end += 1;
        }
        1 + bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(path, e))?
        .clone();
    let mut columns = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let name = std::str::from_utf8(name).map_err(|_| {
            StoreError::parse(
                path,
                Some(1),
                format!("header field {} is not valid UTF-8", i + 1),
            )
        })?;
        // A byte-order mark from spreadsheet exports would otherwise become part of the first name.
        columns.push(name.trim_start_matches('\u{feff}').to_string());
    }
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let row = record.position().map_or(0, |p| line_at(p.byte()));
                let cells = if record.len() != columns.len() {
                    Err(Fault::row(format!(
                        "expected {} fields, found {}",
                        columns.len(),
                        record.len()
                    )))
                } else {
                    Ok(columns
                        .iter()
                        .zip(record.iter())
                        .map(|(name, bytes)| (name.clone(), csv_cell(bytes)))
                        .collect())
                };
                rows.push(RawRow { row, cells });
            }
            Err(e) => match e.position() {
                // Only I/O errors lack a position; anything positioned is a bad record.
                Some(pos) if !matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                    rows.push(RawRow {
                        row: line_at(pos.byte()),
                        cells: Err(Fault::row(format!("malformed CSV: {e}"))),
                    });
                }
                _ => return Err(csv_error(path, e)),
            },
        }
    }
    Ok(RawTable {
        origin: path.display().to_string(),
        columns: Some(columns),
        rows,
    })
}

fn csv_cell(bytes: &[u8]) -> Cell {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cell::Text(text.to_string()),
        Err(e) => Cell::Bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    }
}

fn csv_error(path: &Path, e: csv::Error) -> StoreError {
    let line = e.position().map(csv::Position::line);
    StoreError::parse(path, line, e.to_string())
}
