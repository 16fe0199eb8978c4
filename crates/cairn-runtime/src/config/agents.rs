//! `[[agents]]` and `[[mcp_servers]]`: tool-calling agents (served as `agent:NAME`) and the
//! external MCP servers whose tools they may call. Checked here; the agents' prompts, which live
//! in the catalog, are checked when the runtime is built.

use super::*;
use cairn_agent::McpServerSection;
use cairn_app::agents::OWN_TOOLS;

/// Names, routes, tools and limits of every agent, and every server's transport.
pub(super) fn check_agents(
    raw: &RawConfig,
    callable: &[String],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    let mut servers: Vec<&str> = Vec::new();
    for (index, server) in raw.mcp_servers.iter().enumerate() {
        let key = |field: &str| format!("mcp_servers[{index}].{field}");
        check_server_name(server, &servers)
            .map_err(|(problem, fix)| bad(&key("name"), problem, &fix))?;
        servers.push(&server.name);
        if let Some((field, problem, fix)) = server.problem() {
            return Err(bad(&key(field), problem, &fix));
        }
    }
    let callable: Vec<&str> = callable.iter().map(String::as_str).collect();
    let mut names: Vec<&str> = Vec::new();
    for (index, agent) in raw.agents.iter().enumerate() {
        let key = |field: &str| format!("agents[{index}].{field}");
        super::check_named(
            ("agent", &key),
            &agent.name,
            &agent.route,
            &mut names,
            &callable,
            bad,
        )?;
        if agent.tools.is_empty() {
            return Err(bad(
                &key("tools"),
                "an agent needs at least one tool".into(),
                &format!(
                    "list its tools, e.g. tools = [\"search\"]; Cairn's own: {}",
                    OWN_TOOLS.join(", ")
                ),
            ));
        }
        for tool in &agent.tools {
            let known = match tool.split_once('.') {
                None => OWN_TOOLS.contains(&tool.as_str()),
                Some((server, name)) => servers.contains(&server) && !name.is_empty(),
            };
            if !known {
                return Err(bad(
                    &key("tools"),
                    format!(
                        "`{tool}` is neither one of Cairn's tools nor SERVER.TOOL of a declared [[mcp_servers]] entry"
                    ),
                    &format!(
                        "use Cairn's own ({}), or SERVER.TOOL / SERVER.* with a server from: {}",
                        OWN_TOOLS.join(", "),
                        if servers.is_empty() {
                            "(none declared)".to_owned()
                        } else {
                            servers.join(", ")
                        }
                    ),
                ));
            }
        }
        if let Some(unlisted) = agent.approval.iter().find(|a| !agent.tools.contains(a)) {
            return Err(bad(
                &key("approval"),
                format!("`{unlisted}` needs approval but is not among the agent's tools"),
                "list it in `tools` too, written the same way (e.g. \"fetch_url\" or \"files.*\")",
            ));
        }
        let apps: Vec<&str> = raw.apps.iter().map(|a| a.name.as_str()).collect();
        if let Some(app) = agent.apps.iter().find(|a| !apps.contains(&a.as_str())) {
            return Err(bad(
                &key("apps"),
                format!("no app is named `{app}`"),
                &format!("use one of: {}", apps.join(", ")),
            ));
        }
        if agent.max_steps == 0 || agent.max_steps > 100 {
            return Err(bad(
                &key("max_steps"),
                format!("{} model calls per run", agent.max_steps),
                "use 1 to 100 (default 8)",
            ));
        }
        if agent.deadline_secs == 0 || agent.tool_timeout_secs == 0 || agent.max_cost_usd < 0.0 {
            return Err(bad(
                &key("deadline_secs"),
                format!(
                    "deadline {} s, tool timeout {} s, cost budget {}",
                    agent.deadline_secs, agent.tool_timeout_secs, agent.max_cost_usd
                ),
                "give the run and each tool call some seconds, and a cost budget of 0 (none) or more",
            ));
        }
    }
    Ok(())
}

fn check_server_name(server: &McpServerSection, seen: &[&str]) -> Result<(), (String, String)> {
    let fine = !server.name.is_empty()
        && server.name.len() <= 32
        && server
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !server.name.contains("__");
    if !fine {
        return Err((
            format!("`{}` is not a server name", server.name),
            "use up to 32 letters, digits, `-` and single `_` (tools reach models as NAME__TOOL)"
                .into(),
        ));
    }
    if seen.contains(&server.name.as_str()) {
        return Err((
            format!("server `{}` is declared twice", server.name),
            "give each [[mcp_servers]] entry its own name".into(),
        ));
    }
    Ok(())
}

/// The bearer tokens `[[mcp_servers]]` name, read from the environment; a named variable that is
/// not set is refused here rather than at the first call.
pub(super) fn mcp_tokens(
    servers: &[McpServerSection],
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Vec<(String, SecretString)>, ConfigError> {
    let mut tokens = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        let Some(var) = &server.bearer_token_env else {
            continue;
        };
        match env.iter().find(|(k, _)| k == var) {
            Some((k, v)) if !v.is_empty() => {
                tokens.push((k.clone(), SecretString::from(v.clone())))
            }
            _ => {
                return Err(bad(
                    &format!("mcp_servers[{index}].bearer_token_env"),
                    format!("the environment variable `{var}` is not set"),
                    &format!(
                        "export {var}=<token> before starting Cairn, or remove bearer_token_env"
                    ),
                ));
            }
        }
    }
    Ok(tokens)
}
