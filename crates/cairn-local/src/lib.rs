//! In-process models for Cairn: chat through mistral.rs, from GGUF files or safetensors
//! directories on local disk (or Hugging Face model ids when the machine is online). CPU by default;
//! the `cuda` feature runs on NVIDIA GPUs.
//!
//! mistral.rs and candle live in this crate only, so that edits elsewhere never rebuild them. The
//! engine batches concurrent requests itself (up to `max_num_seqs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::model::{
    ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason, ModelError,
    ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use mistralrs::{
    CalledFunction, Constraint, Function, Model, RequestBuilder, Response, SamplingParams,
    StopTokens, TextMessageRole, TextModelBuilder, TokenSource, Tool, ToolCallResponse,
    ToolCallType, ToolType,
};

/// Where a local model's weights are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalModelSource {
    /// A `.gguf` file; its tokenizer and chat template come from the file's metadata.
    Gguf(PathBuf),
    /// A directory with `config.json`, `tokenizer.json` (with a chat template in
    /// `tokenizer_config.json`) and `*.safetensors`.
    Safetensors(PathBuf),
    /// A Hugging Face model id, downloaded on first use (needs network access).
    Hub(String),
}

impl LocalModelSource {
    /// A `.gguf` path is GGUF, a directory is safetensors, anything else is taken as a hub id.
    pub fn from_path_or_id(value: &str) -> LocalModelSource {
        let path = Path::new(value);
        if path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
        {
            LocalModelSource::Gguf(path.to_path_buf())
        } else if path.is_dir() {
            LocalModelSource::Safetensors(path.to_path_buf())
        } else {
            LocalModelSource::Hub(value.to_owned())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// Run on the CPU even when built with `cuda`.
    pub force_cpu: bool,
    /// Requests the engine batches together.
    pub max_num_seqs: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            force_cpu: false,
            max_num_seqs: 16,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "model file {0} does not exist; fetch it first (scripts/fetch-models.sh fetches the test models)"
    )]
    Missing(PathBuf),
    #[error("cannot load local model {source_name}: {reason}")]
    Load { source_name: String, reason: String },
}

/// A chat model running in this process through mistral.rs.
#[derive(Clone)]
pub struct MistralRsChatModel {
    model: Arc<Model>,
    name: String,
}

impl std::fmt::Debug for MistralRsChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MistralRsChatModel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MistralRsChatModel {
    /// Loads the model. Local paths are read directly and the hub is never contacted for them.
    pub async fn load(
        source: &LocalModelSource,
        options: LocalOptions,
    ) -> Result<Self, LocalError> {
        let load_error = |name: &str, reason: String| LocalError::Load {
            source_name: name.to_owned(),
            reason,
        };
        let (name, model) = match source {
            LocalModelSource::Gguf(path) => {
                // A directory that does not exist would make mistral.rs fall back to the hub: check first.
                if !path.is_file() {
                    return Err(LocalError::Missing(path.clone()));
                }
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let model = load_gguf(dir, &file, options)
                    .await
                    .map_err(|reason| load_error(&file, reason))?;
                (file, model)
            }
            LocalModelSource::Safetensors(dir) => {
                if !dir.is_dir() {
                    return Err(LocalError::Missing(dir.clone()));
                }
                let name = dir
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    name.clone(),
                    load_text_model(&dir.display().to_string(), &name, true, options).await?,
                )
            }
            LocalModelSource::Hub(id) => {
                (id.clone(), load_text_model(id, id, false, options).await?)
            }
        };
        Ok(MistralRsChatModel {
            model: Arc::new(model),
            name,
        })
    }

    /// The model's context window in tokens, when it declares one.
    pub fn context_length(&self) -> Option<usize> {
        self.model.max_sequence_length().ok().flatten()
    }
}

