//! `cairn bench generate`: prompt-processing and decode speed of a configured model, measured
//! through the same `ChatModel` port the gateway uses (so it works for local and remote models).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_core::model::{ChatChunk, ChatMessage, ChatModel, ChatRequest, Role};
use clap::Args;
use futures_util::StreamExt;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A model or route name from the configuration.
    #[arg(long)]
    pub model: String,
    /// Words of filler text in the prompt (roughly 1.3 tokens each).
    #[arg(long, default_value_t = 300)]
    pub prompt_words: usize,
    /// Tokens to generate per run.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
    /// Measured runs, after one warm-up run.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

struct Run {
    prompt_tokens: u32,
    output_tokens: u32,
    to_first_token: Duration,
    total: Duration,
}

async fn run_once(model: &dyn ChatModel, request: &ChatRequest) -> Result<Run> {
    let started = Instant::now();
    let mut stream = model.stream(request).await?;
    let mut first = None;
    while let Some(chunk) = stream.next().await {
        match chunk? {
            ChatChunk::Delta(_) | ChatChunk::ToolCall(_) => {
                first.get_or_insert_with(|| started.elapsed());
            }
            ChatChunk::Step(_) => {}
            ChatChunk::Finish { usage, .. } => {
                let total = started.elapsed();
                return Ok(Run {
                    prompt_tokens: usage.input_tokens,
                    output_tokens: usage.output_tokens,
                    to_first_token: first.unwrap_or(total),
                    total,
                });
            }
        }
    }
    bail!("the stream ended without finishing")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn generate(model: &dyn ChatModel, args: &GenerateArgs) -> Result<()> {
    let filler = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
        .repeat(args.prompt_words / 14 + 1);
    let request = ChatRequest {
        messages: vec![
            ChatMessage::new(Role::System, "You are a helpful assistant."),
            ChatMessage::new(
                Role::User,
                format!("{filler}\nSummarise the text above in detail."),
            ),
        ],
        max_tokens: Some(args.max_tokens),
        ..Default::default()
    };
    run_once(model, &request).await.context("warm-up run")?;
    let mut runs = Vec::with_capacity(args.runs);
    for index in 0..args.runs.max(1) {
        runs.push(
            run_once(model, &request)
                .await
                .with_context(|| format!("run {}", index + 1))?,
        );
    }
    let prompt_rate = median(
        runs.iter()
            .map(|r| f64::from(r.prompt_tokens) / r.to_first_token.as_secs_f64())
            .collect(),
    );
    let decode_rate = median(
        runs.iter()
            .map(|r| {
                f64::from(r.output_tokens.saturating_sub(1))
                    / (r.total - r.to_first_token).as_secs_f64().max(1e-9)
            })
            .collect(),
    );
    let first_token_ms = median(
        runs.iter()
            .map(|r| r.to_first_token.as_secs_f64() * 1000.0)
            .collect(),
    );
    let last = runs.last().context("no runs")?;
    println!(
        "model {}: {} prompt tokens, {} generated tokens, median of {} runs",
        args.model,
        last.prompt_tokens,
        last.output_tokens,
        runs.len()
    );
    println!(
        "  prompt processing: {prompt_rate:.1} tokens/s (time to first token {first_token_ms:.0} ms)"
    );
    println!("  decode:            {decode_rate:.1} tokens/s");
    Ok(())
}
