-- An agent run's steps (model calls and tool calls) in its lineage record; other answers have none.
ALTER TABLE lineage ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
