//! What operators run beside the server: the refusal to listen beyond loopback without
//! authentication, the audit log of the CLI's own changes, and pruning by retention period.

use std::time::Duration;

use serde_json::Value;

use crate::{Server, cairn, run_cairn};

/// Without authentication, only loopback: listening where other machines reach it needs
/// `auth.mode = "required"`, or `"none"` on purpose, which is warned about.
#[test]
fn listening_beyond_loopback_without_authentication_is_refused_unless_chosen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = cairn(dir.path(), &["serve", "--listen", "0.0.0.0:0"], &[])
        .output()
        .expect("run cairn");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for fragment in [
        "server.listen is 0.0.0.0:0",
        "mode = \"required\"",
        "cairn key create",
        "mode = \"none\"",
    ] {
        assert!(
            stderr.contains(fragment),
            "expected `{fragment}` in:\n{stderr}"
        );
    }
    assert!(!dir.path().join(".cairn").exists(), "{stderr}");

    let server = Server::start(dir.path(), &[("CAIRN__AUTH__MODE", "none")]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !server.logs().contains("authentication is OFF") {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning:\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the CLI changes is in the audit log, as `cli:USER`, and `cairn audit` filters it.
#[test]
fn the_audit_log_lists_what_the_cli_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, _, stderr) = run_cairn(
        dir.path(),
        &["key", "create", "--name", "ops", "--roles", "read,write"],
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run_cairn(dir.path(), &["key", "revoke", "ops"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, stderr) = run_cairn(
        dir.path(),
        &["audit", "--action", "key.", "--since", "1h", "--json"],
    );
    assert!(ok, "{stderr}");
    let events: Value = serde_json::from_str(&stdout).expect("JSON");
    let actions: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["key.revoke", "key.create"]);
    assert_eq!(
        events[1]["detail"]["roles"],
        serde_json::json!(["read", "write"])
    );
    assert!(
        events[0]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("cli:")),
        "{events}"
    );
    let (ok, _, stderr) = run_cairn(dir.path(), &["audit", "--since", "yesterday"]);
    assert!(!ok && stderr.contains("24h"), "{stderr}");
}

/// `cairn prune` applies `[retention]` once and says what went; with every period 0 it says so.
#[test]
fn prune_applies_the_retention_periods() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, stdout, stderr) = run_cairn(dir.path(), &["prune", "--json"]);
    assert!(ok, "{stderr}");
    let pruned: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        pruned,
        serde_json::json!([{"kind": "sessions", "pruned": 0}])
    );
    let output = cairn(
        dir.path(),
        &["prune"],
        &[("CAIRN__RETENTION__SESSIONS_DAYS", "0")],
    )
    .output()
    .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("nothing to prune"),
        "{stdout}"
    );
}
