-- Cairn catalog, embedded mode (SQLite). Keep in step with migrations/postgres/0001_catalog.sql:
-- the same tables and columns, in SQLite's types (uuid as BLOB, JSON as TEXT, timestamps as TEXT in UTC).

CREATE TABLE collections (
    id                  BLOB PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL DEFAULT '',
    embedding_model     TEXT,
    embedding_dimension INTEGER,
    metadata            TEXT NOT NULL DEFAULT 'null',
    created_at          TEXT NOT NULL
);

CREATE TABLE documents (
    id            BLOB PRIMARY KEY NOT NULL,
    collection_id BLOB NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    title         TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    version       INTEGER NOT NULL,
    metadata      TEXT NOT NULL DEFAULT 'null',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (collection_id, source)
);

CREATE TABLE chunks (
    id           BLOB PRIMARY KEY NOT NULL,
    document_id  BLOB NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index  INTEGER NOT NULL,
    content      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    char_start   INTEGER NOT NULL,
    char_end     INTEGER NOT NULL,
    heading_path TEXT NOT NULL DEFAULT '[]',
    token_count  INTEGER NOT NULL,
    metadata     TEXT NOT NULL DEFAULT 'null'
);
CREATE INDEX chunks_document ON chunks (document_id, chunk_index);

CREATE TABLE prompts (
    name           TEXT PRIMARY KEY NOT NULL,
    latest_version INTEGER NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE prompt_versions (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL REFERENCES prompts (name),
    version      INTEGER NOT NULL,
    template     TEXT NOT NULL,
    spec         TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    author       TEXT NOT NULL,
    message      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE prompt_labels (
    name       TEXT NOT NULL,
    label      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (name, label),
    FOREIGN KEY (name, version) REFERENCES prompt_versions (name, version)
);

CREATE TABLE prompt_label_moves (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    label        TEXT NOT NULL,
    from_version INTEGER,
    to_version   INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    moved_at     TEXT NOT NULL
);
CREATE INDEX prompt_label_moves_name ON prompt_label_moves (name, moved_at);

CREATE TABLE conversations (
    id         BLOB PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    title      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX conversations_owner ON conversations (owner, updated_at);

CREATE TABLE lineage (
    id                  BLOB PRIMARY KEY NOT NULL,
    conversation_id     BLOB,
    app                 TEXT,
    prompt_name         TEXT,
    prompt_version      INTEGER,
    model               TEXT NOT NULL,
    route               TEXT,
    retrieval           TEXT NOT NULL,
    guard_verdicts      TEXT NOT NULL,
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_usd            REAL NOT NULL,
    latency_ms          INTEGER NOT NULL,
    status              TEXT NOT NULL,
    error               TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX lineage_created ON lineage (created_at);

-- lineage_id has no foreign key: lineage records are written asynchronously, after the answer.
CREATE TABLE messages (
    id              BLOB PRIMARY KEY NOT NULL,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    lineage_id      BLOB,
    created_at      TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);

CREATE TABLE feedback (
    id         BLOB PRIMARY KEY NOT NULL,
    lineage_id BLOB NOT NULL REFERENCES lineage (id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment    TEXT,
    user_name  TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX feedback_lineage ON feedback (lineage_id);

CREATE TABLE eval_runs (
    id          BLOB PRIMARY KEY NOT NULL,
    suite       TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT 'null',
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX eval_runs_suite ON eval_runs (suite, started_at);

CREATE TABLE eval_results (
    id         BLOB PRIMARY KEY NOT NULL,
    run_id     BLOB NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
    case_id    TEXT NOT NULL,
    passed     INTEGER NOT NULL,
    metrics    TEXT NOT NULL,
    output     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, case_id)
);

CREATE TABLE api_keys (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    tools       TEXT NOT NULL,
    collections TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
