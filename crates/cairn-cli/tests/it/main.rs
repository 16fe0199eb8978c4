//! End-to-end tests of the `cairn` binary: real processes, real sockets, real databases.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_postgres::testing::TestDatabase;
use serde_json::Value;

mod admin;
mod agents;
mod browser;
mod clients;
mod continuous;
mod dataset;
mod deploy;
mod eval;
mod front_doors;
mod guards;
mod mcp;
mod online;
mod promotion;
mod rag;
mod secrets;
mod web;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// A `cairn` command in its own working directory, with no `CAIRN__` variables inherited.
fn cairn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CAIRN__") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command
}

/// A running `cairn serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on a free port with JSON logs and waits until it listens.
    fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut env = env.to_vec();
        env.push(("CAIRN__LOG__FORMAT", "json"));
        let mut child = cairn(dir, &["serve", "--listen", "127.0.0.1:0"], &env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cairn");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().expect("stderr"));
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "cairn is listening"
                {
                    let _ = addr_tx.send(event["address"].as_str().unwrap_or_default().to_owned());
                }
                log.lock().expect("lock").push_str(&(line + "\n"));
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("a socket address"),
            Err(_) => {
                let _ = child.kill();
                panic!("cairn did not start:\n{}", stderr.lock().expect("lock"));
            }
        };
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cairn did not exit within {limit:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's `/metrics` text.
async fn metrics_text(server: &Server) -> String {
    reqwest::get(server.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// `cairn serve` in a fresh directory with sign-in through `provider`.
fn serve_with_oidc(provider: &cairn_testkit::oidc::FakeOidc) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[auth]\noidc_issuer = \"{}\"\noidc_client_id = \"{}\"\n",
            provider.issuer(),
            cairn_testkit::oidc::CLIENT_ID
        ),
    )
    .expect("config");
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

/// Sends the request and reads its JSON body.
async fn json_body(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("a JSON body")
}

fn promtool() -> PathBuf {
    if let Ok(path) = std::env::var("CAIRN_PROMTOOL") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/cairn-tools/promtool");
    if cached.is_file() {
        return cached;
    }
    panic!(
        "promtool not found: run scripts/fetch-promtool.sh (scripts/test.sh does) or set CAIRN_PROMTOOL"
    );
}

#[tokio::test]
async fn embedded_default_serves_and_keeps_its_data_under_dot_cairn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let (status, body) = get_json(&server.url("/healthz")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get_json(&server.url("/readyz")).await;
    assert_eq!(
        (status, body["checks"]["catalog"]["backend"].as_str()),
        (200, Some("sqlite")),
        "{body}"
    );
    assert!(
        dir.path().join(".cairn/catalog.db").is_file(),
        "the SQLite catalog lives under ./.cairn"
    );

    let metrics = metrics_text(&server).await;
    let mut check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write");
    let output = check.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n---\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(metrics.contains("cairn_build_info"), "{metrics}");
}

/// Polls `/metrics` until `n` requests are in flight (the poll itself counts as one).
fn wait_for_in_flight(server: &Server, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = http_get(server.addr, "/metrics");
        let in_flight = body
            .lines()
            .find_map(|line| line.strip_prefix("cairn_http_requests_in_flight "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if in_flight >= f64::from(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slow request never showed as in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn sigterm_lets_the_in_flight_request_finish_then_exits_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A grace period far beyond the deadlines below: exiting within them means the server exited
    // because the request finished, not because the grace period ran out.
    let mut server = Server::start(
        dir.path(),
        &[("CAIRN__SERVER__SHUTDOWN_GRACE_SECS", "3600")],
    );
    let body = r#"{"name": "slow-upload", "description": "sent in two halves"}"#;
    let (first, second) = body.split_at(20);

    // A client that sends the headers and half the body, then stalls: the request is in flight.
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    write!(
        stream,
        "POST /v1/collections HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .expect("write first half");
    stream.flush().expect("flush");
    wait_for_in_flight(&server, 2);

    server.signal("TERM");
    // New connections are refused once draining starts; wait for that rather than guessing a delay
    // (the deadline only catches a hang).
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(server.addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener stayed open after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    stream
        .write_all(second.as_bytes())
        .expect("write second half");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight request completes:\n{response}"
    );
    assert!(response.contains("slow-upload"), "{response}");

    let status = server.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        server.logs()
    );
    let logs = server.logs();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains("grace period"), "{logs}");
}

/// Runs `cairn serve` with a bad configuration: it must fail with every fragment in its message and
/// leave the working directory untouched.
fn check_startup_refused(config: Option<&str>, env: &[(&str, &str)], fragments: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(text) = config {
        std::fs::write(dir.path().join("cairn.toml"), text).expect("write config");
    }
    let output = cairn(dir.path(), &["serve", "--listen", "127.0.0.1:0"], env)
        .output()
        .expect("run cairn");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "cairn started with a bad config: {stderr}"
    );
    for fragment in fragments {
        assert!(
            stderr.contains(fragment),
            "expected `{fragment}` in:\n{stderr}"
        );
    }
    assert!(
        !dir.path().join(".cairn").exists(),
        "a failed start wrote the data directory:\n{stderr}"
    );
}

#[test]
fn bad_configuration_fails_at_startup_with_the_fix_and_writes_nothing() {
    check_startup_refused(
        Some("[server]\nlisten = \"127.0.0.1:0\"\nmax_body_byte = 5\n"),
        &[],
        &[
            "cairn.toml",
            "line 3",
            "unknown field `max_body_byte`",
            "expected one of",
        ],
    );
    check_startup_refused(
        Some("[database]\nmax_connections = \"many\"\n"),
        &[],
        &["cairn.toml", "line 2", "invalid type"],
    );
    check_startup_refused(
        Some("[database]\nurl = \"mysql://root@localhost/cairn\"\n"),
        &[],
        &[
            "cairn.toml line 2",
            "`database.url`",
            "`mysql` scheme is not supported",
            "postgres://USER:PASSWORD@HOST:5432/DATABASE",
        ],
    );
    check_startup_refused(
        None,
        &[
            (
                "CAIRN__DATABASE__URL",
                "postgres://postgres@127.0.0.1:1/cairn",
            ),
            ("CAIRN__DATABASE__CONNECT_TIMEOUT_SECS", "1"),
        ],
        &[
            "environment variable CAIRN__DATABASE__URL",
            "cannot connect to PostgreSQL",
            "check that PostgreSQL is running",
        ],
    );
    check_startup_refused(
        None,
        &[("CAIRN__SERVER__PORT", "8080")],
        &["CAIRN__SERVER__PORT", "unknown field `port`"],
    );
}

#[test]
fn serve_check_validates_and_exits_without_writing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = cairn(dir.path(), &["serve", "--check"], &[])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "configuration is valid: listen 127.0.0.1:8080, catalog SQLite at .cairn/catalog.db"
        ),
        "{stdout}"
    );
    assert!(!dir.path().join(".cairn").exists());
}

