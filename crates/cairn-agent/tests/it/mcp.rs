//! External tools from the reference MCP server (`@modelcontextprotocol/server-everything`) over
//! stdio: listed and called for real, a server that cannot start, one killed mid-call.

use std::time::{Duration, Instant};

use cairn_agent::{McpServerSection, McpServers};
use cairn_core::agent::ToolError;
use serde_json::json;

fn everything(name: &str) -> McpServerSection {
    McpServerSection {
        name: name.into(),
        command: Some(
            cairn_testkit::mcp_servers_bin()
                .join("mcp-server-everything")
                .display()
                .to_string(),
        ),
        args: vec!["stdio".into()],
        env: Default::default(),
        url: None,
        bearer_token_env: None,
        start_timeout_secs: 60,
    }
}

#[tokio::test]
async fn a_stdio_server_tools_are_listed_under_its_name_and_called() {
    let servers = McpServers::start(&[everything("everything")], &[]).await;
    let tools = servers.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.spec().name.as_str()).collect();
    assert!(names.contains(&"everything__echo"), "{names:?}");
    assert!(names.contains(&"everything__get-sum"), "{names:?}");
    let echo = tools
        .iter()
        .find(|t| t.spec().name == "everything__echo")
        .expect("echo");
    assert_eq!(echo.spec().source, "everything");
    assert_eq!(
        echo.spec().parameters["properties"]["message"]["type"],
        "string"
    );
    let said = echo
        .call(json!({"message": "hello"}))
        .await
        .expect("echoed");
    assert_eq!(said, "Echo: hello");
    let sum = tools
        .iter()
        .find(|t| t.spec().name == "everything__get-sum")
        .expect("get-sum");
    let result = sum.call(json!({"a": 2, "b": 40})).await.expect("summed");
    assert!(result.contains("42"), "{result}");
    // Arguments the server's schema refuses come back as a tool error the model can read.
    let refused = echo.call(json!({"message": 7})).await.expect_err("refused");
    assert!(
        matches!(refused, ToolError::Failed(_)),
        "{refused:?}: a failed call"
    );
    assert_eq!(
        servers.status(),
        vec![("everything".into(), Ok(tools.len()))]
    );
}

#[tokio::test]
async fn a_server_that_cannot_start_is_reported_and_retried_not_fatal() {
    let mut missing = everything("missing");
    missing.command = Some("/nonexistent/mcp-server".into());
    let started = Instant::now();
    let servers = McpServers::start(&[missing, everything("everything")], &[]).await;
    assert!(started.elapsed() < Duration::from_secs(60));
    let status = servers.status();
    assert!(
        matches!(&status[0].1, Err(e) if e.contains("could not start `/nonexistent/mcp-server`")),
        "{status:?}"
    );
    assert!(status[1].1.is_ok(), "the other server runs: {status:?}");
}

#[tokio::test]
async fn a_server_killed_mid_call_gives_an_unavailable_error_and_restarts_at_the_next_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pid_file = dir.path().join("pid");
    let mut section = everything("everything");
    // A shell that records its pid, then becomes the server.
    section.args = vec![
        "-c".into(),
        format!(
            "echo $$ > {}; exec {} stdio",
            pid_file.display(),
            section.command.take().expect("command")
        ),
    ];
    section.command = Some("sh".into());
    let servers = McpServers::start(&[section], &[]).await;
    let tools = servers.tools();
    let long = tools
        .iter()
        .find(|t| t.spec().name == "everything__trigger-long-running-operation")
        .expect("the long-running tool")
        .clone();
    let first_pid = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .to_owned();
    let call = tokio::spawn(async move { long.call(json!({"duration": 30, "steps": 3})).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &first_pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    // The operation would take 30 s: the call ending sooner is its server's death noticed.
    let outcome = tokio::time::timeout(Duration::from_secs(25), call)
        .await
        .expect("the call ends when its server dies, it does not hang")
        .expect("joined");
    assert!(
        matches!(&outcome, Err(ToolError::Unavailable(m)) if m.contains("everything")),
        "{outcome:?}"
    );
    assert!(
        servers.status()[0].1.is_err(),
        "the server is known to be down"
    );
    // The next call starts it again.
    let echo = tools
        .iter()
        .find(|t| t.spec().name == "everything__echo")
        .expect("echo");
    let said = echo
        .call(json!({"message": "back"}))
        .await
        .expect("restarted");
    assert_eq!(said, "Echo: back");
    let second_pid = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .to_owned();
    assert_ne!(first_pid, second_pid, "a new process serves it");
}
