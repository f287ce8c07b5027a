-- +goose Up
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL means not
-- set. Amounts are INTEGER fen.

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
CREATE UNIQUE INDEX payments_out_trade_no ON payments (merchant_id, out_trade_no);
CREATE UNIQUE INDEX payments_req_seq_id ON payments (merchant_id, req_date, req_seq_id);
CREATE INDEX payments_due ON payments (next_query_at) WHERE next_query_at IS NOT NULL;

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
CREATE UNIQUE INDEX refunds_out_refund_no ON refunds (merchant_id, out_refund_no);
CREATE UNIQUE INDEX refunds_req_seq_id ON refunds (merchant_id, req_date, req_seq_id);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_due ON refunds (next_query_at) WHERE next_query_at IS NOT NULL;

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
CREATE INDEX idempotency_expires ON idempotency (expires_at);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    req_seq_id  TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL DEFAULT '',
    object_id   TEXT    NOT NULL DEFAULT '',
    resp_data   TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);

-- seq is never reused (AUTOINCREMENT), so delivery order within an
-- order_key follows insertion order.
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
CREATE INDEX events_undelivered ON events (order_key, seq) WHERE status <> 'delivered';
CREATE INDEX events_due ON events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX events_status ON events (status, seq);

-- +goose Down
DROP TABLE events;
DROP TABLE notifications;
DROP TABLE idempotency;
DROP TABLE refunds;
DROP TABLE payments;
