-- Downstream MCP sessions (2025-era, `Mcp-Session-Id`), kept so that any replica serves any
-- session: the endpoint that opened it, who did, and the client's `initialize` parameters, which
-- are all another replica needs to take it over. A session that cannot move (its client answers
-- server-to-client requests on an upstream session of its own) is `pinned`. `touched_at` moves
-- while the session is used (at most every few minutes); `ended_at` is set by a DELETE, and
-- replicas look for newly ended sessions every second. Times are Unix milliseconds.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    -- The server's id, or '' for the aggregate endpoint, 'admin' or 'user'.
    endpoint TEXT NOT NULL,
    -- `Caller::owner` of the credential that opened it; '' until the edge records it.
    owner TEXT NOT NULL,
    params TEXT NOT NULL,
    pinned BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL,
    ended_at BIGINT
);

CREATE INDEX sessions_ended ON sessions (ended_at);
CREATE INDEX sessions_touched ON sessions (touched_at);

-- Who runs a background job that must run once across replicas (pruning), until when.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until BIGINT NOT NULL
);
