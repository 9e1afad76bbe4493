-- Idempotent creates (POST /todos with Idempotency-Key), shared by every instance through the
-- database. A key is honoured for 24 hours; rows older than that are reused or deleted.
CREATE TABLE idempotency_keys (
    key          text        PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 (hex) of the request body: the same key with another body is refused (422).
    request_hash text        NOT NULL,
    todo_id      uuid        NOT NULL,
    -- The original 201 body, replayed on a retry; NULL only between the insert and its store.
    response     text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
