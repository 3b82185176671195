-- Sign-in: users, their browser sessions, and the OAuth authorization server's state. Secrets
-- (passwords, codes, refresh tokens, session cookies, client secrets) are kept only as hashes.
-- Times are Unix milliseconds.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    -- The sign-in name of a local user; `<provider>:<subject>` for one of the external provider.
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    -- `admin` or `user`.
    role TEXT NOT NULL,
    -- An Argon2id PHC string; NULL for users who sign in through the external provider.
    password_hash TEXT,
    -- 0 or 1.
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE browser_sessions (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Clients that registered themselves (RFC 7591). Clients identified by a metadata document are
-- not stored: their document is.
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- A JSON array.
    redirect_uris TEXT NOT NULL,
    secret_hash TEXT,
    auth_method TEXT NOT NULL,
    application_type TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE authorization_codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    resource TEXT NOT NULL,
    scopes TEXT NOT NULL,
    challenge TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- 0 until redeemed; then the family its tokens belong to, so that a second use revokes them.
    used BIGINT NOT NULL,
    family_id TEXT
);

-- The tokens of one approval: the refresh tokens that rotated from one code, and the access
-- tokens they were issued with. Revoking a family kills all of them.
CREATE TABLE token_families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX token_families_user ON token_families (user_id, client_id);

CREATE TABLE refresh_tokens (
    hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- What a user approved for a client, per resource: a space-separated scope set.
CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);

-- Revoked families whose access tokens may still be unexpired: every replica reads this small
-- table every second, so that access tokens are checked without a query per request.
CREATE TABLE revocations (
    family_id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
