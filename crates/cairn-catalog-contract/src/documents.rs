//! Collections, documents, chunks and their reconciliation.

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_core::catalog::*;
use serde_json::json;
use uuid::Uuid;

use crate::{assert_conflict, assert_not_found, new_collection};

pub async fn collections(catalog: Arc<dyn Catalog>) {
    let b = new_collection(&*catalog, "handbook").await;
    let a = new_collection(&*catalog, "api-docs").await;
    assert_eq!(
        catalog.get_collection("handbook").await.expect("get"),
        Some(b.clone())
    );
    let names: Vec<String> = catalog
        .list_collections()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["api-docs", "handbook"]);

    let message = assert_conflict(
        catalog
            .create_collection(NewCollection {
                name: "handbook".into(),
                ..Default::default()
            })
            .await,
        "duplicate collection",
    );
    assert!(message.contains("handbook"), "{message}");
    assert!(matches!(
        catalog
            .create_collection(NewCollection {
                name: "Bad Name".into(),
                ..Default::default()
            })
            .await,
        Err(CatalogError::Invalid(_))
    ));

    assert!(catalog.delete_collection(&a.name).await.expect("delete"));
    assert!(
        !catalog
            .delete_collection(&a.name)
            .await
            .expect("delete again")
    );
    assert_eq!(
        catalog.get_collection(&a.name).await.expect("get deleted"),
        None
    );
    assert_eq!(catalog.list_collections().await.expect("list").len(), 1);
}

pub async fn collection_binding(catalog: Arc<dyn Catalog>) {
    new_collection(&*catalog, "kb").await;
    let bound = catalog
        .bind_embedding_model("kb", "all-minilm-l6-v2", 384)
        .await
        .expect("bind");
    assert_eq!(
        (bound.embedding_model.as_deref(), bound.embedding_dimension),
        (Some("all-minilm-l6-v2"), Some(384))
    );
    catalog
        .bind_embedding_model("kb", "all-minilm-l6-v2", 384)
        .await
        .expect("binding again to the same model");
    let message = assert_conflict(
        catalog
            .bind_embedding_model("kb", "text-embedding-3-small", 1536)
            .await,
        "rebinding",
    );
    assert!(message.contains("reindex"), "{message}");
    let stored = catalog
        .get_collection("kb")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        stored.embedding_model.as_deref(),
        Some("all-minilm-l6-v2"),
        "a refused rebind changes nothing"
    );
    assert_not_found(
        catalog.bind_embedding_model("missing", "m", 3).await,
        "binding a missing collection",
    );
}

fn new_document(collection_id: Uuid, source: &str, hash: &str) -> NewDocument {
    NewDocument {
        collection_id,
        source: source.into(),
        title: format!("Title of {source}"),
        content_hash: hash.into(),
        metadata: json!({"lang": "en"}),
    }
}

pub async fn documents(catalog: Arc<dyn Catalog>) {
    let kb = new_collection(&*catalog, "kb").await;
    let (doc, outcome) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h1"))
        .await
        .expect("add");
    assert_eq!((outcome, doc.version), (UpsertOutcome::Added, 1));
    let (same, outcome) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h1"))
        .await
        .expect("again");
    assert_eq!(
        (outcome, same.id, same.version),
        (UpsertOutcome::Unchanged, doc.id, 1)
    );
    let (changed, outcome) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h2"))
        .await
        .expect("change");
    assert_eq!(
        (outcome, changed.id, changed.version),
        (UpsertOutcome::Updated, doc.id, 2)
    );
    assert_eq!(changed.content_hash, "h2");
    assert_eq!(changed.metadata, json!({"lang": "en"}));

    catalog
        .upsert_document(new_document(kb.id, "faq.md", "h3"))
        .await
        .expect("second document");
    let sources: Vec<String> = catalog
        .list_documents(kb.id)
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.source)
        .collect();
    assert_eq!(sources, ["faq.md", "guide.md"]);
    assert_eq!(
        catalog
            .get_document(doc.id)
            .await
            .expect("get")
            .map(|d| d.version),
        Some(2)
    );

    assert_not_found(
        catalog
            .upsert_document(new_document(Uuid::now_v7(), "x.md", "h"))
            .await,
        "a document in a missing collection",
    );
    assert!(catalog.delete_document(doc.id).await.expect("delete"));
    assert!(!catalog.delete_document(doc.id).await.expect("delete again"));
    assert!(
        catalog
            .delete_collection("kb")
            .await
            .expect("delete collection")
    );
    assert!(
        catalog
            .list_documents(kb.id)
            .await
            .expect("list after delete")
            .is_empty(),
        "documents cascade"
    );
}

