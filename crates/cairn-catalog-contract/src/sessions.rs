//! Web UI sessions.

use std::sync::Arc;

use cairn_core::catalog::*;
use chrono::{Duration, Utc};

fn new_session(user: &str, expires_in: Duration) -> NewSession {
    NewSession {
        user_id: user.into(),
        name: format!("{user} name"),
        roles: vec!["read".into(), "write".into()],
        expires_at: Utc::now() + expires_in,
    }
}

pub async fn sessions(catalog: Arc<dyn Catalog>) {
    let alice = catalog
        .create_session(new_session("sub-alice", Duration::hours(1)))
        .await
        .expect("create");
    let now = Utc::now();
    assert_eq!(
        catalog
            .find_active_session(alice.id, now)
            .await
            .expect("find"),
        Some(alice.clone())
    );
    assert_eq!(alice.roles, ["read", "write"]);
    assert_eq!(
        catalog
            .find_active_session(alice.id, alice.expires_at + Duration::seconds(1))
            .await
            .expect("find expired"),
        None,
        "expired"
    );
    assert!(catalog.revoke_session(alice.id).await.expect("revoke"));
    assert!(
        !catalog
            .revoke_session(alice.id)
            .await
            .expect("revoke again")
    );
    assert_eq!(
        catalog
            .find_active_session(alice.id, now)
            .await
            .expect("find"),
        None,
        "signed out"
    );

    let bob_1 = catalog
        .create_session(new_session("sub-bob", Duration::hours(1)))
        .await
        .expect("create");
    let bob_2 = catalog
        .create_session(new_session("sub-bob", Duration::hours(1)))
        .await
        .expect("create");
    let carol = catalog
        .create_session(new_session("sub-carol", Duration::hours(1)))
        .await
        .expect("create");
    assert_eq!(
        catalog
            .revoke_user_sessions("sub-bob")
            .await
            .expect("revoke user"),
        2
    );
    for (session, active) in [(bob_1, false), (bob_2, false), (carol, true)] {
        assert_eq!(
            catalog
                .find_active_session(session.id, now)
                .await
                .expect("find")
                .is_some(),
            active,
            "{}",
            session.user_id
        );
    }
}
