-- Self-service: one pending request per user and permission (a duplicate returns the pending
-- one), the organization's settings in `settings`, and the webhook deliveries of requests and
-- decisions. Times are Unix milliseconds.
CREATE UNIQUE INDEX access_requests_pending ON access_requests (user_id, permission_id)
    WHERE status = 'pending';

-- A webhook delivery, written in the transaction of the event it tells of so that none is lost,
-- and claimed by one replica at a time: a claim moves `next_at` past the attempt's time limit.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    -- The JSON body to post.
    event TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    delivered_at BIGINT,
    -- Set when the last attempt failed too.
    failed_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at);
