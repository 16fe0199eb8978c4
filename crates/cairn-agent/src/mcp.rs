//! External MCP servers (`[[mcp_servers]]`) as agent tools, through rmcp's client: a child
//! process over stdio, or a server over streamable HTTP with a bearer token from the environment.
//!
//! Servers start with the process; their tools are listed then and listed again when a server
//! says its list changed. A server that fails to start, or dies, is started again at its next
//! call; until then its calls give the agent an `unavailable` tool error to reason about. No call
//! waits longer than the agent's tool timeout.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::agent::{AgentTool, ToolError, ToolSpec, external_name};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// One external MCP server, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerSection {
    /// How agents' `tools` name it (`NAME.TOOL`, `NAME.*`); its tools reach the model as
    /// `NAME__TOOL`.
    pub name: String,
    /// stdio: the program to start.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set for the program (besides the inherited ones).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Streamable HTTP: the server's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the bearer token sent to the URL.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// How long starting (and listing tools) may take, in seconds.
    #[serde(default = "default_start_timeout_secs")]
    pub start_timeout_secs: u64,
}

fn default_start_timeout_secs() -> u64 {
    30
}

impl McpServerSection {
    /// What is wrong with it, and how to fix it.
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => Some((
                "url",
                "both `command` and `url` are set".into(),
                "set `command` for a server Cairn starts (stdio), or `url` for one already running (streamable HTTP), not both".into(),
            )),
            (None, None) => Some((
                "command",
                "neither `command` nor `url` is set".into(),
                "set `command` (and `args`) for a stdio server, e.g. command = \"npx\", or `url` for a streamable HTTP server".into(),
            )),
            (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Some((
                    "url",
                    format!("`{url}` is not an http(s) URL"),
                    "write the server's full URL, e.g. https://tools.example.com/mcp".into(),
                ))
            }
            (Some(command), None) if command.trim().is_empty() => Some((
                "command",
                "empty command".into(),
                "name the program to start, e.g. npx".into(),
            )),
            _ if self.start_timeout_secs == 0 => Some((
                "start_timeout_secs",
                "0 seconds to start".into(),
                "allow some seconds, e.g. 30".into(),
            )),
            _ => None,
        }
    }
}

/// Every configured server.
#[derive(Debug, Clone, Default)]
pub struct McpServers {
    servers: Vec<Arc<Server>>,
}

impl McpServers {
    /// Starts every server at once; one that fails is logged and retried at its first call.
    /// `env` holds the bearer tokens, by the environment variable that `bearer_token_env` names.
    pub async fn start(
        sections: &[McpServerSection],
        env: &[(String, SecretString)],
    ) -> McpServers {
        let servers: Vec<Arc<Server>> = sections
            .iter()
            .map(|section| {
                let token = section
                    .bearer_token_env
                    .as_ref()
                    .and_then(|var| env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone()));
                Arc::new(Server {
                    section: section.clone(),
                    token,
                    state: RwLock::new(State::default()),
                    connecting: tokio::sync::Mutex::new(()),
                })
            })
            .collect();
        futures_util::future::join_all(servers.iter().map(|server| async move {
            match server.connect().await {
                Ok(count) => tracing::info!(server = %server.section.name, tools = count, "MCP server started"),
                Err(error) => tracing::warn!(server = %server.section.name, %error, "MCP server did not start; it is tried again at its first call"),
            }
        }))
        .await;
        McpServers { servers }
    }

    /// The tools of every server now running.
    pub fn tools(&self) -> Vec<Arc<dyn AgentTool>> {
        self.servers
            .iter()
            .flat_map(|server| server.tools())
            .collect()
    }

    /// Each server's name, and its tool count or why it is down.
    pub fn status(&self) -> Vec<(String, Result<usize, String>)> {
        self.servers
            .iter()
            .map(|server| {
                let state = server.read();
                let status = match (&state.service, &state.error) {
                    (Some(_), _) => Ok(state.tools.len()),
                    (None, Some(error)) => Err(error.clone()),
                    (None, None) => Err("not started".to_owned()),
                };
                (server.section.name.clone(), status)
            })
            .collect()
    }
}

#[derive(Debug)]
struct Server {
    section: McpServerSection,
    token: Option<SecretString>,
    state: RwLock<State>,
    /// One (re)connection at a time.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    service: Option<Arc<RunningService<RoleClient, Handler>>>,
    /// The stdio server's process, killed when it is replaced or dropped.
    child: Option<Child>,
    tools: Vec<Arc<dyn AgentTool>>,
    error: Option<String>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("running", &self.service.is_some())
            .field("tools", &self.tools.len())
            .field("error", &self.error)
            .finish()
    }
}

/// Hears a server's notifications: a changed tool list is listed again.
#[derive(Debug, Clone)]
struct Handler {
    server: std::sync::Weak<Server>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        if let Some(server) = self.server.upgrade() {
            tokio::spawn(async move {
                if let Err(error) = server.relist().await {
                    tracing::warn!(server = %server.section.name, %error, "could not list the MCP server's changed tools");
                }
            });
        }
    }
}

impl Server {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn tools(&self) -> Vec<Arc<dyn AgentTool>> {
        self.read().tools.clone()
    }

    fn running(&self) -> Option<Arc<RunningService<RoleClient, Handler>>> {
        self.read()
            .service
            .clone()
            .filter(|service| !service.is_closed())
    }

