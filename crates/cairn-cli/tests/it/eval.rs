//! `cairn eval` end to end: a suite against a real RAG app (ingested with the packaged embedding
//! model, answered and judged through the scripted upstream's `echo` and `judge` models), through
//! the real CLI: exit codes for pass, fail and a broken suite, the JUnit file read by a real JUnit
//! parser, a judge answering garbage left unmeasured, and runs stored and read back.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::rag::{minilm, write_handbook};
use crate::{cairn, python};

const SUITE: &str = "\
name: docs
target: app:docs
dataset:
  cases:
    - id: sqlite
      question: Without a URL, the catalog is an SQLite file under the data directory.
      file: database.md
    - id: moon
      question: Cairn runs on the moon.
      file: install.md
judge:
  route: JUDGE
metrics:
  - metric: faithfulness
  - metric: recall_at_k
    k: 8
  - metric: answer_relevance
gates:
  - metric: faithfulness
    min_mean: GATE
";

fn setup(dir: &Path, base_url: &str) {
    write_handbook(&dir.join("docs"));
    std::fs::write(
        dir.join("cairn.toml"),
        format!(
            "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"echo\"\n\
             [[models]]\nname = \"judge\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"judge\"\n\
             [[models]]\nname = \"rambler\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"rambler\"\n\
             [[apps]]\nname = \"docs\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 8\nguards = [\"pii\"]\n\
             [[guards]]\nname = \"pii\"\nkind = \"pii\"\nstages = [\"input\", \"output\"]\naction = \"redact\"\noptions = {{ restore = true }}\n"
        ),
    )
    .expect("config");
    std::fs::create_dir_all(dir.join("evals")).expect("evals dir");
    let (code, stdout, stderr) = eval(dir, &["ingest", "docs", "--collection", "handbook"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

fn write_suite(dir: &Path, file: &str, judge: &str, gate: &str) -> String {
    let path = format!("evals/{file}");
    std::fs::write(
        dir.join(&path),
        SUITE.replace("JUDGE", judge).replace("GATE", gate),
    )
    .expect("suite");
    path
}

/// Runs `cairn ARGS`; returns (exit code, stdout, stderr).
fn eval(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let model = minilm();
    let output = cairn(dir, args, &[("CAIRN__EMBEDDING__LOCAL", &model)])
        .output()
        .expect("run cairn");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_suites_gate_report_and_store_through_the_cli() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path().to_owned();
    let base_url = upstream.base_url();
    let seen = upstream.clone();
    tokio::task::spawn_blocking(move || {
        setup(&dir, &base_url);

        // Passing: one faithful answer and one made up; the mean (0.5) holds a 0.4 gate.
        let suite = write_suite(&dir, "docs.yaml", "judge", "0.4");
        let (code, stdout, stderr) =
            eval(&dir, &["eval", "run", &suite, "--junit", "report.xml", "--json"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stderr.contains("eval: docs · app:docs 2/2"), "{stderr}");
        let reports: Vec<Value> = serde_json::from_str(&stdout).expect("--json prints the reports");
        let report = &reports[0];
        let cases = report["cases"].as_array().expect("cases");
        let score = |id: &str, metric: &str| {
            cases
                .iter()
                .find(|c| c["case"]["id"] == id)
                .map(|c| c["scores"][metric].clone())
                .unwrap_or_default()
        };
        assert_eq!(score("sqlite", "faithfulness")["value"], 1.0, "{report}");
        assert_eq!(score("moon", "faithfulness")["value"], 0.0, "{report}");
        assert!(
            score("moon", "faithfulness")["reason"]
                .as_str()
                .is_some_and(|r| r.contains("Cairn runs on the moon")),
            "the judge's reason names the unsupported claim: {report}"
        );
        assert_eq!(score("sqlite", "recall@8")["value"], 1.0, "{report}");
        assert_eq!(score("sqlite", "answer_relevance")["value"], 1.0, "{report}");
        let answer = &cases[0]["attempts"][0]["answer"];
        assert!(answer["lineage_id"].is_string(), "eval answers have lineage: {answer}");
        assert_eq!(report["calls"]["judge"], 4, "{report}");
        let run_id = report["run_id"].as_str().expect("stored").to_owned();

        // The JUnit file, read by a real JUnit parser: two cases (one failing with the judge's
        // reason) and one gate.
        let parsed = Command::new(python())
            .args([
                "-c",
                "import sys, json\nfrom junitparser import JUnitXml\nxml = JUnitXml.fromfile(sys.argv[1])\n\
                 out = []\nfor suite in xml:\n    for case in suite:\n        out.append({'suite': suite.name, 'name': case.name, \
                 'passed': case.is_passed, 'message': ' '.join(r.message or '' for r in case.result)})\nprint(json.dumps(out))",
                &dir.join("report.xml").display().to_string(),
            ])
            .output()
            .expect("python");
        assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
        let junit: Vec<Value> = serde_json::from_slice(&parsed.stdout).expect("parser output");
        let names: Vec<(&str, bool)> = junit
            .iter()
            .map(|c| (c["name"].as_str().unwrap_or_default(), c["passed"] == true))
            .collect();
        assert_eq!(
            names,
            [("sqlite", true), ("moon", false), ("faithfulness mean ≥ 0.4", true)],
            "{junit:?}"
        );
        assert!(
            junit[1]["message"].as_str().is_some_and(|m| m.contains("faithfulness 0.000 < 0.5")),
            "{junit:?}"
        );

        // Failing: the same run against a 0.9 gate exits 1 and says which gate.
        let strict = write_suite(&dir, "strict.yaml", "judge", "0.9");
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", &strict]);
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains("FAIL  faithfulness mean ≥ 0.9: mean 0.500 is below 0.9"), "{stdout}");
        assert!(stdout.contains("case moon"), "{stdout}");

        // A judge that answers in prose: faithfulness is unmeasured, not zero, and the gate fails
        // for that reason; answering from the cache is refused with --fresh.
        let rambling = write_suite(&dir, "rambling.yaml", "rambler", "0.1");
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", &rambling, "--fresh"]);
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains("2 of 2 cases unmeasured"), "{stdout}");
        assert!(stdout.contains("faithfulness unmeasured: the judge failed"), "{stdout}");

        // Broken suites exit 2 before any model call, with the file, line and fix.
        let calls_before = seen.chat_calls();
        std::fs::write(
            dir.join("evals/broken.yaml"),
            SUITE.replace("JUDGE", "judge").replace("GATE", "0.5").replace("  - metric: recall_at_k\n", "  - metric: recall_at_k\n    kk: 3\n"),
        )
        .expect("suite");
        let (code, _, stderr) = eval(&dir, &["eval", "run", "evals/broken.yaml"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("evals/broken.yaml:16") && stderr.contains("kk"), "{stderr}");
        std::fs::write(
            dir.join("evals/nojudge.yaml"),
            SUITE.replace("JUDGE", "nobody").replace("GATE", "0.5"),
        )
        .expect("suite");
        let (code, _, stderr) = eval(&dir, &["eval", "run", "evals/nojudge.yaml"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("`nobody` does not exist"), "{stderr}");
        assert_eq!(seen.chat_calls(), calls_before, "a broken suite made no model call");

        // With redaction on, the stored run holds the placeholder, never the caller's email.
        std::fs::write(
            dir.join("evals/pii.yaml"),
            "name: pii\ntarget: app:docs\ndataset:\n  cases:\n    - question: Write to jane.doe@example.com about SQLite.\nmetrics:\n  - metric: length\n    max: 2000\n",
        )
        .expect("suite");
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", "evals/pii.yaml", "--json"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let pii: Vec<Value> = serde_json::from_str(&stdout).expect("json");
        let pii_run = pii[0]["run_id"].as_str().expect("stored").to_owned();
        let (_, shown, _) = eval(&dir, &["eval", "show", &pii_run, "--json"]);
        assert!(
            shown.contains("<EMAIL_1>") && !shown.contains("jane.doe@example.com"),
            "{shown}"
        );

        // Stored runs are listed and shown.
        let (code, stdout, stderr) = eval(&dir, &["eval", "list", "docs"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(&run_id) && stdout.contains("passed"), "{stdout}");
        let (code, stdout, stderr) = eval(&dir, &["eval", "show", &run_id, "--json"]);
        assert_eq!(code, 0, "{stderr}");
        let shown: Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(shown["results"].as_array().map(Vec::len), Some(2), "{shown}");
    })
    .await
    .expect("join");
    assert!(upstream.chat_calls() > 0);
}
