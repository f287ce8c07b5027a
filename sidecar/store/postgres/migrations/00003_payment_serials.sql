-- +goose Up
-- A refund may name its payment by the upstream's global serial or by the
-- channel's order id; both are looked up per merchant.
CREATE INDEX payments_nkp_seq_id ON payments (merchant_id, nkp_seq_id) WHERE nkp_seq_id <> '';
CREATE INDEX payments_party_order_id ON payments (merchant_id, party_order_id) WHERE party_order_id <> '';

-- +goose Down
DROP INDEX payments_party_order_id;
DROP INDEX payments_nkp_seq_id;
