-- +goose Up
-- A checkout is a payment offered before any buyer is known: the app
-- creates it, hands its launch links to a page or an app, and the buyer
-- pays it once from the mini-program. Times are INTEGER microseconds since
-- the Unix epoch, UTC; NULL means not set.

CREATE TABLE checkouts (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT    NOT NULL,
    out_trade_no TEXT    NOT NULL,
    flow         TEXT    NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    description  TEXT    NOT NULL DEFAULT '',
    links        TEXT,
    payment_id   TEXT    NOT NULL DEFAULT '',
    claimed_at   INTEGER,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX checkouts_out_trade_no ON checkouts (merchant_id, out_trade_no);

-- +goose Down
DROP TABLE checkouts;
