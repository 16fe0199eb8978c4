-- Usage windows for rate limits and budgets: one row per (bucket, window start in Unix seconds).
CREATE TABLE usage_windows (
    bucket       TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    requests     INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    cost_usd     REAL NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- A shadow target's answer next to the client's, for comparison.
CREATE TABLE shadow_results (
    id                 BLOB PRIMARY KEY NOT NULL,
    route              TEXT NOT NULL,
    primary_target     TEXT,
    shadow_target      TEXT NOT NULL,
    request            TEXT NOT NULL,
    primary_output     TEXT,
    primary_error      TEXT,
    primary_latency_ms INTEGER NOT NULL,
    shadow_output      TEXT,
    shadow_error       TEXT,
    shadow_latency_ms  INTEGER NOT NULL,
    shadow_usage       TEXT NOT NULL,
    shadow_cost_usd    REAL,
    created_at         TEXT NOT NULL
);
CREATE INDEX shadow_results_route ON shadow_results (route, created_at);
