//! PostgreSQL source: TLS chosen by `sslmode` in the connection string (libpq's modes), connect
//! and statement timeouts from `[source]`, and the main query streamed through a portal inside
//! one read-only, repeatable-read transaction (a consistent snapshot, fetched in batches, never
//! the whole result at once).

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::types::{FromSqlOwned, Type};
use postgres::{Client, Config, IsolationLevel, NoTls, Portal, Row, Transaction};

use super::raw::{Cell, RawRow, RawTable};
use crate::config::SourceConfig;
use crate::error::StoreError;

/// Rows fetched per round trip from the portal.
const BATCH_ROWS: i32 = 2_000;

/// libpq's `sslmode` values: what is encrypted, and what is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Disable,
    /// TLS when the server offers it; the certificate is not checked (libpq's default).
    Prefer,
    /// TLS always; the certificate is not checked.
    Require,
    /// TLS always; the certificate must chain to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

/// The connection string without the TLS keys tokio-postgres does not know, plus those keys.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    rest: String,
    mode: Tls,
    root_cert: Option<String>,
}

fn tls_mode(value: &str) -> Result<Tls, String> {
    Ok(match value {
        "disable" => Tls::Disable,
        "allow" | "prefer" => Tls::Prefer,
        "require" => Tls::Require,
        "verify-ca" => Tls::VerifyCa,
        "verify-full" => Tls::VerifyFull,
        other => {
            return Err(format!(
                "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
        }
    })
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgresql://...?sslmode=verify-full`) or a
/// key=value string (`host=db sslmode=require`).
fn split_tls(url: &str) -> Result<Parsed, String> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => mode = Some(tls_mode(&value)?),
            "sslrootcert" => root_cert = Some(value),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = percent_encoding::percent_decode_str(value)
                        .decode_utf8_lossy()
                        .into_owned();
                    if !take(key, value)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            let (key, value) = token.split_once('=').unwrap_or((token, ""));
            if !take(key.trim(), value.trim_matches('\'').to_string())? {
                kept.push(token);
            }
        }
        kept.join(" ")
    };
    Ok(Parsed {
        rest,
        mode: mode.unwrap_or(Tls::Prefer),
        root_cert,
    })
}

fn connect_error(url_env: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::PostgresConnect {
        message: format!("connect (URL from ${url_env}): {message}"),
    }
}

/// Connects with the URL held in the env var `source.url_env`, within
/// `source.connect_timeout_s` (TCP connect, TLS and login together), and sets the statement
/// timeout. Returns warnings to report (an unverified connection to a remote host).
pub(crate) fn connect(source: &SourceConfig) -> Result<(Client, Vec<String>), StoreError> {
    let url_env = source.url_env.as_str();
    let url = std::env::var(url_env).map_err(|_| StoreError::MissingEnv {
        var: url_env.to_string(),
    })?;
    let parsed = split_tls(&url).map_err(|m| connect_error(url_env, m))?;
    let mut config = Config::from_str(&parsed.rest).map_err(|e| connect_error(url_env, e))?;
    let timeout = Duration::from_secs(source.connect_timeout_s);
    config.connect_timeout(timeout);
    let mut warnings = Vec::new();
    let remote = config.get_hosts().iter().any(|h| match h {
        Host::Tcp(name) => !matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1"),
        Host::Unix(_) => false,
    });
    if remote && !matches!(parsed.mode, Tls::VerifyCa | Tls::VerifyFull) {
        warnings.push(format!(
            "postgres: the connection to a remote host does not verify the server's certificate \
             (sslmode {:?}); add sslmode=verify-full to ${url_env}",
            parsed.mode
        ));
    }
    config.ssl_mode(match parsed.mode {
        Tls::Disable => SslMode::Disable,
        Tls::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let tls = if parsed.mode == Tls::Disable {
        None
    } else {
        let mut builder = native_tls::TlsConnector::builder();
        if let Some(path) = &parsed.root_cert {
            let pem = std::fs::read(path)
                .map_err(|e| connect_error(url_env, format!("sslrootcert {path}: {e}")))?;
            let cert = native_tls::Certificate::from_pem(&pem)
                .map_err(|e| connect_error(url_env, format!("sslrootcert {path}: {e}")))?;
            builder
                .add_root_certificate(cert)
                .disable_built_in_roots(true);
        }
        match parsed.mode {
            Tls::Prefer | Tls::Require => {
                builder.danger_accept_invalid_certs(true);
            }
            Tls::VerifyCa => {
                builder.danger_accept_invalid_hostnames(true);
            }
            _ => {}
        }
        let connector = builder.build().map_err(|e| connect_error(url_env, e))?;
        Some(postgres_native_tls::MakeTlsConnector::new(connector))
    };
    // tokio-postgres bounds only the TCP connect; a server that accepts and then says nothing
    // would hang the login for ever. The connection is made on a helper thread and abandoned
    // (the process is about to fail anyway) when it does not finish in time.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let client = match tls {
            Some(tls) => config.connect(tls),
            None => config.connect(NoTls),
        };
        let _ = sender.send(client);
    });
    let mut client = match receiver.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| connect_error(url_env, with_causes(&e)))?,
        Err(_) => {
            return Err(connect_error(
                url_env,
                format!(
                    "no answer within {} s (source.connect_timeout_s)",
                    source.connect_timeout_s
                ),
            ))
        }
    };
    let millis = source.statement_timeout_s.saturating_mul(1000);
    client
        .batch_execute(&format!("SET statement_timeout = {millis}"))
        .map_err(|e| postgres_error("set statement_timeout", e, source))?;
    Ok((client, warnings))
}

