//! JSONL and CSV readers. Both stream the file (a buffered reader, one record at a time), read raw
//! bytes so that one invalid UTF-8 line or field quarantines that row instead of failing the
//! file, and bound the bytes held per record: a record over `source.max_record_bytes` is skipped
//! to its end without being kept, and quarantined as over-long.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::raw::{Cell, Fault, RawRow, RawTable};
use crate::error::StoreError;

/// Read-ahead of the file readers.
const BUFFER_BYTES: usize = 256 * 1024;

/// Reads a CSV or JSONL file, chosen by extension (anything but `.jsonl` is read as CSV).
pub(crate) fn read_by_extension(
    path: &Path,
    separator: &str,
    max_record_bytes: usize,
) -> Result<RawTable<'static>, StoreError> {
    if path.extension().is_some_and(|e| e == "jsonl") {
        read_jsonl(path, separator, max_record_bytes)
    } else {
        read_csv(path, max_record_bytes)
    }
}

fn open(path: &Path) -> Result<BufReader<File>, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    Ok(BufReader::with_capacity(BUFFER_BYTES, file))
}

fn over_long(bytes: u64, limit: usize) -> Fault {
    Fault::row(format!(
        "over-long record ({bytes} bytes or more, source.max_record_bytes = {limit})"
    ))
}

/// One JSON object per line; blank lines are skipped, arrays of strings joined with `separator`.
pub(crate) fn read_jsonl(
    path: &Path,
    separator: &str,
    max_record_bytes: usize,
) -> Result<RawTable<'static>, StoreError> {
    let mut input = open(path)?;
    let owned = path.to_path_buf();
    let separator = separator.to_string();
    let mut line = Vec::new();
    let mut number = 0u64;
    let rows = std::iter::from_fn(move || loop {
        number += 1;
        let read = match read_line_bounded(&mut input, &mut line, max_record_bytes) {
            Ok(read) => read,
            Err(e) => return Some(Err(StoreError::io(&owned, e))),
        };
        let cells = match read {
            Line::End => return None,
            Line::TooLong(bytes) => Err(over_long(bytes, max_record_bytes)),
            Line::Fits => {
                let text = line.strip_suffix(b"\r").unwrap_or(&line);
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                parse_json_line(text, &separator)
            }
        };
        return Some(Ok(RawRow { row: number, cells }));
    });
    Ok(RawTable {
        origin: path.display().to_string(),
        columns: None,
        rows: Box::new(rows),
    })
}

enum Line {
    End,
    /// The line, without its `\n`, is in the buffer.
    Fits,
    /// The line was longer than the limit (this many bytes at least) and was skipped.
    TooLong(u64),
}

