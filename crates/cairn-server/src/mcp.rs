//! The MCP server's wiring: its knowledge (catalog, retrieval, prompt registry) from the app state,
//! and the [`Answerer`] that answers through the answer pipeline, as the chat API and the web UI do.

use async_trait::async_trait;
use cairn_app::{AnswerRequest, Pipeline, Target};
use cairn_core::RequestContext;
use cairn_core::model::{ChatMessage, ChatRequest, Role};
use cairn_mcp::{
    AnswerOutput, AnswerTarget, Answerer, CairnMcp, CheckOutput, EvalSuiteOutput, FailingCaseOut,
    GateOut, Grant, Knowledge, MetricOut, SuiteRunOut,
};

use crate::app::AppState;

/// Answers through the pipeline.
#[derive(Debug, Clone)]
struct PipelineAnswerer {
    pipeline: Pipeline,
    /// `mcp.answer_route`: the route for questions about a bare collection.
    answer_route: String,
    /// `mcp.eval_suites`: where `run_eval_suite` finds suites; empty: nowhere.
    eval_suites: String,
}

impl PipelineAnswerer {
    /// The route for questions about a bare collection: `mcp.answer_route`, else the first app's
    /// route, else the first model.
    fn collection_route(&self) -> Option<String> {
        if !self.answer_route.is_empty() {
            return Some(self.answer_route.clone());
        }
        self.pipeline
            .apps()
            .first()
            .map(|app| app.route.clone())
            .or_else(|| self.pipeline.models().names().into_iter().next())
    }
}

#[async_trait]
impl Answerer for PipelineAnswerer {
    fn app_collections(&self, app: &str) -> Option<Vec<String>> {
        self.pipeline.app(app).map(|a| a.collections.clone())
    }

    async fn check_text(
        &self,
        guards: &[String],
        stage: cairn_core::guard::GuardStage,
        text: String,
    ) -> Result<CheckOutput, String> {
        let checked = self
            .pipeline
            .guards()
            .check_text(guards, stage, text)
            .await
            .map_err(|e| e.to_string())?;
        Ok(CheckOutput {
            action: checked.action.to_owned(),
            text: checked.text,
            blocked_by: checked.blocked_by,
            reason: checked.reason,
            verdicts: checked
                .verdicts
                .iter()
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .collect(),
        })
    }

    async fn run_eval(&self, grant: &Grant, suite: &str) -> Result<EvalSuiteOutput, String> {
        let file = self.suite_file(suite)?;
        let suite = cairn_eval::Suite::load(&file).map_err(|e| e.to_string())?;
        let answerer = cairn_app::PipelineAnswerer::new(self.pipeline.clone(), grant.principal());
        let catalog = self.pipeline.parts().catalog.clone();
        let options = cairn_eval::RunOptions::default();
        let mut runs = Vec::new();
        for target in &suite.targets {
            let mut report =
                cairn_eval::run(&suite, target, &answerer, &options, &cairn_eval::Quiet)
                    .await
                    .map_err(|e| e.to_string())?;
            cairn_eval::store::save(catalog.as_ref(), &mut report)
                .await
                .map_err(|e| format!("the run finished but could not be stored: {e}"))?;
            runs.push(suite_run(&report));
        }
        Ok(EvalSuiteOutput {
            passed: runs.iter().all(|r| r.passed),
            suite: suite.name,
            runs,
        })
    }

    async fn answer(
        &self,
        grant: &Grant,
        target: &AnswerTarget,
        question: &str,
    ) -> Result<AnswerOutput, String> {
        let target = match target {
            AnswerTarget::App(name) => Target::App(name.clone()),
            AnswerTarget::Agent(name) => Target::Agent(name.clone()),
            AnswerTarget::Collection(collection) => Target::Collection {
                collection: collection.clone(),
                route: self.collection_route().ok_or(
                    "no model is configured to answer with; add [[models]] (or set mcp.answer_route)",
                )?,
            },
        };
        let request = AnswerRequest::new(
            target,
            ChatRequest {
                messages: vec![ChatMessage::new(Role::User, question)],
                ..ChatRequest::default()
            },
        );
        let context = RequestContext::new(grant.principal(), uuid::Uuid::new_v4().to_string());
        let answer = self
            .pipeline
            .answer(&context, request)
            .await
            .map_err(|e| e.to_string())?;
        let citations = answer.citations().to_vec();
        let model = answer.route().to_owned();
        let prompt = answer.prompt().map(|(name, version)| match version {
            Some(version) => format!("{name}@v{version}"),
            None => name.to_owned(),
        });
        let lineage_id = answer.lineage_id();
        let completed = answer.complete().await.map_err(|e| e.to_string())?;
        Ok(AnswerOutput {
            answer: completed.response.message.content,
            citations,
            model,
            prompt,
            lineage_id,
        })
    }
}