#[tokio::test]
async fn postgres_mode_is_chosen_by_environment() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let migrate = cairn(
        dir.path(),
        &["migrate", "--database-url", &database.url],
        &[],
    )
    .output()
    .expect("run migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("catalog migrated: PostgreSQL"));

    let mut server = Server::start(dir.path(), &[("CAIRN__DATABASE__URL", &database.url)]);
    let (status, body) = get_json(&server.url("/readyz")).await;
    assert_eq!(
        (status, body["checks"]["catalog"]["backend"].as_str()),
        (200, Some("postgres")),
        "{body}"
    );
    let created = reqwest::Client::new()
        .post(server.url("/v1/collections"))
        .json(&serde_json::json!({"name": "handbook"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let (_, list) = get_json(&server.url("/v1/collections")).await;
    assert_eq!(list["data"][0]["name"], "handbook");
    assert!(
        !dir.path().join(".cairn").exists(),
        "PostgreSQL mode keeps nothing in the data directory"
    );

    // SIGTERM: every background task (the prompt-label feed, pruning) ends with the server, which
    // exits cleanly instead of retrying on a closed pool.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(60));
    let logs = server.logs();
    assert!(status.success(), "exit status {status:?}\n{logs}");
    assert!(logs.contains("stopped"), "{logs}");
    assert!(!logs.contains("closed pool"), "{logs}");
}

#[test]
fn migrate_creates_the_embedded_catalog() {
    let dir = tempfile::tempdir().expect("temp dir");
    for _ in 0..2 {
        let output = cairn(dir.path(), &["migrate"], &[]).output().expect("run");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .contains("catalog migrated: SQLite at .cairn/catalog.db")
        );
    }
    assert!(dir.path().join(".cairn/catalog.db").is_file());
}

/// Runs `cairn ARGS` in `dir` and returns (success, stdout, stderr).
/// `cairn bench gateway` starts its mock upstream and a `cairn serve`, loads both and reports
/// latency, overhead and memory (figures are for docs/benchmarks.md, not checked here).
#[test]
fn the_gateway_benchmark_runs_against_its_mock_upstream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, stdout, stderr) = run_cairn(
        dir.path(),
        &[
            "bench",
            "gateway",
            "--rates",
            "20",
            "--seconds",
            "1",
            "--upstream-latency-ms",
            "5",
            "--json",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let rows: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect();
    let targets: Vec<&str> = rows.iter().filter_map(|r| r["target"].as_str()).collect();
    assert_eq!(targets, ["direct", "cairn"]);
    for row in &rows {
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["p50_ms"].as_f64() >= Some(5.0), "{row}");
    }
    let cairn = &rows[1];
    assert!(cairn["overhead_p99_ms"].is_f64(), "{cairn}");
    assert!(cairn["reported_overhead_ms"]["p99"].is_f64(), "{cairn}");
    assert!(cairn["peak_rss_mib"].as_f64() > Some(1.0), "{cairn}");
    assert!(
        !dir.path().join(".cairn").exists(),
        "the benchmark keeps its data in a temporary directory"
    );
}

fn run_cairn(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = cairn(dir, args, &[]).output().expect("run cairn");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn shell_completions_cover_the_subcommands_and_need_no_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A config that would not load: completions do not read it.
    std::fs::write(dir.path().join("cairn.toml"), "not toml = = =").expect("write");
    for shell in ["bash", "zsh", "fish"] {
        let (ok, stdout, stderr) = run_cairn(dir.path(), &["completions", shell]);
        assert!(ok, "{shell}: {stderr}");
        for word in ["serve", "ingest", "prompt", "eval", "--collection"] {
            assert!(stdout.contains(word), "{shell} completions lack `{word}`");
        }
    }
    assert!(!dir.path().join(".cairn").exists());
}

#[test]
fn prompt_workflow_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prompts = dir.path().join("prompts");
    std::fs::create_dir(&prompts).expect("mkdir");
    let source = "+++\nname = \"faq\"\n[variables]\ntype = \"object\"\nrequired = [\"question\"]\nproperties.question = { type = \"string\" }\n+++\n[system]\nAnswer briefly.\n[user]\n{{ question }}\n";
    std::fs::write(prompts.join("faq.prompt"), source).expect("write");

    let (ok, stdout, stderr) = run_cairn(dir.path(), &["prompt", "push", "-m", "first"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("published  faq@v1"), "{stdout}");
    let (_, stdout, _) = run_cairn(dir.path(), &["prompt", "push"]);
    assert!(stdout.contains("unchanged  faq@v1"), "{stdout}");

    std::fs::write(
        prompts.join("faq.prompt"),
        source.replace("briefly", "in detail"),
    )
    .expect("write");
    let (_, stdout, _) = run_cairn(dir.path(), &["prompt", "status"]);
    assert!(
        stdout.contains("modified: not published (latest v1)"),
        "{stdout}"
    );
    // As a CI gate: files and registry disagree, so it fails and says what to do.
    let (ok, _, stderr) = run_cairn(dir.path(), &["prompt", "status", "--check"]);
    assert!(
        !ok && stderr.contains("faq.prompt") && stderr.contains("cairn prompt push"),
        "{stderr}"
    );
    let (ok, stdout, _) = run_cairn(dir.path(), &["prompt", "push", "-m", "detail"]);
    assert!(ok && stdout.contains("published  faq@v2"), "{stdout}");
    let (ok, stdout, stderr) = run_cairn(dir.path(), &["prompt", "status", "--check", "--json"]);
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(listed[0]["matching_version"], 2, "{listed}");
    assert_eq!(listed[0]["latest_version"], 2, "{listed}");
    let (ok, stdout, stderr) = run_cairn(dir.path(), &["prompt", "list", "--json"]);
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(
        listed.as_array().is_some_and(|l| l
            .iter()
            .any(|p| p["name"] == "faq" && p["latest_version"] == 2)),
        "{listed}"
    );

    let (ok, stdout, _) = run_cairn(
        dir.path(),
        &[
            "prompt",
            "label",
            "faq",
            "1",
            "production",
            "--reason",
            "launch",
        ],
    );
    assert!(ok && stdout.contains("faq@production: → v1"), "{stdout}");
    run_cairn(dir.path(), &["prompt", "label", "faq", "2", "production"]);
    let (ok, stdout, _) = run_cairn(dir.path(), &["prompt", "rollback", "faq", "production"]);
    assert!(ok && stdout.contains("v2 → v1 (rolled back)"), "{stdout}");
    let (ok, stdout, stderr) = run_cairn(dir.path(), &["prompt", "history", "faq", "--json"]);
    assert!(ok, "{stderr}");
    let history: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        history["versions"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );
    assert_eq!(
        history["label_moves"].as_array().map(Vec::len),
        Some(3),
        "{history}"
    );

    let (ok, stdout, stderr) = run_cairn(
        dir.path(),
        &[
            "prompt",
            "render",
            "faq@production",
            "--var",
            "question=Why?",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("# faq@v1")
            && stdout.contains("Answer briefly.")
            && stdout.contains("=== user\nWhy?"),
        "{stdout}"
    );

    let (_, stdout, _) = run_cairn(dir.path(), &["prompt", "diff", "faq", "1", "2"]);
    assert!(
        stdout.contains("-Answer briefly.") && stdout.contains("+Answer in detail."),
        "{stdout}"
    );
    let (_, stdout, _) = run_cairn(dir.path(), &["prompt", "history", "faq"]);
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("label production"))
            .count(),
        3,
        "{stdout}"
    );

    // A broken file stops the push before anything is published, and says where and what.
    std::fs::write(
        prompts.join("faq.prompt"),
        source.replace("{{ question }}", "{{ questoin }}"),
    )
    .expect("write");
    std::fs::write(
        prompts.join("other.prompt"),
        source.replace("\"faq\"", "\"other\""),
    )
    .expect("write");
    let (ok, _, stderr) = run_cairn(dir.path(), &["prompt", "push"]);
    assert!(!ok);
    for fragment in [
        "nothing was published",
        "faq.prompt line 11, column 4",
        "undefined variable `questoin`",
        "declared variables: question",
    ] {
        assert!(
            stderr.contains(fragment),
            "expected `{fragment}` in:\n{stderr}"
        );
    }
    let (_, stdout, _) = run_cairn(dir.path(), &["prompt", "list"]);
    assert!(
        !stdout.contains("other"),
        "the valid file in the same push was not published either:\n{stdout}"
    );
}

