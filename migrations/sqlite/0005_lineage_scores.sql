-- Online evaluation: scores a judge gave a sample of production answers, one per answer and metric.
-- No foreign key to lineage: a score may be written before its answer's record lands.
CREATE TABLE lineage_scores (
    lineage_id BLOB NOT NULL,
    metric     TEXT NOT NULL,
    score      REAL,
    reason     TEXT NOT NULL,
    judge      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (lineage_id, metric)
);
