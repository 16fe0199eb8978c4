//! The prompt registry against real catalogs (SQLite and PostgreSQL), and snapshots of every
//! shipped prompt rendered with fixed inputs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::Catalog;
use cairn_postgres::testing::TestDatabase;
use cairn_postgres::{PostgresCatalog, PostgresOptions};
use cairn_prompts::render::CompiledPrompt;
use cairn_prompts::{PromptError, PromptFile, PromptRegistry, RenderLimits, Selector};
use cairn_sqlite::SqliteCatalog;
use serde_json::{Value, json};

fn prompts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../prompts")
}

/// Fixed inputs for each shipped prompt; a new prompt file without inputs here fails the test.
fn fixed_inputs(name: &str) -> Value {
    match name {
        "rag_answer" => json!({
            "question": "How many weeks of parental leave do employees get?",
            "passages": [
                {"title": "Employee handbook", "heading": "Leave > Parental leave", "source": "handbook/leave.md",
                 "text": "Employees are entitled to sixteen weeks of paid parental leave.\n"},
                {"title": "FAQ", "text": "Parental leave can be split into two blocks."}
            ]
        }),
        "query_rewrite" => json!({
            "question": "and for part-time staff?",
            "history": [
                {"role": "user", "content": "How long is parental leave?"},
                {"role": "assistant", "content": "Sixteen weeks [1]."}
            ]
        }),
        "eval_faithfulness" => json!({
            "question": "How long is parental leave?",
            "answer": "Sixteen weeks, paid [1]. It can be split into three blocks [2].",
            "passages": ["Employees are entitled to sixteen weeks of paid parental leave.\n", "Parental leave can be split into two blocks."]
        }),
        "eval_context_recall" => json!({
            "question": "How long is parental leave?",
            "reference": "Sixteen weeks of paid leave, in up to two blocks.",
            "passages": ["Employees are entitled to sixteen weeks of paid parental leave."]
        }),
        "eval_answer_relevance" => json!({
            "question": "How long is parental leave?",
            "answer": "Our office is closed on public holidays."
        }),
        "eval_answer_correctness" => json!({
            "question": "How long is parental leave?",
            "answer": "Twelve weeks.",
            "reference": "Sixteen weeks of paid leave."
        }),
        "eval_rubric" => json!({
            "question": "How long is parental leave?",
            "answer": "Sixteen weeks, paid [1].",
            "passages": ["Employees are entitled to sixteen weeks of paid parental leave."],
            "criteria": [
                {"name": "cites", "description": "Every claim cites a passage."},
                {"name": "concise", "description": "Answers in at most two sentences."}
            ],
            "scale": 5
        }),
        "eval_pairwise" => json!({
            "question": "How long is parental leave?",
            "answer_1": "Sixteen weeks, paid [1].",
            "answer_2": "About four months.",
            "reference": "Sixteen weeks of paid leave."
        }),
        "agent_system" => json!({
            "agent": "researcher",
            "description": "It answers questions about the handbook.",
            "tools": [
                {"name": "search", "description": "Search a collection; passages come numbered."},
                {"name": "everything__echo", "description": "Echoes back the input."}
            ]
        }),
        other => panic!("no fixed inputs for shipped prompt `{other}`: add them to fixed_inputs()"),
    }
}

#[test]
fn shipped_prompts_render_as_snapshotted() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(prompts_dir())
        .expect("prompts/ exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "prompt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 2, "the platform ships its own prompts");
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("read");
        let file =
            PromptFile::parse(&text, &path.display().to_string()).expect("shipped prompt parses");
        let name = file.spec.name.clone();
        assert_eq!(
            path.file_stem().and_then(|s| s.to_str()),
            Some(name.as_str()),
            "file name = prompt name"
        );
        let compiled =
            CompiledPrompt::compile(file, Some(1), RenderLimits::default()).expect("compiles");
        let rendered = compiled.render(&fixed_inputs(&name)).expect("renders");
        let transcript: String = rendered
            .messages
            .iter()
            .map(|m| format!("=== {}\n{}\n", m.role.as_str(), m.content))
            .collect();
        insta::assert_snapshot!(name, transcript);
    }
}

