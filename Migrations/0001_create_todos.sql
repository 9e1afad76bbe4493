-- The todos of the /todos API. Valid on PostgreSQL 15 and Aurora PostgreSQL 15:
-- gen_random_uuid() is built in since PostgreSQL 13, no extension needed.
CREATE TABLE todos (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title        text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description  text        CHECK (char_length(description) <= 2000),
    priority     text        NOT NULL DEFAULT 'medium' CHECK (char_length(priority) <= 32),
    completed    boolean     NOT NULL DEFAULT false,
    completed_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Bumped by every update: the strong ETag, and the check of conditional updates (If-Match).
    version      bigint      NOT NULL DEFAULT 1
);

-- Newest first, with the id as tie-breaker: keyset pagination on (created_at, id).
CREATE INDEX todos_created_at_id ON todos (created_at DESC, id DESC);
