-- Owners (AUTH=jwt or alb): the caller's `sub` (or AUTH_OWNER_CLAIM). NULL: created while
-- AUTH=off; such rows are visible only with AUTH=off (README, "Authentication and todo owners",
-- has the UPDATE that hands them to a user). Adding a nullable column without a default is
-- instant (no table rewrite).
ALTER TABLE todos ADD COLUMN owner text CHECK (char_length(owner) BETWEEN 1 AND 256);

-- One owner's list and its cursors, newest first: the keyset query walks this index. Rows without
-- an owner are left out (AUTH=off lists use todos_created_at_id).
CREATE INDEX todos_owner_created_at_id ON todos (owner, created_at DESC, id DESC) WHERE owner IS NOT NULL;

-- Idempotency keys are per owner: the same key from two owners is two keys. '' is "no owner"
-- (AUTH=off), so the primary key stays simple. The table holds at most a day of keys.
ALTER TABLE idempotency_keys ADD COLUMN owner text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (owner, key);
