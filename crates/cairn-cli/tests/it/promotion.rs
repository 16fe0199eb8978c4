//! Eval-gated promotion through the real CLI: `production` of `rag_answer` is gated by a suite, so
//! moving it to a version that makes the app answer unfaithfully is refused with the failed gate and
//! leaves the label where it was, while a faithful version moves, and the audit trail names the
//! run that allowed it. The suite runs the app with the candidate version pinned; `cairn eval
//! compare` and the web UI's evals page set the refused run beside the one that allowed the move.

use serde_json::Value;

use crate::eval::{eval, setup};

pub(crate) const GATE_SUITE: &str = "\
name: gate
target: app:docs
dataset:
  cases:
    - id: sqlite
      question: Without a URL, the catalog is an SQLite file under the data directory.
      file: database.md
judge:
  route: judge
metrics:
  - metric: faithfulness
gates:
  - metric: faithfulness
    min_mean: 1.0
";

/// `rag_answer` with another user section: the app's `writer` echoes it back as the answer.
fn variant(user: &str) -> String {
    let builtin = include_str!("../../../../prompts/rag_answer.prompt");
    let (head, _) = builtin.rsplit_once("[user]\n").expect("a user section");
    format!("{head}[user]\n{user}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_labels_move_only_to_versions_their_suite_passes_on() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path().to_owned();
    let base_url = upstream.base_url();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(dir.join("evals")).expect("evals dir");
        std::fs::write(dir.join("evals/gate.yaml"), GATE_SUITE).expect("suite");
        // The same cases, watched: run whenever rag_answer's labels move or the handbook changes.
        std::fs::write(
            dir.join("evals/watch.yaml"),
            GATE_SUITE.replace("name: gate", "name: watch"),
        )
        .expect("suite");
        setup(
            &dir,
            &base_url,
            "[[prompts.gates]]\nprompt = \"rag_answer\"\nlabel = \"production\"\nsuite = \"evals/gate.yaml\"\n\
             [[evals.continuous]]\nsuite = \"evals/watch.yaml\"\nprompts = [\"rag_answer\"]\ncollections = [\"handbook\"]\n",
        );

        // The suite passes on the shipped v1, which the first run publishes as production.
        let (code, stdout, stderr) = eval(&dir, &["eval", "run", "evals/gate.yaml", "--no-store"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");

        // v2 makes the app add a claim no passage supports.
        std::fs::create_dir_all(dir.join("v2")).expect("dir");
        std::fs::write(
            dir.join("v2/rag_answer.prompt"),
            variant("{{ question }} It also runs on the moon."),
        )
        .expect("v2");
        let (code, stdout, stderr) = eval(&dir, &["prompt", "push", "v2"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let (code, stdout, stderr) = eval(&dir, &["prompt", "label", "rag_answer", "2", "production"]);
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("rag_answer@production stays where it was")
                && stderr.contains("did not pass on v2")
                && stderr.contains("faithfulness mean ≥ 1"),
            "{stderr}"
        );
        assert!(stdout.contains("with rag_answer v2 in place of what the target names"), "{stdout}");
        let (_, shown, _) = eval(&dir, &["prompt", "show", "rag_answer@production"]);
        assert!(!shown.contains("on the moon"), "the label did not move: {shown}");

        // Another label is not gated; a gated one cannot be moved by naming a run that failed.
        // The move runs the watching suite (on production, still v1: it holds).
        let (code, stdout, stderr) = eval(&dir, &["prompt", "label", "rag_answer", "2", "staging"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("eval: a label of prompt `rag_answer` moved; running evals/watch.yaml")
                && stderr.contains("eval: suite `watch` on app:docs holds"),
            "{stderr}"
        );
        let (_, listed, _) = eval(&dir, &["eval", "list", "gate", "--json"]);
        let runs: Vec<Value> = serde_json::from_str(&listed).expect("runs");
        let failed = runs[0]["id"].as_str().expect("the failed run is stored").to_owned();
        let (code, _, stderr) =
            eval(&dir, &["prompt", "label", "rag_answer", "2", "production", "--eval-run", &failed]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("did not pass"), "{stderr}");

        // v3 answers faithfully: the suite passes on it and the label moves, naming the run.
        std::fs::create_dir_all(dir.join("v3")).expect("dir");
        std::fs::write(dir.join("v3/rag_answer.prompt"), variant("{{ question }}")).expect("v3");
        let (code, stdout, stderr) = eval(&dir, &["prompt", "push", "v3"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let (code, stdout, stderr) = eval(&dir, &["prompt", "label", "rag_answer", "3", "production"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let run = stdout
            .split("vouched for by eval run ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("the move names its run: {stdout}"))
            .to_owned();
        let (_, history, _) = eval(&dir, &["prompt", "history", "rag_answer"]);
        assert!(history.contains(&format!("[eval run {run}]")), "{history}");

        // The watching suite ran again after the move, compared with its previous run: it has run
        // after the first ingest, the staging move and this one.
        assert!(stderr.contains("eval: suite `watch` on app:docs"), "{stderr}");
        let (_, watched, _) = eval(&dir, &["eval", "list", "watch", "--json"]);
        let watched: Vec<Value> = serde_json::from_str(&watched).expect("runs");
        assert_eq!(watched.len(), 3, "{watched:?}");
        assert_eq!(watched[0]["target"]["baseline"], watched[1]["id"], "{watched:?}");
        assert_eq!(watched[2]["target"]["baseline"], Value::Null, "the first had none");

        // An ingest that changes the handbook runs it; one that changes nothing does not.
        std::fs::write(dir.join("docs/extra.md"), "# Extra\n\nThe moon is not supported.\n").expect("doc");
        let (code, stdout, stderr) = eval(&dir, &["ingest", "docs", "--collection", "handbook"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stderr.contains("eval: collection `handbook` changed; running evals/watch.yaml"), "{stderr}");
        let (code, stdout, stderr) = eval(&dir, &["ingest", "docs", "--collection", "handbook"]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(!stderr.contains("running evals/watch.yaml"), "nothing changed: {stderr}");

        // The run answered with v3 through the app, not with the label's v1.
        let (code, shown, stderr) = eval(&dir, &["eval", "show", &run, "--json"]);
        assert_eq!(code, 0, "{stderr}");
        let shown: Value = serde_json::from_str(&shown).expect("json");
        assert_eq!(shown["run"]["target"]["prompt_pins"]["rag_answer"], 3, "{shown}");
        let answer = &shown["results"][0]["output"]["attempts"][0]["answer"];
        assert_eq!(answer["prompt"], serde_json::json!(["rag_answer", 3]), "{answer}");

        // The refused run and the one that allowed the move, compared case by case.
        let (code, compared, stderr) = eval(&dir, &["eval", "compare", &failed, &run, "--json"]);
        assert_eq!(code, 0, "{stderr}");
        let compared: Value = serde_json::from_str(&compared).expect("json");
        let faithfulness = &compared["metrics"][0];
        assert_eq!(faithfulness["metric"], "faithfulness", "{compared}");
        assert_eq!((faithfulness["before_mean"].clone(), faithfulness["after_mean"].clone()), (serde_json::json!(0.5), serde_json::json!(1.0)), "{compared}");
        assert_eq!(faithfulness["comparison"]["better"], serde_json::json!(["sqlite"]), "{compared}");
        assert_eq!(faithfulness["comparison"]["difference"]["value"], 0.5, "{compared}");
        let (code, table, _) = eval(&dir, &["eval", "compare", &failed, &run]);
        assert_eq!(code, 0);
        assert!(table.contains("+0.500"), "{table}");

        // The same runs on the web UI's evals page, in headless Chromium.
        let server = crate::Server::start(&dir, &[("CAIRN__EMBEDDING__LOCAL", &crate::rag::minilm())]);
        let (passed, report) = crate::run_python_tests_blocking(
            "browser/test_evals_page.py",
            vec![
                ("CAIRN_URL".into(), server.url("")),
                ("CAIRN_RUN_BEFORE".into(), failed.clone()),
                ("CAIRN_RUN_AFTER".into(), run.clone()),
                ("CHROMEDRIVER".into(), crate::browser::chromedriver()),
            ],
        );
        assert!(passed, "the evals page failed in the browser:\n{report}\n{}", server.logs());
        crate::assert_ran(&report, 3, 0);
    })
    .await
    .expect("join");
}
