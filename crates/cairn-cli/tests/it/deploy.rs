//! The monitoring files in `deploy/`: the alert rules pass `promtool check rules` and their unit
//! tests (`promtool test rules`), and every metric the Grafana dashboard and the rules query is one
//! Cairn really exports, seen in `/metrics` of a server that answered, fell back, opened a circuit,
//! cached, redacted and refused over a limit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::{Server, promtool};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn run_promtool(args: &[&str], dir: &Path) {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `cairn_…` metric names in a query, without the `_bucket`, `_sum` and `_count` series suffixes.
fn metric_names(query: &str, into: &mut BTreeSet<String>) {
    let bytes = query.as_bytes();
    let mut at = 0;
    while let Some(found) = query[at..].find("cairn_") {
        let start = at + found;
        let end = query[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(query.len(), |e| start + e);
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if boundary {
            let name = &query[start..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            into.insert(base.to_owned());
        }
        at = end;
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = deploy().join("prometheus");
    run_promtool(&["check", "rules", "cairn-alerts.yaml"], &dir);
    run_promtool(&["test", "rules", "cairn-alerts.test.yaml"], &dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_query_is_exported() {
    let mut wanted = BTreeSet::new();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/cairn-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 12, "{} panels", panels.len());
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "a panel without a query: {panel}");
        for target in targets {
            metric_names(target["expr"].as_str().expect("expr"), &mut wanted);
        }
    }
    let rules =
        std::fs::read_to_string(deploy().join("prometheus/cairn-alerts.yaml")).expect("rules");
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        metric_names(line, &mut wanted);
    }

    assert!(
        wanted.len() >= 12 && wanted.contains("cairn_gateway_request_duration_seconds"),
        "{wanted:?}"
    );

    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let base = upstream.base_url();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[cache]\nttl_secs = 300\n\
             [[models]]\nname = \"primary\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"down\"\nbreaker_failures = 1\n\
             [[models]]\nname = \"backup\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"good\"\ninput_price_per_mtok = 1.0\noutput_price_per_mtok = 2.0\n\
             [[routes]]\nname = \"default\"\ntargets = [\"primary\", \"backup\"]\nattempts_per_target = 1\nguards = [\"pii\"]\n\
             [[routes]]\nname = \"tight\"\ntargets = [\"backup\"]\n\
             [[guards]]\nname = \"pii\"\nkind = \"pii\"\nstages = [\"input\"]\naction = \"redact\"\n\
             [[limits]]\nroute = \"tight\"\nrequests_per_minute = 1\n"
        ),
    )
    .expect("config");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let ask = |model: &str, content: &str, stream: bool| {
        json!({"model": model, "stream": stream,
               "messages": [{"role": "user", "content": content}]})
    };
    for body in [
        ask("default", "Write to ada@example.com about the plan.", false),
        ask("default", "Write to ada@example.com about the plan.", false),
        ask("default", "And now streamed?", true),
        ask("tight", "one", false),
        ask("tight", "two", false),
    ] {
        let response = client
            .post(server.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .expect("chat");
        let _ = response.text().await;
    }
    let metrics = crate::metrics_text(&server).await;
    let mut exported = BTreeSet::new();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        metric_names(
            line.split(['{', ' ']).next().unwrap_or_default(),
            &mut exported,
        );
    }
    // Online-evaluation scores need a judged app answer: the online-evaluation test checks they
    // reach /metrics (`online::production_answers_are_judged_off_the_request_path`).
    let judged_elsewhere = ["cairn_eval_online_score"];
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| !exported.contains(*name) && !judged_elsewhere.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\n--- /metrics ---\n{metrics}"
    );
}
