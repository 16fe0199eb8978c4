-- What each API key may do. Keys made before roles existed could only read (search, answer, MCP
-- tools), so they keep exactly that.
ALTER TABLE api_keys ADD COLUMN roles TEXT NOT NULL DEFAULT '["read"]';
