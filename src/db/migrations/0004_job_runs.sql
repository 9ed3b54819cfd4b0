-- One row per run of a scheduled job (backup, prune, optimize), written when it starts and
-- updated when it ends. A row left 'running' by a stopped process is marked failed at start.
CREATE TABLE _job_runs (
    id        INTEGER PRIMARY KEY,
    job       TEXT NOT NULL,
    trigger   TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'cli', 'retry')),
    attempt   INTEGER NOT NULL DEFAULT 1,
    started   TEXT NOT NULL,
    finished  TEXT,
    status    TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    detail    TEXT
) STRICT;
CREATE INDEX _job_runs_job ON _job_runs(job, id);
