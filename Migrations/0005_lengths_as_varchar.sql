-- The length rules as varchar(n) instead of domains; only the title's "not empty" stays a domain.
-- Why: a domain's CHECK is not free either. Each execution of a statement that writes a domain
-- column sets the domain's constraints up again (InitDomainConstraintRef: the check planned and
-- compiled per execution, CheckExprStillValid at its first evaluation), even for a column the
-- INSERT leaves NULL (PostgreSQL coerces the NULL into the domain). A varchar(n) length is a
-- plain length-coercion call. Measured: 40,000 INSERTs of the service's open create in one
-- backend (a DO block, 3 rounds), 10.3 µs each with the four domains, 8.7 with varchar(n)
-- only, 9.2 with the title's domain kept, 8.5 with no rule at all; under POST load, the domain
-- setup (palloc0, CheckExprStillValid, ExprEvalPushStep, eval_const_expressions) was most of the
-- 4.4 µs of PostgreSQL CPU per insert above the Rust anchor's (perf, user time of the backends).
--
-- The rules themselves stay, counted in characters as char_length counted them:
--   title 1-200, description <= 2000, priority <= 32, owner <= 256.
-- What changes: a value too long is refused with SQLSTATE 22001 (string_data_right_truncation)
-- instead of 23514; an empty title is still 23514. An empty owner is no longer refused by the
-- table: the owner is the token's subject, which the authenticator requires to be a non-empty
-- string (Auth/TokenPolicy), and the request never names it.
-- A value assigned to a varchar(n) column is refused when too long (only an explicit cast cuts),
-- with one exception of PostgreSQL's: excess characters that are all spaces are cut silently.
-- The service never sends such a value (titles are trimmed, the other fields length-checked).
--
-- Deploying it: the type change rewrites the table and its indexes under an ACCESS EXCLUSIVE lock
-- (as 0004's did: each row's lengths are checked), so writes wait for it; run it at a quiet time
-- on a large table. Tasks still running the previous version keep statements prepared against
-- the old column types: PostgreSQL refuses those with 0A000 ("cached plan must not change result
-- type"), and since this version the connection prepares them again and resends the query once
-- (PostgresError.isStalePreparedStatement). Versions before it answer such queries with an error
-- until their connections are replaced (30 minutes at most).
-- The type change drops the columns' statistics: ANALYZE at the end.
CREATE DOMAIN todo_title_text AS varchar(200) CHECK (VALUE <> '');

ALTER TABLE todos
    ALTER COLUMN title TYPE todo_title_text,
    ALTER COLUMN description TYPE varchar(2000),
    ALTER COLUMN priority TYPE varchar(32),
    ALTER COLUMN owner TYPE varchar(256);

DROP DOMAIN todo_title;
DROP DOMAIN todo_description;
DROP DOMAIN todo_priority;
DROP DOMAIN todo_owner;

ANALYZE todos;