/// The error and its causes: the driver's own text for a TLS failure is only "error performing
/// TLS handshake", the reason (an unknown CA, a wrong host name) is in its source.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = c.source();
    }
    text
}

fn postgres_error(context: &str, source: postgres::Error, config: &SourceConfig) -> StoreError {
    let cancelled = source.code() == Some(&postgres::error::SqlState::QUERY_CANCELED);
    let context = if cancelled {
        format!(
            "{context} (source.statement_timeout_s = {})",
            config.statement_timeout_s
        )
    } else {
        context.to_string()
    };
    StoreError::Postgres { context, source }
}

fn columns_of(statement: &postgres::Statement) -> Vec<(String, Type)> {
    statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect()
}

fn raw_row(row: &Row, ordinal: u64, columns: &[(String, Type)], separator: &str) -> RawRow {
    let cells = columns
        .iter()
        .enumerate()
        .map(|(j, (name, ty))| (name.clone(), postgres_cell(row, j, ty, separator)))
        .collect();
    RawRow {
        row: ordinal,
        cells: Ok(cells),
    }
}

/// Runs `sql` and collects every row (the topics table, grouped whole anyway).
pub(crate) fn query_all(
    client: &mut Client,
    source: &SourceConfig,
    sql: &str,
    context: &str,
    separator: &str,
) -> Result<RawTable<'static>, StoreError> {
    let statement = client
        .prepare(sql)
        .map_err(|e| postgres_error(context, e, source))?;
    let columns = columns_of(&statement);
    let result = client
        .query(&statement, &[])
        .map_err(|e| postgres_error(context, e, source))?;
    let rows = result
        .iter()
        .enumerate()
        .map(|(i, row)| raw_row(row, i as u64 + 1, &columns, separator))
        .collect();
    let names = Some(columns.into_iter().map(|(name, _)| name).collect());
    Ok(RawTable::collected("postgres".into(), names, rows))
}

/// A read-only transaction that sees one snapshot of the database for all its fetches.
pub(crate) fn snapshot_transaction<'c>(
    client: &'c mut Client,
    source: &SourceConfig,
) -> Result<Transaction<'c>, StoreError> {
    client
        .build_transaction()
        .read_only(true)
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| postgres_error("begin", e, source))
}

pub(crate) fn finish(
    transaction: Transaction<'_>,
    source: &SourceConfig,
) -> Result<(), StoreError> {
    transaction
        .commit()
        .map_err(|e| postgres_error("commit", e, source))
}

/// Runs `sql` through a portal, fetching `BATCH_ROWS` at a time as the rows are consumed.
pub(crate) fn query_streamed<'t>(
    transaction: &'t mut Transaction<'_>,
    source: &'t SourceConfig,
    sql: &str,
    context: &'t str,
    separator: &'t str,
) -> Result<RawTable<'t>, StoreError> {
    let statement = transaction
        .prepare(sql)
        .map_err(|e| postgres_error(context, e, source))?;
    let columns = columns_of(&statement);
    let portal: Portal = transaction
        .bind(&statement, &[])
        .map_err(|e| postgres_error(context, e, source))?;
    let names = Some(columns.iter().map(|(name, _)| name.clone()).collect());
    let mut buffer: VecDeque<Row> = VecDeque::new();
    let mut ordinal = 0u64;
    let mut done = false;
    let rows = std::iter::from_fn(move || {
        if buffer.is_empty() && !done {
            match transaction.query_portal(&portal, BATCH_ROWS) {
                Ok(batch) => {
                    done = batch.len() < BATCH_ROWS as usize;
                    buffer.extend(batch);
                }
                Err(e) => {
                    done = true;
                    return Some(Err(postgres_error(context, e, source)));
                }
            }
        }
        let row = buffer.pop_front()?;
        ordinal += 1;
        Some(Ok(raw_row(&row, ordinal, &columns, separator)))
    });
    Ok(RawTable {
        origin: "postgres".into(),
        columns: names,
        rows: Box::new(rows),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_are_taken_out_of_both_forms_of_connection_string() {
        let p = split_tls("postgresql://u:p@db:5432/x?sslmode=verify-full&application_name=a&sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(p.rest, "postgresql://u:p@db:5432/x?application_name=a");
        assert_eq!(p.mode, Tls::VerifyFull);
        assert_eq!(p.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let p = split_tls("postgres://u@db/x").unwrap();
        assert_eq!(
            (p.rest.as_str(), p.mode),
            ("postgres://u@db/x", Tls::Prefer)
        );
        let p = split_tls("host=db sslmode=disable user=u").unwrap();
        assert_eq!((p.rest.as_str(), p.mode), ("host=db user=u", Tls::Disable));
        let err = split_tls("postgres://db/x?sslmode=strict").unwrap_err();
        assert!(err.contains("`strict`"), "{err}");
    }
}
