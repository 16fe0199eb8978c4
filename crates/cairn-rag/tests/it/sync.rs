//! Ingest, sync, search and the failure cases.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use cairn_core::EmbeddingModel;
use cairn_core::index::{Condition, Filter};
use cairn_rag::{NoProgress, RagError, SearchMode, SearchRequest, Source, assemble};
use uuid::Uuid;

use crate::{FailingIndex, Stack, write};

const INSTALL: &str = "# Installing Cairn\n\nCairn ships as one binary that holds the server, the command line and the web interface; nothing else needs to be installed next to it.\n\n## On Linux\n\nDownload the release archive for your architecture, unpack it and put `cairn` on your PATH. The binary needs glibc 2.31 or newer, which every supported distribution has.\n\n## On macOS\n\nUse Homebrew: `brew install cairn`. The formula installs the same binary and a launchd service that you can start with brew services.\n\n## In containers\n\nThe image is built from scratch and runs as an unprivileged user; mount a volume at /data for the embedded catalog and index.\n";
const CONFIG: &str = "# Configuration\n\nCairn reads `cairn.toml` from the working directory.\n\n## Database\n\nSet `database.url` to a PostgreSQL URL to use PostgreSQL instead of the embedded SQLite catalog. Connection pooling is configured with `database.max_connections`.\n\n## Logging\n\nSet `log.format = \"json\"` for structured logs.\n";
const FAQ: &str = "# FAQ\n\n## Why is my first build slow?\n\nThe first release build compiles the model runtime, which takes about twenty minutes. Later builds reuse it.\n";

