-- Web UI sessions, server-side: the cookie carries only the id, so signing out or revoking a user
-- ends a session at once.
CREATE TABLE sessions (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
