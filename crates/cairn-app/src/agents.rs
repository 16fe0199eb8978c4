//! Agents: what an agent is (its `[[agents]]` section), and how one run is assembled for the
//! [`cairn_core::AgentRunner`]: the route, the registered system prompt rendered with the agent's
//! tools, Cairn's own tools bound to the caller (`agent_tools.rs`), the external MCP tools its
//! allow-list names, each result checked by the agent's context guards.

use std::sync::Arc;
use std::time::Duration;

use cairn_core::ChatModel;
use cairn_core::RequestContext;
use cairn_core::agent::{AgentLimits, AgentRun, AgentTool, StepLog};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::agent_tools::{self, Cited, Guarded};
use crate::error::AnswerError;
use crate::pipeline::{Pipeline, PromptPins, pinned};

/// Names of Cairn's own tools, as an agent's `tools` lists them.
pub const OWN_TOOLS: [&str; 4] = ["search", "read_document", "ask_app", "fetch_url"];

/// A tool-calling agent, callable as `"model": "agent:NAME"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The registered system prompt (`name@label`, `name@VERSION` or `name`), rendered with
    /// `agent`, `description` and `tools`.
    #[serde(default = "default_agent_prompt")]
    pub prompt: String,
    /// The model or route its model calls go to.
    pub route: String,
    /// The tools it may call: Cairn's own by name (`search`, `read_document`, `ask_app`,
    /// `fetch_url`), an external server's as `SERVER.TOOL`, or all of a server's as `SERVER.*`.
    pub tools: Vec<String>,
    /// Tools that run only once the user approves each call, named as in `tools`: the run stops
    /// at such a call and resumes when the caller answers it (docs/agents.md).
    #[serde(default)]
    pub approval: Vec<String>,
    /// The collections `search` may read (`*`: every collection the caller may read).
    #[serde(default = "every_collection")]
    pub collections: Vec<String>,
    /// The apps `ask_app` may ask (default: every app).
    #[serde(default)]
    pub apps: Vec<String>,
    /// Model calls per run at most.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Tokens per run at most (all steps, input and output); 0: no limit.
    #[serde(default)]
    pub max_tokens: u64,
    /// US dollars per run at most, where the route knows its prices; 0: no limit.
    #[serde(default)]
    pub max_cost_usd: f64,
    /// The run's deadline in seconds.
    #[serde(default = "default_deadline_secs")]
    pub deadline_secs: u64,
    /// Each tool call's timeout in seconds.
    #[serde(default = "default_tool_timeout_secs")]
    pub tool_timeout_secs: u64,
    /// Whether one step's tool calls run at once.
    #[serde(default = "default_true")]
    pub parallel_tools: bool,
    /// Guardrails (`[[guards]]` names) over its questions, tool results (as retrieved context)
    /// and answers.
    #[serde(default)]
    pub guards: Vec<String>,
}

pub fn default_agent_prompt() -> String {
    "agent_system@production".into()
}

fn every_collection() -> Vec<String> {
    vec![crate::ALL_COLLECTIONS.to_owned()]
}

fn default_max_steps() -> u32 {
    8
}

fn default_deadline_secs() -> u64 {
    120
}

fn default_tool_timeout_secs() -> u64 {
    30
}

fn default_true() -> bool {
    true
}

impl AgentSection {
    pub fn limits(&self) -> AgentLimits {
        AgentLimits {
            max_steps: self.max_steps,
            max_tokens: self.max_tokens,
            max_cost_usd: (self.max_cost_usd > 0.0).then_some(self.max_cost_usd),
            deadline: Duration::from_secs(self.deadline_secs),
            tool_timeout: Duration::from_secs(self.tool_timeout_secs),
            parallel_tools: self.parallel_tools,
        }
    }

    /// Whether its allow-list admits the tool the model knows as `name` from `source`.
    pub fn allows(&self, source: &str, name: &str) -> bool {
        listed(&self.tools, source, name)
    }

    /// Whether each call of that tool waits for the user's approval.
    pub fn needs_approval(&self, source: &str, name: &str) -> bool {
        listed(&self.approval, source, name)
    }
}

/// Whether `list` (Cairn's tools by name, `SERVER.TOOL`, `SERVER.*`) names the tool the model
/// knows as `name` from `source`.
fn listed(list: &[String], source: &str, name: &str) -> bool {
    list.iter().any(|entry| match entry.split_once('.') {
        None => source == "cairn" && entry == name,
        Some((server, tool)) => {
            server == source
                && (tool == "*" || cairn_core::agent::external_name(server, tool) == name)
        }
    })
}

impl Pipeline {
    /// One run of `agent` for the caller (tools bound and filtered, the system prompt rendered),
    /// bound by the runner as the model that answers; with the prompt version it rendered.
    pub(crate) async fn bind_agent(
        &self,
        context: &RequestContext,
        agent: &AgentSection,
        pins: &PromptPins,
        steps: StepLog,
        cited: &Cited,
    ) -> Result<(Arc<dyn ChatModel>, (String, Option<i64>)), AnswerError> {
        let runner = self.parts().agent_runner.as_ref().ok_or_else(|| {
            AnswerError::Internal("agents are configured but no agent runner is wired".into())
        })?;
        let model = self.parts().models.get(&agent.route).ok_or_else(|| {
            AnswerError::Internal(format!(
                "agent `{}` names route `{}`, which is not loaded",
                agent.name, agent.route
            ))
        })?;
        let guards = self
            .parts()
            .guards
            .for_target(&format!("agent:{}", agent.name));
        let tools: Vec<Arc<dyn AgentTool>> = agent_tools::own(self, context, agent, cited)
            .into_iter()
            .chain(runner.external_tools().await)
            .filter(|tool| agent.allows(&tool.spec().source, &tool.spec().name))
            .map(|tool| Guarded::wrap(tool, guards.clone()))
            .collect();
        let variables = json!({
            "agent": agent.name,
            "description": agent.description,
            "tools": tools.iter().map(|t| json!({"name": t.spec().name, "description": t.spec().description})).collect::<Vec<_>>(),
        });
        let (name, selector) = pinned(&agent.prompt, pins);
        let rendered = self
            .parts()
            .prompts
            .render(&name, &selector, &variables)
            .await?;
        let approval = tools
            .iter()
            .filter(|t| agent.needs_approval(&t.spec().source, &t.spec().name))
            .map(|t| t.spec().name.clone())
            .collect();
        let run = AgentRun {
            agent: agent.name.clone(),
            route: agent.route.clone(),
            model,
            system: rendered.messages.clone(),
            tools,
            approval,
            limits: agent.limits(),
            steps,
        };
        Ok((runner.bind(run), (rendered.name.clone(), rendered.version)))
    }
}
