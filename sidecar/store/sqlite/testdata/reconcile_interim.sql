PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	);
INSERT INTO goose_db_version VALUES(1,0,1,'2026-12-01 09:26:28');
INSERT INTO goose_db_version VALUES(2,1,1,'2026-12-01 09:26:28');
CREATE TABLE payments (
    id                TEXT PRIMARY KEY,
    merchant_id       TEXT    NOT NULL,
    out_trade_no      TEXT    NOT NULL,
    flow              TEXT    NOT NULL DEFAULT '',
    trade_type        TEXT    NOT NULL DEFAULT '',
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    description       TEXT    NOT NULL DEFAULT '',
    req_date          TEXT    NOT NULL,
    req_seq_id        TEXT    NOT NULL,
    nkp_seq_id        TEXT    NOT NULL DEFAULT '',
    party_order_id    TEXT    NOT NULL DEFAULT '',
    out_trans_id      TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL,
    trans_stat        TEXT    NOT NULL DEFAULT '',
    request_hash      TEXT    NOT NULL DEFAULT '',
    pay_params        TEXT,
    metadata          TEXT,
    buyer             TEXT,
    refunded_fen      INTEGER NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    expires_at        INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    next_query_at     INTEGER,
    query_attempts    INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    upstream_fields   TEXT,
    query_owner       TEXT,
    query_lease_until INTEGER
);
CREATE TABLE refunds (
    id                TEXT PRIMARY KEY,
    payment_id        TEXT    NOT NULL REFERENCES payments (id),
    merchant_id       TEXT    NOT NULL,
    out_refund_no     TEXT    NOT NULL,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    reason            TEXT    NOT NULL DEFAULT '',
    req_date          TEXT    NOT NULL,
    req_seq_id        TEXT    NOT NULL,
    nkp_seq_id        TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL,
    trans_stat        TEXT    NOT NULL DEFAULT '',
    request_hash      TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    next_query_at     INTEGER,
    query_attempts    INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT    NOT NULL DEFAULT '',
    upstream_fields   TEXT,
    query_owner       TEXT,
    query_lease_until INTEGER
);
CREATE TABLE idempotency (
    scope        TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    status_code  INTEGER NOT NULL DEFAULT 0,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    req_seq_id  TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL DEFAULT '',
    resp_data   TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    type            TEXT    NOT NULL,
    object_id       TEXT    NOT NULL DEFAULT '',
    order_key       TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER
);
CREATE TABLE reconcile_goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	);
INSERT INTO reconcile_goose_db_version VALUES(1,0,1,'2026-12-01 09:26:28');
INSERT INTO reconcile_goose_db_version VALUES(2,1,1,'2026-12-01 09:26:28');
CREATE TABLE reconcile_runs (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT    NOT NULL,
    bill_date   TEXT    NOT NULL,
    run_trigger TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    owner       TEXT    NOT NULL DEFAULT '',
    claim_key   TEXT UNIQUE,
    lease_until INTEGER,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    differences INTEGER NOT NULL DEFAULT 0,
    report      TEXT,
    error       TEXT    NOT NULL DEFAULT ''
);
INSERT INTO reconcile_runs VALUES('r-old','m','20250228','schedule','differences','a','m/20250228',1740794400000000,1740790800000000,1740790860000000,2,'{"run_id":"r-old","merchant_id":"","date":"","trigger":"","status":"differences","started_at":"0001-01-01T00:00:00Z","finished_at":"2025-03-01T01:01:00Z","file_records":12,"ledger_records":11,"counts":{"amount_differs":1,"missing_in_file":1},"settled":0,"totals":null,"files":null,"differences":null}','');
INSERT INTO reconcile_runs VALUES('r-claim','m','20250301','schedule','running','b','m/20250301',1740826800000000,1740823200000000,NULL,0,NULL,'');
CREATE TABLE reconcile_differences (
    run_id     TEXT    NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    req_seq_id TEXT    NOT NULL DEFAULT '',
    body       TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
INSERT INTO reconcile_differences VALUES('r-old',1,'amount_differs','p1','{"seq":1,"kind":"amount_differs","req_seq_id":"p1","reason":"x"}');
INSERT INTO reconcile_differences VALUES('r-old',2,'missing_in_file','p2','{"seq":2,"kind":"missing_in_file","req_seq_id":"p2","reason":""}');
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('goose_db_version',2);
INSERT INTO sqlite_sequence VALUES('reconcile_goose_db_version',2);
CREATE UNIQUE INDEX payments_out_trade_no ON payments (merchant_id, out_trade_no);
CREATE UNIQUE INDEX payments_req_seq_id ON payments (merchant_id, req_date, req_seq_id);
CREATE INDEX payments_due ON payments (next_query_at) WHERE next_query_at IS NOT NULL;
CREATE UNIQUE INDEX refunds_out_refund_no ON refunds (merchant_id, out_refund_no);
CREATE UNIQUE INDEX refunds_req_seq_id ON refunds (merchant_id, req_date, req_seq_id);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_due ON refunds (next_query_at) WHERE next_query_at IS NOT NULL;
CREATE INDEX idempotency_expires ON idempotency (expires_at);
CREATE INDEX events_undelivered ON events (order_key, seq) WHERE status <> 'delivered';
CREATE INDEX events_due ON events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_status ON events (status, seq);
CREATE INDEX reconcile_runs_started ON reconcile_runs (merchant_id, started_at);
CREATE INDEX reconcile_runs_date ON reconcile_runs (merchant_id, bill_date, started_at);
COMMIT;
