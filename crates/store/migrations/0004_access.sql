-- Who may use what: groups, each server's permissions, grants of them to users or groups, users'
-- requests for them, and API keys. Times are Unix milliseconds.
CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    -- `local` (managed here) or `oidc` (mapped from the provider's groups claim).
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

-- A named set of one server's tools. `selector` is `all` (every tool the server serves), `read_only`
-- (those annotated readOnlyHint) or `list` (the names in `tools`, a JSON array).
CREATE TABLE permissions (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    label TEXT NOT NULL,
    description TEXT NOT NULL,
    selector TEXT NOT NULL,
    tools TEXT NOT NULL,
    -- 0 or 1.
    requestable BIGINT NOT NULL,
    -- The longest grant a request may ask for, in seconds; NULL: no limit.
    max_duration_s BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (server_id, label)
);

-- A permission given to a user or a group, until `expires_at` (NULL: until revoked).
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    permission_id TEXT NOT NULL,
    -- `user` or `group`.
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    -- The access request it answered, if any.
    request_id TEXT
);

CREATE INDEX grants_subject ON grants (subject_kind, subject_id);

CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    permission_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    duration_s BIGINT,
    -- `pending`, `approved` or `denied`.
    status TEXT NOT NULL,
    decided_by TEXT,
    decision_reason TEXT,
    decided_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE INDEX access_requests_user ON access_requests (user_id, status);

-- Keys for machine clients: a bearer credential with its owner's grants and its own scopes. Only
-- the key's hash is kept, and its last characters to tell keys apart.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Every server starts with two permissions.
INSERT INTO permissions (id, server_id, label, description, selector, tools, requestable,
    max_duration_s, created_at, updated_at)
SELECT 'prm_full_' || id, id, 'Full access', 'Every tool of the server.', 'all', '[]', 1, NULL,
    created_at, created_at FROM servers;

INSERT INTO permissions (id, server_id, label, description, selector, tools, requestable,
    max_duration_s, created_at, updated_at)
SELECT 'prm_read_' || id, id, 'Read-only', 'The tools that only read.', 'read_only', '[]', 1,
    NULL, created_at, created_at FROM servers;
