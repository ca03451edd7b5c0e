//! SQLite source, plus the seed that builds the demo database from CSV files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::raw::{Cell, RawRow, RawTable};
use crate::error::StoreError;

fn sql_error(
    path: &Path,
    context: impl Into<String>,
) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    let context = context.into();
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        context,
        source,
    }
}

/// Opens the database read-only, creating it from `seed` first when the file does not exist.
pub(crate) fn open(
    path: &Path,
    seed: &BTreeMap<String, PathBuf>,
) -> Result<Connection, StoreError> {
    if !path.exists() {
        if seed.is_empty() {
            let missing = std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "SQLite database does not exist (add [source.seed] to create it from CSV files)",
            );
            return Err(StoreError::io(path, missing));
        }
        create_from_seed(path, seed)?;
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql_error(path, "open"))
}

/// Runs `sql` and returns every row; text that is not UTF-8 and blobs become bad cells.
pub(crate) fn query(
    conn: &Connection,
    path: &Path,
    sql: &str,
    context: &str,
) -> Result<RawTable<'static>, StoreError> {
    let mut statement = conn
        .prepare(sql)
        .map_err(sql_error(path, format!("{context} (prepare)")))?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut result = statement.query([]).map_err(sql_error(path, context))?;
    let mut rows = Vec::new();
    let mut ordinal = 0u64;
    while let Some(row) = result.next().map_err(sql_error(path, context))? {
        ordinal += 1;
        let mut cells = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            let value = row.get_ref(i).map_err(sql_error(
                path,
                format!("{context} row {ordinal} column {name}"),
            ))?;
            cells.push((name.clone(), sqlite_cell(value)));
        }
        rows.push(RawRow {
            row: ordinal,
            cells: Ok(cells),
        });
    }
    Ok(RawTable::collected(
        format!("sqlite:{}", path.display()),
        Some(columns),
        rows,
    ))
}

fn sqlite_cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Text(i.to_string()),
        ValueRef::Real(f) => Cell::Text(f.to_string()),
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Cell::Text(text.to_string()),
            Err(e) => Cell::Bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
        },
        ValueRef::Blob(_) => Cell::Bad("bad type: blob".into()),
    }
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Builds the database in a temporary file and renames it into place, so an interrupted seed
/// never leaves a half-filled database that later runs would take as complete.
fn create_from_seed(path: &Path, seed: &BTreeMap<String, PathBuf>) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.seed-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let result = fill(&temp, seed);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, path).map_err(|e| StoreError::io(path, e))
}

fn fill(temp: &Path, seed: &BTreeMap<String, PathBuf>) -> Result<(), StoreError> {
    let mut conn = Connection::open(temp).map_err(sql_error(temp, "create"))?;
    let tx = conn.transaction().map_err(sql_error(temp, "begin"))?;
    for (table, csv_path) in seed {
        let file = std::fs::File::open(csv_path).map_err(|e| StoreError::io(csv_path, e))?;
        let mut reader = csv::Reader::from_reader(file);
        let parse = |e: csv::Error| {
            StoreError::parse(
                csv_path,
                e.position().map(csv::Position::line),
                e.to_string(),
            )
        };
        let header: Vec<String> = reader
            .headers()
            .map_err(parse)?
            .iter()
            .map(str::to_string)
            .collect();
        let columns: Vec<String> = header
            .iter()
            .map(|c| format!("{} TEXT", quote_identifier(c)))
            .collect();
        let create = format!(
            "CREATE TABLE {} ({})",
            quote_identifier(table),
            columns.join(", ")
        );
        tx.execute(&create, [])
            .map_err(sql_error(temp, format!("seed table {table}")))?;
        let placeholders = vec!["?"; header.len()].join(", ");
        let insert = format!(
            "INSERT INTO {} VALUES ({placeholders})",
            quote_identifier(table)
        );
        let mut statement = tx
            .prepare(&insert)
            .map_err(sql_error(temp, format!("seed table {table}")))?;
        for record in reader.records() {
            let record = record.map_err(parse)?;
            let values = record.iter().map(|v| (!v.is_empty()).then_some(v));
            statement
                .execute(rusqlite::params_from_iter(values))
                .map_err(sql_error(
                    temp,
                    format!("seed table {table} from {}", csv_path.display()),
                ))?;
        }
    }
    tx.commit().map_err(sql_error(temp, "commit seed"))
}
