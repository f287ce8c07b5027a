-- +goose Up
-- Reconciliation runs and their differences.
--
-- A database written by an earlier version may hold these tables already,
-- created by the reconciliation's own migrations (versioned apart, in
-- reconcile_goose_db_version) with exactly these columns and indexes: they
-- are kept as they are, with their rows, and that version table is
-- dropped, since the store's migrations own the tables from now on.

-- claim_key is set ("<merchant_id>/<bill_date>") on exclusive (scheduled)
-- runs only; its uniqueness lets one replica claim a day. A failed run
-- releases it; lease_until lets a claim of an owner that stopped
-- answering be taken over.
CREATE TABLE IF NOT EXISTS reconcile_runs (
    id          text PRIMARY KEY,
    merchant_id text        NOT NULL,
    bill_date   text        NOT NULL,
    run_trigger text        NOT NULL,
    status      text        NOT NULL,
    owner       text        NOT NULL DEFAULT '',
    claim_key   text UNIQUE,
    lease_until timestamptz,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    differences integer     NOT NULL DEFAULT 0,
    report      json,
    error       text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS reconcile_runs_started ON reconcile_runs (merchant_id, started_at);
CREATE INDEX IF NOT EXISTS reconcile_runs_date ON reconcile_runs (merchant_id, bill_date, started_at);

CREATE TABLE IF NOT EXISTS reconcile_differences (
    run_id     text    NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    kind       text    NOT NULL,
    req_seq_id text    NOT NULL DEFAULT '',
    body       json    NOT NULL,
    PRIMARY KEY (run_id, seq)
);

DROP TABLE IF EXISTS reconcile_goose_db_version;

-- +goose Down
DROP TABLE reconcile_differences;
DROP TABLE reconcile_runs;