fn request_builder(request: &ChatRequest) -> Result<RequestBuilder, ModelError> {
    let mut builder = RequestBuilder::new();
    for message in &request.messages {
        builder = match message.role {
            Role::System => builder.add_message(TextMessageRole::System, &message.content),
            Role::User => builder.add_message(TextMessageRole::User, &message.content),
            Role::Assistant if message.tool_calls.is_empty() => {
                builder.add_message(TextMessageRole::Assistant, &message.content)
            }
            Role::Assistant => {
                let calls = message
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(index, call)| ToolCallResponse {
                        index,
                        id: call.id.clone(),
                        tp: ToolCallType::Function,
                        function: CalledFunction {
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                        },
                    })
                    .collect();
                builder.add_message_with_tool_call(
                    TextMessageRole::Assistant,
                    &message.content,
                    calls,
                )
            }
            Role::Tool => builder.add_tool_message(
                &message.content,
                message.tool_call_id.clone().unwrap_or_default(),
            ),
        };
    }
    // As in OpenAI's API, temperature 0 is greedy decoding and no temperature samples at 1.0.
    // mistral.rs reads a missing temperature as 1.0 too, so greedy has to be top-k 1.
    let greedy = request.temperature.is_some_and(|t| t <= f32::EPSILON);
    let sampling = SamplingParams {
        temperature: if greedy {
            None
        } else {
            request.temperature.map(f64::from)
        },
        top_k: greedy.then_some(1),
        top_p: request.top_p.map(f64::from),
        max_len: request.max_tokens.map(|n| n as usize),
        stop_toks: (!request.stop.is_empty()).then(|| StopTokens::Seqs(request.stop.clone())),
        ..SamplingParams::neutral()
    };
    builder = builder.set_sampling(sampling);
    if !request.tools.is_empty() {
        let tools: Vec<Tool> = request
            .tools
            .iter()
            .map(|tool| Tool {
                tp: ToolType::Function,
                function: Function {
                    description: Some(tool.description.clone()).filter(|d| !d.is_empty()),
                    name: tool.name.clone(),
                    parameters: tool.parameters.as_object().map(|object| {
                        object
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<HashMap<_, _>>()
                    }),
                },
            })
            .collect();
        let choice = match &request.tool_choice {
            None | Some(ToolChoice::Auto) => mistralrs::ToolChoice::Auto,
            Some(ToolChoice::None) => mistralrs::ToolChoice::None,
            Some(ToolChoice::Function(name)) => {
                match tools.iter().find(|tool| &tool.function.name == name) {
                    Some(tool) => mistralrs::ToolChoice::Tool(tool.clone()),
                    None => {
                        return Err(ModelError::InvalidRequest(format!(
                            "tool_choice names `{name}`, which is not among the tools"
                        )));
                    }
                }
            }
            Some(ToolChoice::Required) => {
                return Err(ModelError::InvalidRequest(
                    "tool_choice `required` is not supported by local models; use `auto` or name the function".into(),
                ));
            }
        };
        builder = builder.set_tools(tools).set_tool_choice(choice);
    }
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            builder = builder.set_constraint(Constraint::JsonSchema(
                serde_json::json!({"type": "object"}),
            ));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            builder = builder.set_constraint(Constraint::JsonSchema(schema.clone()));
        }
    }
    Ok(builder)
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

fn usage(usage: &mistralrs::Usage) -> Usage {
    Usage {
        input_tokens: u32::try_from(usage.prompt_tokens).unwrap_or(u32::MAX),
        output_tokens: u32::try_from(usage.completion_tokens).unwrap_or(u32::MAX),
        ..Usage::default()
    }
}

fn tool_call(call: &ToolCallResponse) -> ToolCall {
    ToolCall {
        id: call.id.clone(),
        name: call.function.name.clone(),
        arguments: call.function.arguments.clone(),
    }
}

/// Validation failures are the caller's; a prompt over the context window has its own class.
fn validation_error(message: String) -> ModelError {
    if message.contains("sequence length is greater than") {
        ModelError::ContextLengthExceeded(message)
    } else {
        ModelError::InvalidRequest(message)
    }
}

fn classify(error: mistralrs::error::Error) -> ModelError {
    match error {
        mistralrs::error::Error::RequestValidation(message) => validation_error(message),
        other => ModelError::Permanent(format!("local model failed: {other}")),
    }
}

/// The device the model runs on, and the activation dtype to ask for there: F32 on a CPU (the
/// engine's own choice there is F16, through software conversion, about three times slower), the
/// engine's choice on a GPU.
fn device_and_dtype(
    options: LocalOptions,
) -> Result<(mistralrs::Device, mistralrs::core::ModelDType), String> {
    use mistralrs::core::ModelDType;
    let device = mistralrs::best_device(options.force_cpu).map_err(|e| format!("{e:#}"))?;
    let dtype = if device.is_cpu() {
        ModelDType::F32
    } else {
        ModelDType::Auto
    };
    Ok((device, dtype))
}

/// Loads a GGUF file. mistral.rs's `GgufModelBuilder` always lets the engine choose the activation
/// dtype, which on a CPU is F16 (its first half precision whose test matmul succeeds) and so runs
/// every matmul through software half-precision conversion. On a CPU this builds the same pipeline
/// with F32 activations (the quantized weights stay as they are); on a GPU, with the engine's
/// choice.
async fn load_gguf(dir: &Path, file: &str, options: LocalOptions) -> Result<Model, String> {
    use mistralrs::core::{
        AddModelConfig, AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting,
        EngineConfig, GGUFLoaderBuilder, GGUFSpecificConfig, SchedulerConfig,
    };
    let (device, dtype) = device_and_dtype(options)?;
    let loader = GGUFLoaderBuilder::new(
        None,
        None,
        dir.display().to_string(),
        vec![file.to_owned()],
        GGUFSpecificConfig { topology: None },
        false,
        None,
    )
    .build();
    let pipeline = loader
        .load_model_from_hf(
            None,
            TokenSource::None,
            &dtype,
            &device,
            true,
            DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
            None,
            None,
        )
        .map_err(|e| format!("{e:#}"))?;
    let max_num_seqs = options
        .max_num_seqs
        .max(1)
        .try_into()
        .map_err(|e| format!("max_num_seqs: {e}"))?;
    let scheduler = SchedulerConfig::DefaultScheduler {
        method: DefaultSchedulerMethod::Fixed(max_num_seqs),
    };
    // The builder's defaults: KV cache on, prefix cache of 16 sequences, no throughput logging.
    let config = AddModelConfig {
        engine_config: EngineConfig {
            no_kv_cache: false,
            no_prefix_cache: false,
            prefix_cache_n: 16,
            throughput_logging_enabled: false,
            ..EngineConfig::default()
        },
        mcp_client_config: None,
        loader_config: None,
    };
    Ok(
        mistralrs::model_builder_trait::build_model_from_pipeline(pipeline, scheduler, config)
            .await,
    )
}