fn smollm2() -> PathBuf {
    let dir = std::env::var("CAIRN_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cairn-models")
        });
    let path = dir.join("smollm2-135m-instruct-q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

fn python() -> PathBuf {
    match std::env::var("CAIRN_PYTHON") {
        Ok(path) => PathBuf::from(path),
        Err(_) => {
            let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/cairn/venv/bin/python");
            assert!(
                cached.is_file(),
                "no Python with the openai package: run scripts/python-env.sh (scripts/test.sh does) or set CAIRN_PYTHON"
            );
            cached
        }
    }
}

/// Runs a Python test file from `tests/` with the test environment's Python and extra
/// variables; returns whether it passed and its stdout and stderr together.
async fn run_python_tests(script: &str, env: Vec<(String, String)>) -> (bool, String) {
    let script = script.to_owned();
    tokio::task::spawn_blocking(move || run_python_tests_blocking(&script, env))
        .await
        .expect("join")
}

/// [`run_python_tests`] for a test already on a blocking thread.
fn run_python_tests_blocking(script: &str, env: Vec<(String, String)>) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(script);
    let output = Command::new(python())
        .arg(script)
        .envs(env)
        .output()
        .expect("run python");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// Checks a unittest report: exactly `expected` tests ran and the run ended `OK` (skips, which
/// unittest reports as `OK (skipped=N)`, are allowed only where `skipped` says how many).
fn assert_ran(report: &str, expected: usize, skipped: usize) {
    let ran = report
        .lines()
        .find_map(|line| line.strip_prefix("Ran "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(
        ran,
        Some(expected),
        "expected {expected} tests to run:\n{report}"
    );
    let verdict = if skipped == 0 {
        "OK".to_owned()
    } else {
        format!("OK (skipped={skipped})")
    };
    assert!(
        report.lines().any(|line| line.trim_end() == verdict),
        "expected `{verdict}`:\n{report}"
    );
}

/// The official openai Python package, against `cairn serve` routed to a scripted upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_client_is_compatible() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let base = upstream.base_url();
    let config = format!(
        "[[models]]\nname = \"primary\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"down\"\n\
         [[models]]\nname = \"backup\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"good\"\n\
         [[models]]\nname = \"agent\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"tools\"\n\
         [[models]]\nname = \"small\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"context\"\n\
         [[routes]]\nname = \"default\"\ntargets = [\"primary\", \"backup\"]\nattempts_per_target = 1\n\
         [[models]]\nname = \"local\"\nprovider = \"local\"\npath = \"{}\"\n\
         [embedding]\nlocal = \"{}\"\nname = \"all-MiniLM-L6-v2\"\n",
        smollm2().display(),
        cairn_testkit::test_model("minilm").display()
    );
    std::fs::write(dir.path().join("cairn.toml"), config).expect("write config");
    let server = Server::start(dir.path(), &[]);
    let (passed, report) = run_python_tests(
        "openai_compat/test_openai_client.py",
        vec![("CAIRN_BASE_URL".into(), server.url("/v1"))],
    )
    .await;
    assert!(
        passed,
        "the openai package disagreed with Cairn:\n{report}\n--- cairn log ---\n{}",
        server.logs()
    );
    assert_ran(&report, 7, 0);
}
