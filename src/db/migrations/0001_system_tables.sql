-- System tables. Every name starts with `_`, which collection names cannot.
-- Times are canonical RFC 3339 UTC text (see src/time.rs); ids are ULIDs.

CREATE TABLE _collections (
    name        TEXT PRIMARY KEY NOT NULL,
    definition  TEXT NOT NULL,            -- CollectionSpec as JSON
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL
) STRICT;

CREATE TABLE _users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,          -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL
) STRICT;

-- Bearer credentials: API tokens (kind 'api') and login tokens from /api/auth/login
-- (kind 'login'). Only the SHA-256 of the secret is kept.
CREATE TABLE _tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES _users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('api', 'login')),
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created    TEXT NOT NULL,
    expires    TEXT,                      -- NULL = never
    last_used  TEXT
) STRICT;
CREATE INDEX _tokens_user ON _tokens(user_id);

-- Failed sign-in counters, one row per throttling key ('ip:<addr>' or 'acct:<email>|<addr>').
CREATE TABLE _login_attempts (
    key           TEXT PRIMARY KEY NOT NULL,
    failures      INTEGER NOT NULL,
    window_start  TEXT NOT NULL,
    blocked_until TEXT
) STRICT;

-- The change log: one row per committed record or schema write, in the same transaction.
CREATE TABLE _changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    time        TEXT NOT NULL,
    collection  TEXT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'schema')),
    record_id   TEXT,
    data        TEXT                      -- after-image JSON (NULL for deletes)
) STRICT;

CREATE TABLE _audit (
    id      INTEGER PRIMARY KEY,
    time    TEXT NOT NULL,
    actor   TEXT,                         -- user id, or NULL for the CLI / anonymous
    ip      TEXT,
    action  TEXT NOT NULL,                -- e.g. 'auth.login', 'auth.login_failed', 'token.create'
    detail  TEXT                          -- JSON
) STRICT;
CREATE INDEX _audit_time ON _audit(time);
