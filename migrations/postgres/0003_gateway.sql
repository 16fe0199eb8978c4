-- Usage windows for rate limits and budgets: one row per (bucket, window start in Unix seconds).
CREATE TABLE usage_windows (
    bucket       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    tokens       BIGINT NOT NULL,
    cost_usd     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- A shadow target's answer next to the client's, for comparison.
CREATE TABLE shadow_results (
    id                 UUID PRIMARY KEY,
    route              TEXT NOT NULL,
    primary_target     TEXT,
    shadow_target      TEXT NOT NULL,
    request            JSONB NOT NULL,
    primary_output     TEXT,
    primary_error      TEXT,
    primary_latency_ms BIGINT NOT NULL,
    shadow_output      TEXT,
    shadow_error       TEXT,
    shadow_latency_ms  BIGINT NOT NULL,
    shadow_usage       JSONB NOT NULL,
    shadow_cost_usd    DOUBLE PRECISION,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX shadow_results_route ON shadow_results (route, created_at);