/// Reads up to the next `\n` into `line`, keeping at most `limit` bytes: past that the rest of the
/// line is read and dropped, so a 1 GB line costs the buffer and nothing more.
fn read_line_bounded(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    line.clear();
    let mut total = 0u64;
    let mut any = false;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        any = true;
        let (chunk, found) = match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => (&buffer[..i], Some(i)),
            None => (buffer, None),
        };
        total += chunk.len() as u64;
        if total <= limit as u64 {
            line.extend_from_slice(chunk);
        } else {
            line.clear();
        }
        let used = found.map_or(chunk.len(), |i| i + 1);
        input.consume(used);
        if found.is_some() {
            break;
        }
    }
    Ok(if !any {
        Line::End
    } else if total > limit as u64 {
        Line::TooLong(total)
    } else {
        Line::Fits
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

/// A CSV record as parsed: its first line and its fields, or how long it was when too long.
enum Record {
    Fields { line: u64 },
    TooLong { line: u64, bytes: u64 },
}

/// RFC 4180 records through `csv-core` (the csv crate's own parser, without its record buffer,
/// which would grow to the size of any record): fields are written into a buffer capped at the
/// limit, and line numbers are counted from the bytes consumed, so the file is read once.
struct CsvRecords {
    path: PathBuf,
    input: BufReader<File>,
    parser: csv_core::Reader,
    limit: usize,
    /// Newlines consumed so far.
    newlines: u64,
    /// The current record's field bytes and field ends (as csv-core writes them).
    out: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
}

impl CsvRecords {
    fn new(path: &Path, limit: usize) -> Result<Self, StoreError> {
        Ok(Self {
            path: path.to_path_buf(),
            input: open(path)?,
            parser: csv_core::Reader::new(),
            limit,
            newlines: 0,
            out: vec![0; 4096],
            ends: vec![0; 64],
            fields: 0,
        })
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    /// The next record, `None` at the end of the file.
    fn next_record(&mut self) -> Result<Option<Record>, StoreError> {
        use csv_core::ReadRecordResult as R;
        let (mut used, mut ended) = (0usize, 0usize);
        let mut line = None;
        let mut bytes = 0u64;
        let mut skipping = false;
        loop {
            let buffer = self
                .input
                .fill_buf()
                .map_err(|e| StoreError::io(&self.path, e))?;
            let mut input = buffer;
            let mut skipped = 0;
            if line.is_none() {
                // Terminators before a record are blank lines, which csv-core skips too; the
                // record's line is where its first byte is, as an editor shows it.
                skipped = input
                    .iter()
                    .take_while(|&&b| matches!(b, b'\r' | b'\n'))
                    .count();
                self.newlines += input[..skipped].iter().filter(|&&b| b == b'\n').count() as u64;
                input = &input[skipped..];
                if !input.is_empty() {
                    line = Some(self.newlines + 1);
                }
            }
            if input.is_empty() && skipped > 0 {
                self.input.consume(skipped);
                continue;
            }
            let at_end = input.is_empty();
            let (result, read, wrote, ends) =
                self.parser
                    .read_record(input, &mut self.out[used..], &mut self.ends[ended..]);
            self.newlines += input[..read].iter().filter(|&&b| b == b'\n').count() as u64;
            bytes += read as u64;
            self.input.consume(skipped + read);
            // csv-core writes field ends as offsets into the whole record, across calls.
            used += wrote;
            ended += ends;
            match result {
                R::OutputFull => {
                    if skipping || self.out.len() >= self.limit {
                        // Over the limit: keep parsing to the record's end, keeping nothing.
                        skipping = true;
                        used = 0;
                    } else {
                        let grown = (self.out.len() * 2).min(self.limit.max(1));
                        self.out.resize(grown, 0);
                    }
                }
                R::OutputEndsFull => {
                    if skipping || self.ends.len() * 8 >= self.limit {
                        skipping = true;
                        ended = 0;
                    } else {
                        let grown = self.ends.len() * 2;
                        self.ends.resize(grown, 0);
                    }
                }
                R::Record => {
                    let line = line.unwrap_or(self.newlines + 1);
                    if skipping || bytes > self.limit as u64 {
                        return Ok(Some(Record::TooLong { line, bytes }));
                    }
                    self.fields = ended;
                    return Ok(Some(Record::Fields { line }));
                }
                // An empty read is how csv-core is told the data ended; it always answers one
                // with `Record` or `End`, but a parser that did not must not loop for ever.
                R::End => return Ok(None),
                R::InputEmpty if at_end => return Ok(None),
                R::InputEmpty => {}
            }
        }
    }
}

/// Header row plus records; a record with the wrong field count is quarantined, not fatal.
pub(crate) fn read_csv(
    path: &Path,
    max_record_bytes: usize,
) -> Result<RawTable<'static>, StoreError> {
    let mut records = CsvRecords::new(path, max_record_bytes)?;
    let columns = match records.next_record()? {
        None => return Err(StoreError::parse(path, None, "empty file: no header row")),
        Some(Record::TooLong { bytes, .. }) => {
            let message = format!(
                "the header row is over-long ({bytes} bytes, source.max_record_bytes = {max_record_bytes})"
            );
            return Err(StoreError::parse(path, Some(1), message));
        }
        Some(Record::Fields { line }) => {
            let mut columns = Vec::with_capacity(records.fields);
            for i in 0..records.fields {
                let name = std::str::from_utf8(records.field(i)).map_err(|_| {
                    StoreError::parse(
                        path,
                        Some(line),
                        format!("header field {} is not valid UTF-8", i + 1),
                    )
                })?;
                // A byte-order mark from spreadsheet exports would otherwise become part of the
                // first name.
                columns.push(name.trim_start_matches('\u{feff}').to_string());
            }
            columns
        }
    };
    let names = columns.clone();
    let rows = std::iter::from_fn(move || {
        let record = match records.next_record() {
            Ok(record) => record?,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(match record {
            Record::TooLong { line, bytes } => RawRow {
                row: line,
                cells: Err(over_long(bytes, max_record_bytes)),
            },
            Record::Fields { line } if records.fields != names.len() => RawRow {
                row: line,
                cells: Err(Fault::row(format!(
                    "expected {} fields, found {}",
                    names.len(),
                    records.fields
                ))),
            },
            Record::Fields { line } => RawRow {
                row: line,
                cells: Ok(names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (name.clone(), csv_cell(records.field(i))))
                    .collect()),
            },
        }))
    });
    Ok(RawTable {
        origin: path.display().to_string(),
        columns: Some(columns),
        rows: Box::new(rows),
    })
}

fn csv_cell(bytes: &[u8]) -> Cell {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cell::Text(text.to_string()),
        Err(e) => Cell::Bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_limit_is_skipped_whole_and_the_next_one_read() {
        let mut text = b"short\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100_000));
        text.extend_from_slice(b"\nafter");
        let mut input = BufReader::with_capacity(64, text.as_slice());
        let mut line = Vec::new();
        assert!(matches!(
            read_line_bounded(&mut input, &mut line, 1000).unwrap(),
            Line::Fits
        ));
        assert_eq!(line, b"short");
        let Line::TooLong(bytes) = read_line_bounded(&mut input, &mut line, 1000).unwrap() else {
            panic!("not over-long");
        };
        assert_eq!(bytes, 100_000);
        assert!(line.capacity() <= 2048, "kept {} bytes", line.capacity());
        assert!(matches!(
            read_line_bounded(&mut input, &mut line, 1000).unwrap(),
            Line::Fits
        ));
        assert_eq!(line, b"after");
        assert!(matches!(
            read_line_bounded(&mut input, &mut line, 1000).unwrap(),
            Line::End
        ));
    }
}
