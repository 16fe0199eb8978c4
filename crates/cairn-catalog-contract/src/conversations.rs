//! Conversations and messages.

use std::sync::Arc;

use cairn_core::catalog::*;
use uuid::Uuid;

use crate::assert_not_found;

pub async fn conversations(catalog: Arc<dyn Catalog>) {
    let first = catalog
        .create_conversation("ada", "First")
        .await
        .expect("first");
    let second = catalog
        .create_conversation("ada", "Second")
        .await
        .expect("second");
    catalog
        .create_conversation("bob", "Not yours")
        .await
        .expect("other owner");

    let ids: Vec<Uuid> = catalog
        .list_conversations("ada")
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [second.id, first.id], "most recent first");

    let lineage_id = Uuid::now_v7();
    catalog
        .append_message(NewMessage {
            conversation_id: first.id,
            role: "user".into(),
            content: "hi".into(),
            lineage_id: None,
        })
        .await
        .expect("user message");
    catalog
        .append_message(NewMessage {
            conversation_id: first.id,
            role: "assistant".into(),
            content: "hello [1]".into(),
            lineage_id: Some(lineage_id),
        })
        .await
        .expect("assistant message");
    let ids: Vec<Uuid> = catalog
        .list_conversations("ada")
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        ids,
        [first.id, second.id],
        "a new message moves the conversation to the top"
    );

    let messages = catalog.list_messages(first.id).await.expect("messages");
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant"]);
    assert_eq!(messages[1].lineage_id, Some(lineage_id));

    let renamed = catalog
        .rename_conversation(first.id, "Renamed")
        .await
        .expect("rename");
    assert_eq!(renamed.title, "Renamed");
    assert_not_found(
        catalog.rename_conversation(Uuid::now_v7(), "x").await,
        "renaming a missing conversation",
    );
    assert_not_found(
        catalog
            .append_message(NewMessage {
                conversation_id: Uuid::now_v7(),
                role: "user".into(),
                content: "x".into(),
                lineage_id: None,
            })
            .await,
        "a message in a missing conversation",
    );

    assert!(catalog.delete_conversation(first.id).await.expect("delete"));
    assert!(
        !catalog
            .delete_conversation(first.id)
            .await
            .expect("delete again")
    );
    assert!(
        catalog
            .get_conversation(first.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        catalog
            .list_messages(first.id)
            .await
            .expect("messages")
            .is_empty(),
        "messages cascade"
    );
}
