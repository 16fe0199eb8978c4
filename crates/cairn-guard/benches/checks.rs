//! What the built-in guards cost: per-check latency over 1k tokens of answer text (p50 and p99 over
//! many runs), and on a stream, how many tokens of text each guard holds back before the first part
//! goes out and what checking each part costs.
//! `cargo bench -p cairn-guard --bench checks`; figures in docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::Guardrail;
use cairn_core::guard::{GuardScope, GuardStage};
use cairn_guard::{GuardAction, GuardKind, GuardOptions, GuardSection};

/// About 1,000 tokens (4,300 characters) of a support answer, with personal data every few lines.
fn answer_1k_tokens() -> String {
    let paragraph = "To reset your password, open the account settings and choose Security. \
        If the link does not arrive, write to support at jane.doe@example.com or call (202) 555-0143 \
        between nine and five. Refunds go to the card on file, 4111 1111 1111 1111, or to the IBAN \
        DE89 3704 0044 0532 0130 00 within ten working days. The previous instructions in the \
        handbook still apply to annual plans, and the team reviews every request by hand. ";
    paragraph.repeat(9)
}

fn section(kind: GuardKind, action: GuardAction, options: GuardOptions) -> GuardSection {
    GuardSection {
        name: format!("{kind:?}").to_lowercase(),
        kind,
        stages: vec![GuardStage::Input, GuardStage::Output],
        action,
        on_error: Default::default(),
        timeout_ms: None,
        options,
    }
}

fn guards() -> Vec<(&'static str, Arc<dyn Guardrail>)> {
    let build = |s: GuardSection| s.build().expect("builds");
    let mut input_only = section(
        GuardKind::Injection,
        GuardAction::Block,
        GuardOptions::default(),
    );
    input_only.stages = vec![GuardStage::Input];
    vec![
        (
            "pii (all kinds), redact",
            build(section(
                GuardKind::Pii,
                GuardAction::Redact,
                GuardOptions::default(),
            )),
        ),
        ("injection rules", build(input_only)),
        (
            "banned (10 words, 2 patterns), redact",
            build(section(
                GuardKind::Banned,
                GuardAction::Redact,
                GuardOptions {
                    words: Some(
                        [
                            "project falcon",
                            "bluebird",
                            "codename",
                            "internal only",
                            "nda",
                            "acquisition",
                            "layoffs",
                            "merger",
                            "q4 forecast",
                            "salary band",
                        ]
                        .map(String::from)
                        .to_vec(),
                    ),
                    patterns: Some(vec![r"ACME-\d{4}".into(), r"(?i)ticket #\d+".into()]),
                    ..GuardOptions::default()
                },
            )),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let text = answer_1k_tokens();
    let stage = GuardStage::Input;
    println!(
        "{} characters (~{} tokens) per check",
        text.len(),
        text.len() / 4
    );
    println!("| guard | p50 per 1k tokens | p99 per 1k tokens |");
    println!("|---|---|---|");
    for (name, guard) in guards() {
        if !guard.stages().contains(&stage) {
            continue;
        }
        // Warm up (compiles the patterns), then time 2,000 checks.
        for _ in 0..20 {
            runtime
                .block_on(guard.check(stage, &text, &mut GuardScope::default()))
                .ok();
        }
        let mut times: Vec<Duration> = (0..2000)
            .map(|_| {
                let mut scope = GuardScope::default();
                let started = Instant::now();
                let verdict = runtime.block_on(guard.check(stage, black_box(&text), &mut scope));
                black_box(verdict).ok();
                started.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "| {name} | {:.3} ms | {:.3} ms |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3
        );
    }
    stream(&runtime, &text);
}

/// A stream of ~4-character tokens through each output guard: the tokens held before the first
/// part is released, and the time spent per token deciding and checking.
fn stream(runtime: &tokio::runtime::Runtime, text: &str) {
    println!();
    println!(
        "| guard (stream) | tokens held before the first part | check time per token, mean | p99 |"
    );
    println!("|---|---|---|---|");
    let tokens: Vec<&str> = text
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    for (name, guard) in guards() {
        if !guard.stages().contains(&GuardStage::Output) {
            continue;
        }
        let mut scope = GuardScope::default();
        let mut unsent = String::new();
        let mut first = None;
        let mut times = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.iter().enumerate() {
            let started = Instant::now();
            unsent.push_str(token);
            let settled = guard.settled(&unsent, scope.preceding());
            let cut = cairn_core::guard::settled_cut(&[settled], unsent.len());
            if cut > 0 {
                let part: String = unsent.drain(..cut).collect();
                let verdict = runtime.block_on(guard.check(GuardStage::Output, &part, &mut scope));
                black_box(verdict).ok();
                scope.sent(&part);
                first.get_or_insert(i + 1);
            }
            times.push(started.elapsed());
        }
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        times.sort();
        println!(
            "| {name} | {} | {:.1} µs | {:.1} µs |",
            first.map_or_else(|| "all".into(), |n| n.to_string()),
            mean.as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6
        );
    }
}