fn new_chunk(index: u32, text: &str) -> NewChunk {
    NewChunk {
        chunk_index: index,
        content: text.into(),
        content_hash: format!("hash-{text}"),
        char_start: u64::from(index) * 100,
        char_end: u64::from(index) * 100 + text.len() as u64,
        heading_path: vec!["Guide".into(), format!("Section {index}")],
        token_count: 7,
        metadata: json!({"page": index}),
    }
}

pub async fn chunks(catalog: Arc<dyn Catalog>) {
    let kb = new_collection(&*catalog, "kb").await;
    let (doc, _) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h1"))
        .await
        .expect("doc");
    let first = catalog
        .replace_chunks(
            doc.id,
            vec![
                new_chunk(0, "alpha"),
                new_chunk(1, "beta"),
                new_chunk(2, "gamma"),
            ],
        )
        .await
        .expect("first chunks");
    assert_eq!(
        (first.kept.len(), first.added.len(), first.removed.len()),
        (0, 3, 0)
    );
    let stored = catalog.list_chunks(doc.id).await.expect("list");
    assert_eq!(
        stored, first.added,
        "stored chunks equal what was returned, in order"
    );

    // Insert a chunk at the front and change the last one: alpha and beta move but keep their ids.
    let second = catalog
        .replace_chunks(
            doc.id,
            vec![
                new_chunk(0, "intro"),
                new_chunk(1, "alpha"),
                new_chunk(2, "beta"),
                new_chunk(3, "delta"),
            ],
        )
        .await
        .expect("second chunks");
    let kept_ids: BTreeSet<Uuid> = second.kept.iter().map(|c| c.id).collect();
    let expected_kept: BTreeSet<Uuid> = first.added[..2].iter().map(|c| c.id).collect();
    assert_eq!(kept_ids, expected_kept);
    assert_eq!(
        second
            .added
            .iter()
            .map(|c| c.content.as_str())
            .collect::<Vec<_>>(),
        ["intro", "delta"]
    );
    assert_eq!(second.removed, vec![first.added[2].id]);
    let stored = catalog.list_chunks(doc.id).await.expect("list");
    let texts: Vec<&str> = stored.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(texts, ["intro", "alpha", "beta", "delta"]);
    assert_eq!(
        stored[1].char_start, 100,
        "a kept chunk takes its new offsets"
    );
    assert_eq!(stored[1].heading_path, ["Guide", "Section 1"]);

    let wanted = [stored[3].id, stored[0].id, Uuid::now_v7()];
    let fetched = catalog.get_chunks(&wanted).await.expect("get chunks");
    assert_eq!(
        fetched
            .iter()
            .map(|c| c.content.as_str())
            .collect::<Vec<_>>(),
        ["intro", "delta"]
    );
    assert!(catalog.get_chunks(&[]).await.expect("no ids").is_empty());

    assert_not_found(
        catalog
            .replace_chunks(Uuid::now_v7(), vec![new_chunk(0, "x")])
            .await,
        "chunks of a missing document",
    );
    catalog
        .delete_document(doc.id)
        .await
        .expect("delete document");
    assert!(
        catalog.list_chunks(doc.id).await.expect("list").is_empty(),
        "chunks cascade"
    );
}

