//! `cairn eval` end to end: a suite against a real RAG app (ingested with the packaged embedding
//! model, answered and judged through the scripted upstream's `echo` and `judge` models), through
//! the real CLI: exit codes for pass, fail and a broken suite, the JUnit file read by a real JUnit
//! parser, the HTML report opened in headless Chromium, a judge answering garbage left unmeasured,
//! and runs stored and read back.

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

/// The handbook ingested as `handbook`, app `docs` over it, models `writer` (echo), `judge` and
/// `rambler`; `extra` is appended to the config (its suite files must exist already).
pub(crate) fn setup(dir: &Path, base_url: &str, extra: &str) {
    write_handbook(&dir.join("docs"));
    std::fs::create_dir_all(dir.join("evals")).expect("evals dir");
    std::fs::write(
        dir.join("cairn.toml"),
        format!(
            "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"echo\"\n\
             [[models]]\nname = \"judge\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"judge\"\n\
             [[models]]\nname = \"rambler\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"rambler\"\n\
             [[apps]]\nname = \"docs\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 8\nguards = [\"pii\"]\n\
             [[guards]]\nname = \"pii\"\nkind = \"pii\"\nstages = [\"input\", \"output\"]\naction = \"redact\"\noptions = {{ restore = true }}\n{extra}"
        ),
    )
    .expect("config");
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
pub(crate) fn eval(dir: &Path, args: &[&str]) -> (i32, String, String) {
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
        setup(&dir, &base_url, "");

        // Passing: one faithful answer and one made up; the mean (0.5) holds a 0.4 gate.
        let suite = write_suite(&dir, "docs.yaml", "judge", "0.4");
        let (code, stdout, stderr) =
            eval(&dir, &["eval", "run", &suite, "--junit", "report.xml", "--html", "report.html", "--json"]);
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

        // The HTML report, opened in headless Chromium.
        let (passed, report) = crate::run_python_tests_blocking(
            "browser/test_eval_report.py",
            vec![
                ("CAIRN_REPORT".into(), dir.join("report.html").display().to_string()),
                ("CHROMEDRIVER".into(), crate::browser::chromedriver()),
            ],
        );
        assert!(passed, "the HTML report failed in the browser:\n{report}");
        crate::assert_ran(&report, 2, 0);

        // Calibrating the judge against labels: it agrees on five of six labelled answers (one
        // was labelled a pass though its passage does not say it), κ = 2/3; stored, and shown by
        // the next run that uses the judge.
        let passage = "Without a URL, the catalog is an SQLite file under the data directory.";
        let labels: String = [
            ("Without a URL, the catalog is an SQLite file.", "pass"),
            ("The catalog is an SQLite file under the data directory.", "pass"),
            ("Without a URL, the catalog is an SQLite file under the data directory.", "pass"),
            ("The catalog is a PostgreSQL database.", "fail"),
            ("The catalog lives on the moon.", "fail"),
            ("The catalog is kept in memory.", "pass"),
        ]
        .iter()
        .map(|(answer, label)| {
            format!(
                "{}\n",
                serde_json::json!({"question": "Where is the catalog?", "answer": answer, "passages": [passage], "label": label})
            )
        })
        .collect();
        std::fs::write(dir.join("labels.jsonl"), labels).expect("labels");
        let (code, stdout, stderr) = eval(
            &dir,
            &["eval", "calibrate", "labels.jsonl", "--metric", "faithfulness", "--judge", "judge", "--json"],
        );
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let calibrated: Value = serde_json::from_str(&stdout).expect("json");
        let agreement = &calibrated["calibration"]["agreement"];
        assert!((agreement["kappa"].as_f64().unwrap_or_default() - 2.0 / 3.0).abs() < 1e-9, "{calibrated}");
        assert_eq!(agreement["confusion"]["judge_only_fail"], 1, "{calibrated}");
        assert_eq!(calibrated["calibration"]["disagreements"][0]["id"], "line-6", "{calibrated}");
        assert!(calibrated["run_id"].is_string(), "stored: {calibrated}");
        let (code, _, stderr) = eval(
            &dir,
            &["eval", "calibrate", "labels.jsonl", "--metric", "recall_at_k", "--judge", "judge"],
        );
        assert_eq!(code, 2, "a metric without a judge cannot be calibrated: {stderr}");
        assert!(stderr.contains("needs no judge"), "{stderr}");

        // Failing: the same run against a 0.9 gate exits 1 and says which gate.
        // Its judge calls have the same inputs as the first run's: they come from the catalog's
        // call cache, and only the two app answers reach a model.
        let strict = write_suite(&dir, "strict.yaml", "judge", "0.9");
        let calls_before = seen.chat_calls();
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", &strict]);
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains("2 target and 4 judge calls (4 from the cache)"), "{stdout}");
        assert_eq!(seen.chat_calls() - calls_before, 2, "only the app's answers were asked for");
        assert!(stdout.contains("FAIL  faithfulness mean ≥ 0.9: mean 0.500 is below 0.9"), "{stdout}");
        assert!(
            stdout.contains("judge of faithfulness: κ 0.67, accuracy 0.83 on 6 of 6 labelled answers (eval_faithfulness v1, judge judge)"),
            "{stdout}"
        );
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

        // Similarity under the real embedding model: the echoed answer against its own words and
        // against an unrelated sentence.
        std::fs::write(
            dir.join("evals/similar.yaml"),
            "name: similar\ntarget: app:docs\ndataset:\n  cases:\n    - id: same\n      question: The catalog is an SQLite file under the data directory.\n      answer: The catalog is an SQLite file under the data directory.\n    - id: other\n      question: The catalog is an SQLite file under the data directory.\n      answer: Bananas are rich in potassium.\nmetrics:\n  - metric: similarity\n",
        )
        .expect("suite");
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", "evals/similar.yaml", "--json", "--no-store"]);
        assert_eq!(code, 0, "no gates, so it passes: {stdout}\n{stderr}");
        let similar: Vec<Value> = serde_json::from_str(&stdout).expect("json");
        let value = |id: &str| {
            similar[0]["cases"]
                .as_array()
                .and_then(|cases| cases.iter().find(|c| c["case"]["id"] == id))
                .and_then(|c| c["scores"]["similarity"]["value"].as_f64())
                .unwrap_or(-1.0)
        };
        assert!(value("same") > 0.99, "{stdout}");
        assert!((0.0..0.5).contains(&value("other")), "{stdout}");

        // Pairwise: the app (whose echoed answer holds the reference) against the rambler, judged
        // in both orders; the app wins and the judge agrees with itself.
        std::fs::write(
            dir.join("evals/pair.yaml"),
            "name: pair\ntargets: [app:docs, route:rambler]\ndataset:\n  cases:\n    - question: The catalog is an SQLite file under the data directory.\n      answer: The catalog is an SQLite file under the data directory.\njudge:\n  route: judge\nmetrics:\n  - metric: length\n    max: 5000\npairwise:\n  criteria: Which answer says where the catalog is?\n",
        )
        .expect("suite");
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", "evals/pair.yaml", "--json", "--no-store"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let pair: Vec<Value> = serde_json::from_str(&stdout).expect("json");
        let compared = &pair[1]["pairwise"];
        assert_eq!(
            (compared["first"].as_str(), compared["first_wins"].as_u64(), compared["second_wins"].as_u64()),
            (Some("app:docs"), Some(1), Some(0)),
            "{compared}"
        );
        assert_eq!(compared["position_consistency"], 1.0, "{compared}");

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
