//! Guardrails through the OpenAI-compatible API: a streamed answer never sends what an output
//! guard redacts or blocks, whatever the chunking, proven through the real SSE path against the
//! same answer given whole.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_core::guard::GuardStage;
use cairn_guard::{GuardAction, GuardKind, GuardOptions, GuardSection};
use cairn_runtime::config::{ModelBackend, ModelConfig};
use cairn_runtime::models::ModelDirectory;
use cairn_testkit::ScriptedUpstream;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use super::send;

fn section(
    name: &str,
    kind: GuardKind,
    action: GuardAction,
    options: GuardOptions,
) -> GuardSection {
    GuardSection {
        name: name.into(),
        kind,
        stages: vec![GuardStage::Output],
        action,
        on_error: Default::default(),
        timeout_ms: None,
        options,
    }
}

/// A PII guard that redacts.
fn pii() -> GuardSection {
    section(
        "pii",
        GuardKind::Pii,
        GuardAction::Redact,
        GuardOptions::default(),
    )
}

/// A guard on the phrase "project falcon" that takes `action`.
fn codenames(action: GuardAction) -> GuardSection {
    section(
        "codenames",
        GuardKind::Banned,
        action,
        GuardOptions {
            words: Some(vec!["project falcon".into()]),
            ..GuardOptions::default()
        },
    )
}

/// Model `chunks` (the scripted upstream streams the pieces the question lists) with `guards`
/// on its output.
async fn app(guards: Vec<GuardSection>) -> (Router, ScriptedUpstream, super::TestApp) {
    let upstream = ScriptedUpstream::start().await;
    let model = ModelConfig {
        name: "chunks".into(),
        backend: ModelBackend::Remote {
            endpoint: cairn_openai::Endpoint::OpenAi {
                base_url: upstream.base_url(),
                auth: cairn_openai::Auth::None,
            },
            upstream_model: "chunks".into(),
            timeouts: cairn_openai::Timeouts::default(),
        },
        breaker: cairn_gateway::BreakerSettings::default(),
        pricing: None,
    };
    let directory = ModelDirectory::from_config(&[model], &[], None)
        .await
        .expect("directory");
    let built: Vec<Arc<dyn cairn_core::Guardrail>> = guards
        .iter()
        .map(|g| g.build().expect("guard builds"))
        .collect();
    let test = super::test_app(1 << 20).await;
    let mut state = test.state.clone();
    state.pipeline = cairn_app::Pipeline::new(cairn_app::PipelineParts {
        models: Arc::new(directory),
        guards: cairn_app::GuardPolicy::new(
            HashMap::from([("chunks".to_owned(), cairn_app::Guards::new(built.clone()))]),
            guards.iter().map(|g| g.name.clone()).zip(built).collect(),
        ),
        ..state.pipeline.parts().clone()
    });
    (cairn_server::router(state), upstream, test)
}

/// The answer to a question listing `pieces`: its text (streamed or whole) and its status.
async fn ask(app: &Router, pieces: &[String], stream: bool) -> (StatusCode, String) {
    let body = json!({"model": "chunks", "stream": stream,
                      "messages": [{"role": "user", "content": serde_json::to_string(pieces).expect("json")}]});
    let request = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, _, bytes) = send(app, request).await;
    let text = String::from_utf8(bytes).expect("utf-8");
    if !stream {
        let body: Value = serde_json::from_str(&text).expect("JSON");
        let content = body["choices"][0]["message"]["content"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_owned);
        return (status, content);
    }
    let content = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str::<Value>(data).expect("JSON event"))
        .map(|event| {
            event["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    event["error"]["message"]
                        .as_str()
                        .map(|m| format!("[error: {m}]"))
                })
                .unwrap_or_default()
        })
        .collect();
    (status, content)
}

