//! The MCP server handler: tools (listed and called per the caller's grant, arguments checked
//! against each tool's input schema), registry prompts, and documents as resources.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_prompts::Selector;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, Role, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Knowledge;
use crate::tools::{TOOL_NAMES, description, document_uri, readable_collections, role_name};
use cairn_auth::Grant;

/// How the server is reached, which decides where the caller's grant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// The local user: every tool and collection the config has.
    Stdio,
    /// A grant verified by the HTTP auth layer; without one, nothing.
    Http,
}

/// The MCP server over Cairn's knowledge base and prompt registry. Cheap to clone.
#[derive(Clone)]
pub struct CairnMcp {
    knowledge: Arc<Knowledge>,
    transport: Transport,
    tool_router: ToolRouter<CairnMcp>,
    validators: Arc<HashMap<String, jsonschema::Validator>>,
}

impl std::fmt::Debug for CairnMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CairnMcp")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

const INSTRUCTIONS: &str = "Cairn answers from the organisation's documents. search_knowledge finds \
passages (cite them by title and source); answer_question gives a cited answer; get_document reads \
more around a passage.";

impl CairnMcp {
    fn new(knowledge: Knowledge, transport: Transport) -> CairnMcp {
        let tool_router = Self::tool_router() + Self::eval_tool_router();
        let validators = tool_router
            .list_all()
            .into_iter()
            .filter_map(|tool| {
                let schema = Value::Object(tool.input_schema.as_ref().clone());
                match jsonschema::validator_for(&schema) {
                    Ok(validator) => Some((tool.name.to_string(), validator)),
                    Err(e) => {
                        tracing::error!(tool = %tool.name, error = %e, "tool input schema does not compile");
                        None
                    }
                }
            })
            .collect();
        CairnMcp {
            knowledge: Arc::new(knowledge),
            transport,
            tool_router,
            validators: Arc::new(validators),
        }
    }

    /// The server for the stdio transport: the caller is the local user.
    pub fn for_stdio(knowledge: Knowledge) -> CairnMcp {
        CairnMcp::new(knowledge, Transport::Stdio)
    }

    /// The server behind the HTTP auth layer: each request's grant comes from its API key.
    pub fn for_http(knowledge: Knowledge) -> CairnMcp {
        CairnMcp::new(knowledge, Transport::Http)
    }

    /// Serves MCP on stdin/stdout until the client closes it.
    pub async fn serve_stdio(self) -> Result<(), String> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| format!("the MCP client did not complete the handshake: {e}"))?;
        running
            .waiting()
            .await
            .map_err(|e| format!("the MCP session ended abnormally: {e}"))?;
        Ok(())
    }

    pub(crate) fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// The caller's permissions for this request.
    fn grant(&self, context: &RequestContext<RoleServer>) -> Grant {
        match self.transport {
            Transport::Stdio => Grant::local(),
            Transport::Http => context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Grant>())
                .cloned()
                .unwrap_or_else(Grant::nobody),
        }
    }

    fn tools_for(&self, grant: &Grant) -> Vec<Tool> {
        self.tool_router
            .list_all()
            .into_iter()
            .filter(|tool| grant.may_call(&tool.name))
            .collect()
    }

    /// Checks arguments against the tool's input schema, with a message that points at the field.
    fn check_arguments(&self, tool: &str, arguments: &Value) -> Result<(), ErrorData> {
        let Some(validator) = self.validators.get(tool) else {
            return Ok(());
        };
        let problems: Vec<String> = validator
            .iter_errors(arguments)
            .map(|error| {
                let path = error.instance_path().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("`{}`: {error}", path.trim_start_matches('/'))
                }
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        let schema = self
            .tool_router
            .get(tool)
            .map(|t| Value::Object(t.input_schema.as_ref().clone()));
        Err(ErrorData::invalid_params(
            format!(
                "invalid arguments for `{tool}`: {}; see the tool's inputSchema (tools/list)",
                problems.join("; ")
            ),
            Some(json!({"tool": tool, "problems": problems, "inputSchema": schema})),
        ))
    }

    /// The prompt version MCP clients get by name: the `production` label if set, else the latest.
    async fn served_version(
        &self,
        name: &str,
    ) -> Result<cairn_core::catalog::PromptVersion, cairn_prompts::PromptError> {
        let prompts = &self.knowledge.prompts;
        match prompts
            .resolve(name, &Selector::Label("production".into()))
            .await
        {
            Ok(version) => Ok(version),
            Err(_) => prompts.resolve(name, &Selector::Latest).await,
        }
    }
}

fn denied(what: &str) -> ErrorData {
    ErrorData::invalid_request(
        format!("{what} is not available to this key; ask for a key that allows it"),
        None,
    )
}

fn internal(error: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}

