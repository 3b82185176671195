-- The append-only audit log. Ids sort by time (a zero-padded timestamp, then a random part), so
-- the table needs no backend-specific sequence.
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    client TEXT NOT NULL,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    detail TEXT NOT NULL
);

CREATE INDEX audit_at ON audit (at);
