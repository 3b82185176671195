-- Registered MCP servers. JSON columns hold what only the application reads; `sealed` holds the
-- encrypted secret values (sensitive env and header values), never readable without the key.
CREATE TABLE servers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    alias TEXT NOT NULL UNIQUE,
    short_description TEXT NOT NULL,
    runtime TEXT NOT NULL,
    config TEXT NOT NULL,
    env TEXT NOT NULL,
    sensitive_keys TEXT NOT NULL,
    sealed TEXT,
    governance TEXT NOT NULL,
    -- 0 or 1: a type both backends decode the same way through the Any driver.
    enabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Small named values: the admin token's hash.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