/// A prompt's arguments, from its variables schema.
fn prompt_arguments(spec: &Value) -> Vec<PromptArgument> {
    let variables = spec.get("variables");
    let required: Vec<&str> = variables
        .and_then(|v| v.get("required"))
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    variables
        .and_then(|v| v.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| {
                    let mut text = property
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(kind) = property.get("type").and_then(Value::as_str)
                        && kind != "string"
                    {
                        text.push_str(&format!(" (JSON {kind})"));
                    }
                    PromptArgument::new(name.clone())
                        .with_description(text.trim().to_owned())
                        .with_required(required.contains(&name.as_str()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// MCP prompt arguments are strings; variables of other types are given as JSON.
fn prompt_variables(spec: &Value, arguments: serde_json::Map<String, Value>) -> Value {
    let properties = spec
        .get("variables")
        .and_then(|v| v.get("properties"))
        .and_then(Value::as_object);
    let variables = arguments
        .into_iter()
        .map(|(name, value)| {
            let declared = properties
                .and_then(|p| p.get(&name))
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str);
            let value = match (declared, value) {
                (Some(kind), Value::String(text)) if kind != "string" => {
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                }
                (_, value) => value,
            };
            (name, value)
        })
        .collect();
    Value::Object(variables)
}

/// `cairn://collections/{collection}/documents/{id}` → (collection, id).
fn parse_document_uri(uri: &str) -> Option<(&str, Uuid)> {
    let rest = uri.strip_prefix("cairn://collections/")?;
    let (collection, id) = rest.split_once("/documents/")?;
    Some((collection, id.parse().ok()?))
}

impl ServerHandler for CairnMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("cairn", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.tools_for(&self.grant(&context)),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let grant = self.grant(&context);
        let name = request.name.to_string();
        if !self.tool_router.has_route(&name) {
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool is named `{name}`; tools: {}",
                    TOOL_NAMES.join(", ")
                ),
                None,
            ));
        }
        if !grant.may_call(&name) {
            tracing::info!(principal = %grant.principal, tool = %name, "tool call refused by the key's allow-list");
            return Err(denied(&format!("tool `{name}`")));
        }
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        self.check_arguments(&name, &arguments)?;
        tracing::info!(principal = %grant.principal, tool = %name, "MCP tool call");
        context.extensions.insert(grant);
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        if !self.grant(&context).may_call("get_prompt") {
            return Ok(ListPromptsResult::with_all_items(Vec::new()));
        }
        let mut prompts = Vec::new();
        for summary in self
            .knowledge
            .catalog
            .list_prompts()
            .await
            .map_err(internal)?
        {
            let version = self.served_version(&summary.name).await.map_err(internal)?;
            prompts.push(Prompt::new(
                summary.name,
                Some(description(&version.spec)),
                Some(prompt_arguments(&version.spec)),
            ));
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if !self.grant(&context).may_call("get_prompt") {
            return Err(denied("the prompts capability"));
        }
        let version = self
            .served_version(&request.name)
            .await
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        let variables = prompt_variables(&version.spec, request.arguments.unwrap_or_default());
        let rendered = self
            .knowledge
            .prompts
            .render(
                &version.name,
                &Selector::Version(version.version),
                &variables,
            )
            .await
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        // MCP prompts carry user and assistant messages; a system section becomes a user message
        // marked as instructions.
        let messages = rendered
            .messages
            .into_iter()
            .map(|m| match m.role {
                cairn_core::model::Role::Assistant => {
                    PromptMessage::new_text(Role::Assistant, m.content)
                }
                cairn_core::model::Role::User => PromptMessage::new_text(Role::User, m.content),
                other => PromptMessage::new_text(
                    Role::User,
                    format!("[{}]\n{}", role_name(other), m.content),
                ),
            })
            .collect();
        Ok(GetPromptResult::new(messages)
            .with_description(format!(
                "{} v{}: {}",
                version.name,
                version.version,
                description(&version.spec)
            ))
            .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let grant = self.grant(&context);
        if !grant.may_call("get_document") {
            return Ok(ListResourcesResult::with_all_items(Vec::new()));
        }
        let mut resources = Vec::new();
        for collection in readable_collections(self, &grant).await.map_err(internal)? {
            for document in self
                .knowledge
                .catalog
                .list_documents(collection.id)
                .await
                .map_err(internal)?
            {
                resources.push(
                    Resource::new(document_uri(&collection.name, document.id), &document.title)
                        .with_description(format!("{} ({})", document.source, collection.name))
                        .with_mime_type("text/plain"),
                );
            }
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(
                "cairn://collections/{collection}/documents/{id}",
                "document",
            )
            .with_description("A document's text, by collection and document id")
            .with_mime_type("text/plain"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let grant = self.grant(&context);
        let not_found = || {
            ErrorData::resource_not_found(
                format!(
                    "no readable document at `{}`; document URIs look like cairn://collections/NAME/documents/ID",
                    request.uri
                ),
                None,
            )
        };
        if !grant.may_call("get_document") {
            return Err(not_found());
        }
        let (collection, id) = parse_document_uri(&request.uri).ok_or_else(not_found)?;
        let (found_in, _, text) = self
            .read_document(id, &grant)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        if found_in != collection {
            return Err(not_found());
        }
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri.clone()).with_mime_type("text/plain"),
        ])
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_uris_round_trip() {
        let id = Uuid::now_v7();
        let uri = document_uri("handbook", id);
        assert_eq!(parse_document_uri(&uri), Some(("handbook", id)));
        assert_eq!(parse_document_uri("cairn://collections/handbook"), None);
        assert_eq!(
            parse_document_uri("cairn://collections/a/documents/not-a-uuid"),
            None
        );
    }

    #[test]
    fn prompt_arguments_come_from_the_variables_schema() {
        let spec = json!({"variables": {"type": "object", "required": ["question"], "properties": {
            "question": {"type": "string", "description": "The question."},
            "passages": {"type": "array", "description": "Passages."}}}});
        let arguments = prompt_arguments(&spec);
        let question = arguments.iter().find(|a| a.name == "question");
        assert_eq!(question.and_then(|a| a.required), Some(true));
        let passages = arguments.iter().find(|a| a.name == "passages");
        assert_eq!(
            passages.and_then(|a| a.description.clone()).as_deref(),
            Some("Passages. (JSON array)")
        );
        let variables = prompt_variables(
            &spec,
            serde_json::from_value(json!({"question": "why?", "passages": "[{\"text\": \"t\"}]"}))
                .unwrap_or_default(),
        );
        assert_eq!(
            variables,
            json!({"question": "why?", "passages": [{"text": "t"}]})
        );
    }
}
