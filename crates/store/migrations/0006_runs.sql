-- Agent runs, kept for the audit log's retention: a summary to list, and the whole record (the
-- task, the servers, every step) as JSON, secrets masked before it is written. Ids sort by time
-- like the audit's, so a page is `id < $cursor`.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    stop_reason TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    steps BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    record TEXT NOT NULL
);

CREATE UNIQUE INDEX runs_run_id ON runs (run_id);
CREATE INDEX runs_at ON runs (at);
