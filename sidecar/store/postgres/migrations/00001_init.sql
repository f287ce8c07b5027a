-- +goose Up
-- Times are timestamptz (microseconds); NULL means not set. Amounts are
-- bigint fen. JSON columns use json, which keeps the bytes as written.

CREATE TABLE payments (
    id                text PRIMARY KEY,
    merchant_id       text        NOT NULL,
    out_trade_no      text        NOT NULL,
    flow              text        NOT NULL DEFAULT '',
    trade_type        text        NOT NULL DEFAULT '',
    amount_fen        bigint      NOT NULL CHECK (amount_fen > 0),
    description       text        NOT NULL DEFAULT '',
    req_date          text        NOT NULL,
    req_seq_id        text        NOT NULL,
    nkp_seq_id        text        NOT NULL DEFAULT '',
    party_order_id    text        NOT NULL DEFAULT '',
    out_trans_id      text        NOT NULL DEFAULT '',
    status            text        NOT NULL,
    trans_stat        text        NOT NULL DEFAULT '',
    request_hash      text        NOT NULL DEFAULT '',
    pay_params        json,
    metadata          json,
    buyer             json,
    refunded_fen      bigint      NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    next_query_at     timestamptz,
    query_attempts    integer     NOT NULL DEFAULT 0,
    last_error        text        NOT NULL DEFAULT '',
    upstream_fields   json,
    query_owner       text,
    query_lease_until timestamptz,
    CONSTRAINT payments_out_trade_no UNIQUE (merchant_id, out_trade_no),
    CONSTRAINT payments_req_seq_id UNIQUE (merchant_id, req_date, req_seq_id)
);
CREATE INDEX payments_due ON payments (next_query_at) WHERE next_query_at IS NOT NULL;

CREATE TABLE refunds (
    id                text PRIMARY KEY,
    payment_id        text        NOT NULL REFERENCES payments (id),
    merchant_id       text        NOT NULL,
    out_refund_no     text        NOT NULL,
    amount_fen        bigint      NOT NULL CHECK (amount_fen > 0),
    reason            text        NOT NULL DEFAULT '',
    req_date          text        NOT NULL,
    req_seq_id        text        NOT NULL,
    nkp_seq_id        text        NOT NULL DEFAULT '',
    status            text        NOT NULL,
    trans_stat        text        NOT NULL DEFAULT '',
    request_hash      text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    next_query_at     timestamptz,
    query_attempts    integer     NOT NULL DEFAULT 0,
    last_error        text        NOT NULL DEFAULT '',
    upstream_fields   json,
    query_owner       text,
    query_lease_until timestamptz,
    CONSTRAINT refunds_out_refund_no UNIQUE (merchant_id, out_refund_no),
    CONSTRAINT refunds_req_seq_id UNIQUE (merchant_id, req_date, req_seq_id)
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_due ON refunds (next_query_at) WHERE next_query_at IS NOT NULL;

CREATE TABLE idempotency (
    scope        text        NOT NULL,
    idem_key     text        NOT NULL,
    request_hash text        NOT NULL,
    state        text        NOT NULL,
    status_code  integer     NOT NULL DEFAULT 0,
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_expires ON idempotency (expires_at);

CREATE TABLE notifications (
    id          text PRIMARY KEY,
    req_seq_id  text        NOT NULL DEFAULT '',
    kind        text        NOT NULL DEFAULT '',
    object_id   text        NOT NULL DEFAULT '',
    resp_data   text        NOT NULL,
    received_at timestamptz NOT NULL
);

-- Events of one order_key are inserted under a transaction-scoped advisory
-- lock on the key, so their seq order is also their commit order.
CREATE TABLE events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    type            text        NOT NULL,
    object_id       text        NOT NULL DEFAULT '',
    order_key       text        NOT NULL,
    payload         json        NOT NULL,
    status          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    lease_owner     text,
    lease_until     timestamptz
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
