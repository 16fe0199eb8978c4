-- Cairn vector index on pgvector (PostgreSQL only: the SQLite catalog has no vector index).
--
-- Each collection's points live in their own table, `vectors_<hex of id>`, created by
-- `PgVectorIndex::ensure_collection` (HNSW needs a fixed dimension per column). This registry maps a
-- collection name to its table, and binds the collection to one embedding model and dimension.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE vector_collections (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    embedding_model TEXT NOT NULL,
    dimension       INTEGER NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
    table_name      TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
