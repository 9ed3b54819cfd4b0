-- Browser sessions (SECURITY.md, Identity). The cookie holds a 256-bit random secret; only its
-- SHA-256 is kept. Each session has its own CSRF token for forms and cookie-authenticated API
-- calls. `mfa_pending` sessions have passed the password step only: they may finish the
-- second factor and nothing else.
CREATE TABLE _sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES _users(id) ON DELETE CASCADE,
    hash         BLOB NOT NULL UNIQUE,
    csrf         TEXT NOT NULL,
    mfa_pending  INTEGER NOT NULL DEFAULT 0 CHECK (mfa_pending IN (0, 1)),
    created      TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    expires      TEXT NOT NULL,           -- absolute end; idle expiry counts from last_seen
    ip           TEXT,
    user_agent   TEXT
) STRICT;
CREATE INDEX _sessions_user ON _sessions(user_id);

-- TOTP second factor: the base32 seed (NULL = not enrolled) and the last time step accepted,
-- so a code is never accepted twice.
ALTER TABLE _users ADD COLUMN totp_secret TEXT;
ALTER TABLE _users ADD COLUMN totp_last_step INTEGER;

-- One-time recovery codes for a lost authenticator, stored hashed.
CREATE TABLE _recovery_codes (
    user_id  TEXT NOT NULL REFERENCES _users(id) ON DELETE CASCADE,
    hash     BLOB NOT NULL,
    used     TEXT,
    PRIMARY KEY (user_id, hash)
) STRICT;
