//! Cairn's agents: the tool-calling loop (`run.rs`), bounded by steps, tokens, cost and a
//! deadline and recorded step by step, and the tools of external MCP servers through rmcp's client
//! ([`mcp`]). The answer pipeline (`cairn-app`) assembles each run (route, system prompt, Cairn's
//! own tools bound to the caller, guards) and asks the [`Runner`] to run it; no HTTP server here.

pub mod mcp;
mod run;

use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::agent::{AgentRun, AgentTool};
use cairn_core::{AgentRunner, ChatModel};
use secrecy::SecretString;
use tokio::sync::OnceCell;

pub use mcp::{McpServerSection, McpServers};

/// Runs agents over the configured external servers, which start at the first agent run (or
/// when [`Runner::start`] is called, as `cairn serve` does).
#[derive(Debug, Clone, Default)]
pub struct Runner {
    sections: Vec<McpServerSection>,
    /// The bearer tokens `[[mcp_servers]]` name, by environment variable.
    env: Vec<(String, SecretString)>,
    servers: Arc<OnceCell<McpServers>>,
}

impl Runner {
    pub fn new(sections: Vec<McpServerSection>, env: Vec<(String, SecretString)>) -> Runner {
        Runner {
            sections,
            env,
            servers: Arc::new(OnceCell::new()),
        }
    }

    /// The servers, started on the first call.
    pub async fn start(&self) -> &McpServers {
        self.servers
            .get_or_init(|| McpServers::start(&self.sections, &self.env))
            .await
    }
}

#[async_trait]
impl AgentRunner for Runner {
    async fn external_tools(&self) -> Vec<Arc<dyn AgentTool>> {
        if self.sections.is_empty() {
            return Vec::new();
        }
        self.start().await.tools()
    }

    fn bind(&self, run: AgentRun) -> Arc<dyn ChatModel> {
        Arc::new(run::AgentModel { run })
    }
}
