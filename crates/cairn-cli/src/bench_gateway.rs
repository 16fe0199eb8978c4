//! `cairn bench gateway`: what the gateway adds to a model call. A fixed-latency mock
//! OpenAI-compatible upstream (`cairn bench mock-upstream`, its own process) is called directly,
//! through `cairn serve` (its own process, logging and metrics on), and optionally through the
//! LiteLLM proxy, at fixed request rates (open loop: requests leave on schedule whatever the
//! answers do, and latency counts from the scheduled time, so a proxy that falls behind is charged
//! for its queue). Overhead is each percentile minus the direct call's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The mock upstream's fixed latency.
    #[arg(long, default_value_t = 20)]
    pub upstream_latency_ms: u64,
    /// Request rates to measure, per second.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub rates: Vec<u32>,
    /// Measured seconds per rate and target, after one second of warm-up.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The LiteLLM proxy's `litellm` executable, to measure it beside Cairn
    /// (`scripts/litellm-env.sh` installs it and prints its path).
    #[arg(long)]
    pub litellm: Option<PathBuf>,
    /// Print one JSON object per row instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run the proxies (Cairn, LiteLLM) on these CPUs only, e.g. `1`, through `taskset`; run the
    /// benchmark itself under `taskset -c 0` so that the load generator and the mock keep to
    /// the others.
    #[arg(long, value_name = "LIST")]
    pub proxy_cpus: Option<String>,
}

/// A command for a proxy, pinned to `cpus` through `taskset` when given.
fn proxy_command(program: &Path, cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus).arg(program);
            command
        }
        None => Command::new(program),
    }
}

#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
}

