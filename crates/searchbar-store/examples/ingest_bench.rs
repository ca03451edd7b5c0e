//! Ingest throughput and memory, for `scripts/bench/ingest.sh`.
//!
//! `ingest_bench rows <csv|jsonl> <N> <dir>`: writes N short catalog rows to `<dir>/rows.<ext>`
//! and loads them, printing rows/s. `ingest_bench long-line <MiB> <dir>`: a CSV whose second
//! record is one line of that many MiB, loaded with the default `source.max_record_bytes`;
//! prints whether it was quarantined and the process's peak resident memory (VmHWM).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use searchbar_store::{load, DocumentsConfig, SourceConfig, SourceKind};

fn documents() -> DocumentsConfig {
    DocumentsConfig {
        template: "{title}. {description} {domain}".into(),
        ..DocumentsConfig::default()
    }
}

fn source(kind: SourceKind, path: &Path) -> SourceConfig {
    SourceConfig {
        kind,
        path: path.to_path_buf(),
        ..SourceConfig::default()
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("rows") => {
            let kind = if args[2] == "jsonl" {
                SourceKind::Jsonl
            } else {
                SourceKind::Csv
            };
            let n: usize = args[3].parse().expect("row count");
            let path = Path::new(&args[4]).join(format!("rows.{}", args[2]));
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            if kind == SourceKind::Csv {
                writeln!(out, "id,title,description,learn,domain,url").unwrap();
            }
            for i in 0..n {
                if kind == SourceKind::Csv {
                    writeln!(out, "d{i},Project {i},A short description of {i},rust,web,https://example.org/{i}").unwrap();
                } else {
                    writeln!(out, "{{\"id\":\"d{i}\",\"title\":\"Project {i}\",\"description\":\"A short description of {i}\",\"learn\":\"rust\",\"domain\":\"web\",\"url\":\"https://example.org/{i}\"}}").unwrap();
                }
            }
            out.flush().unwrap();
            drop(out);
            let started = Instant::now();
            let ingested = load(&source(kind, &path), &documents(), Path::new(".")).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(ingested.documents.len(), n);
            println!(
                "{} rows {n}: {seconds:.3} s, {:.0} rows/s, peak RSS {:.0} MiB",
                args[2],
                n as f64 / seconds,
                peak_rss_mib()
            );
        }
        Some("long-line") => {
            let mib: usize = args[2].parse().expect("MiB");
            let path = Path::new(&args[3]).join("long.csv");
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            writeln!(out, "id,title,description,learn,domain,url").unwrap();
            writeln!(out, "a,First,,,web,").unwrap();
            write!(out, "b,Huge,").unwrap();
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..mib {
                out.write_all(&chunk).unwrap();
            }
            writeln!(out, ",,web,").unwrap();
            writeln!(out, "c,Last,,,web,").unwrap();
            out.flush().unwrap();
            drop(out);
            let started = Instant::now();
            let ingested = load(
                &source(SourceKind::Csv, &path),
                &documents(),
                Path::new("."),
            )
            .unwrap();
            let seconds = started.elapsed().as_secs_f64();
            let ids: Vec<&str> = ingested.documents.iter().map(|d| d.id.as_str()).collect();
            println!(
                "one {mib} MiB record: {seconds:.2} s, documents {ids:?}, quarantined {:?}, peak RSS {:.0} MiB",
                ingested
                    .quarantined
                    .iter()
                    .map(|q| format!("row {}: {}", q.row, q.reason))
                    .collect::<Vec<_>>(),
                peak_rss_mib()
            );
            std::fs::remove_file(&path).unwrap();
        }
        _ => {
            eprintln!("usage: ingest_bench rows <csv|jsonl> <N> <dir> | long-line <MiB> <dir>");
            std::process::exit(2);
        }
    }
}
