-- TOTP enrolment: the seed made by "set up" waits here, on the server, until the user proves
-- their authenticator with a code; only then does it become `totp_secret`. The browser never
-- sends a seed back, so nobody can enrol someone else's seed.
ALTER TABLE _users ADD COLUMN totp_pending TEXT;
