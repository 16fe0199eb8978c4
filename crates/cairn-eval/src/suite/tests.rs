//! The suite file format: what loads, and what is refused with its line and fix.

use std::path::Path;

use super::*;

fn parse(source: &str) -> Result<Suite, SuiteError> {
    Suite::parse(source, Path::new("evals/smoke.yaml"))
}

const GOOD: &str = "\
name: smoke
targets: [route:fast, route:slow]
prompts: [qa@production, qa@2]
dataset:
  cases:
    - id: a
      question: What is 2+2?
      reference: '4'
    - question: Capital of France?
      reference: Paris
judge:
  route: judge
metrics:
  - metric: equals
  - metric: answer_correctness
    threshold: 0.7
gates:
  - metric: answer_correctness
    min_mean: 0.8
";

#[test]
fn a_suite_file_reads_into_a_matrix_of_targets_with_its_cases_metrics_and_gates() {
    let suite = parse(GOOD).expect("parses");
    assert_eq!(suite.targets.len(), 4);
    assert_eq!(
        suite.targets[1].to_string(),
        "route:fast prompt:qa@2",
        "{:?}",
        suite.targets
    );
    assert_eq!(suite.cases[1].id, "case-2");
    assert_eq!(suite.cases[1].origin, "evals/smoke.yaml:9");
    assert_eq!(suite.metrics[1].threshold, 0.7);
    assert_eq!(
        suite.gates[0].max_unmeasured,
        crate::gates::DEFAULT_MAX_UNMEASURED
    );
    assert_eq!(suite.repeat, 1);
}

fn refused(source: &str, expected: &[&str]) {
    let err = parse(source).expect_err("refused").to_string();
    for part in expected {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
}

#[test]
fn mistakes_are_refused_with_the_line_and_the_fix() {
    refused(
        &GOOD.replace("  route: judge", "  route: judge\n  temprature: 0"),
        &["evals/smoke.yaml:13", "temprature"],
    );
    refused(
        &GOOD.replace("      reference: Paris\n", ""),
        &[
            "evals/smoke.yaml:13",
            "metric `equals`",
            "case `case-2` (evals/smoke.yaml:9)",
            "reference",
        ],
    );
    refused(
        &GOOD.replace("judge:\n  route: judge\n", ""),
        &[
            "evals/smoke.yaml:13",
            "needs a judge",
            "judge: {route: NAME}",
        ],
    );
    refused(
        &GOOD.replace(
            "  - metric: answer_correctness\n    min_mean",
            "  - metric: faithfulnes\n    min_mean",
        ),
        &[
            "evals/smoke.yaml:18",
            "faithfulnes",
            "metrics: equals, answer_correctness",
        ],
    );
    refused(
        &GOOD.replace("targets: [route:fast, route:slow]", "targets: [fast]"),
        &[
            "evals/smoke.yaml:2",
            "app:NAME, agent:NAME, route:NAME, model:NAME or given",
        ],
    );
    refused(
        &GOOD.replace("targets: [route:fast, route:slow]", "targets: [app:docs]"),
        &["renders its own prompt"],
    );
    refused(
        &GOOD.replace("    threshold: 0.7", "    threshold: 7"),
        &["evals/smoke.yaml:15", "outside 0..1"],
    );
}

#[test]
fn a_dataset_file_is_read_relative_to_the_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("set.jsonl"),
        "{\"id\": \"pg-1\", \"question\": \"q\", \"file\": \"a.html\"}\n",
    )
    .expect("write");
    let suite_path = dir.path().join("suite.yaml");
    std::fs::write(
        &suite_path,
        "name: rag\ntarget: app:docs\ndataset:\n  file: set.jsonl\nmetrics:\n  - metric: recall_at_k\n    k: 3\n",
    )
    .expect("write");
    let suite = Suite::load(&suite_path).expect("loads");
    assert_eq!(suite.cases[0].gold[0].document, "a.html");
    assert_eq!(suite.metrics[0].name, "recall@3");
    let files = Suite::files(dir.path()).expect("lists");
    assert_eq!(files, [suite_path]);
}