    /// Starts (or restarts) the server and lists its tools; returns how many.
    async fn connect(self: &Arc<Self>) -> Result<usize, String> {
        let _one = self.connecting.lock().await;
        if self.running().is_some() {
            return Ok(self.read().tools.len());
        }
        let limit = Duration::from_secs(self.section.start_timeout_secs);
        let started = tokio::time::timeout(limit, self.open()).await;
        let result = match started {
            Ok(Ok((service, child))) => {
                let service = Arc::new(service);
                match tokio::time::timeout(limit, service.list_all_tools()).await {
                    Ok(Ok(listed)) => {
                        let tools = self.wrap(listed);
                        let count = tools.len();
                        let mut state = self.write();
                        state.service = Some(service);
                        state.child = child;
                        state.tools = tools;
                        state.error = None;
                        Ok(count)
                    }
                    Ok(Err(e)) => Err(format!("listing its tools failed: {e}")),
                    Err(_) => Err(format!("listing its tools took over {} s", limit.as_secs())),
                }
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "it did not start within {} s (start_timeout_secs)",
                limit.as_secs()
            )),
        };
        if let Err(error) = &result {
            let mut state = self.write();
            state.service = None;
            state.child = None;
            state.error = Some(error.clone());
        }
        result
    }

    async fn relist(self: &Arc<Self>) -> Result<(), String> {
        let service = self.running().ok_or("the server is not running")?;
        let listed = service.list_all_tools().await.map_err(|e| e.to_string())?;
        let tools = self.wrap(listed);
        tracing::info!(server = %self.section.name, tools = tools.len(), "MCP server's tools listed again");
        self.write().tools = tools;
        Ok(())
    }

    fn wrap(self: &Arc<Self>, listed: Vec<rmcp::model::Tool>) -> Vec<Arc<dyn AgentTool>> {
        listed
            .into_iter()
            .map(|tool| {
                let spec = ToolSpec {
                    name: external_name(&self.section.name, &tool.name),
                    description: tool.description.as_deref().unwrap_or_default().to_owned(),
                    parameters: Value::Object((*tool.input_schema).clone()),
                    source: self.section.name.clone(),
                };
                Arc::new(McpTool {
                    server: self.clone(),
                    remote: tool.name.to_string(),
                    spec,
                }) as Arc<dyn AgentTool>
            })
            .collect()
    }

    async fn open(
        self: &Arc<Self>,
    ) -> Result<(RunningService<RoleClient, Handler>, Option<Child>), String> {
        let handler = Handler {
            server: Arc::downgrade(self),
        };
        if let Some(url) = &self.section.url {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            if let Some(token) = &self.token {
                config = config.auth_header(token.expose_secret().to_owned());
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            let service = handler
                .serve(transport)
                .await
                .map_err(|e| format!("could not connect to {url}: {e}"))?;
            return Ok((service, None));
        }
        let command = self.section.command.as_deref().unwrap_or_default();
        let mut child = Command::new(command)
            .args(&self.section.args)
            .envs(&self.section.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("could not start `{command}` ({e}); check that it is installed and on PATH")
            })?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            return Err("the child process has no stdio pipes".into());
        };
        if let Some(stderr) = child.stderr.take() {
            let name = self.section.name.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(server = %name, "{line}");
                }
            });
        }
        let service = handler.serve((stdout, stdin)).await.map_err(|e| {
            format!("`{command}` started but did not answer MCP's initialize ({e})")
        })?;
        Ok((service, Some(child)))
    }

    /// Forgets a server that went away, so that its next call starts it again.
    fn lost(&self, error: &str) {
        let mut state = self.write();
        state.service = None;
        state.child = None;
        state.error = Some(error.to_owned());
    }
}

/// One tool of an external server.
#[derive(Debug)]
struct McpTool {
    server: Arc<Server>,
    /// The tool's name on its server.
    remote: String,
    spec: ToolSpec,
}

#[async_trait]
impl AgentTool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<String, ToolError> {
        let name = &self.server.section.name;
        let Value::Object(arguments) = arguments else {
            return Err(ToolError::InvalidArguments(
                "the arguments must be a JSON object".into(),
            ));
        };
        let service = match self.server.running() {
            Some(service) => service,
            None => {
                self.server.connect().await.map_err(|e| {
                    ToolError::Unavailable(format!("MCP server `{name}` is not running: {e}"))
                })?;
                self.server.running().ok_or_else(|| {
                    ToolError::Unavailable(format!("MCP server `{name}` is not running"))
                })?
            }
        };
        let params = CallToolRequestParams::new(self.remote.clone()).with_arguments(arguments);
        match service.call_tool(params).await {
            Ok(result) => text_of(result),
            Err(error) => {
                let message = format!("MCP server `{name}` failed the call: {error}");
                if service.is_closed()
                    || matches!(
                        error,
                        rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)
                    )
                {
                    self.server.lost(&message);
                    return Err(ToolError::Unavailable(message));
                }
                Err(ToolError::Failed(message))
            }
        }
    }
}

/// The text the model reads: the result's text blocks, its structured content when it has no
/// text; an error result is a failed call.
fn text_of(result: CallToolResult) -> Result<String, ToolError> {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(text) => text.text.clone(),
            other => format!("[{} content]", content_kind(other)),
        })
        .collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let text = parts.join("\n");
    if result.is_error == Some(true) {
        Err(ToolError::Failed(text))
    } else {
        Ok(text)
    }
}

fn content_kind(block: &ContentBlock) -> &'static str {
    match block {
        ContentBlock::Text(_) => "text",
        ContentBlock::Image(_) => "image",
        ContentBlock::Audio(_) => "audio",
        ContentBlock::Resource(_) => "resource",
        ContentBlock::ResourceLink(_) => "resource link",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}
