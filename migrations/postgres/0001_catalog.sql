-- Cairn catalog, scaled mode (PostgreSQL). Keep in step with migrations/sqlite/0001_catalog.sql:
-- the same tables and columns, in PostgreSQL's types.

CREATE TABLE collections (
    id                  UUID PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    embedding_model     TEXT,
    embedding_dimension BIGINT,
    metadata            JSONB NOT NULL DEFAULT 'null',
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE documents (
    id            UUID PRIMARY KEY,
    collection_id UUID NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    title         TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    version       BIGINT NOT NULL,
    metadata      JSONB NOT NULL DEFAULT 'null',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (collection_id, source)
);

CREATE TABLE chunks (
    id           UUID PRIMARY KEY,
    document_id  UUID NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index  BIGINT NOT NULL,
    content      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    char_start   BIGINT NOT NULL,
    char_end     BIGINT NOT NULL,
    heading_path JSONB NOT NULL DEFAULT '[]',
    token_count  BIGINT NOT NULL,
    metadata     JSONB NOT NULL DEFAULT 'null'
);
CREATE INDEX chunks_document ON chunks (document_id, chunk_index);

CREATE TABLE prompts (
    name           TEXT PRIMARY KEY NOT NULL,
    latest_version BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE prompt_versions (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL REFERENCES prompts (name),
    version      BIGINT NOT NULL,
    template     TEXT NOT NULL,
    spec         JSONB NOT NULL,
    content_hash TEXT NOT NULL,
    author       TEXT NOT NULL,
    message      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE prompt_labels (
    name       TEXT NOT NULL,
    label      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (name, label),
    FOREIGN KEY (name, version) REFERENCES prompt_versions (name, version)
);

CREATE TABLE prompt_label_moves (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    label        TEXT NOT NULL,
    from_version BIGINT,
    to_version   BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    moved_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX prompt_label_moves_name ON prompt_label_moves (name, moved_at);

CREATE TABLE conversations (
    id         UUID PRIMARY KEY,
    owner      TEXT NOT NULL,
    title      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_owner ON conversations (owner, updated_at);

CREATE TABLE lineage (
    id                  UUID PRIMARY KEY,
    conversation_id     UUID,
    app                 TEXT,
    prompt_name         TEXT,
    prompt_version      BIGINT,
    model               TEXT NOT NULL,
    route               TEXT,
    retrieval           JSONB NOT NULL,
    guard_verdicts      JSONB NOT NULL,
    input_tokens        BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost_usd            DOUBLE PRECISION NOT NULL,
    latency_ms          BIGINT NOT NULL,
    status              TEXT NOT NULL,
    error               TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX lineage_created ON lineage (created_at);

-- lineage_id has no foreign key: lineage records are written asynchronously, after the answer.
CREATE TABLE messages (
    id              UUID PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    lineage_id      UUID,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);

CREATE TABLE feedback (
    id         UUID PRIMARY KEY,
    lineage_id UUID NOT NULL REFERENCES lineage (id) ON DELETE CASCADE,
    rating     BIGINT NOT NULL CHECK (rating IN (-1, 1)),
    comment    TEXT,
    user_name  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX feedback_lineage ON feedback (lineage_id);

CREATE TABLE eval_runs (
    id          UUID PRIMARY KEY,
    suite       TEXT NOT NULL,
    target      JSONB NOT NULL,
    status      TEXT NOT NULL,
    summary     JSONB NOT NULL DEFAULT 'null',
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX eval_runs_suite ON eval_runs (suite, started_at);

CREATE TABLE eval_results (
    id         UUID PRIMARY KEY,
    run_id     UUID NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    case_id    TEXT NOT NULL,
    passed     BOOLEAN NOT NULL,
    metrics    JSONB NOT NULL,
    output     JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (run_id, case_id)
);

CREATE TABLE api_keys (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    tools       JSONB NOT NULL,
    collections JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
