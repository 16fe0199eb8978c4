-- Judge and prompt-target calls of eval runs, by the hash of everything that decides the answer
-- (route, prompt version, variables, sampling settings), so a re-run with unchanged inputs makes
-- no model call. Answers are stored as the harness got them (redacted values as placeholders).
CREATE TABLE eval_call_cache (
    key        TEXT PRIMARY KEY NOT NULL,
    answer     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