/// The mock upstream: every POST gets a fixed chat completion after the fixed latency.
pub async fn mock_upstream(args: &MockArgs) -> Result<()> {
    let latency = Duration::from_millis(args.latency_ms);
    let answer = move |body: axum::body::Bytes| async move {
        tokio::time::sleep(latency).await;
        let model = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["model"].as_str().map(str::to_owned))
            .unwrap_or_default();
        axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
        }))
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(answer))
        .route("/chat/completions", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The bearer token every request carries: LiteLLM's master key; an anonymous caller to Cairn.
const BEARER: &str = "sk-cairn-bench";

/// A child process, killed when dropped.
struct Process {
    child: Child,
}

impl Process {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// User plus system CPU time so far, in seconds (Linux clock ticks of 1/100 s).
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
        Some((ticks(11)? + ticks(12)?) / 100.0)
    }

    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts a proxy listening on `port` and waits until `health_path` answers; returns it with its
/// OpenAI base URL.
async fn start_proxy(
    mut command: Command,
    name: &'static str,
    port: u16,
    health_path: &str,
    client: &reqwest::Client,
) -> Result<(Process, String)> {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut process = Process { child };
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}{health_path}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(status) = process.child.try_wait()? {
            bail!("{name} exited during startup ({status})");
        }
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((process, format!("{base}/v1")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{name} did not answer {url} within 120 s")
}

async fn start_mock(latency_ms: u64) -> Result<(Process, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["bench", "mock-upstream", "--latency-ms"])
        .arg(latency_ms.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the mock upstream")?;
    let stdout = child.stdout.take().context("mock stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let addr = line.trim().to_owned();
    if addr.is_empty() {
        bail!("the mock upstream printed no address");
    }
    Ok((Process { child }, format!("http://{addr}/v1")))
}

async fn start_cairn(
    dir: &Path,
    upstream: &str,
    client: &reqwest::Client,
    cpus: Option<&str>,
) -> Result<(Process, String)> {
    let port = free_port()?;
    let config = dir.join("cairn.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"info\"\n\
             [embedding]\nremote = \"mock\"\ndimension = 384\n\
             [[models]]\nname = \"mock\"\nprovider = \"openai-compatible\"\nbase_url = {upstream:?}\n\
             input_price_per_mtok = 2.5\noutput_price_per_mtok = 10.0\n",
            data = dir.join("data").display().to_string(),
        ),
    )?;
    let mut command = proxy_command(&std::env::current_exe()?, cpus);
    command.arg("--config").arg(&config).arg("serve");
    start_proxy(command, "cairn serve", port, "/healthz", client).await
}

async fn start_litellm(
    litellm: &Path,
    dir: &Path,
    upstream: &str,
    client: &reqwest::Client,
    cpus: Option<&str>,
) -> Result<(Process, String)> {
    let port = free_port()?;
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: mock\n    litellm_params:\n      model: openai/mock\n      \
             api_base: {upstream}\n      api_key: unused\n      input_cost_per_token: 0.0000025\n      \
             output_cost_per_token: 0.00001\nlitellm_settings:\n  callbacks: [\"prometheus\"]\n"
        ),
    )?;
    let mut command = proxy_command(litellm, cpus);
    command
        // The proxy refuses to start without a master key; clients send it as their bearer token.
        .env("LITELLM_MASTER_KEY", BEARER)
        // No internet here: use the bundled price map instead of fetching it at startup.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port"])
        .arg(port.to_string());
    start_proxy(
        command,
        "the LiteLLM proxy",
        port,
        "/health/liveliness",
        client,
    )
    .await
}

/// Latencies of one run, in milliseconds, and what failed.
struct Run {
    latencies: Vec<f64>,
    /// `x-cairn-overhead-ms`, where sent: Cairn's handler from the parsed request to the built
    /// response, minus the whole upstream call (Cairn's outbound client work included). It leaves
    /// out reading and parsing the request, writing the response, the outbound client and the
    /// background writes, so it is a part of Cairn's time, not all of it.
    reported: Vec<f64>,
    errors: usize,
    seconds: f64,
}

async fn load(client: &reqwest::Client, base: &str, rate: u32, seconds: u64) -> Run {
    let url = format!("{base}/chat/completions");
    let body = Arc::new(
        json!({"model": "mock", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16})
            .to_string(),
    );
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..total {
        let due = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(due).await;
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {BEARER}"))
                .body(body.to_string())
                .send()
                .await;
            let ok = match response {
                Ok(response) if response.status().is_success() => {
                    let reported = response
                        .headers()
                        .get("x-cairn-overhead-ms")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<f64>().ok());
                    response.bytes().await.ok().map(|_| reported)
                }
                _ => None,
            };
            // From the scheduled time: a late start is the proxy's (or the machine's) queue.
            (ok, due.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut run = Run {
        latencies: Vec::with_capacity(total as usize),
        reported: Vec::new(),
        errors: 0,
        seconds: 0.0,
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((Some(reported), latency)) => {
                run.latencies.push(latency);
                run.reported.extend(reported);
            }
            _ => run.errors += 1,
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Row {
    target: &'static str,
    rate: u32,
    achieved: f64,
    p50: f64,
    p99: f64,
    reported: Option<(f64, f64)>,
    errors: usize,
    /// The proxy's CPU time per request during the run.
    cpu_ms_per_request: Option<f64>,
    rss: Option<f64>,
}

pub async fn gateway(args: &GatewayArgs) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2_000)
        .timeout(Duration::from_secs(30))
        .build()?;
    let dir = tempfile_dir()?;
    let (_mock, upstream) = start_mock(args.upstream_latency_ms).await?;
    let mut rows = measure(args, &client, "direct", &upstream, None).await;
    // Each proxy runs only while it is measured, so that one's background work (LiteLLM keeps
    // busy after a backlog) does not slow the other.
    {
        let (cairn, base) =
            start_cairn(&dir, &upstream, &client, args.proxy_cpus.as_deref()).await?;
        rows.extend(measure(args, &client, "cairn", &base, Some(&cairn)).await);
    }
    if let Some(path) = &args.litellm {
        let (litellm, base) =
            start_litellm(path, &dir, &upstream, &client, args.proxy_cpus.as_deref()).await?;
        rows.extend(measure(args, &client, "litellm", &base, Some(&litellm)).await);
    }
    if args.json {
        for row in &rows {
            println!("{}", row_json(row, &rows));
        }
    } else {
        print_table(args, &rows);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One target at every rate: a second of warm-up, then the measured run.
async fn measure(
    args: &GatewayArgs,
    client: &reqwest::Client,
    target: &'static str,
    base: &str,
    process: Option<&Process>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for &rate in &args.rates {
        eprintln!("{target} at {rate} req/s: warm-up, then {} s", args.seconds);
        load(client, base, rate, 1).await;
        let cpu_before = process.and_then(Process::cpu_seconds);
        let run = load(client, base, rate, args.seconds).await;
        let cpu = process
            .and_then(Process::cpu_seconds)
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let mut latencies = run.latencies;
        latencies.sort_by(f64::total_cmp);
        let mut reported = run.reported;
        reported.sort_by(f64::total_cmp);
        let calls = (latencies.len() + run.errors).max(1) as f64;
        rows.push(Row {
            target,
            rate,
            achieved: latencies.len() as f64 / run.seconds,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            reported: (!reported.is_empty())
                .then(|| (percentile(&reported, 50.0), percentile(&reported, 99.0))),
            errors: run.errors,
            cpu_ms_per_request: cpu.map(|seconds| seconds * 1000.0 / calls),
            rss: process.and_then(Process::peak_rss_mib),
        });
    }
    rows
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cairn-bench-gateway-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The direct call's row at the same rate, which overheads are measured against.
fn direct_of<'a>(row: &Row, rows: &'a [Row]) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.target == "direct" && r.rate == row.rate && row.target != "direct")
}

fn row_json(row: &Row, rows: &[Row]) -> Value {
    let direct = direct_of(row, rows);
    json!({
        "target": row.target, "rate": row.rate, "answered_per_s": row.achieved,
        "p50_ms": row.p50, "p99_ms": row.p99,
        "overhead_p50_ms": direct.map(|d| row.p50 - d.p50),
        "overhead_p99_ms": direct.map(|d| row.p99 - d.p99),
        "reported_overhead_ms": row.reported.map(|(p50, p99)| json!({"p50": p50, "p99": p99})),
        "errors": row.errors, "cpu_ms_per_request": row.cpu_ms_per_request, "peak_rss_mib": row.rss,
    })
}

fn print_table(args: &GatewayArgs, rows: &[Row]) {
    println!(
        "mock upstream latency {} ms; {} s per run; latency from each request's scheduled start",
        args.upstream_latency_ms, args.seconds
    );
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::ASCII_MARKDOWN);
    table.set_header([
        "target",
        "rate (req/s)",
        "answered/s",
        "p50 (ms)",
        "p99 (ms)",
        "overhead p50 (ms)",
        "overhead p99 (ms)",
        "handler minus upstream call, x-cairn-overhead-ms p50 / p99 (ms)",
        "errors",
        "CPU per request (ms)",
        "peak RSS (MiB)",
    ]);
    for row in rows {
        let direct = direct_of(row, rows);
        let overhead = |value: f64, of: fn(&Row) -> f64| match direct {
            Some(direct) => format!("{:.2}", value - of(direct)),
            None => "-".to_owned(),
        };
        table.add_row([
            row.target.to_owned(),
            row.rate.to_string(),
            format!("{:.0}", row.achieved),
            format!("{:.2}", row.p50),
            format!("{:.2}", row.p99),
            overhead(row.p50, |r| r.p50),
            overhead(row.p99, |r| r.p99),
            row.reported
                .map_or("-".to_owned(), |(p50, p99)| format!("{p50:.3} / {p99:.3}")),
            row.errors.to_string(),
            row.cpu_ms_per_request
                .map_or("-".to_owned(), |ms| format!("{ms:.3}")),
            row.rss.map_or("-".to_owned(), |mib| format!("{mib:.0}")),
        ]);
    }
    println!("{table}");
    println!(
        "p50/p99: latency from each request's scheduled start to its last byte received, at the client; \
         overhead: that percentile minus the direct call's at the same rate (the whole cost of the proxy on \
         the client's latency, to the resolution of comparing two runs); handler minus upstream call: \
         Cairn's x-cairn-overhead-ms, from the parsed request to the built response minus the whole \
         upstream call (it leaves out reading and parsing the request, writing the response, Cairn's own \
         outbound client work and background writes: a part of Cairn's time, not all of it); CPU per \
         request: the proxy process's user + system CPU time over the run divided by the requests sent \
         (everything it did, background work included)"
    );
}
