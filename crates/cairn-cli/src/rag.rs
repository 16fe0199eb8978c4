//! `cairn ingest` and `cairn search`.

use std::path::PathBuf;
use std::time::Duration;

use cairn_rag::{DocumentOutcome, IngestReport, Progress, SearchMode, SearchRequest, Source};
use cairn_runtime::rag::Rag;
use clap::Args;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// A file, a directory (walked; hidden and .gitignore'd files are skipped) or an http(s) URL.
    pub source: String,
    /// The collection to ingest into; created when missing.
    #[arg(long, short)]
    pub collection: String,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skips the eval suites attached to the collection (`[[evals.continuous]]`), which otherwise
    /// run when the ingest changed it.
    #[arg(long)]
    pub no_eval: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for, as a user would ask it.
    pub query: String,
    #[arg(long, short)]
    pub collection: String,
    /// How many passages.
    #[arg(long, short = 'k', default_value_t = 5)]
    pub top_k: usize,
    /// dense, lexical or hybrid.
    #[arg(long, default_value = "hybrid", value_parser = parse_mode)]
    pub mode: SearchMode,
    /// Diversify with MMR: 1.0 is pure relevance, 0.0 pure diversity.
    #[arg(long)]
    pub mmr: Option<f32>,
    /// Reorder the candidates with the configured cross-encoder (rerank.model).
    #[arg(long)]
    pub rerank: bool,
    /// Print the passages as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_mode(value: &str) -> Result<SearchMode, String> {
    match value {
        "dense" => Ok(SearchMode::Dense),
        "lexical" => Ok(SearchMode::Lexical),
        "hybrid" => Ok(SearchMode::Hybrid),
        other => Err(format!(
            "`{other}` is not a mode; use dense, lexical or hybrid"
        )),
    }
}

/// Shows progress on stderr while files are processed: a bar with the chunks and tokens embedded
/// on a terminal; otherwise (CI logs, a pipe) a line every [`LINE_EVERY`] and at the end.
struct Bar {
    bar: ProgressBar,
    /// Off a terminal: when the last line was printed.
    lines: Option<std::sync::Mutex<std::time::Instant>>,
    embedded: std::sync::Mutex<(usize, usize)>,
}

/// How often a progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

impl Bar {
    fn line(&self, force: bool) {
        let Some(last) = &self.lines else { return };
        let Ok(mut last) = last.lock() else { return };
        if !force && last.elapsed() < LINE_EVERY {
            return;
        }
        *last = std::time::Instant::now();
        let (chunks, tokens) = self.embedded.lock().map(|e| *e).unwrap_or_default();
        eprintln!(
            "ingest: {}/{} files, {chunks} chunks ({tokens} tokens) embedded, {:.0} s",
            self.bar.position(),
            self.bar.length().unwrap_or(0),
            self.bar.elapsed().as_secs_f64()
        );
    }
}

impl Progress for Bar {
    fn discovered(&self, count: usize) {
        self.bar.set_length(count as u64);
        self.line(true);
    }
    fn processed(&self, source: &str, outcome: DocumentOutcome) {
        if outcome == DocumentOutcome::Removed {
            return;
        }
        let name = source.rsplit('/').next().unwrap_or(source);
        self.bar.set_message(name.to_owned());
        self.bar.inc(1);
        self.line(self.bar.length() == Some(self.bar.position()));
    }
    fn embedded(&self, chunks: usize, tokens: usize) {
        if let Ok(mut embedded) = self.embedded.lock() {
            *embedded = (chunks, tokens);
        }
        self.bar
            .set_prefix(format!("{chunks} chunks, {tokens} tokens embedded"));
    }
}

/// Ingests and prints the report (what failed is listed; the rest is kept).
pub async fn ingest(rag: &Rag, args: IngestArgs) -> anyhow::Result<IngestReport> {
    let source = if args.source.starts_with("http://") || args.source.starts_with("https://") {
        Source::Url(args.source.clone())
    } else {
        Source::Path(PathBuf::from(&args.source))
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files · {prefix} · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if args.json || !terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let progress = Bar {
        bar: bar.clone(),
        lines: (!terminal && !args.json).then(|| std::sync::Mutex::new(std::time::Instant::now())),
        embedded: std::sync::Mutex::new((0, 0)),
    };
    let report = rag
        .ingestor
        .ingest(&args.collection, source, &progress)
        .await;
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(report)
}

fn print_report(report: &IngestReport) {
    let seconds = report.elapsed.as_secs_f64().max(1e-3);
    println!(
        "{}: {} added, {} updated, {} unchanged, {} removed, {} failed",
        report.collection,
        report.added,
        report.updated,
        report.unchanged,
        report.removed,
        report.failed.len()
    );
    println!(
        "{} chunks embedded ({} tokens), {} kept; {:.1} MB of text in {:.1} s ({:.0} chunks/s)",
        report.chunks_embedded,
        report.tokens_embedded,
        report.chunks_kept,
        report.bytes as f64 / 1e6,
        seconds,
        report.chunks_embedded as f64 / seconds
    );
    if report.repaired_missing + report.repaired_orphans > 0 {
        println!(
            "repaired an interrupted earlier run: {} chunks embedded, {} stale vectors deleted",
            report.repaired_missing, report.repaired_orphans
        );
    }
    for failure in &report.failed {
        eprintln!("failed: {}: {}", failure.source, failure.reason);
    }
}

pub async fn search(rag: &Rag, args: SearchArgs) -> anyhow::Result<()> {
    let mut request = SearchRequest::new(&args.collection, &args.query, args.top_k);
    request.mode = args.mode;
    request.mmr_lambda = args.mmr;
    request.rerank = args.rerank;
    let passages = rag.retriever.search(&request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&passages)?);
        return Ok(());
    }
    if passages.is_empty() {
        println!("no passage matches in `{}`", args.collection);
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["#", "score", "passage", "citation"]);
    for (i, passage) in passages.iter().enumerate() {
        let text: String = passage
            .content
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let excerpt: String = if text.chars().count() > 160 {
            format!("{}…", text.chars().take(160).collect::<String>())
        } else {
            text
        };
        let mut citation = passage.title.clone();
        for heading in passage.heading_path.iter().filter(|h| **h != passage.title) {
            citation.push_str(" › ");
            citation.push_str(heading);
        }
        citation.push_str(&format!(
            "\n{} [{}..{}]",
            passage.url.as_deref().unwrap_or(&passage.source),
            passage.char_start,
            passage.char_end
        ));
        table.add_row(vec![
            format!("{}", i + 1),
            format!("{:.4}", passage.score),
            excerpt,
            citation,
        ]);
    }
    println!("{table}");
    Ok(())
}