#[test]
fn the_rag_prompt_handles_no_passages() {
    let text = std::fs::read_to_string(prompts_dir().join("rag_answer.prompt")).expect("read");
    let compiled = CompiledPrompt::compile(
        PromptFile::parse(&text, "rag_answer").expect("parse"),
        None,
        RenderLimits::default(),
    )
    .expect("compile");
    let rendered = compiled
        .render(&json!({"question": "Anything?", "passages": []}))
        .expect("renders");
    assert!(
        rendered.messages[0]
            .content
            .contains("(No passages were retrieved.)")
    );
}

const V1: &str = "+++\nname = \"support\"\n[variables]\ntype = \"object\"\nrequired = [\"question\"]\nproperties.question = { type = \"string\" }\n+++\n[system]\nYou are support, version one.\n[user]\n{{ question }}\n";

fn file(text: &str) -> PromptFile {
    PromptFile::parse(text, "prompts/support.prompt").expect("parses")
}

async fn sqlite_catalog() -> (Arc<dyn Catalog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .expect("open");
    catalog.migrate().await.expect("migrate");
    (Arc::new(catalog), dir)
}

async fn postgres_catalog(database: &TestDatabase) -> Arc<dyn Catalog> {
    let catalog = PostgresCatalog::connect(&database.url, &PostgresOptions::default())
        .await
        .expect("connect");
    catalog.migrate().await.expect("migrate");
    Arc::new(catalog)
}

/// Push, refuse a broken push, label, render by label, move, roll back, diff, history, status.
async fn lifecycle(catalog: Arc<dyn Catalog>) {
    let registry = PromptRegistry::new(
        catalog.clone(),
        RenderLimits::default(),
        Duration::from_secs(60),
    );
    let v1 = registry
        .publish(&file(V1), "ada", "first")
        .await
        .expect("v1");
    assert_eq!((v1.created, v1.version.version), (true, 1));
    assert!(
        !registry
            .publish(&file(V1), "ada", "again")
            .await
            .expect("same")
            .created,
        "unchanged is a no-op"
    );
    let v2_text = V1.replace("version one", "version two");
    let v2 = registry
        .publish(&file(&v2_text), "ada", "second")
        .await
        .expect("v2");
    assert_eq!(v2.version.version, 2);

    let broken = V1.replace("{{ question }}", "{{ questoin }}");
    let error = registry
        .publish(&file(&broken), "ada", "typo")
        .await
        .expect_err("refused");
    let message = error.to_string();
    for fragment in [
        "prompts/support.prompt line 11, column 4",
        "undefined variable `questoin`",
        "declared variables: question",
    ] {
        assert!(
            message.contains(fragment),
            "expected `{fragment}` in: {message}"
        );
    }
    assert_eq!(
        catalog
            .list_prompt_versions("support")
            .await
            .expect("list")
            .len(),
        2,
        "nothing half-published"
    );

    let error = registry
        .set_label("support", "production", 7, "ada", "typo")
        .await
        .expect_err("no v7");
    assert!(
        error
            .to_string()
            .contains("has no version `v7`; versions: 1 to 2"),
        "{error}"
    );

    let production = Selector::Label("production".into());
    registry
        .set_label("support", "production", 1, "ada", "launch")
        .await
        .expect("label");
    let rendered = registry
        .render("support", &production, &json!({"question": "Hi?"}))
        .await
        .expect("render");
    assert_eq!(
        rendered.version,
        Some(1),
        "the version is carried with the messages"
    );
    assert!(rendered.messages[0].content.contains("version one"));

    registry
        .set_label("support", "production", 2, "grace", "better")
        .await
        .expect("move");
    let rendered = registry
        .render("support", &production, &json!({"question": "Hi?"}))
        .await
        .expect("render");
    assert_eq!(
        rendered.version,
        Some(2),
        "a move through the registry is seen at once"
    );

    let rolled = registry
        .rollback("support", "production", "grace", "regression")
        .await
        .expect("rollback");
    assert_eq!((rolled.from_version, rolled.to_version), (Some(2), 1));
    assert_eq!(
        registry
            .resolve("support", &production)
            .await
            .expect("resolve")
            .version,
        1
    );
    let history = catalog
        .prompt_label_history("support")
        .await
        .expect("history");
    assert_eq!(
        history.iter().map(|m| m.to_version).collect::<Vec<_>>(),
        [1, 2, 1]
    );

    let diff = registry
        .diff("support", &Selector::Version(1), &Selector::Version(2))
        .await
        .expect("diff");
    assert!(
        diff.contains("--- support@v1") && diff.contains("+++ support@v2"),
        "{diff}"
    );
    assert!(
        diff.contains("-You are support, version one.")
            && diff.contains("+You are support, version two."),
        "{diff}"
    );

    let status = registry
        .status(&[("prompts/support.prompt".into(), file(&v2_text))])
        .await
        .expect("status");
    assert_eq!(status[0].matching_version, Some(2));
    assert_eq!(
        status[0].labels,
        [("production".to_owned(), 1, false)],
        "production is behind the file"
    );

    let error = registry
        .render("nope", &Selector::Latest, &json!({}))
        .await
        .expect_err("missing");
    assert!(matches!(error, PromptError::NotFound(_)));
    assert!(error.to_string().contains("prompts: support"), "{error}");
    let error = registry
        .render("support", &Selector::Label("canary".into()), &json!({}))
        .await
        .expect_err("no label");
    assert!(
        error.to_string().contains("labels: production→v1"),
        "{error}"
    );
}

