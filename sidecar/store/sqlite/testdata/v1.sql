PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	);
INSERT INTO goose_db_version VALUES(1,0,1,'2026-12-01 05:20:59');
INSERT INTO goose_db_version VALUES(2,1,1,'2026-12-01 05:20:59');
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
INSERT INTO payments VALUES('pay_1','6666000100000001','order-pay_1','wechat-jsapi','T_JSAPI',100,'一杯茶 tea','20250301','seq-pay_1','nkp-1','party-1','','processing','P','hash-pay_1','{"appId":"wx1","package":"prepay_id=1"}','{"cart":"42"}','{"openid":"o-123"}',0,1740830400123456,1740823200123456,1740823201123456,NULL,1740823260123456,1,'timeout',NULL,'replica-a',1740826800123456);
INSERT INTO payments VALUES('pay_2','6666000100000001','order-pay_2','wechat-jsapi','T_JSAPI',100,'一杯茶 tea','20250301','seq-pay_2','nkp-2','','out-2','succeeded','S','hash-pay_2',NULL,'{"cart":"42"}','{"openid":"o-123"}',30,1740830400123456,1740823200123456,1740823205123456,1740823203123456,NULL,0,'','{"trans_stat":"S","trans_amt":"1.00"}',NULL,NULL);
INSERT INTO payments VALUES('pay_3','6666000100000001','order-pay_3','wechat-jsapi','T_JSAPI',100,'一杯茶 tea','20250301','seq-pay_3','','','','failed','F','hash-pay_3',NULL,'{"cart":"42"}','{"openid":"o-123"}',0,1740830400123456,1740823200123456,1740823207123456,1740823206123456,NULL,0,'card declined',NULL,NULL,NULL);
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
INSERT INTO refunds VALUES('ref_1','pay_2','6666000100000001','refund-ref_1',30,'changed mind','20250301','seq-ref_1','','succeeded','S','hash-ref_1',1740823204123456,1740823205123456,1740823205123456,NULL,0,'',NULL,NULL,NULL);
INSERT INTO refunds VALUES('ref_2','pay_2','6666000100000001','refund-ref_2',30,'changed mind','20250301','seq-ref_2','','pending','','hash-ref_2',1740823204123456,1740823204123456,NULL,1740823800123456,0,'',NULL,NULL,NULL);
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
INSERT INTO idempotency VALUES('POST /v1/payments','k-done','h1','done',201,X'7b226964223a227061795f31227d',1740823200123456,1740909600123456);
INSERT INTO idempotency VALUES('POST /v1/refunds','k-running','h2','in_progress',0,NULL,1740823200123456,1740823260123456);
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    req_seq_id  TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL DEFAULT '',
    resp_data   TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);
INSERT INTO notifications VALUES('ntf_1','seq-pay_2','payment','pay_2','{"req_seq_id":"seq-pay_2","trans_stat":"S"}',1740823203123456);
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
INSERT INTO events VALUES(1,'evt_pay_2','payment.succeeded','pay_2','pay_2','{"id":"evt_pay_2","type":"payment.succeeded"}','delivered',1,1740823209123456,'',1740823203123456,1740823209123456,NULL,NULL);
INSERT INTO events VALUES(2,'evt_ref_1','refund.succeeded','ref_1','pay_2','{"id":"evt_ref_1","type":"refund.succeeded"}','pending',0,1740823205123456,'',1740823205123456,NULL,'worker-1',1740826800123456);
INSERT INTO events VALUES(3,'evt_pay_3','payment.failed','pay_3','pay_3','{"id":"evt_pay_3","type":"payment.failed"}','dead',1,1740823209123456,'410 Gone',1740823206123456,NULL,NULL,NULL);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('goose_db_version',2);
INSERT INTO sqlite_sequence VALUES('events',3);
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
COMMIT;