/// Loads a safetensors model from a directory (`local`: no token lookup, no hub) or a hub id.
async fn load_text_model(
    model_id: &str,
    name: &str,
    local: bool,
    options: LocalOptions,
) -> Result<Model, LocalError> {
    let (_, dtype) = device_and_dtype(options).map_err(|reason| LocalError::Load {
        source_name: name.to_owned(),
        reason,
    })?;
    let mut builder = TextModelBuilder::new(model_id)
        .with_max_num_seqs(options.max_num_seqs.max(1))
        .with_dtype(dtype);
    if local {
        builder = builder.with_token_source(TokenSource::None);
    }
    if options.force_cpu {
        builder = builder.with_force_cpu();
    }
    builder.build().await.map_err(|e| LocalError::Load {
        source_name: name.to_owned(),
        reason: format!("{e:#}"),
    })
}

#[async_trait]
impl ChatModel for MistralRsChatModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let response = self
            .model
            .send_chat_request(request_builder(request)?)
            .await
            .map_err(classify)?;
        let choice = response
            .choices
            .first()
            .ok_or_else(|| ModelError::Permanent("the local model returned no choices".into()))?;
        let mut message = cairn_core::model::ChatMessage::new(
            Role::Assistant,
            choice.message.content.clone().unwrap_or_default(),
        );
        message.tool_calls = choice
            .message
            .tool_calls
            .iter()
            .flatten()
            .map(tool_call)
            .collect();
        Ok(ChatResponse {
            message,
            finish_reason: finish_reason(&choice.finish_reason),
            usage: usage(&response.usage),
            model: self.name.clone(),
            cost_usd: None,
        })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let builder = request_builder(request)?;
        let model = self.model.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<ChatChunk, ModelError>>(64);
        // The engine's stream borrows the model, so it lives in a task that owns a handle to it.
        tokio::spawn(async move {
            let mut stream = match model.stream_chat_request(builder).await {
                Ok(stream) => stream,
                Err(error) => {
                    let _ = sender.send(Err(classify(error))).await;
                    return;
                }
            };
            let mut finished = false;
            while let Some(response) = stream.next().await {
                let items: Vec<Result<ChatChunk, ModelError>> = match response {
                    Response::Chunk(chunk) => {
                        let mut items = Vec::new();
                        for choice in &chunk.choices {
                            if let Some(text) =
                                choice.delta.content.as_ref().filter(|t| !t.is_empty())
                            {
                                items.push(Ok(ChatChunk::Delta(text.clone())));
                            }
                            items.extend(
                                choice
                                    .delta
                                    .tool_calls
                                    .iter()
                                    .flatten()
                                    .map(|call| Ok(ChatChunk::ToolCall(tool_call(call)))),
                            );
                            if let Some(reason) = &choice.finish_reason {
                                let usage = chunk.usage.as_ref().map(usage).unwrap_or_default();
                                items.push(Ok(ChatChunk::Finish {
                                    reason: finish_reason(reason),
                                    usage,
                                    cost_usd: None,
                                }));
                                finished = true;
                            }
                        }
                        items
                    }
                    Response::ValidationError(error) => {
                        vec![Err(validation_error(error.to_string()))]
                    }
                    Response::InternalError(error) => vec![Err(ModelError::Permanent(format!(
                        "local model failed: {error}"
                    )))],
                    Response::ModelError(message, _) => vec![Err(ModelError::Permanent(format!(
                        "local model failed: {message}"
                    )))],
                    _ => Vec::new(),
                };
                let failed = items.iter().any(Result::is_err);
                for item in items {
                    if sender.send(item).await.is_err() {
                        return; // The caller went away: dropping the stream cancels the request.
                    }
                }
                if failed || finished {
                    return;
                }
            }
            let _ = sender
                .send(Err(ModelError::Transient(
                    "the local model stopped before the answer finished".into(),
                )))
                .await;
        });
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        Ok(Box::pin(stream))
    }
}