#[tokio::test]
async fn lifecycle_on_sqlite() {
    let (catalog, _dir) = sqlite_catalog().await;
    lifecycle(catalog).await;
}

#[tokio::test]
async fn lifecycle_on_postgres() {
    let database = TestDatabase::create().await;
    lifecycle(postgres_catalog(&database).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_moves_reach_other_replicas_on_postgres() {
    let database = TestDatabase::create().await;
    // A cache time-to-live of an hour: only the notification can make replica A see the move.
    let ttl = Duration::from_secs(3600);
    let replica_a = PromptRegistry::new(
        postgres_catalog(&database).await,
        RenderLimits::default(),
        ttl,
    );
    let replica_b = PromptRegistry::new(
        postgres_catalog(&database).await,
        RenderLimits::default(),
        ttl,
    );
    tokio::spawn(replica_a.clone().follow_label_moves());

    replica_b.publish(&file(V1), "ada", "v1").await.expect("v1");
    replica_b
        .publish(&file(&V1.replace("one", "two")), "ada", "v2")
        .await
        .expect("v2");
    replica_b
        .set_label("support", "production", 1, "ada", "launch")
        .await
        .expect("label");
    let production = Selector::Label("production".into());
    assert_eq!(
        replica_a
            .resolve("support", &production)
            .await
            .expect("resolve")
            .version,
        1,
        "now cached on A"
    );

    replica_b
        .set_label("support", "production", 2, "ada", "promote")
        .await
        .expect("move on B");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if replica_a
            .resolve("support", &production)
            .await
            .expect("resolve")
            .version
            == 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica A never saw the label move"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn concurrent_pushes_keep_versions_gap_free() {
    let (catalog, _dir) = sqlite_catalog().await;
    let registry = PromptRegistry::new(
        catalog.clone(),
        RenderLimits::default(),
        Duration::from_secs(60),
    );
    let pushes = (0..6).map(|i| {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry
                .publish(&file(&V1.replace("one", &format!("n{i}"))), "ada", "race")
                .await
        })
    });
    for push in pushes.collect::<Vec<_>>() {
        push.await.expect("join").expect("publish");
    }
    let versions: Vec<i64> = catalog
        .list_prompt_versions("support")
        .await
        .expect("list")
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
}