pub async fn document_sync(catalog: Arc<dyn Catalog>) {
    let kb = new_collection(&*catalog, "kb").await;
    let other = new_collection(&*catalog, "other").await;
    let first = catalog
        .sync_document(
            new_document(kb.id, "guide.md", "h1"),
            vec![new_chunk(0, "alpha"), new_chunk(1, "beta")],
        )
        .await
        .expect("first sync");
    assert_eq!(first.outcome, UpsertOutcome::Added);
    assert_eq!(first.document.version, 1);
    assert_eq!(first.diff.added.len(), 2);

    let second = catalog
        .sync_document(
            new_document(kb.id, "guide.md", "h2"),
            vec![new_chunk(0, "alpha"), new_chunk(1, "gamma")],
        )
        .await
        .expect("second sync");
    assert_eq!(second.outcome, UpsertOutcome::Updated);
    assert_eq!(second.document.id, first.document.id);
    assert_eq!(second.document.version, 2);
    assert_eq!(second.diff.kept.len(), 1);
    assert_eq!(second.diff.added[0].content, "gamma");
    assert_eq!(second.diff.removed, vec![first.diff.added[1].id]);

    let faq = catalog
        .sync_document(
            new_document(kb.id, "faq.md", "h3"),
            vec![new_chunk(0, "delta")],
        )
        .await
        .expect("faq");
    catalog
        .sync_document(
            new_document(other.id, "guide.md", "h1"),
            vec![new_chunk(0, "elsewhere")],
        )
        .await
        .expect("other collection");
    let ids: BTreeSet<Uuid> = catalog
        .chunk_ids(kb.id)
        .await
        .expect("chunk ids")
        .into_iter()
        .collect();
    let expected: BTreeSet<Uuid> = catalog
        .list_chunks(first.document.id)
        .await
        .expect("list")
        .iter()
        .chain(&faq.diff.added)
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, expected, "chunk ids of this collection only");
    assert_not_found(
        catalog
            .sync_document(new_document(Uuid::now_v7(), "x.md", "h"), vec![])
            .await,
        "a document in a missing collection",
    );

    // Many documents in one transaction: each synced as alone, in order.
    let batch = catalog
        .sync_documents(vec![
            (
                new_document(kb.id, "faq.md", "h4"),
                vec![new_chunk(0, "delta"), new_chunk(1, "epsilon")],
            ),
            (
                new_document(kb.id, "records#1", "r1"),
                vec![new_chunk(0, "one")],
            ),
            (
                new_document(kb.id, "records#2", "r2"),
                vec![new_chunk(0, "two")],
            ),
        ])
        .await
        .expect("batch");
    assert_eq!(
        batch.iter().map(|s| s.outcome).collect::<Vec<_>>(),
        [
            UpsertOutcome::Updated,
            UpsertOutcome::Added,
            UpsertOutcome::Added
        ]
    );
    assert_eq!(batch[0].document.id, faq.document.id);
    assert_eq!(
        (batch[0].diff.kept.len(), batch[0].diff.added.len()),
        (1, 1)
    );
    assert_eq!(batch[2].diff.added[0].content, "two");
    assert!(
        catalog
            .sync_documents(Vec::new())
            .await
            .expect("empty")
            .is_empty()
    );
    // One document that cannot be stored leaves the whole batch unstored.
    let before = catalog.list_documents(kb.id).await.expect("list").len();
    assert_not_found(
        catalog
            .sync_documents(vec![
                (
                    new_document(kb.id, "records#3", "r3"),
                    vec![new_chunk(0, "three")],
                ),
                (new_document(Uuid::now_v7(), "x.md", "h"), vec![]),
            ])
            .await,
        "a batch with a document in a missing collection",
    );
    assert_eq!(
        catalog.list_documents(kb.id).await.expect("list").len(),
        before,
        "all or nothing"
    );
}
