use crate::model::WeightsChoice;
use crate::ModelArgs;
use anyhow::Result;
use std::io::BufRead;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Texts to embed; without any, one text per line is read from stdin.
    texts: Vec<String>,
    /// Matmul threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Matmul weights: auto (4-bit where the model lock records a measured plan), int8, int4.
    #[arg(long, value_enum, default_value_t = WeightsChoice::Auto)]
    weights: WeightsChoice,
    /// Print the cosine similarity of every pair of texts instead of the vectors.
    #[arg(long)]
    similarity: bool,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (dir, int4) = super::model::resolve_weights(&args.model, args.weights)?;
    let encoder = crate::model::load_encoder(&dir, int4.as_ref(), threads)?;
    let texts = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()?
    } else {
        args.texts
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut bar = progress_bar(refs.len() as u64, "embedding");
    let vectors = encoder.embed_many(&refs, 16, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    if !args.similarity {
        for v in &vectors {
            println!("{}", serde_json::to_string(v)?);
        }
        return Ok(());
    }
    for (i, a) in vectors.iter().enumerate() {
        for (j, b) in vectors.iter().enumerate().skip(i + 1) {
            // Unit vectors: the dot product is the cosine.
            let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            println!("{cos:.3}  {:?} ~ {:?}", texts[i], texts[j]);
        }
    }
    Ok(())
}

/// A progress bar on stderr, hidden for short jobs and when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> Progress {
    let bar = if len < 64 {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:40} {pos}/{len} {per_sec} [{elapsed} < {eta}]",
            )
            .expect("a valid template"),
        );
        bar.set_message(what.to_string());
        bar
    };
    // indicatif draws nothing where stderr is not a terminal (a CI job's log): there a line
    // every LOG_EVERY says the work goes on, how fast, and how long it has left.
    let log = (len >= 64 && bar.is_hidden()).then(|| LogLine {
        what: what.to_string(),
        len,
        started: Instant::now(),
        last: Instant::now(),
    });
    Progress { bar, log }
}

const LOG_EVERY: Duration = Duration::from_secs(15);

/// The progress of a long count: a bar on a terminal, a periodic line in a log.
#[derive(Debug)]
pub struct Progress {
    bar: indicatif::ProgressBar,
    log: Option<LogLine>,
}

#[derive(Debug)]
struct LogLine {
    what: String,
    len: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn set_position(&mut self, done: u64) {
        self.bar.set_position(done);
        if let Some(l) = &mut self.log {
            if l.last.elapsed() >= LOG_EVERY && done < l.len {
                l.last = Instant::now();
                eprintln!("{}", l.line(done));
            }
        }
    }

    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl LogLine {
    fn line(&self, done: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let left = if rate > 0.0 {
            format!("{:.0} s left", (self.len - done) as f64 / rate)
        } else {
            "time left unknown".into()
        };
        format!(
            "{}: {done}/{} ({:.1}%), {rate:.1}/s, {left}",
            self.what,
            self.len,
            100.0 * done as f64 / self.len as f64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_says_how_far_how_fast_and_how_long_is_left() {
        let l = LogLine {
            what: "embedding".into(),
            len: 1000,
            started: Instant::now() - Duration::from_secs(10),
            last: Instant::now(),
        };
        let line = l.line(250);
        assert!(
            line.starts_with("embedding: 250/1000 (25.0%), 25.0/s, 30 s left"),
            "{line}"
        );
        assert!(l.line(0).ends_with("time left unknown"), "{}", l.line(0));
    }
}
