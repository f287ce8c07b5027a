-- +goose Up
-- A checkout is a payment offered before any buyer is known: the app
-- creates it, hands its launch links to a page or an app, and the buyer
-- pays it once from the mini-program. Times are timestamptz; NULL means
-- not set.

CREATE TABLE checkouts (
    id           text PRIMARY KEY,
    merchant_id  text        NOT NULL,
    out_trade_no text        NOT NULL,
    flow         text        NOT NULL,
    amount_fen   bigint      NOT NULL CHECK (amount_fen > 0),
    description  text        NOT NULL DEFAULT '',
    links        json,
    payment_id   text        NOT NULL DEFAULT '',
    claimed_at   timestamptz,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT checkouts_out_trade_no UNIQUE (merchant_id, out_trade_no)
);

-- +goose Down
DROP TABLE checkouts;
