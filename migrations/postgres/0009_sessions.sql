-- Web UI sessions, server-side: the cookie carries only the id, so signing out or revoking a user
-- ends a session at once.
CREATE TABLE sessions (
    id          UUID PRIMARY KEY,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    roles       JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX sessions_user ON sessions (user_id);