async fn assert_consistent(stack: &Stack, collection: &str) {
    let collection = stack
        .catalog
        .get_collection(collection)
        .await
        .expect("get")
        .expect("collection exists");
    let stored: Vec<Uuid> = stack
        .catalog
        .chunk_ids(collection.id)
        .await
        .expect("chunk ids");
    let indexed: Vec<Uuid> = stack
        .index
        .point_ids(&collection.name)
        .await
        .expect("point ids");
    let stored_set: BTreeSet<Uuid> = stored.iter().copied().collect();
    let indexed_set: BTreeSet<Uuid> = indexed.iter().copied().collect();
    assert_eq!(
        stored.len(),
        stored_set.len(),
        "no duplicate chunk in the catalog"
    );
    assert_eq!(
        indexed.len(),
        indexed_set.len(),
        "no duplicate point in the index"
    );
    assert_eq!(
        stored_set, indexed_set,
        "every chunk has exactly one vector, and no vector is orphaned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_ingested_searched_with_citations_and_resynced_incrementally() {
    let stack = Stack::new().await;
    let docs = stack.docs();
    write(&docs, "install.md", INSTALL);
    write(&docs, "config.md", CONFIG);
    write(&docs, "faq.md", FAQ);
    write(&docs, ".hidden.md", "# Hidden\n\nnever ingested");
    let ingestor = stack.ingestor();

    let first = ingestor
        .ingest("handbook", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("first ingest");
    assert_eq!(
        (first.added, first.updated, first.unchanged, first.removed),
        (3, 0, 0, 0)
    );
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert!(first.chunks_embedded >= 3);
    assert_consistent(&stack, "handbook").await;

    let retriever = stack.retriever();
    let hits = retriever
        .search(&SearchRequest::new(
            "handbook",
            "how do I use postgres as the database?",
            3,
        ))
        .await
        .expect("search");
    assert!(!hits.is_empty());
    let top = &hits[0];
    assert!(top.source.ends_with("config.md"), "top hit {top:?}");
    assert_eq!(top.title, "Configuration");
    assert_eq!(
        top.heading_path.last().map(String::as_str),
        Some("Database")
    );
    let text: Vec<char> = CONFIG.chars().collect();
    let cited: String = text[top.char_start as usize..top.char_end as usize]
        .iter()
        .collect();
    assert_eq!(
        cited, top.content,
        "offsets point at the passage in the source"
    );
    assert!(
        top.dense_rank.is_some() && top.lexical_rank.is_some(),
        "found by both retrievers"
    );

    let context = assemble(&hits, 500, |t| {
        stack
            .model
            .tokenizer()
            .encode(t, false)
            .map(|e| e.len())
            .unwrap_or(0)
    });
    assert!(
        context.text.starts_with("[1] Configuration › Database\n"),
        "{}",
        context.text
    );
    assert_eq!(context.citations[0].source, top.source);

    // Unchanged: nothing is embedded again.
    let passes = stack.model.forward_passes();
    let again = ingestor
        .ingest("handbook", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("second ingest");
    assert_eq!(
        (again.added, again.updated, again.unchanged, again.removed),
        (0, 0, 3, 0)
    );
    assert_eq!(again.chunks_embedded, 0);
    assert_eq!(
        stack.model.forward_passes(),
        passes,
        "no forward pass for an unchanged directory"
    );

    // One edited section: only its chunks are embedded; a deleted file is removed.
    write(
        &docs,
        "install.md",
        &INSTALL.replace("`brew install cairn`", "`brew install cairn-ai/tap/cairn`"),
    );
    std::fs::remove_file(docs.join("faq.md")).expect("rm faq");
    let edited = ingestor
        .ingest("handbook", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("third ingest");
    assert_eq!(
        (
            edited.added,
            edited.updated,
            edited.unchanged,
            edited.removed
        ),
        (0, 1, 1, 1)
    );
    assert!(
        edited.chunks_kept >= 1,
        "the unchanged sections keep their vectors: {edited:?}"
    );
    assert!(
        edited.chunks_embedded >= 1 && edited.chunks_embedded < first.chunks_embedded,
        "{edited:?}"
    );
    assert_consistent(&stack, "handbook").await;
    let hits = retriever
        .search(&SearchRequest::new(
            "handbook",
            "why is the first build slow",
            5,
        ))
        .await
        .expect("search");
    assert!(
        hits.iter().all(|h| !h.source.ends_with("faq.md")),
        "removed documents are not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_interrupted_between_catalog_and_index_is_repaired_by_the_next_run() {
    let stack = Stack::new().await;
    let docs = stack.docs();
    for i in 0..6 {
        write(
            &docs,
            &format!("doc{i}.md"),
            &format!(
                "# Doc {i}\n\n{}",
                CONFIG.replace("Cairn", &format!("Cairn {i}"))
            ),
        );
    }
    let crashing = Arc::new(FailingIndex {
        inner: stack.index.clone(),
        allowed: AtomicUsize::new(2),
    });
    let err = stack
        .ingestor_with(crashing)
        .ingest("kb", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect_err("the index fails half-way");
    assert!(err.to_string().contains("simulated crash"), "{err}");

    let report = stack
        .ingestor()
        .ingest("kb", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("second run");
    assert!(
        report.repaired_missing > 0,
        "chunks committed without vectors are embedded: {report:?}"
    );
    assert_eq!(report.added + report.unchanged, 6, "{report:?}");
    assert_consistent(&stack, "kb").await;
    let collection = stack
        .catalog
        .get_collection("kb")
        .await
        .expect("get")
        .expect("kb");
    assert_eq!(
        stack
            .catalog
            .list_documents(collection.id)
            .await
            .expect("docs")
            .len(),
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_are_reported_by_name_and_the_rest_of_the_batch_goes_on() {
    let stack = Stack::new().await;
    let docs = stack.docs();
    write(&docs, "good.md", INSTALL);
    write(&docs, "empty.md", "");
    std::fs::write(docs.join("latin1.txt"), b"caf\xe9 au lait").expect("write");
    std::fs::write(docs.join("broken.pdf"), b"%PDF-1.7\nthis is not a pdf").expect("write");
    let report = stack
        .ingestor()
        .ingest("kb", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("ingest");
    assert_eq!(report.added, 1);
    let failed: BTreeSet<String> = report
        .failed
        .iter()
        .map(|f| f.source.rsplit('/').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        failed,
        ["broken.pdf", "empty.md", "latin1.txt"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        "{:?}",
        report.failed
    );
    for failure in &report.failed {
        assert!(!failure.reason.is_empty());
    }

    // A document that was indexed and now fails to load keeps its chunks.
    std::fs::write(docs.join("good.md"), b"\xff\xfe\x00\x00binary\x00junk").expect("corrupt");
    let report = stack
        .ingestor()
        .ingest("kb", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("ingest");
    assert_eq!(report.removed, 0);
    let hits = stack
        .retriever()
        .search(&SearchRequest::new("kb", "install with homebrew", 3))
        .await
        .expect("search");
    assert!(
        hits.iter().any(|h| h.source.ends_with("good.md")),
        "still searchable"
    );
    assert_consistent(&stack, "kb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_modes_and_a_model_mismatch() {
    let stack = Stack::new().await;
    let docs = stack.docs();
    write(&docs, "install.md", INSTALL);
    write(&docs, "config.md", CONFIG);
    stack
        .ingestor()
        .ingest("kb", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("ingest");
    let retriever = stack.retriever();
    let mut request = SearchRequest::new("kb", "PostgreSQL database url", 5);
    request.filter = Some(Filter {
        must: vec![Condition::Equals {
            field: "title".into(),
            value: "Installing Cairn".into(),
        }],
        must_not: vec![],
    });
    let hits = retriever.search(&request).await.expect("filtered");
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|h| h.title == "Installing Cairn"),
        "{hits:?}"
    );

    for mode in [SearchMode::Dense, SearchMode::Lexical] {
        let mut request = SearchRequest::new("kb", "glibc version", 2);
        request.mode = mode;
        let hits = retriever.search(&request).await.expect("search");
        assert!(hits[0].content.contains("glibc"), "{mode:?}: {hits:?}");
    }
    let mut diverse = SearchRequest::new("kb", "configure cairn", 3);
    diverse.mmr_lambda = Some(0.5);
    assert_eq!(retriever.search(&diverse).await.expect("mmr").len(), 3);

    let err = retriever
        .search(&SearchRequest::new("nope", "anything", 3))
        .await
        .expect_err("unknown collection");
    assert!(matches!(err, RagError::UnknownCollection(_)), "{err}");

    // Another embedding model for the same collection is refused with the fix.
    #[derive(Debug)]
    struct Other;
    #[async_trait::async_trait]
    impl EmbeddingModel for Other {
        fn model_id(&self) -> &str {
            "other-model"
        }
        fn dimension(&self) -> usize {
            8
        }
        async fn embed_documents(
            &self,
            texts: &[String],
        ) -> Result<Vec<Vec<f32>>, cairn_core::ModelError> {
            Ok(texts.iter().map(|_| vec![0.5; 8]).collect())
        }
    }
    let other = cairn_rag::Ingestor::new(
        stack.catalog.clone(),
        stack.index.clone(),
        Arc::new(Other),
        stack.chunker(),
        cairn_rag::IngestOptions::default(),
    );
    let err = other
        .ingest("kb", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect_err("mismatched model");
    assert!(err.to_string().contains("reindex"), "{err}");
}

/// A JSONL file's records are stored in batches (one catalog transaction each) and embedded
/// together: 150 one-chunk records make a handful of index writes, not 150; a second run changes
/// nothing; the catalog and the index agree.
#[tokio::test]
async fn a_jsonl_files_records_are_stored_and_embedded_in_batches() {
    let stack = Stack::new().await;
    let docs = stack.docs();
    let lines: String = (0..150)
        .map(|i| format!("{{\"text\": \"Record {i} says that glacier number {i} is moving.\"}}\n"))
        .collect();
    write(&docs, "records.jsonl", &lines);
    let counting = Arc::new(FailingIndex {
        inner: stack.index.clone(),
        allowed: AtomicUsize::new(10_000),
    });
    let report = stack
        .ingestor_with(counting.clone())
        .ingest("records", Source::Path(docs.clone()), &NoProgress)
        .await
        .expect("ingest");
    assert_eq!(report.added, 150, "{report:?}");
    let writes = 10_000 - counting.allowed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(writes <= 5, "{writes} index writes for 150 records");
    assert_consistent(&stack, "records").await;
    let again = stack
        .ingestor()
        .ingest("records", Source::Path(docs), &NoProgress)
        .await
        .expect("again");
    assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 150));
}
