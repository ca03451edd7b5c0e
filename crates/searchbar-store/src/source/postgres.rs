//! PostgreSQL source (synchronous client, no TLS: the catalog server is expected on a trusted
//! network or localhost).

use postgres::types::{FromSqlOwned, Type};
use postgres::{Client, NoTls, Row};

use super::raw::{Cell, RawRow, RawTable};
use crate::error::StoreError;

/// Connects with the URL held in the env var `url_env`.
pub(crate) fn connect(url_env: &str) -> Result<Client, StoreError> {
    let url = std::env::var(url_env).map_err(|_| StoreError::MissingEnv {
        var: url_env.to_string(),
    })?;
    Client::connect(&url, NoTls).map_err(|source| StoreError::Postgres {
        context: format!("connect (URL from ${url_env})"),
        source,
    })
}

/// Runs `sql` and converts every value to text; unsupported column types become bad cells.
pub(crate) fn query(
    client: &mut Client,
    sql: &str,
    context: &str,
    separator: &str,
) -> Result<RawTable, StoreError> {
    let pg = |source| StoreError::Postgres {
        context: context.to_string(),
        source,
    };
    let statement = client.prepare(sql).map_err(pg)?;
    let columns: Vec<(String, Type)> = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect();
    let result = client.query(&statement, &[]).map_err(pg)?;
    let rows = result
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(j, (name, ty))| (name.clone(), postgres_cell(row, j, ty, separator)))
                .collect();
            RawRow {
                row: i as u64 + 1,
                cells: Ok(cells),
            }
        })
        .collect();
    let columns = Some(columns.into_iter().map(|(name, _)| name).collect());
    Ok(RawTable {
        origin: "postgres".into(),
        columns,
        rows,
    })
}

/// Accepts any column type without decoding it, to tell NULL from a value.
struct AnyValue;

impl<'a> postgres::types::FromSql<'a> for AnyValue {
    fn from_sql(_: &Type, _: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn text<T: FromSqlOwned + ToString>(row: &Row, i: usize) -> Cell {
    match row.try_get::<_, Option<T>>(i) {
        Ok(Some(value)) => Cell::Text(value.to_string()),
        Ok(None) => Cell::Null,
        Err(e) => Cell::Bad(format!("bad type: {e}")),
    }
}

fn postgres_cell(row: &Row, i: usize, ty: &Type, separator: &str) -> Cell {
    match *ty {
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => text::<String>(row, i),
        Type::INT2 => text::<i16>(row, i),
        Type::INT4 => text::<i32>(row, i),
        Type::INT8 => text::<i64>(row, i),
        Type::FLOAT4 => text::<f32>(row, i),
        Type::FLOAT8 => text::<f64>(row, i),
        Type::BOOL => text::<bool>(row, i),
        Type::OID => text::<u32>(row, i),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            match row.try_get::<_, Option<Vec<Option<String>>>>(i) {
                Ok(Some(items)) => Cell::Text(
                    items
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(separator),
                ),
                Ok(None) => Cell::Null,
                Err(e) => Cell::Bad(format!("bad type: {e}")),
            }
        }
        // NULL is fine in any column; only a present value of an unsupported type is bad.
        _ => match row.try_get::<_, Option<AnyValue>>(i) {
            Ok(None) => Cell::Null,
            _ => Cell::Bad(format!(
                "bad type: {} (cast it to text in the query)",
                ty.name()
            )),
        },
    }
}