/// Values a guard must never let out: each as written in the answer (with the words that make it
/// one, for a date of birth) and the value itself.
const SECRETS: [(&str, &str); 9] = [
    ("jane.doe@example.com", "jane.doe@example.com"),
    ("(202) 555-0143", "(202) 555-0143"),
    ("+44 20 7946 0958", "+44 20 7946 0958"),
    ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
    ("123-45-6789", "123-45-6789"),
    ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("born on March 3, 1990", "March 3, 1990"),
    ("Project Falcon", "Project Falcon"),
];
const WORDS: [&str; 12] = [
    "the", "report", "is", "due", "call", "write", "to", "born", "card", "and", "IBAN", "today.",
];

/// A text of words and secrets, and where to cut it into streamed pieces.
fn texts() -> impl Strategy<Value = (Vec<&'static str>, Vec<usize>)> {
    let segment = prop_oneof![
        3 => proptest::sample::select(WORDS.to_vec()),
        1 => proptest::sample::select(SECRETS.map(|(written, _)| written).to_vec()),
    ];
    (
        proptest::collection::vec(segment, 1..24),
        proptest::collection::vec(1usize..14, 1..80),
    )
}

fn chunked(text: &str, sizes: &[usize]) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let cut = (*size).min(rest.len());
        pieces.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    pieces
}

#[test]
fn a_streamed_answer_sends_exactly_what_the_whole_answer_shows() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let guards = vec![pii(), codenames(GuardAction::Redact)];
    let (app, _upstream, _test) = runtime.block_on(app(guards));
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&texts(), |(segments, sizes)| {
            let text = segments.join(" ");
            let pieces = chunked(&text, &sizes);
            let (whole_status, whole) = runtime.block_on(ask(&app, &pieces, false));
            let (streamed_status, streamed) = runtime.block_on(ask(&app, &pieces, true));
            prop_assert_eq!(whole_status, StatusCode::OK);
            prop_assert_eq!(streamed_status, StatusCode::OK);
            prop_assert_eq!(&streamed, &whole, "chunks: {:?}", pieces);
            for (_, value) in SECRETS {
                prop_assert!(!whole.contains(value), "{value:?} in {whole:?}");
            }
            Ok(())
        })
        .expect("the stream matches the whole answer");
}

#[tokio::test]
async fn a_blocking_guard_stops_the_stream_before_the_blocked_words() {
    let guards = vec![codenames(GuardAction::Block)];
    let (app, _upstream, _test) = app(guards).await;
    let pieces: Vec<String> = [
        "The plan ",
        "for next ",
        "year is Pro",
        "ject Fal",
        "con, which ",
        "ships soon.",
    ]
    .map(str::to_owned)
    .to_vec();
    let (status, streamed) = ask(&app, &pieces, true).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!streamed.contains("Pro"), "{streamed}");
    assert!(
        streamed.contains("[error: guardrail `codenames` blocked the answer"),
        "{streamed}"
    );
    let (status, whole) = ask(&app, &pieces, false).await;
    assert_ne!(status, StatusCode::OK, "{whole}");
    assert!(whole.contains("codenames"), "{whole}");
}

#[tokio::test]
async fn other_services_check_texts_with_named_guards() {
    let guards = vec![pii(), codenames(GuardAction::Block)];
    let (app, _upstream, _test) = app(guards).await;
    let check = |body: Value| {
        let app = app.clone();
        async move {
            let request = Request::post("/v1/guard/check")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .expect("request");
            let (status, _, bytes) = send(&app, request).await;
            (
                status,
                serde_json::from_slice::<Value>(&bytes).expect("JSON"),
            )
        }
    };
    let (status, body) = check(
        json!({"guards": ["pii"], "text": "Mail jane.doe@example.com or jane.doe@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"], "redact");
    assert_eq!(body["text"], "Mail <EMAIL_1> or <EMAIL_1>");
    assert_eq!(body["verdicts"][0]["findings"]["email"], 2);

    let (status, body) = check(
        json!({"guards": ["pii", "codenames"], "stage": "output", "text": "Project Falcon ships"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["action"].as_str(), body["blocked_by"].as_str()),
        (Some("block"), Some("codenames"))
    );
    assert!(body.get("text").is_none(), "{body}");

    let (status, body) = check(json!({"guards": ["nope"], "text": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "guard_not_found", "{body}");
    assert!(body.to_string().contains("codenames, pii"), "{body}");
}