impl PipelineAnswerer {
    /// The suite file for a name: `NAME.yaml` (or `.yml`) in the suites directory; a name with a
    /// path in it is refused, so a caller reads nothing outside that directory.
    fn suite_file(&self, suite: &str) -> Result<std::path::PathBuf, String> {
        if self.eval_suites.is_empty() {
            return Err("this server runs no eval suites (mcp.eval_suites is empty)".into());
        }
        let valid = !suite.is_empty()
            && suite
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !valid {
            return Err(format!(
                "`{suite}` is not a suite name: use the file name without `.yaml` (letters, digits, `-`, `_`)"
            ));
        }
        let dir = std::path::Path::new(&self.eval_suites);
        ["yaml", "yml"]
            .iter()
            .map(|ext| dir.join(format!("{suite}.{ext}")))
            .find(|path| path.is_file())
            .ok_or_else(|| {
                let known: Vec<String> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|entry| {
                        let path = entry.path();
                        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
                        yaml.then(|| path.file_stem()?.to_str().map(str::to_owned))
                            .flatten()
                    })
                    .collect();
                format!(
                    "no suite `{suite}` in {}; suites: {}",
                    dir.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )
            })
    }
}

/// A run summarised for an agent.
fn suite_run(report: &cairn_eval::RunReport) -> SuiteRunOut {
    SuiteRunOut {
        run_id: report.run_id.map(|id| id.to_string()),
        target: report.target.clone(),
        passed: report.passed,
        metrics: report
            .metrics
            .iter()
            .map(|m| MetricOut {
                name: m.name.clone(),
                mean: m.mean.map(|e| e.value),
                measured: m.measured as u64,
                unmeasured: m.unmeasured as u64,
            })
            .collect(),
        gates: report
            .gates
            .iter()
            .map(|g| GateOut {
                gate: g.gate.clone(),
                passed: g.passed,
                detail: g.detail.clone(),
            })
            .collect(),
        failing_cases: report
            .cases
            .iter()
            .filter(|c| !c.passed)
            .take(20)
            .map(|c| FailingCaseOut {
                case: c.case.id.clone(),
                reasons: report.failures(c),
            })
            .collect(),
    }
}

/// What the MCP tools read, over the app state.
pub fn knowledge(state: &AppState) -> Knowledge {
    Knowledge {
        catalog: state.catalog.clone(),
        retriever: match state.rag.as_ref() {
            Ok(rag) => Ok(rag.retriever.clone()),
            Err(e) => Err(format!("search is unavailable: {e}")),
        },
        prompts: state.prompts.clone(),
        answerer: std::sync::Arc::new(PipelineAnswerer {
            pipeline: state.pipeline.clone(),
            answer_route: state.mcp.answer_route.clone(),
            eval_suites: state.mcp.eval_suites.clone(),
        }),
    }
}

/// `/mcp` and its protected-resource metadata.
pub fn router(state: &AppState) -> axum::Router {
    let options = cairn_mcp::http::HttpOptions {
        allowed_hosts: state.access.allowed_hosts.clone(),
        resource_url: state.mcp.resource_url.clone(),
        // The sign-in provider issues tokens `/mcp` accepts: name it unless the operator did.
        authorization_servers: match &state.auth {
            Some(oidc) if state.mcp.authorization_servers.is_empty() => {
                vec![oidc.issuer().to_owned()]
            }
            _ => state.mcp.authorization_servers.clone(),
        },
    };
    cairn_mcp::http::router(
        CairnMcp::for_http(knowledge(state)),
        state.catalog.clone(),
        state.keys.clone(),
        options,
    )
}
