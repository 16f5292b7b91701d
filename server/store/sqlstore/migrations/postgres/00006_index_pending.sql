-- The scans whose index rows are not written yet (issue 14); see the
-- SQLite file of the same version. PostgreSQL writes them in the upload's
-- own transaction, so this table stays empty here.

-- +goose Up
CREATE TABLE index_pending (
    scan_id BIGINT PRIMARY KEY
);

-- +goose Down
DROP TABLE index_pending;
